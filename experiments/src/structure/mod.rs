//! `structure`: the structure theory of GS matrices, measured (paper §3, digest §10 T7–T9, T16).
//!
//! 1. **Block ranks (Prop. 1, T8)**: for several GS(I, P, I) layouts, the predicted block-rank
//!    profile `min(#slots, b_L¹, b_R²)` next to the numerically measured block ranks of a random
//!    member (`ranks.csv`, `ranks_<setting>.png/svg`).
//! 2. **Projection (Algorithm 1, T9)**: random members are projected back (relative error ≈ 1e-15);
//!    random dense matrices are projected and compared with the best-scaled random members and
//!    with random perturbations of the projection's own blocks (`projection.csv`).
//! 3. **Theorem 1 (T7)**: orthogonal GS members written with non-orthogonal factors
//!    (`L_S ← L_S G`, `R_S ← G⁻¹ R_S` per block) are given orthogonal blocks back (`theorem1.csv`).
//! 4. **Expressivity**: relative Frobenius error against parameter budget for GS (m = 2, 3),
//!    Monarch, BOFT, block-diagonal and low-rank on Gaussian, orthogonal, DCT-II and
//!    Walsh–Hadamard targets (`expressivity.csv`, `expressivity_<target>.png/svg`). Projections
//!    where they exist (Algorithm 1, keeping blocks, truncated SVD), Adam on the chain blocks
//!    otherwise. Families: GS m=2 = GSOFT's `Pᵀ L P R` with `b × b` blocks (Algorithm 1);
//!    Monarch = every square `(k_L, k_R)` with `k_L·k_R = n` (Algorithm 1); GS m=3 =
//!    `B_3 P B_2 P B_1` with the default shuffles ([`GsChain::with_shuffles`](gslab::structured::GsChain::with_shuffles), Adam); BOFT = the
//!    PEFT butterfly with `m = 1 + log₂(n/b)` factors, the dense setting (Adam); block-diagonal
//!    (keep the diagonal blocks); low-rank (truncated SVD). Figures show, per family, the best
//!    error at each parameter count; the CSV has every configuration. As a check of the Adam
//!    fits, Adam is also run on the GS m=2 layout, whose optimum Algorithm 1 gives exactly
//!    (family `GS m=2 (Adam)` in the CSV).
//!
//! `summary.json` collects the key numbers, `figures.json` lists every figure with a caption;
//! a table is printed at the end. One file per study: `ranks`, `projection`, `theorem1`,
//! `expressivity`; this file holds the command line and the helpers they share.

mod expressivity;
mod projection;
mod ranks;
mod theorem1;

use crate::{CommonArgs, Error, Result, Run, print_table};
use clap::Parser;
use gslab::Tensor;
use gslab::orthogonal::theorem1::orthogonal_representation;
use gslab::structured::{BlockShape, ChainLayout, Gs};
use rand::{SeedableRng, rngs::StdRng};
use serde_json::json;

/// Command line of the `structure` experiment.
#[derive(Parser)]
#[command(
    name = "structure",
    about = "Prop. 1 block ranks, Algorithm 1 projection, Theorem 1, and expressivity vs parameters"
)]
pub struct Args {
    /// `--seed`, `--threads`, `--out`, `--quick`.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Matrix size of the expressivity study: a power of two in 8..=256 (default 64; 16 with --quick).
    #[arg(long)]
    pub n: Option<usize>,
    /// Adam steps per gradient fit (default 1500; 300 with --quick).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Random trials per projection / Theorem 1 layout (default 12; 4 with --quick).
    #[arg(long)]
    pub trials: Option<usize>,
}

/// Peak Adam learning rate of the gradient fits (cosine decay to 1 % of it).
const LR: f64 = 0.02;

/// Runs the experiment and writes every output into `--out`.
///
/// # Errors
/// Invalid arguments (named in the message), a numerical failure, or a file that cannot be
/// written.
pub fn run(args: Args) -> Result<()> {
    let q = args.common.quick;
    let cfg = Config {
        n: args.n.unwrap_or(if q { 16 } else { 64 }),
        steps: args.steps.unwrap_or(if q { 300 } else { 1500 }),
        trials: args.trials.unwrap_or(if q { 4 } else { 12 }),
    };
    cfg.validate()?;
    let run = args.common.setup("structure")?;
    run.install(|| experiment(&run, &cfg))
}

/// Sizes of one run.
struct Config {
    n: usize,
    steps: usize,
    trials: usize,
}

impl Config {
    fn validate(&self) -> Result<()> {
        if !self.n.is_power_of_two() || !(8..=256).contains(&self.n) {
            return Err(Error::Usage(format!(
                "--n must be a power of two in 8..=256 (Walsh-Hadamard and BOFT need powers of two), got {}",
                self.n
            )));
        }
        if self.steps == 0 || self.steps > 100_000 {
            return Err(Error::Usage(format!(
                "--steps must be in 1..=100000, got {}",
                self.steps
            )));
        }
        if self.trials == 0 || self.trials > 1000 {
            return Err(Error::Usage(format!(
                "--trials must be in 1..=1000, got {}",
                self.trials
            )));
        }
        Ok(())
    }
}

fn experiment(run: &Run, cfg: &Config) -> Result<()> {
    let settings = ranks::rank_settings(run.seed)?;
    let ranks = ranks::rank_study(run, &settings)?;
    let proj = projection::projection_study(run, cfg, &settings)?;
    let thm1 = theorem1::theorem1_study(run, cfg, &settings)?;
    let expr = expressivity::expressivity_study(run, cfg)?;
    let summary = json!({
        "seed": run.seed,
        "quick": run.quick,
        "threads": run.threads,
        "n": cfg.n,
        "steps": cfg.steps,
        "trials": cfg.trials,
        "rank_profile": ranks,
        "projection": proj,
        "theorem1": thm1,
        "expressivity": expr,
    });
    run.write_json("summary.json", &summary)?;
    run.finish()?;
    print_key_numbers(&summary);
    println!("outputs in {}", run.out.display());
    Ok(())
}

/// Prints the key numbers of `summary.json` as a table.
fn print_key_numbers(s: &serde_json::Value) {
    let f = |v: &serde_json::Value| v.as_f64().map_or("-".into(), |x| format!("{x:.2e}"));
    let (r, p, t) = (&s["rank_profile"], &s["projection"], &s["theorem1"]);
    let kept = r["settings"].as_array().map_or(f64::NAN, |a| {
        a.iter()
            .filter_map(|x| x["min_kept_singular_value"].as_f64())
            .fold(f64::INFINITY, f64::min)
    });
    let dropped = r["settings"].as_array().map_or(f64::NAN, |a| {
        a.iter()
            .filter_map(|x| x["max_dropped_singular_value"].as_f64())
            .fold(0.0, f64::max)
    });
    let rows = vec![
        vec![
            "Prop. 1 predicted == measured block ranks".into(),
            r["all_agree"].to_string(),
        ],
        vec![
            "  smallest kept / largest dropped singular value".into(),
            format!("{kept:.2e} / {dropped:.2e}"),
        ],
        vec![
            "Alg. 1 max rel. error on members".into(),
            f(&p["max_member_rel_error"]),
        ],
        vec![
            "Alg. 1 never worse than random members / perturbations".into(),
            p["projection_never_worse"].to_string(),
        ],
        vec![
            "  min margin vs best random member / perturbation".into(),
            format!(
                "{} / {}",
                f(&p["min_margin_vs_random_members"]),
                f(&p["min_margin_vs_perturbed"])
            ),
        ],
        vec![
            "Thm 1 hidden factors: min max|B^T B - I|".into(),
            f(&t["min_hidden_block_orthogonality_error"]),
        ],
        vec![
            "Thm 1 recovered blocks: max |B^T B - I|".into(),
            f(&t["max_orthogonality_error"]),
        ],
        vec![
            "Thm 1 reconstruction max error".into(),
            f(&t["max_reconstruction_error"]),
        ],
        vec![
            "Adam on GS m=2: max excess over Alg. 1".into(),
            f(&s["expressivity"]["adam_gs2_max_excess_over_alg1"]),
        ],
    ];
    println!();
    print_table(&["check", "value"], &rows);
}

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/// A seeded generator for one named piece of work: `seed` mixed with `tag` (FNV-1a).
fn rng_for(seed: u64, tag: &str) -> StdRng {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tag.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    StdRng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ h)
}

/// I.i.d. `N(0, 1/b²)` blocks of one factor.
fn random_blocks(s: BlockShape, rng: &mut StdRng) -> Tensor<f64> {
    Tensor::randn(&s.tensor_shape(), 1.0 / (s.b2 as f64).sqrt(), rng)
}

/// Random blocks for every factor of a layout.
fn random_member(layout: &ChainLayout, rng: &mut StdRng) -> Vec<Tensor<f64>> {
    layout
        .factors()
        .iter()
        .map(|&f| random_blocks(f, rng))
        .collect()
}

/// `‖a − b‖_F / ‖a‖_F`.
fn rel_err(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    a.sub(b).norm() / a.norm()
}

/// Algorithm 1 ([`Gs::project`]) as the chain's factor list `[R, L]` (application order, the
/// order `reference_dense` and the perturbation studies take).
fn project(a: &Tensor<f64>, layout: &ChainLayout) -> gslab::Result<Vec<Tensor<f64>>> {
    let p = Gs::project(a, layout)?;
    Ok(vec![p.gs.r().clone(), p.gs.l().clone()])
}

/// Theorem 1's orthogonal-block representation of the GS matrix with factors `[R, L]` on
/// `layout`, returned as `[R', L']`.
fn theorem1(layout: &ChainLayout, blocks: &[Tensor<f64>]) -> gslab::Result<Vec<Tensor<f64>>> {
    let a = Gs::from_layout(layout.clone(), blocks[1].clone(), blocks[0].clone())?;
    let rec = orthogonal_representation(&a)?;
    Ok(vec![rec.r().clone(), rec.l().clone()])
}
