//! `density`: Theorem 2 of Group-and-Shuffle (paper §5.2), measured by symbolic pattern
//! propagation.
//!
//! For every `(n, b)` of the digest's T1 table it finds the smallest number of factors making
//! a GS chain `B_m P ⋯ P B_1` (`P = P_(r,n)`, `r = n/b` blocks of `b × b`) dense, and the same
//! for BOFT's block butterfly with PEFT's permutations, next to the closed forms
//! `1 + ⌈log_b r⌉` and `1 + ⌈log₂ r⌉`. It also records the nonzeros per row after each factor
//! (T2: `min(n, b^m)` for GS, T3: `b·2^{m−1}` for BOFT), checks with seeded random permutations
//! that no chain with fewer factors is dense (every row has at most `b^m` nonzeros), and draws
//! density curves and spy plots like the paper's Figures 1, 3 and 5.
//!
//! Outputs (in `--out`, default `results/density/`): `min_factors.csv`,
//! `min_factors_variants.csv`, `support.csv`, `random_perms.csv`, `summary.json`, PNG + SVG
//! figures and `figures.json` (one caption per figure). Patterns are exact (no floating point), so the run is deterministic given `--seed`.

use crate::error::Result;
use crate::plot::{self, BarPlot, LayerEdge, LayeredPlot, Plot, Scale, Series, SpyPlot, XyPlot};
use crate::{CommonArgs, Run, print_table, write_csv_records};
use clap::Parser;
use gslab::structured::pattern::{
    GrowthStep, GsShuffle, Pattern, boft_formula, ceil_log, gs_formula, min_factors_boft,
    min_factors_gs, support_growth, support_growth_boft, support_growth_gs,
};
use gslab::structured::{BlockShape, ChainLayout};
use gslab::{Blocks, Perm};
use indicatif::ProgressBar;
use rand::{SeedableRng, rngs::StdRng};
use rayon::prelude::*;
use serde::Serialize;
use std::path::Path;

/// The `(n, b)` grid of the digest's T1 table, in its order.
const GRID: [(usize, usize); 12] = [
    (1024, 32),
    (768, 8),
    (64, 4),
    (64, 8),
    (256, 16),
    (12, 3),
    (320, 10),
    (640, 20),
    (1280, 40),
    (1024, 16),
    (512, 8),
    (4096, 64),
];

/// Settings drawn in the density-vs-factors figure.
const CURVES: [(usize, usize); 3] = [(1024, 32), (768, 8), (64, 4)];

/// Command-line arguments: the common `--seed`, `--threads`, `--out`, `--quick` plus `--trials`.
#[derive(Parser, Debug)]
#[command(
    name = "density",
    about = "Theorem 2: factors needed for a dense GS / BOFT product"
)]
pub struct Args {
    /// `--seed`, `--threads`, `--out`, `--quick`.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Random permutation draws per (n, b, m) below the threshold (default 16, quick 3).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub trials: Option<u64>,
}

/// One row of `min_factors.csv`.
#[derive(Debug, Clone, Serialize)]
struct MinRow {
    n: usize,
    b: usize,
    r: usize,
    gs_min_factors: Option<usize>,
    gs_formula: usize,
    boft_min_factors: Option<usize>,
    boft_formula: Option<usize>,
    /// GS minimum for the four readings of `P_(k,n)` (gather k=b, gather k=r, scatter k=b,
    /// scatter k=r).
    gs_variants: [Option<usize>; 4],
}

/// One row of `support.csv`: the support after `m` factors.
#[derive(Debug, Clone, Serialize)]
struct SupportRow {
    family: &'static str,
    n: usize,
    b: usize,
    m: usize,
    nnz: usize,
    density: f64,
    row_min: usize,
    row_max: usize,
    col_min: usize,
    col_max: usize,
    expected_per_row: usize,
    dense: bool,
}

/// One row of `random_perms.csv`: `trials` chains of `m` factors with uniformly random
/// permutations everywhere (`P_1, …, P_{m+1}`).
#[derive(Debug, Clone, Serialize)]
struct RandomRow {
    n: usize,
    b: usize,
    m: usize,
    trials: usize,
    bound_b_pow_m: usize,
    max_row_nnz: usize,
    min_row_nnz: usize,
    any_dense: bool,
}

/// The JSON summary.
#[derive(Debug, Serialize)]
struct Summary {
    quick: bool,
    seed: u64,
    rows: usize,
    gs_all_match_formula: bool,
    gs_variants_all_match_formula: bool,
    boft_all_match_formula: bool,
    boft_rows_checked: usize,
    gs_rows_exact_min_n_b_pow_m: bool,
    boft_rows_exact_b_2_pow_m_minus_1: bool,
    random_chains: usize,
    random_any_dense_below_threshold: bool,
    random_max_row_nnz_within_b_pow_m: bool,
    t4_boft_dense_params_1024_32: usize,
    t4_gs_dense_params_1024_32: usize,
    t4_dense_entries_1024: usize,
    figures: Vec<String>,
    min_factors: Vec<MinRow>,
}

/// Runs the experiment and writes every output into `--out`.
///
/// # Errors
/// Invalid sizes, or a file that cannot be written.
pub fn run(args: Args) -> Result<()> {
    let run = args.common.setup("density")?;
    let trials = args
        .trials
        .map_or(if run.quick { 3 } else { 16 }, |t| t as usize);
    // --quick: the T1 rows with n <= 1024 (10 of 12); the default run has all 12.
    let grid: Vec<(usize, usize)> = GRID
        .iter()
        .copied()
        .filter(|&(n, _)| !run.quick || n <= 1024)
        .collect();

    let bar = run.progress(grid.len() as u64 * 3, "density patterns");
    let seed = run.seed;
    let (min_rows, support, random) = run.install(|| -> Result<_> {
        let min_rows = par_map(&grid, |&(n, b)| tick(&bar, min_row(n, b)))?;
        let support = par_map(&grid, |&(n, b)| tick(&bar, support_rows(n, b)))?;
        let random = par_map(&grid, |&(n, b)| tick(&bar, random_rows(n, b, trials, seed)))?;
        Ok((min_rows, support.concat(), random.concat()))
    })?;
    bar.finish_and_clear();

    write_min_csv(&run.path("min_factors.csv"), &min_rows)?;
    write_variants_csv(&run.path("min_factors_variants.csv"), &min_rows)?;
    run.write_csv("support.csv", &support)?;
    run.write_csv("random_perms.csv", &random)?;
    let figures = draw_figures(&run, &support)?;
    let summary = summarize(&run, &min_rows, &support, &random, figures);
    run.write_json("summary.json", &summary)?;
    run.finish()?;
    report(&min_rows, &summary, &run.out);
    Ok(())
}

/// Advances the progress bar by one step and passes `r` through.
fn tick<R>(bar: &ProgressBar, r: R) -> R {
    bar.inc(1);
    r
}

/// `f` over `items` in parallel, stopping at the first error.
fn par_map<T: Sync, U: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<U> + Sync + Send,
) -> Result<Vec<U>> {
    items.par_iter().map(f).collect()
}

/// `r = n/b`.
fn blocks(n: usize, b: usize) -> usize {
    n / b
}

/// Blocks of size `b` on `n`.
fn sized(n: usize, b: usize) -> Result<Blocks> {
    Ok(Blocks::size(n, b)?)
}

/// BOFT's density count `1 + ⌈log₂ r⌉` as a number, whether or not PEFT's rule can build it.
fn boft_count(n: usize, b: usize) -> Result<usize> {
    Ok(1 + ceil_log(2, blocks(n, b))?)
}

/// Largest `m` searched: `1 + ⌈log₂ r⌉ + 1`, above both closed forms (`b ≥ 2`).
fn search_limit(n: usize, b: usize) -> Result<usize> {
    Ok(boft_count(n, b)? + 1)
}

/// Minimal factor counts of one grid point, GS in all four readings of `P_(k,n)`.
fn min_row(n: usize, b: usize) -> Result<MinRow> {
    let r = blocks(n, b);
    let limit = search_limit(n, b)?;
    let mut gs_variants = [None; 4];
    let bl = sized(n, b)?;
    for (v, s) in gs_variants.iter_mut().zip(GsShuffle::ALL) {
        *v = min_factors_gs(bl, limit, s)?;
    }
    // The BOFT closed form only where PEFT's rule can build it (r a power of 2, b even).
    let (boft_min_factors, boft_f) = match boft_formula(bl) {
        Ok(m) => (min_factors_boft(bl, limit)?, Some(m)),
        Err(_) => (None, None),
    };
    Ok(MinRow {
        n,
        b,
        r,
        gs_min_factors: min_factors_gs(bl, limit, GsShuffle::default())?,
        gs_formula: gs_formula(bl)?,
        boft_min_factors,
        boft_formula: boft_f,
        gs_variants,
    })
}

/// Support after `m = 1 ..= 1 + ⌈log₂ r⌉` factors for GS (`P_(r,n)`, scatter) and for BOFT
/// (up to PEFT's limit `1 + v₂(r)`).
fn support_rows(n: usize, b: usize) -> Result<Vec<SupportRow>> {
    let max_m = boft_count(n, b)?;
    let gs = support_growth_gs(sized(n, b)?, max_m, GsShuffle::default())?;
    let boft = support_growth_boft(sized(n, b)?, max_m)?;
    let mut rows: Vec<SupportRow> = gs
        .iter()
        .map(|s| support_row("gs", n, b, s, n.min(b.saturating_pow(s.m as u32))))
        .collect();
    rows.extend(
        boft.iter()
            .map(|s| support_row("boft", n, b, s, n.min(b << (s.m - 1)))),
    );
    Ok(rows)
}

fn support_row(
    family: &'static str,
    n: usize,
    b: usize,
    s: &GrowthStep,
    expected: usize,
) -> SupportRow {
    let (row_min, row_max) = s.row_range();
    let (col_min, col_max) = s.col_range();
    SupportRow {
        family,
        n,
        b,
        m: s.m,
        nnz: s.nnz,
        density: s.nnz as f64 / (n as f64 * n as f64),
        row_min,
        row_max,
        col_min,
        col_max,
        expected_per_row: expected,
        dense: s.dense,
    }
}

/// For each `m` below the GS threshold: `trials` chains with uniformly random permutations
/// everywhere; records the extreme row counts and whether any chain was dense.
fn random_rows(n: usize, b: usize, trials: usize, seed: u64) -> Result<Vec<RandomRow>> {
    let r = blocks(n, b);
    let threshold = gs_formula(sized(n, b)?)?;
    let mut rows = Vec::new();
    for m in 1..threshold {
        // Seed per (n, b, m) so results do not depend on thread scheduling.
        let mut rng = StdRng::seed_from_u64(
            seed ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ ((b as u64) << 32)
                ^ (m as u64) << 56,
        );
        let (mut lo, mut hi, mut any_dense) = (usize::MAX, 0, false);
        for _ in 0..trials {
            let perms = (0..=m).map(|_| Perm::random(n, &mut rng)).collect();
            let layout = ChainLayout::new(vec![BlockShape::square(r, b); m], perms)?;
            let last = support_growth(&layout, m)
                .pop()
                .expect("support_growth gives one step per factor, and m >= 1");
            let (a, z) = last.row_range();
            // The output permutation only moves rows: counts are those of the whole chain.
            lo = lo.min(a);
            hi = hi.max(z);
            any_dense |= last.dense;
        }
        rows.push(RandomRow {
            n,
            b,
            m,
            trials,
            bound_b_pow_m: b.saturating_pow(m as u32),
            max_row_nnz: hi,
            min_row_nnz: if trials == 0 { 0 } else { lo },
            any_dense,
        });
    }
    Ok(rows)
}

fn summarize(
    run: &Run,
    rows: &[MinRow],
    support: &[SupportRow],
    random: &[RandomRow],
    figures: Vec<String>,
) -> Summary {
    let boft_rows: Vec<&MinRow> = rows.iter().filter(|r| r.boft_formula.is_some()).collect();
    let exact = |fam: &str| {
        support
            .iter()
            .filter(|s| s.family == fam)
            .all(|s| s.row_min == s.expected_per_row && s.row_max == s.expected_per_row)
    };
    Summary {
        quick: run.quick,
        seed: run.seed,
        rows: rows.len(),
        gs_all_match_formula: rows.iter().all(|r| r.gs_min_factors == Some(r.gs_formula)),
        gs_variants_all_match_formula: rows
            .iter()
            .all(|r| r.gs_variants.iter().all(|v| *v == Some(r.gs_formula))),
        boft_all_match_formula: boft_rows
            .iter()
            .all(|r| r.boft_min_factors == r.boft_formula),
        boft_rows_checked: boft_rows.len(),
        gs_rows_exact_min_n_b_pow_m: exact("gs"),
        boft_rows_exact_b_2_pow_m_minus_1: exact("boft"),
        random_chains: random.iter().map(|r| r.trials).sum(),
        random_any_dense_below_threshold: random.iter().any(|r| r.any_dense),
        random_max_row_nnz_within_b_pow_m: random.iter().all(|r| r.max_row_nnz <= r.bound_b_pow_m),
        // T4: m factors of r blocks of b × b have m·r·b² parameters.
        t4_boft_dense_params_1024_32: sized(1024, 32)
            .and_then(|bl| Ok(boft_formula(bl)?))
            .unwrap_or(0)
            * 32
            * 32
            * 32,
        t4_gs_dense_params_1024_32: sized(1024, 32)
            .and_then(|bl| Ok(gs_formula(bl)?))
            .unwrap_or(0)
            * 32
            * 32
            * 32,
        t4_dense_entries_1024: 1024 * 1024,
        figures,
        min_factors: rows.to_vec(),
    }
}

fn opt(v: Option<usize>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// `min_factors.csv` with header `n,b,r,gs_min_factors,gs_formula,boft_min_factors,boft_formula`
/// (BOFT columns empty where `r` is not a power of 2, GS minimum empty if never dense).
fn write_min_csv(path: &Path, rows: &[MinRow]) -> Result<()> {
    let header = [
        "n",
        "b",
        "r",
        "gs_min_factors",
        "gs_formula",
        "boft_min_factors",
        "boft_formula",
    ];
    let recs: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.n.to_string(),
                r.b.to_string(),
                r.r.to_string(),
                opt(r.gs_min_factors),
                r.gs_formula.to_string(),
                opt(r.boft_min_factors),
                opt(r.boft_formula),
            ]
        })
        .collect();
    write_csv_records(path, &header, &recs)
}

/// GS minimum for the four readings of `P_(k,n)` (digest §3.5 table).
fn write_variants_csv(path: &Path, rows: &[MinRow]) -> Result<()> {
    let header = [
        "n",
        "b",
        "r",
        "gather_k_b",
        "gather_k_r",
        "scatter_k_b",
        "scatter_k_r",
        "gs_formula",
    ];
    let recs: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut rec = vec![r.n.to_string(), r.b.to_string(), r.r.to_string()];
            rec.extend(r.gs_variants.iter().map(|v| opt(*v)));
            rec.push(r.gs_formula.to_string());
            rec
        })
        .collect();
    write_csv_records(path, &header, &recs)
}

/// Draws every figure, registers it with its caption in the run's `figures.json`, and returns
/// the stems written (each as `.png` and `.svg`).
fn draw_figures(run: &Run, support: &[SupportRow]) -> Result<Vec<String>> {
    let mut stems = Vec::new();
    let mut save = |stem: &str, caption: &str, f: &dyn Fn(&Path) -> Result<()>| -> Result<()> {
        f(&run.path(stem))?;
        run.register_figure(stem, caption)?;
        stems.push(stem.to_string());
        Ok(())
    };
    save(
        "density_vs_factors",
        "Density nnz/n² of the product of the first m factors against m for (n, b) = (1024, 32), (768, 8), (64, 4): GS (P_(r,n) between factors) reaches 1 at 1+⌈log_b r⌉ factors, BOFT (PEFT permutations) at 1+⌈log₂ r⌉ when r is a power of 2 and never otherwise.",
        &|p| density_plot(p, support),
    )?;
    save(
        "min_factors_bars",
        "Smallest number of factors m giving a dense product for each (n, b) of the T1 grid, GS with P_(r,n) against BOFT with PEFT permutations (BOFT bars only where r = n/b is a power of 2).",
        &|p| min_factors_bars(p, support),
    )?;
    save(
        "fig1_gs_i_p_i_n6",
        "Sparsity patterns of R (3 blocks 2×2), P = P_(3,6), L (2 blocks 3×3) and the dense product A = L P R of GS(I, P, I) with n = 6 (paper Figure 1).",
        &fig1_spy,
    )?;
    save(
        "spy_gs_n64_b4",
        "Sparsity of the product of the first m = 1, 2, 3 GS factors (n = 64, b = 4, P = P_(r,n)): min(n, b^m) = 4, 16, 64 nonzeros per row, dense at m = 1+⌈log₄ 16⌉ = 3.",
        &|p| chain_spy(p, "gs", 64, 4, 3),
    )?;
    save(
        "spy_boft_n64_b4",
        "Sparsity of the product of the first m = 1, …, 5 BOFT factors (n = 64, b = 4, PEFT permutations): b·2^(m−1) = 4, 8, 16, 32, 64 nonzeros per row, dense only at m = 1+⌈log₂ 16⌉ = 5.",
        &|p| chain_spy(p, "boft", 64, 4, 5),
    )?;
    save(
        "fig3_shuffles_n12",
        "Permutation matrices of P_(k,12) for k = 3, 4, 6, 2 in the gather reading, entry (i, σ(i)) with σ(i) = (i mod k)·(12/k) + ⌊i/k⌋ (paper Figure 3).",
        &fig3_spy,
    )?;
    save(
        "fig1_graph",
        "Information flow of GS(I, P, I) with n = 6: R mixes within 3 groups of 2 and P_(3,6) sends one element of each group to each of the 2 groups of L, so every output depends on every input (paper Figure 1).",
        &fig1_graph,
    )?;
    save(
        "fig3_graph",
        "P_(k,12) for k = 3, 4, 6, 2 drawn as edges from input position σ(i) to output position i (gather reading, paper Figure 3).",
        &fig3_graph,
    )?;
    save(
        "fig5_information_flow",
        "Nodes reached from input 0 (red paths) after each factor: GS with P_(r,n) reaches b^m nodes (n = 8, b = 2: 2, 4, 8; n = 16, b = 4: 4, 16), BOFT with PEFT permutations only b·2^(m−1) (n = 16, b = 4: 4, 8, 16, one factor more) (paper Figure 5).",
        &fig5_graph,
    )?;
    Ok(stems)
}

/// Support rows of one family at one `(n, b)`, in `m` order.
fn rows_of<'a>(
    support: &'a [SupportRow],
    fam: &'a str,
    n: usize,
    b: usize,
) -> impl Iterator<Item = &'a SupportRow> {
    support
        .iter()
        .filter(move |s| s.family == fam && s.n == n && s.b == b)
}

/// Density `nnz/n²` against the number of factors (log y), GS and BOFT, one panel per
/// setting of [`CURVES`] (BOFT stops at PEFT's limit `1 + v₂(r)`).
fn density_plot(stem: &Path, support: &[SupportRow]) -> Result<()> {
    let panels: Vec<Plot> = CURVES
        .iter()
        .map(|&(n, b)| {
            let mut plot = XyPlot::new(
                format!("n = {n}, b = {b}, r = {}", n / b),
                "factors m",
                "density nnz / n²",
            )
            .scales(Scale::Linear, Scale::Log);
            for (fam, label) in [("gs", "GS, P_(r,n)"), ("boft", "BOFT, PEFT perms")] {
                let pts: Vec<(f64, f64)> = rows_of(support, fam, n, b)
                    .map(|s| (s.m as f64, s.density))
                    .collect();
                plot = plot.with(Series::line(label, pts));
            }
            plot.into()
        })
        .collect();
    plot::save_grid(
        stem,
        "Density of the product vs number of factors (1 = dense)",
        &panels,
        panels.len(),
        (560, 460),
    )
    .map(|_| ())
}

/// Grouped bars: first dense `m` of GS and BOFT per grid point (BOFT only where it gets dense).
fn min_factors_bars(stem: &Path, support: &[SupportRow]) -> Result<()> {
    let mut points: Vec<(usize, usize)> = support.iter().map(|s| (s.n, s.b)).collect();
    points.dedup();
    let first_dense = |fam: &str, n: usize, b: usize| {
        rows_of(support, fam, n, b)
            .find(|s| s.dense)
            .map_or(f64::NAN, |s| s.m as f64)
    };
    let bars = BarPlot {
        title: "Factors needed for a dense product (BOFT: r a power of 2 only)".into(),
        value_label: "smallest dense m".into(),
        categories: points
            .iter()
            .map(|&(n, b)| {
                let never = first_dense("boft", n, b).is_nan();
                let note = if never {
                    format!(" (r={}: BOFT never dense)", n / b)
                } else {
                    String::new()
                };
                format!("n={n}, b={b}{note}")
            })
            .collect(),
        series: ["gs", "boft"]
            .iter()
            .zip(["GS, P_(r,n)", "BOFT (PEFT perms)"])
            .map(|(fam, name)| {
                let v = points
                    .iter()
                    .map(|&(n, b)| first_dense(fam, n, b))
                    .collect();
                (name.to_string(), v)
            })
            .collect(),
        scale: Scale::Linear,
    };
    plot::save(stem, &bars.into()).map(|_| ())
}

/// A spy plot of a pattern.
fn spy(title: &str, p: &Pattern) -> Result<Plot> {
    SpyPlot::from_fn(title, p.n_out(), p.n_in(), plot::SPY_MAX_CELLS, |i, j| {
        p.get(i, j)
    })
    .map(Plot::from)
}

/// Figure 1: `A = L P R` in GS(I, P, I) with `n = 6`: R has 3 blocks of 2×2, L has 2 blocks
/// of 3×3, and `P = P_(3,6)` (gather) sends one entry of each R group to each L group.
fn fig1_spy(stem: &Path) -> Result<()> {
    let r = Pattern::of_block_diag(BlockShape::square(3, 2));
    let p = Pattern::of_perm(&Perm::shuffle_gather(3, 6)?);
    let l = Pattern::of_block_diag(BlockShape::square(2, 3));
    let a = l.product(&p).product(&r);
    let panels = [
        spy("R: 3 blocks 2×2", &r)?,
        spy("P = P_(3,6)", &p)?,
        spy("L: 2 blocks 3×3", &l)?,
        spy("A = L P R", &a)?,
    ];
    plot::save_grid(
        stem,
        "Figure 1: GS(I, P, I), n = 6 (symbolic sparsity)",
        &panels,
        4,
        (380, 420),
    )
    .map(|_| ())
}

/// Spy plots of the product of the first `m = 1 ..= max_m` factors of a GS or BOFT chain.
fn chain_spy(stem: &Path, fam: &str, n: usize, b: usize, max_m: usize) -> Result<()> {
    let (layout, name) = if fam == "gs" {
        (
            gslab::structured::pattern::gs_chain_layout(sized(n, b)?, max_m, GsShuffle::default())?,
            "GS, P = P_(r,n)",
        )
    } else {
        (
            ChainLayout::peft_butterfly(sized(n, b)?, max_m)?,
            "BOFT, PEFT perms",
        )
    };
    let mut p = Pattern::of_perm(&layout.perms()[0]);
    let mut panels = Vec::new();
    for (i, f) in layout.factors().iter().enumerate() {
        if i > 0 {
            p = p.left_perm(&layout.perms()[i]);
        }
        p = p.left_block_diag(*f);
        panels.push(spy(&format!("m = {}", i + 1), &p)?);
    }
    let r = n / b;
    plot::save_grid(
        stem,
        &format!("{name}: n = {n}, b = {b}, r = {r}, first m factors"),
        &panels,
        panels.len(),
        (380, 420),
    )
    .map(|_| ())
}

/// Figure 3: the permutation matrices of `P_(k,12)` for `k ∈ {3, 4, 6, 2}` (gather reading,
/// entry `(i, σ(i))` with `σ(i) = (i mod k)·(12/k) + ⌊i/k⌋`).
fn fig3_spy(stem: &Path) -> Result<()> {
    let panels = [3, 4, 6, 2]
        .iter()
        .map(|&k| {
            spy(
                &format!("P_({k},12)"),
                &Pattern::of_perm(&Perm::shuffle_gather(k, 12)?),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    plot::save_grid(
        stem,
        "Figure 3: P_(k,12), entry (i, σ(i)), σ(i) = (i mod k)·(12/k) + ⌊i/k⌋",
        &panels,
        4,
        (380, 420),
    )
    .map(|_| ())
}

/// Prints the measured table and the checks.
fn report(rows: &[MinRow], s: &Summary, out: &Path) {
    let recs: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let boft_min = if r.boft_formula.is_some() {
                opt(r.boft_min_factors)
            } else {
                "n/a".into()
            };
            vec![
                r.n.to_string(),
                r.b.to_string(),
                r.r.to_string(),
                opt(r.gs_min_factors),
                r.gs_formula.to_string(),
                boft_min,
                opt(r.boft_formula),
            ]
        })
        .collect();
    print_table(
        &[
            "n",
            "b",
            "r",
            "GS min",
            "1+⌈log_b r⌉",
            "BOFT min",
            "1+⌈log₂ r⌉",
        ],
        &recs,
    );
    println!(
        "GS matches 1+⌈log_b r⌉: {} (all 4 P_(k,n) readings: {}); BOFT matches 1+⌈log₂ r⌉: {} ({} rows)",
        s.gs_all_match_formula,
        s.gs_variants_all_match_formula,
        s.boft_all_match_formula,
        s.boft_rows_checked
    );
    println!(
        "rows exactly min(n, b^m) (GS): {}; b·2^(m-1) (BOFT): {}; {} random-perm chains below threshold: dense {}, rows <= b^m {}",
        s.gs_rows_exact_min_n_b_pow_m,
        s.boft_rows_exact_b_2_pow_m_minus_1,
        s.random_chains,
        s.random_any_dense_below_threshold,
        s.random_max_row_nnz_within_b_pow_m
    );
    println!("outputs in {}", out.display());
}

// ---------------------------------------------------------------------------------------------
// Layer diagrams (Figures 1, 3 and 5 of the paper), drawn by `plot::save_layered`; the edges of
// GS / BOFT factors are built here.
// ---------------------------------------------------------------------------------------------

/// Edges of a block-diagonal factor with full `b1 × b2` blocks: input `j·b2 + t` feeds output
/// `j·b1 + u`.
fn block_edges(shape: BlockShape) -> Vec<LayerEdge> {
    let mut e = Vec::new();
    for j in 0..shape.k {
        for u in 0..shape.b1 {
            for t in 0..shape.b2 {
                e.push((j * shape.b2 + t, j * shape.b1 + u, false));
            }
        }
    }
    e
}

/// Edges of a permutation in the gather reading: output `i` takes input `σ(i)`.
fn perm_edges(p: &Perm) -> Vec<LayerEdge> {
    p.as_slice()
        .iter()
        .enumerate()
        .map(|(i, &s)| (s, i, false))
        .collect()
}

/// Figure 1 as a graph: x → R (3 blocks 2×2) → P_(3,6) → L (2 blocks 3×3) → y.
fn fig1_graph(stem: &Path) -> Result<()> {
    let panel = LayeredPlot {
        title: "y = L P R x".into(),
        n: 6,
        levels: vec![
            "x".into(),
            "R x".into(),
            "P R x".into(),
            "y = L P R x".into(),
        ],
        edges: vec![
            block_edges(BlockShape::square(3, 2)),
            perm_edges(&Perm::shuffle_gather(3, 6)?),
            block_edges(BlockShape::square(2, 3)),
        ],
    };
    plot::save_layered(
        stem,
        "Figure 1: GS(I, P, I), n = 6: group by R, shuffle by P, group by L",
        &[panel],
        (860, 420),
    )
    .map(|_| ())
}

/// Figure 3 as arrows: input position `σ(i)` to output position `i` of `P_(k,12)` (gather).
fn fig3_graph(stem: &Path) -> Result<()> {
    let panels = [3, 4, 6, 2]
        .iter()
        .map(|&k| {
            Ok(LayeredPlot {
                title: format!("P_({k},12)"),
                n: 12,
                levels: vec!["x".into(), "P x".into()],
                edges: vec![perm_edges(&Perm::shuffle_gather(k, 12)?)],
            })
        })
        .collect::<Result<Vec<_>>>()?;
    plot::save_layered(
        stem,
        "Figure 3: P_(k,12), (P x)_i = x_σ(i), σ(i) = (i mod k)·(12/k) + ⌊i/k⌋",
        &panels,
        (300, 460),
    )
    .map(|_| ())
}

/// The layered graph of a chain `P_{m+1} B_m P_m ⋯ B_1 P_1` (identity permutations skipped),
/// with the paths from input 0 highlighted; each block level is labelled with the number of
/// nodes reached so far.
fn chain_graph(title: String, layout: &ChainLayout) -> LayeredPlot {
    let n = layout.n_in();
    let mut edges = Vec::new();
    let mut kinds = Vec::new();
    for (i, p) in layout.perms().iter().enumerate() {
        if !p.is_identity() {
            edges.push(perm_edges(p));
            kinds.push(None);
        }
        if let Some(f) = layout.factors().get(i) {
            edges.push(block_edges(*f));
            kinds.push(Some(i + 1));
        }
    }
    let mut graph = LayeredPlot {
        title,
        n,
        levels: Vec::new(),
        edges,
    };
    graph.highlight_from(0);
    let mut levels = vec!["x".to_string()];
    for (level, kind) in graph.edges.iter().zip(&kinds) {
        let mut hit: Vec<usize> = level.iter().filter(|e| e.2).map(|e| e.1).collect();
        hit.sort_unstable();
        hit.dedup();
        levels.push(match kind {
            Some(t) => format!("B{t}: {}", hit.len()),
            None => "P".into(),
        });
    }
    graph.levels = levels;
    graph
}

/// Figure 5: information flow. GS with `P_(r,n)` reaches `b^m` nodes after `m` factors
/// (`n = 8, b = 2`: 2, 4, 8; `n = 16, b = 4`: 4, 16), BOFT with PEFT's permutations only
/// `b·2^{m−1}` (`n = 16, b = 4`: 4, 8, 16, one factor more than GS).
fn fig5_graph(stem: &Path) -> Result<()> {
    use gslab::structured::pattern::gs_chain_layout;
    let panels = [
        chain_graph(
            "GS, n = 8, b = 2, r = 4, P = P_(r,n)".into(),
            &gs_chain_layout(sized(8, 2)?, 3, GsShuffle::default())?,
        ),
        chain_graph(
            "GS, n = 16, b = 4, r = 4, P = P_(r,n)".into(),
            &gs_chain_layout(sized(16, 4)?, 2, GsShuffle::default())?,
        ),
        chain_graph(
            "BOFT, n = 16, b = 4, r = 4, PEFT perms".into(),
            &ChainLayout::peft_butterfly(sized(16, 4)?, 3)?,
        ),
    ];
    plot::save_layered(
        stem,
        "Figure 5: information flow from input 0 (red); Bm: k = nodes reached after m factors",
        &panels,
        (600, 560),
    )
    .map(|_| ())
}
