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
//! `min_factors_variants.csv`, `support.csv`, `random_perms.csv`, `summary.json` and PNG + SVG
//! figures. Patterns are exact (no floating point), so the run is deterministic given `--seed`.

use crate::error::{Error, Result};
use crate::exp::{CommonArgs, Run, print_table, write_csv_records};
use crate::perm::Perm;
use crate::plot::{self, BarPlot, Plot, Scale, Series, SpyPlot, XyPlot};
use crate::structured::layout::{BlockShape, ChainLayout};
use crate::structured::pattern::{
    GrowthStep, GsShuffle, Pattern, boft_formula, gs_formula, min_factors_boft, min_factors_gs,
    support_growth, support_growth_boft, support_growth_gs,
};
use clap::Parser;
use indicatif::ProgressBar;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
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
    let figures = draw_figures(&run.out, &support)?;
    let summary = summarize(&run, &min_rows, &support, &random, figures);
    run.write_json("summary.json", &summary)?;
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

/// Largest `m` searched: `1 + ⌈log₂ r⌉ + 1`, above both closed forms (`b ≥ 2`).
fn search_limit(n: usize, b: usize) -> Result<usize> {
    Ok(boft_formula(n, b)? + 1)
}

/// Minimal factor counts of one grid point, GS in all four readings of `P_(k,n)`.
fn min_row(n: usize, b: usize) -> Result<MinRow> {
    let r = blocks(n, b);
    let limit = search_limit(n, b)?;
    let mut gs_variants = [None; 4];
    for (v, s) in gs_variants.iter_mut().zip(GsShuffle::ALL) {
        *v = min_factors_gs(n, b, limit, s)?;
    }
    let (boft_min_factors, boft_f) = if r.is_power_of_two() {
        (min_factors_boft(n, b, limit)?, Some(boft_formula(n, b)?))
    } else {
        (None, None)
    };
    Ok(MinRow {
        n,
        b,
        r,
        gs_min_factors: min_factors_gs(n, b, limit, GsShuffle::default())?,
        gs_formula: gs_formula(n, b)?,
        boft_min_factors,
        boft_formula: boft_f,
        gs_variants,
    })
}

/// Support after `m = 1 ..= 1 + ⌈log₂ r⌉` factors for GS (`P_(r,n)`, scatter) and for BOFT
/// (up to PEFT's limit `1 + v₂(r)`).
fn support_rows(n: usize, b: usize) -> Result<Vec<SupportRow>> {
    let max_m = boft_formula(n, b)?;
    let gs = support_growth_gs(n, b, max_m, GsShuffle::default())?;
    let boft = support_growth_boft(n, b, max_m)?;
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
    let threshold = gs_formula(n, b)?;
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
            let last = support_growth(&layout, m).pop().ok_or_else(|| {
                Error::InvalidArgument(format!("empty chain for n={n}, b={b}, m={m}"))
            })?;
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
        t4_boft_dense_params_1024_32: boft_formula(1024, 32).unwrap_or(0) * 32 * 32 * 32,
        t4_gs_dense_params_1024_32: gs_formula(1024, 32).unwrap_or(0) * 32 * 32 * 32,
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

/// Draws every figure; returns the stems written (each as `.png` and `.svg`).
fn draw_figures(out: &Path, support: &[SupportRow]) -> Result<Vec<String>> {
    let mut stems = Vec::new();
    let mut save = |stem: &str, f: &dyn Fn(&Path) -> Result<()>| -> Result<()> {
        f(&out.join(stem))?;
        stems.push(stem.to_string());
        Ok(())
    };
    save("density_vs_factors", &|p| density_plot(p, support))?;
    save("min_factors_bars", &|p| min_factors_bars(p, support))?;
    save("fig1_gs_i_p_i_n6", &fig1_spy)?;
    save("spy_gs_n64_b4", &|p| chain_spy(p, "gs", 64, 4, 3))?;
    save("spy_boft_n64_b4", &|p| chain_spy(p, "boft", 64, 4, 5))?;
    save("fig3_shuffles_n12", &fig3_spy)?;
    save("fig1_graph", &fig1_graph)?;
    save("fig3_graph", &fig3_graph)?;
    save("fig5_information_flow", &fig5_graph)?;
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
            crate::structured::pattern::gs_chain_layout(n, b, max_m, GsShuffle::default())?,
            "GS, P = P_(r,n)",
        )
    } else {
        (
            crate::structured::pattern::boft_chain_layout(n, b, max_m)?,
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
// Layer diagrams (Figures 1, 3 and 5 of the paper). `gslab::plot` has no graph/arrow figure, so
// this small renderer draws one with plotters directly (same font, PNG + SVG).
// ---------------------------------------------------------------------------------------------

/// A layered graph: `levels.len()` columns of `n` nodes, node `i` of a column drawn at row `i`
/// (top to bottom); `edges[t]` links column `t` to column `t + 1` as `(from, to, highlighted)`.
struct Layered {
    title: String,
    n: usize,
    levels: Vec<String>,
    edges: Vec<Vec<(usize, usize, bool)>>,
}

/// Edges of a block-diagonal factor with full `b1 × b2` blocks: input `j·b2 + t` feeds output
/// `j·b1 + u`.
fn block_edges(shape: BlockShape) -> Vec<(usize, usize, bool)> {
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
fn perm_edges(p: &Perm) -> Vec<(usize, usize, bool)> {
    p.as_slice()
        .iter()
        .enumerate()
        .map(|(i, &s)| (s, i, false))
        .collect()
}

/// Marks the edges reachable from input node `src` (the paths of Figure 5).
fn highlight_from(edges: &mut [Vec<(usize, usize, bool)>], n: usize, src: usize) {
    let mut reach = vec![false; n];
    reach[src] = true;
    for level in edges.iter_mut() {
        let mut next = vec![false; n];
        for e in level.iter_mut() {
            if reach[e.0] {
                e.2 = true;
                next[e.1] = true;
            }
        }
        reach = next;
    }
}

/// Writes `stem.png` and `stem.svg` with the diagrams side by side under `title`.
fn save_layered(stem: &Path, title: &str, panels: &[Layered], panel: (u32, u32)) -> Result<()> {
    plot::register_font()?;
    let size = (panel.0 * panels.len() as u32, panel.1 + 50);
    let (png, svg) = plot::output_paths(stem);
    let err = |p: &Path, e: String| Error::Io {
        path: p.display().to_string(),
        msg: e,
    };
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        draw_layered_all(&root, title, panels).map_err(|e| err(&png, e))?;
        root.present().map_err(|e| err(&png, e.to_string()))?;
    }
    let root = SVGBackend::new(&svg, size).into_drawing_area();
    draw_layered_all(&root, title, panels).map_err(|e| err(&svg, e))?;
    root.present().map_err(|e| err(&svg, e.to_string()))
}

fn draw_layered_all<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    panels: &[Layered],
) -> std::result::Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let body = root
        .titled(title, ("sans-serif", 24))
        .map_err(|e| e.to_string())?;
    for (p, area) in panels.iter().zip(body.split_evenly((1, panels.len()))) {
        draw_layered(&area, p)?;
    }
    Ok(())
}

fn draw_layered<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &Layered,
) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let last = (p.levels.len() - 1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(30)
        .build_cartesian_2d(-0.35f64..last + 0.35, (p.n as f64 - 0.4)..-0.6f64)
        .map_err(e)?;
    let grey = RGBColor(160, 160, 160);
    let red = RGBColor(214, 39, 40);
    for (t, level) in p.edges.iter().enumerate() {
        let x = t as f64;
        // Plain edges first so highlighted paths are drawn on top.
        for hl in [false, true] {
            let style = if hl {
                red.stroke_width(2)
            } else {
                grey.stroke_width(1)
            };
            chart
                .draw_series(level.iter().filter(|q| q.2 == hl).map(|&(a, b, _)| {
                    PathElement::new(vec![(x, a as f64), (x + 1.0, b as f64)], style)
                }))
                .map_err(e)?;
        }
    }
    let radius = if p.n <= 16 { 5 } else { 3 };
    for (t, label) in p.levels.iter().enumerate() {
        let x = t as f64;
        chart
            .draw_series((0..p.n).map(|i| Circle::new((x, i as f64), radius, BLACK.filled())))
            .map_err(e)?;
        chart
            .draw_series(std::iter::once(Text::new(
                label.clone(),
                (x, p.n as f64 - 0.4),
                TextStyle::from(("sans-serif", 14).into_font())
                    .pos(Pos::new(HPos::Center, VPos::Top)),
            )))
            .map_err(e)?;
    }
    if p.n <= 16 {
        let style = TextStyle::from(("sans-serif", 12).into_font())
            .pos(Pos::new(HPos::Right, VPos::Center));
        chart
            .draw_series(
                (0..p.n).map(|i| Text::new(i.to_string(), (-0.12, i as f64), style.clone())),
            )
            .map_err(e)?;
    }
    Ok(())
}

/// Figure 1 as a graph: x → R (3 blocks 2×2) → P_(3,6) → L (2 blocks 3×3) → y.
fn fig1_graph(stem: &Path) -> Result<()> {
    let panel = Layered {
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
    save_layered(
        stem,
        "Figure 1: GS(I, P, I), n = 6: group by R, shuffle by P, group by L",
        &[panel],
        (860, 420),
    )
}

/// Figure 3 as arrows: input position `σ(i)` to output position `i` of `P_(k,12)` (gather).
fn fig3_graph(stem: &Path) -> Result<()> {
    let panels = [3, 4, 6, 2]
        .iter()
        .map(|&k| {
            Ok(Layered {
                title: format!("P_({k},12)"),
                n: 12,
                levels: vec!["x".into(), "P x".into()],
                edges: vec![perm_edges(&Perm::shuffle_gather(k, 12)?)],
            })
        })
        .collect::<Result<Vec<_>>>()?;
    save_layered(
        stem,
        "Figure 3: P_(k,12), (P x)_i = x_σ(i), σ(i) = (i mod k)·(12/k) + ⌊i/k⌋",
        &panels,
        (300, 460),
    )
}

/// The layered graph of a chain `P_{m+1} B_m P_m ⋯ B_1 P_1` (identity permutations skipped),
/// with the paths from input 0 highlighted; each block level is labelled with the number of
/// nodes reached so far.
fn chain_graph(title: String, layout: &ChainLayout) -> Layered {
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
    highlight_from(&mut edges, n, 0);
    let mut levels = vec!["x".to_string()];
    for (level, kind) in edges.iter().zip(&kinds) {
        let mut hit: Vec<usize> = level.iter().filter(|e| e.2).map(|e| e.1).collect();
        hit.sort_unstable();
        hit.dedup();
        levels.push(match kind {
            Some(t) => format!("B{t}: {}", hit.len()),
            None => "P".into(),
        });
    }
    Layered {
        title,
        n,
        levels,
        edges,
    }
}

/// Figure 5: information flow. GS with `P_(r,n)` reaches `b^m` nodes after `m` factors
/// (`n = 8, b = 2`: 2, 4, 8; `n = 16, b = 4`: 4, 16), BOFT with PEFT's permutations only
/// `b·2^{m−1}` (`n = 16, b = 4`: 4, 8, 16, one factor more than GS).
fn fig5_graph(stem: &Path) -> Result<()> {
    use crate::structured::pattern::{boft_chain_layout, gs_chain_layout};
    let panels = [
        chain_graph(
            "GS, n = 8, b = 2, r = 4, P = P_(r,n)".into(),
            &gs_chain_layout(8, 2, 3, GsShuffle::default())?,
        ),
        chain_graph(
            "GS, n = 16, b = 4, r = 4, P = P_(r,n)".into(),
            &gs_chain_layout(16, 4, 2, GsShuffle::default())?,
        ),
        chain_graph(
            "BOFT, n = 16, b = 4, r = 4, PEFT perms".into(),
            &boft_chain_layout(16, 4, 3)?,
        ),
    ];
    save_layered(
        stem,
        "Figure 5: information flow from input 0 (red); Bm: k = nodes reached after m factors",
        &panels,
        (600, 560),
    )
}
