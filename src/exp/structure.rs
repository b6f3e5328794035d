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
//!    `B_3 P B_2 P B_1` with the default shuffles ([`GsChain::with_shuffles`], Adam); BOFT = the
//!    PEFT butterfly with `m = 1 + log₂(n/b)` factors, the dense setting (Adam); block-diagonal
//!    (keep the diagonal blocks); low-rank (truncated SVD). Figures show, per family, the best
//!    error at each parameter count; the CSV has every configuration. As a check of the Adam
//!    fits, Adam is also run on the GS m=2 layout, whose optimum Algorithm 1 gives exactly
//!    (family `GS m=2 (Adam)` in the CSV).
//!
//! `summary.json` collects the key numbers, `figures.json` lists every figure with a caption;
//! a table is printed at the end.

use crate::autodiff::ops::chain::chain_apply;
use crate::exp::{CommonArgs, Run, print_table};
use crate::kernels::reference::reference_dense;
use crate::nn::optim::{Adam, Optimizer};
use crate::nn::schedule::Schedule;
use crate::plot::{Heatmap, Plot, Series, XyPlot};
use crate::structured::project::{
    block_rank_profile, gs_layout, monarch_layout, project_gs, strip_outer,
};
use crate::structured::theorem1::{block_orthogonality_error, orthogonal_representation};
use crate::structured::{
    BlockDiag, BlockShape, Butterfly, ChainLayout, Gs, GsChain, LinearOp, LowRank,
};
use crate::{Error, Perm, Result, Tape, Tensor, Var};
use clap::Parser;
use faer::Mat;
use rand::{SeedableRng, rngs::StdRng};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;

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
            return Err(Error::InvalidArgument(format!(
                "--n must be a power of two in 8..=256 (Walsh-Hadamard and BOFT need powers of two), got {}",
                self.n
            )));
        }
        if self.steps == 0 || self.steps > 100_000 {
            return Err(Error::InvalidArgument(format!(
                "--steps must be in 1..=100000, got {}",
                self.steps
            )));
        }
        if self.trials == 0 || self.trials > 1000 {
            return Err(Error::InvalidArgument(format!(
                "--trials must be in 1..=1000, got {}",
                self.trials
            )));
        }
        Ok(())
    }
}

fn experiment(run: &Run, cfg: &Config) -> Result<()> {
    let settings = rank_settings(run.seed)?;
    let ranks = rank_study(run, &settings)?;
    let proj = projection_study(run, cfg, &settings)?;
    let thm1 = theorem1_study(run, cfg, &settings)?;
    let expr = expressivity_study(run, cfg)?;
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

/// An `n × n` matrix with orthonormal columns: the Q of a QR of a Gaussian matrix.
fn random_orthogonal(n: usize, rng: &mut StdRng) -> Mat<f64> {
    let g = Tensor::<f64>::randn(&[n, n], 1.0, rng).to_mat();
    g.qr().compute_thin_Q()
}

/// `k` random orthogonal `b × b` blocks as a `(k, b, b)` tensor.
fn orthogonal_blocks(k: usize, b: usize, rng: &mut StdRng) -> Tensor<f64> {
    let mut t = Tensor::zeros(&[k, b, b]);
    for j in 0..k {
        let q = random_orthogonal(b, rng);
        for u in 0..b {
            for v in 0..b {
                t.data_mut()[(j * b + u) * b + v] = q[(u, v)];
            }
        }
    }
    t
}

// ---------------------------------------------------------------------------------------------
// 1. Proposition 1: block-rank profiles
// ---------------------------------------------------------------------------------------------

/// A named GS(I, P, I) layout.
struct Setting {
    name: &'static str,
    title: String,
    layout: ChainLayout,
}

/// GS(I, P, I) with `L` = `l`, `R` = `r` and the gather map `p` in the middle.
fn gs_ipi(l: BlockShape, p: Perm, r: BlockShape) -> Result<ChainLayout> {
    gs_layout(Perm::identity(l.n_out()), l, p, r, Perm::identity(r.n_in()))
}

/// The layouts of the rank and projection studies (all GS(I, P, I); P in the scatter reading
/// of P_(k_L, n) unless random).
fn rank_settings(seed: u64) -> Result<Vec<Setting>> {
    let sq = BlockShape::square;
    let mut rng = rng_for(seed, "random-P");
    Ok(vec![
        Setting {
            name: "fig2_n12",
            title: "n=12, L: 4 blocks 3x3, R: 2 blocks 6x6, P=P_(4,12)".into(),
            layout: gs_ipi(sq(4, 3), Perm::shuffle_scatter(4, 12)?, sq(2, 6))?,
        },
        Setting {
            name: "n12_b3",
            title: "n=12, b=3 (L, R: 4 blocks 3x3), P=P_(4,12)".into(),
            layout: gs_ipi(sq(4, 3), Perm::shuffle_scatter(4, 12)?, sq(4, 3))?,
        },
        Setting {
            name: "n24_randP",
            title: "n=24, L: 3 blocks 8x8, R: 4 blocks 6x6, random P".into(),
            layout: gs_ipi(sq(3, 8), Perm::random(24, &mut rng), sq(4, 6))?,
        },
        Setting {
            name: "n64_bL8_bR4",
            title: "n=64, L: 8 blocks 8x8, R: 16 blocks 4x4, P=P_(8,64)".into(),
            layout: gs_ipi(sq(8, 8), Perm::shuffle_scatter(8, 64)?, sq(16, 4))?,
        },
    ])
}

/// One block of one setting in `ranks.csv`.
#[derive(Serialize)]
struct RankRow {
    setting: &'static str,
    k1: usize,
    k2: usize,
    slots: usize,
    predicted_rank: usize,
    measured_rank: usize,
    min_kept_sv: f64,
    max_dropped_sv: f64,
}

/// Numerical ranks of the `b_L¹ × b_R²` blocks of `M = P_Lᵀ A P_Rᵀ`: singular values above
/// `1e-9 · max_block σ_max` count. Returns `(ranks, smallest kept σ, largest dropped σ)` per block.
fn measured_ranks(layout: &ChainLayout, a: &Tensor<f64>) -> Result<Vec<Vec<(usize, f64, f64)>>> {
    let (rs, ls) = (layout.factors()[0], layout.factors()[1]);
    let m = strip_outer(a, &layout.perms()[2], &layout.perms()[0]);
    let mut svs = vec![vec![Vec::new(); rs.k]; ls.k];
    for (k1, row) in svs.iter_mut().enumerate() {
        for (k2, sv) in row.iter_mut().enumerate() {
            let blk =
                Mat::<f64>::from_fn(ls.b1, rs.b2, |u, c| m.at2(k1 * ls.b1 + u, k2 * rs.b2 + c));
            *sv = blk
                .singular_values()
                .map_err(|e| Error::Numerical(format!("SVD of block ({k1}, {k2}): {e:?}")))?;
        }
    }
    let top = svs
        .iter()
        .flatten()
        .flatten()
        .fold(0.0f64, |a, &b| a.max(b));
    let tol = 1e-9 * top;
    Ok(svs
        .iter()
        .map(|row| {
            row.iter()
                .map(|sv| {
                    let kept = sv.iter().filter(|&&s| s > tol);
                    let r = kept.clone().count();
                    let min_kept = kept.fold(f64::INFINITY, |a, &b| a.min(b));
                    let max_drop = sv
                        .iter()
                        .filter(|&&s| s <= tol)
                        .fold(0.0f64, |a, &b| a.max(b));
                    (r, min_kept, max_drop)
                })
                .collect()
        })
        .collect())
}

fn rank_study(run: &Run, settings: &[Setting]) -> Result<serde_json::Value> {
    let mut rows = Vec::new();
    let mut per = Vec::new();
    let mut all_agree = true;
    for s in settings {
        let (rs, ls) = (s.layout.factors()[0], s.layout.factors()[1]);
        let counts = block_rank_profile(&s.layout)?;
        let mut rng = rng_for(run.seed, &format!("rank-{}", s.name));
        let a = reference_dense(&s.layout, &random_member(&s.layout, &mut rng));
        let meas = measured_ranks(&s.layout, &a)?;
        let (mut agree, mut min_kept, mut max_drop) = (true, f64::INFINITY, 0.0f64);
        let (mut pred_v, mut meas_v) = (Vec::new(), Vec::new());
        for (k1, row) in counts.iter().enumerate() {
            for (k2, &c) in row.iter().enumerate() {
                let pred = c.min(ls.b1).min(rs.b2);
                let (r, kept, drop) = meas[k1][k2];
                agree &= pred == r;
                min_kept = min_kept.min(kept);
                max_drop = max_drop.max(drop);
                pred_v.push(pred as f64);
                meas_v.push(r as f64);
                rows.push(RankRow {
                    setting: s.name,
                    k1,
                    k2,
                    slots: c,
                    predicted_rank: pred,
                    measured_rank: r,
                    min_kept_sv: kept,
                    max_dropped_sv: drop,
                });
            }
        }
        all_agree &= agree;
        let xl = format!("block column k2 (R blocks, {} cols each)", rs.b2);
        let yl = format!("block row k1 (L blocks, {} rows each)", ls.b1);
        let panels = [
            Heatmap::new(
                "predicted rank min(#slots, b_L, b_R)",
                &xl,
                &yl,
                ls.k,
                rs.k,
                pred_v,
            )?,
            Heatmap::new(
                "measured rank (random member)",
                &xl,
                &yl,
                ls.k,
                rs.k,
                meas_v,
            )?,
        ]
        .map(Plot::from);
        let w = if rs.k > 8 { 760 } else { 560 };
        run.figure_grid(
            &format!("ranks_{}", s.name),
            &format!("Prop. 1 block ranks: {}", s.title),
            &panels,
            2,
            (w, 520),
            &format!(
                "Ranks of the blocks of A = L P R for {}: Proposition 1's prediction min(#slots, b_L, b_R) (left) against the numerical rank of a random member (right).",
                s.title
            ),
        )?;
        per.push(json!({
            "setting": s.name, "description": s.title, "agree": agree,
            "min_kept_singular_value": min_kept, "max_dropped_singular_value": max_drop,
        }));
    }
    run.write_csv("ranks.csv", &rows)?;
    Ok(json!({ "all_agree": all_agree, "settings": per }))
}

// ---------------------------------------------------------------------------------------------
// 2. Algorithm 1: projection round trips
// ---------------------------------------------------------------------------------------------

/// One projection trial in `projection.csv`.
#[derive(Serialize)]
struct ProjRow {
    layout: String,
    n: usize,
    trial: usize,
    input: &'static str,
    proj_rel_error: f64,
    best_random_member_rel_error: f64,
    best_perturbed_rel_error: f64,
}

/// The layouts of the projection and Theorem 1 studies: the rank settings, GSOFT's
/// `Pᵀ L P R` (n = 16, b = 4) and a rectangular-block-count Monarch (k_L = 4, k_R = 8).
fn projection_layouts(seed: u64, settings: &[Setting]) -> Result<Vec<(String, ChainLayout)>> {
    let mut out: Vec<(String, ChainLayout)> = settings
        .iter()
        .map(|s| (s.name.to_string(), s.layout.clone()))
        .collect();
    let mut rng = rng_for(seed, "gsoft-layout");
    let gsoft = Gs::<f64>::gsoft_random(4, 4, &mut rng)?;
    out.push(("gsoft_n16_b4".into(), gsoft.layout().clone()));
    out.push(("monarch_4x8".into(), monarch_layout(4, 8)?));
    Ok(out)
}

/// `min_c ‖G − cB‖_F / ‖G‖_F = sqrt(1 − ⟨G,B⟩² / (‖G‖²‖B‖²))` (the best multiple of `B`, itself a
/// member of the class).
fn best_scaled_err(g: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    let dot: f64 = g.data().iter().zip(b.data()).map(|(x, y)| x * y).sum();
    let c = dot / (g.norm() * b.norm());
    (1.0 - c * c).max(0.0).sqrt()
}

fn projection_study(run: &Run, cfg: &Config, settings: &[Setting]) -> Result<serde_json::Value> {
    let layouts = projection_layouts(run.seed, settings)?;
    let mut rows = Vec::new();
    let pb = run.progress(layouts.len() as u64, "projection (Alg. 1)");
    for (name, layout) in &layouts {
        let n = layout.n_in();
        let mut rng = rng_for(run.seed, &format!("proj-{name}"));
        for trial in 0..cfg.trials {
            for input in ["member", "gaussian"] {
                let a = if input == "member" {
                    reference_dense(layout, &random_member(layout, &mut rng))
                } else {
                    Tensor::randn(&[layout.n_out(), n], 1.0, &mut rng)
                };
                let blocks = project_gs(&a, layout)?;
                let pa = reference_dense(layout, &blocks);
                let proj = rel_err(&a, &pa);
                let mut best_rand = f64::INFINITY;
                let mut best_pert = f64::INFINITY;
                for _ in 0..cfg.trials {
                    let b = reference_dense(layout, &random_member(layout, &mut rng));
                    best_rand = best_rand.min(best_scaled_err(&a, &b));
                    let pert: Vec<Tensor<f64>> = blocks
                        .iter()
                        .map(|t| {
                            let d = Tensor::randn(t.shape(), 1e-3, &mut rng);
                            t.add(&d)
                        })
                        .collect();
                    best_pert = best_pert.min(rel_err(&a, &reference_dense(layout, &pert)));
                }
                rows.push(ProjRow {
                    layout: name.clone(),
                    n,
                    trial,
                    input,
                    proj_rel_error: proj,
                    best_random_member_rel_error: best_rand,
                    best_perturbed_rel_error: best_pert,
                });
            }
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    run.write_csv("projection.csv", &rows)?;
    let members = rows.iter().filter(|r| r.input == "member");
    let max_member = members.map(|r| r.proj_rel_error).fold(0.0f64, f64::max);
    let never_worse = rows.iter().all(|r| {
        r.proj_rel_error <= r.best_random_member_rel_error
            && r.proj_rel_error <= r.best_perturbed_rel_error
    });
    let dense: Vec<&ProjRow> = rows.iter().filter(|r| r.input == "gaussian").collect();
    let min_margin_random = dense
        .iter()
        .map(|r| r.best_random_member_rel_error - r.proj_rel_error)
        .fold(f64::INFINITY, f64::min);
    let min_margin_pert = dense
        .iter()
        .map(|r| r.best_perturbed_rel_error - r.proj_rel_error)
        .fold(f64::INFINITY, f64::min);
    Ok(json!({
        "layouts": layouts.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        "max_member_rel_error": max_member,
        "projection_never_worse": never_worse,
        "min_margin_vs_random_members": min_margin_random,
        "min_margin_vs_perturbed": min_margin_pert,
    }))
}

// ---------------------------------------------------------------------------------------------
// 3. Theorem 1, constructive
// ---------------------------------------------------------------------------------------------

/// One Theorem 1 trial in `theorem1.csv`.
#[derive(Serialize)]
struct Thm1Row {
    layout: String,
    trial: usize,
    hidden_block_orthogonality_error: f64,
    a_orthogonality_error: f64,
    recovered_orthogonality_error: f64,
    reconstruction_max_error: f64,
}

/// Rewrites the blocks `[R, L]` without changing `A`: for every block `(k1, k2)` with slots `S`,
/// `L_S ← L_S G` and `R_S ← G⁻¹ R_S` with `G = diag(d) Q` (`Q` random orthogonal,
/// `d ∈ [0.5, 2]`), so `G⁻¹ = Qᵀ diag(1/d)` exactly.
fn hide_orthogonality(
    layout: &ChainLayout,
    blocks: &[Tensor<f64>],
    rng: &mut StdRng,
) -> Result<Vec<Tensor<f64>>> {
    use crate::structured::project::prop1_slots;
    let (rs, ls) = (layout.factors()[0], layout.factors()[1]);
    let (br, bl) = (rs.b1, ls.b1);
    let pi = layout.perms()[1].as_slice();
    let (mut r, mut l) = (blocks[0].clone(), blocks[1].clone());
    for (k1, row) in prop1_slots(layout)?.iter().enumerate() {
        for (k2, s) in row.iter().enumerate() {
            let q = s.len();
            if q == 0 {
                continue;
            }
            let qm = random_orthogonal(q, rng);
            let d: Vec<f64> = Tensor::<f64>::rand_uniform(&[q], 0.5, 2.0, rng).into_vec();
            let g = Mat::<f64>::from_fn(q, q, |i, j| d[i] * qm[(i, j)]);
            let ginv = Mat::<f64>::from_fn(q, q, |i, j| qm[(j, i)] / d[j]);
            let l_s = Mat::<f64>::from_fn(bl, q, |x, t| l.data()[(k1 * bl + x) * bl + s[t] % bl]);
            let r_s =
                Mat::<f64>::from_fn(q, br, |t, c| r.data()[(k2 * br + pi[s[t]] % br) * br + c]);
            let (l_new, r_new) = (&l_s * &g, &ginv * &r_s);
            for (t, &i) in s.iter().enumerate() {
                for x in 0..bl {
                    l.data_mut()[(k1 * bl + x) * bl + i % bl] = l_new[(x, t)];
                }
                for c in 0..br {
                    r.data_mut()[(k2 * br + pi[i] % br) * br + c] = r_new[(t, c)];
                }
            }
        }
    }
    Ok(vec![r, l])
}

/// `‖AᵀA − I‖_max`.
fn orthogonality_error(a: &Tensor<f64>) -> f64 {
    let n = a.shape()[1];
    let ata = a.matmul_t(true, a, false);
    ata.sub(&Tensor::eye(n)).max_abs()
}

fn theorem1_study(run: &Run, cfg: &Config, settings: &[Setting]) -> Result<serde_json::Value> {
    let layouts = projection_layouts(run.seed, settings)?;
    let mut rows = Vec::new();
    for (name, layout) in &layouts {
        let (rs, ls) = (layout.factors()[0], layout.factors()[1]);
        if rs.b1 != rs.b2 || ls.b1 != ls.b2 {
            continue;
        }
        let mut rng = rng_for(run.seed, &format!("thm1-{name}"));
        for trial in 0..cfg.trials {
            let ortho = vec![
                orthogonal_blocks(rs.k, rs.b1, &mut rng),
                orthogonal_blocks(ls.k, ls.b1, &mut rng),
            ];
            let a = reference_dense(layout, &ortho);
            let hidden = hide_orthogonality(layout, &ortho, &mut rng)?;
            let hidden_err =
                block_orthogonality_error(&hidden[0]).max(block_orthogonality_error(&hidden[1]));
            let rec = orthogonal_representation(layout, &hidden)?;
            let rec_err =
                block_orthogonality_error(&rec[0]).max(block_orthogonality_error(&rec[1]));
            let a2 = reference_dense(layout, &rec);
            rows.push(Thm1Row {
                layout: name.clone(),
                trial,
                hidden_block_orthogonality_error: hidden_err,
                a_orthogonality_error: orthogonality_error(&a),
                recovered_orthogonality_error: rec_err,
                reconstruction_max_error: a.sub(&a2).max_abs(),
            });
        }
    }
    run.write_csv("theorem1.csv", &rows)?;
    let max = |f: fn(&Thm1Row) -> f64| rows.iter().map(f).fold(0.0f64, f64::max);
    let min_hidden = rows
        .iter()
        .map(|r| r.hidden_block_orthogonality_error)
        .fold(f64::INFINITY, f64::min);
    let (orth, recon) = (
        max(|r| r.recovered_orthogonality_error),
        max(|r| r.reconstruction_max_error),
    );
    Ok(json!({
        "trials": rows.len(),
        "min_hidden_block_orthogonality_error": min_hidden,
        "max_a_orthogonality_error": max(|r| r.a_orthogonality_error),
        "max_orthogonality_error": orth,
        "max_reconstruction_error": recon,
    }))
}

// ---------------------------------------------------------------------------------------------
// 4. Expressivity: error vs parameter budget
// ---------------------------------------------------------------------------------------------

/// The target matrices, each `n × n`.
fn targets(n: usize, seed: u64) -> Vec<(&'static str, &'static str, Tensor<f64>)> {
    let mut rng = rng_for(seed, "targets");
    let gauss = Tensor::randn(&[n, n], 1.0 / (n as f64).sqrt(), &mut rng);
    let orth = Tensor::from_mat(random_orthogonal(n, &mut rng).as_ref());
    let nf = n as f64;
    let dct = Tensor::from_fn(&[n, n], |idx| {
        let (k, j) = ((idx / n) as f64, (idx % n) as f64);
        let s = if k == 0.0 {
            (1.0 / nf).sqrt()
        } else {
            (2.0 / nf).sqrt()
        };
        s * (std::f64::consts::PI * (2.0 * j + 1.0) * k / (2.0 * nf)).cos()
    });
    let had = Tensor::from_fn(&[n, n], |idx| {
        let sign = if ((idx / n) & (idx % n)).count_ones().is_multiple_of(2) {
            1.0
        } else {
            -1.0
        };
        sign / nf.sqrt()
    });
    vec![
        ("gaussian", "Gaussian", gauss),
        ("orthogonal", "random orthogonal", orth),
        ("dct", "DCT-II", dct),
        ("hadamard", "Walsh-Hadamard", had),
    ]
}

/// One fitted configuration in `expressivity.csv`.
#[derive(Serialize, Clone)]
struct ExprRow {
    target: &'static str,
    family: &'static str,
    method: &'static str,
    config: String,
    params: usize,
    rel_error: f64,
}

/// A structured family member to fit by gradient descent.
enum Job {
    /// GS m = 2 (GSOFT layout) by Algorithm 1.
    Gs2(usize),
    /// Monarch `(k_L, k_R)` by Algorithm 1.
    Monarch(usize, usize),
    /// Block-diagonal with `b × b` blocks: keep the diagonal blocks.
    BlockDiag(usize),
    /// Rank-`r` truncated SVD.
    LowRank(usize),
    /// Adam on the blocks of a chain: family, config, layout.
    Adam(&'static str, String, Arc<ChainLayout>),
}

/// Powers of two `lo, 2lo, …` up to `hi` inclusive.
fn pow2(lo: usize, hi: usize) -> Vec<usize> {
    std::iter::successors(Some(lo), |&x| Some(2 * x))
        .take_while(|&x| x <= hi)
        .collect()
}

fn expressivity_jobs(n: usize, seed: u64) -> Result<Vec<Job>> {
    let mut jobs = Vec::new();
    let mut rng = rng_for(seed, "expr-layouts");
    for b in pow2(2, n / 2) {
        jobs.push(Job::Gs2(b));
    }
    for kl in pow2(2, n / 2) {
        jobs.push(Job::Monarch(kl, n / kl));
    }
    // b = 1 (diagonal) only from n = 32: at n = 16 its point (16 parameters) sits at the far
    // left of the plot, where it crowded the legend.
    for b in pow2(if n >= 32 { 1 } else { 2 }, n / 2) {
        jobs.push(Job::BlockDiag(b));
    }
    for r in pow2(1, n / 2) {
        jobs.push(Job::LowRank(r));
    }
    for b in pow2(2, n / 4) {
        let g = GsChain::<f64>::random_shuffled(&[BlockShape::square(n / b, b); 3], &mut rng)?;
        jobs.push(Job::Adam(
            "GS m=3",
            format!("b={b}"),
            g.layout_arc().clone(),
        ));
    }
    for b in pow2(2, n / 2) {
        let r = n / b;
        let m = 1 + r.trailing_zeros() as usize;
        let bf = Butterfly::<f64>::random(n, r, m, &mut rng)?;
        jobs.push(Job::Adam(
            "BOFT",
            format!("b={b},m={m}"),
            bf.layout_arc().clone(),
        ));
    }
    // Diagnostic: Adam on the GS m=2 layout, whose optimum Algorithm 1 gives exactly.
    for b in pow2(2, n / 2) {
        let g = Gs::<f64>::gsoft_random(n / b, b, &mut rng)?;
        jobs.push(Job::Adam(
            "GS m=2 (Adam)",
            format!("b={b}"),
            g.layout_arc().clone(),
        ));
    }
    Ok(jobs)
}

/// Adam on the chain blocks, minimising `mean((I·Aᵀ − targetᵀ)²)` (chain_apply on the identity
/// batch), cosine learning rate `LR → LR/100`; returns the final blocks.
fn adam_fit(
    layout: &Arc<ChainLayout>,
    target: &Tensor<f64>,
    steps: usize,
    rng: &mut StdRng,
) -> Vec<Tensor<f64>> {
    let mut blocks = random_member(layout, rng);
    let eye = Tensor::<f64>::eye(layout.n_in());
    let tt = target.transpose();
    let mut opt = Adam::<f64>::new(LR);
    let sched = Schedule::cosine(LR, LR / 100.0, steps, 0);
    for t in 0..steps {
        opt.set_lr(sched.lr_at(t));
        let tape = Tape::new();
        let x = tape.constant(eye.clone());
        let vars: Vec<Var<f64>> = blocks.iter().map(|b| tape.leaf(b.clone())).collect();
        let loss = chain_apply(x, &vars, layout).mse(tape.constant(tt.clone()));
        let grads = tape.backward(loss);
        let g: Vec<Tensor<f64>> = vars.iter().map(|&v| grads.wrt(v)).collect();
        let mut ps: Vec<&mut Tensor<f64>> = blocks.iter_mut().collect();
        opt.step(&mut ps, &g);
    }
    blocks
}

/// Runs one job on one target.
fn run_job(
    job: &Job,
    target: &Tensor<f64>,
    tname: &'static str,
    cfg: &Config,
    seed: u64,
) -> Result<ExprRow> {
    let n = cfg.n;
    let row = |family, method, config: String, params, approx: &Tensor<f64>| ExprRow {
        target: tname,
        family,
        method,
        config,
        params,
        rel_error: rel_err(target, approx),
    };
    Ok(match job {
        Job::Gs2(b) => {
            let layout = Gs::<f64>::gsoft_random(n / b, *b, &mut rng_for(seed, "gs2"))?
                .layout()
                .clone();
            let blocks = project_gs(target, &layout)?;
            let a = reference_dense(&layout, &blocks);
            row("GS m=2", "alg1", format!("b={b}"), 2 * n * b, &a)
        }
        Job::Monarch(kl, kr) => {
            let layout = monarch_layout(*kl, *kr)?;
            let blocks = project_gs(target, &layout)?;
            let a = reference_dense(&layout, &blocks);
            row(
                "Monarch",
                "alg1",
                format!("kL={kl},kR={kr}"),
                layout.param_count(),
                &a,
            )
        }
        Job::BlockDiag(b) => {
            let k = n / b;
            let blocks = Tensor::from_fn(&[k, *b, *b], |idx| {
                let (j, u, t) = (idx / (b * b), (idx / b) % b, idx % b);
                target.at2(j * b + u, j * b + t)
            });
            let op = BlockDiag::from_blocks(blocks)?;
            row(
                "block-diagonal",
                "keep blocks",
                format!("b={b}"),
                op.param_count(),
                &op.to_dense(),
            )
        }
        Job::LowRank(r) => {
            let svd = target
                .to_mat()
                .thin_svd()
                .map_err(|e| Error::Numerical(format!("SVD of the target: {e:?}")))?;
            let sv = svd.S().column_vector();
            let u = Mat::<f64>::from_fn(n, *r, |i, t| svd.U()[(i, t)] * sv[t].sqrt());
            let v = Mat::<f64>::from_fn(n, *r, |i, t| svd.V()[(i, t)] * sv[t].sqrt());
            let op = LowRank::from_factors(
                &Tensor::from_mat(u.as_ref()),
                &Tensor::from_mat(v.as_ref()),
            )?;
            row(
                "low-rank",
                "truncated SVD",
                format!("r={r}"),
                op.param_count(),
                &op.to_dense(),
            )
        }
        Job::Adam(family, config, layout) => {
            let mut rng = rng_for(seed, &format!("adam-{tname}-{family}-{config}"));
            let blocks = adam_fit(layout, target, cfg.steps, &mut rng);
            let a = reference_dense(layout, &blocks);
            row(family, "adam", config.clone(), layout.param_count(), &a)
        }
    })
}

/// Families drawn in the figures, in legend order.
const FAMILIES: [&str; 6] = [
    "GS m=2",
    "GS m=3",
    "Monarch",
    "BOFT",
    "block-diagonal",
    "low-rank",
];

/// Per family, the best error at each parameter count (several configurations may share one).
fn envelope(rows: &[ExprRow], target: &str, family: &str) -> Vec<(f64, f64)> {
    let mut pts: Vec<(usize, f64)> = Vec::new();
    for r in rows
        .iter()
        .filter(|r| r.target == target && r.family == family)
    {
        match pts.iter_mut().find(|p| p.0 == r.params) {
            Some(p) => p.1 = p.1.min(r.rel_error),
            None => pts.push((r.params, r.rel_error)),
        }
    }
    pts.sort_by_key(|p| p.0);
    pts.into_iter().map(|(p, e)| (p as f64, e)).collect()
}

fn expressivity_study(run: &Run, cfg: &Config) -> Result<serde_json::Value> {
    let n = cfg.n;
    let tgts = targets(n, run.seed);
    let jobs = expressivity_jobs(n, run.seed)?;
    let work: Vec<(usize, usize)> = (0..tgts.len())
        .flat_map(|t| (0..jobs.len()).map(move |j| (t, j)))
        .collect();
    let pb = run.progress(work.len() as u64, "expressivity fits");
    let rows: Vec<ExprRow> = work
        .par_iter()
        .map(|&(t, j)| {
            let r = run_job(&jobs[j], &tgts[t].2, tgts[t].0, cfg, run.seed);
            pb.inc(1);
            r
        })
        .collect::<Result<_>>()?;
    pb.finish_and_clear();
    run.write_csv("expressivity.csv", &rows)?;
    for (tname, tdesc, _) in &tgts {
        let mut plot = XyPlot::new(
            format!("{tdesc}, n={n}: GS m=3, BOFT by Adam; rest optimal"),
            "parameters (block entries)",
            "relative error ||A - Â||_F / ||A||_F",
        )
        .scales(crate::plot::Scale::Log, crate::plot::Scale::Linear);
        for fam in FAMILIES {
            plot = plot.with(Series::line(fam, envelope(&rows, tname, fam)));
        }
        run.figure(
            &format!("expressivity_{tname}"),
            &Plot::from(plot),
            &format!(
                "Lowest relative error ||A − Â||_F / ||A||_F reached per parameter budget when approximating {tdesc} (n = {n}) by each family (GS m = 3 and BOFT fitted by Adam, the other families by their optimal projection)."
            ),
        )?;
    }
    // Table: best error within the budget of the smallest dense GS m=2 (b = 2^⌈log2(n)/2⌉).
    let b_dense = 1usize << n.trailing_zeros().div_ceil(2);
    let budget = 2 * n * b_dense;
    let mut table = Vec::new();
    let mut at_budget = serde_json::Map::new();
    for (tname, _, _) in &tgts {
        let mut cells = vec![tname.to_string()];
        let mut obj = serde_json::Map::new();
        for fam in FAMILIES {
            let best = rows
                .iter()
                .filter(|r| r.target == *tname && r.family == fam && r.params <= budget)
                .min_by(|a, b| a.rel_error.total_cmp(&b.rel_error));
            match best {
                Some(r) => {
                    cells.push(format!("{:.3} ({})", r.rel_error, r.params));
                    obj.insert(
                        fam.into(),
                        json!({"rel_error": r.rel_error, "params": r.params, "config": r.config}),
                    );
                }
                None => cells.push("-".into()),
            }
        }
        table.push(cells);
        at_budget.insert(tname.to_string(), serde_json::Value::Object(obj));
    }
    println!("\nbest relative error with at most {budget} parameters (params used):");
    let mut header = vec!["target"];
    header.extend(FAMILIES);
    print_table(&header, &table);
    // How close Adam gets to the exact optimum on the GS m=2 layout.
    let mut gap = 0.0f64;
    for r in rows.iter().filter(|r| r.family == "GS m=2 (Adam)") {
        if let Some(opt) = rows
            .iter()
            .find(|o| o.target == r.target && o.family == "GS m=2" && o.config == r.config)
        {
            gap = gap.max(r.rel_error - opt.rel_error);
        }
    }
    Ok(json!({
        "budget": budget,
        "best_within_budget": at_budget,
        "adam_gs2_max_excess_over_alg1": gap,
    }))
}
