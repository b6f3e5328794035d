//! The outputs of `lipconv`: CSV files, `summary.json` with the targets and the paper's numbers,
//! the figures and the terminal table; and the run's final checks (no certified point broken,
//! no measured ratio above the bound).

use super::robust::{PointRow, RunEval};
use super::train::TrainRun;
use super::{Act, Config, Groups, PGD_EPS, Variant};
use crate::plot::{self, Heatmap, Plot, Series, XyPlot};
use crate::{Error, Result, Run, print_table};
use gslab::Params;
use gslab::count::{ConvVariant, lipconvnet15_params};
use gslab::nn::lipconvnet::{ConvKind, LipConvnet, LipConvnetConfig};
use rand::SeedableRng;
use serde::Serialize;
use serde_json::json;
use std::time::Instant;

/// A row of `results.csv`.
#[derive(Clone, Debug, Serialize)]
struct ResultRow {
    variant: String,
    groups: String,
    activation: &'static str,
    paired: bool,
    params: usize,
    train_s_per_epoch: f64,
    speedup: Option<f64>,
    clean_acc: f64,
    cert_0_5: f64,
    cert_1_0: f64,
    cert_1_58: f64,
    pgd_1_58: f64,
    lipschitz_bound: f64,
}

/// A row of `params_full.csv`.
#[derive(Clone, Debug, Serialize)]
struct ParamsRow {
    variant: String,
    groups: String,
    params: usize,
    formula: u64,
    paper: &'static str,
}

/// A row of `epochs.csv`.
#[derive(Clone, Debug, Serialize)]
struct EpochRow {
    variant: String,
    seed: u64,
    epoch: usize,
    loss: f64,
    train_acc: f64,
    seconds: f64,
}

/// A row of `cert_curve.csv`.
#[derive(Clone, Debug, Serialize)]
struct CurveRow {
    variant: String,
    seed: u64,
    eps: f64,
    cert_acc: f64,
}

/// The paper's Table 3 (LipConvnet-15, CIFAR-100): groups, printed parameters, speedup,
/// accuracy and robust accuracy (%, at ε = 36/255).
const PAPER_TABLE3: [(Groups, &str, f64, f64, f64); 5] = [
    (Groups::Soc, "24.1M", 1.0, 43.15, 29.18),
    (Groups::Gs(4, None), "6.81M", 1.64, 43.48, 29.26),
    (Groups::Gs(4, Some(1)), "8.91M", 1.21, 43.42, 29.56),
    (Groups::Gs(4, Some(2)), "7.86M", 1.22, 42.86, 28.98),
    (Groups::Gs(4, Some(4)), "7.3M", 1.23, 42.75, 28.7),
];

/// The paper's Table 4: groups, activation, paired, accuracy, robust accuracy (%).
const PAPER_TABLE4: [(Groups, Act, bool, f64, f64); 16] = [
    (Groups::Gs(4, None), Act::MaxMinPermuted, true, 43.48, 29.26),
    (
        Groups::Gs(4, None),
        Act::MaxMinPermuted,
        false,
        40.46,
        26.18,
    ),
    (Groups::Gs(4, None), Act::MaxMin, true, 37.99, 24.19),
    (Groups::Gs(4, None), Act::MaxMin, false, 39.72, 25.96),
    (
        Groups::Gs(4, Some(1)),
        Act::MaxMinPermuted,
        true,
        43.42,
        29.56,
    ),
    (
        Groups::Gs(4, Some(1)),
        Act::MaxMinPermuted,
        false,
        40.15,
        26.4,
    ),
    (Groups::Gs(4, Some(1)), Act::MaxMin, true, 40.3, 26.74),
    (Groups::Gs(4, Some(1)), Act::MaxMin, false, 41.7, 27.66),
    (
        Groups::Gs(4, Some(2)),
        Act::MaxMinPermuted,
        true,
        42.86,
        28.98,
    ),
    (
        Groups::Gs(4, Some(2)),
        Act::MaxMinPermuted,
        false,
        41.13,
        27.53,
    ),
    (Groups::Gs(4, Some(2)), Act::MaxMin, true, 41.55, 27.45),
    (Groups::Gs(4, Some(2)), Act::MaxMin, false, 41.25, 27.29),
    (
        Groups::Gs(4, Some(4)),
        Act::MaxMinPermuted,
        true,
        42.75,
        28.7,
    ),
    (
        Groups::Gs(4, Some(4)),
        Act::MaxMinPermuted,
        false,
        38.93,
        25.59,
    ),
    (Groups::Gs(4, Some(4)), Act::MaxMin, true, 40.34, 27.06),
    (Groups::Gs(4, Some(4)), Act::MaxMin, false, 41.57, 27.48),
];

/// Median of the per-epoch times.
fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => 0.5 * (s[n / 2 - 1] + s[n / 2]),
    }
}

/// Writes every output; returns the run's final checks (an error if a certificate was broken
/// or a ratio exceeded its bound), after everything is written.
///
/// # Errors
/// A file that cannot be written, or a full-size network that cannot be built.
pub(super) fn write_all(
    run: &Run,
    cfg: &Config,
    runs: &[TrainRun],
    evals: &[RunEval],
    (train_s, eval_s, started): (f64, f64, Instant),
) -> Result<Result<()>> {
    let rows = result_rows(runs, evals);
    run.write_csv("results.csv", &rows)?;
    let params_full = params_full()?;
    run.write_csv("params_full.csv", &params_full)?;
    let epochs: Vec<EpochRow> = runs
        .iter()
        .flat_map(|r| {
            (0..r.epochs_done()).map(move |e| EpochRow {
                variant: r.variant.name(),
                seed: r.seed,
                epoch: e + 1,
                loss: r.log.loss[e],
                train_acc: r.log.train_acc[e],
                seconds: r.log.seconds[e],
            })
        })
        .collect();
    run.write_csv("epochs.csv", &epochs)?;
    let curve: Vec<CurveRow> = runs
        .iter()
        .zip(evals)
        .flat_map(|(r, e)| {
            e.curve.iter().map(move |&(eps, acc)| CurveRow {
                variant: r.variant.name(),
                seed: r.seed,
                eps,
                cert_acc: acc,
            })
        })
        .collect();
    run.write_csv("cert_curve.csv", &curve)?;
    let points: Vec<&PointRow> = evals.iter().flat_map(|e| &e.points).collect();
    run.write_csv("points.csv", &points)?;
    let wall_s = started.elapsed().as_secs_f64();
    let summary = summary(
        cfg,
        runs,
        evals,
        &rows,
        &params_full,
        (train_s, eval_s, wall_s),
    );
    run.write_json("summary.json", &summary)?;
    plot::register_font()?;
    figures(run, cfg, runs, evals, &rows)?;
    run.finish()?;
    print_results(
        cfg,
        &rows,
        evals,
        (train_s, eval_s, started.elapsed().as_secs_f64()),
    );
    Ok(final_checks(runs, evals))
}

fn result_rows(runs: &[TrainRun], evals: &[RunEval]) -> Vec<ResultRow> {
    let per_epoch: Vec<f64> = runs.iter().map(|r| median(&r.log.seconds)).collect();
    runs.iter()
        .zip(evals)
        .zip(&per_epoch)
        .map(|((r, e), &t)| {
            let soc = runs
                .iter()
                .zip(&per_epoch)
                .find(|(s, _)| s.variant.groups == Groups::Soc && s.seed == r.seed)
                .map(|(_, &ts)| ts / t);
            ResultRow {
                variant: r.variant.name(),
                groups: r.variant.groups.label(),
                activation: r.variant.act.name(),
                paired: r.variant.paired,
                params: r.net.num_params(),
                train_s_per_epoch: t,
                speedup: soc,
                clean_acc: e.clean_acc,
                cert_0_5: e.cert[0],
                cert_1_0: e.cert[1],
                cert_1_58: e.cert[2],
                pgd_1_58: e.pgd_acc,
                lipschitz_bound: e.bound,
            }
        })
        .collect()
}

/// The built full-size LipConvnet-15 of every Table 3 row (3×32×32 inputs, 100 classes, 32
/// initial channels): its parameter count, the formula's and the paper's printed value.
fn params_full() -> Result<Vec<ParamsRow>> {
    let mut out = Vec::new();
    for (g, paper, ..) in PAPER_TABLE3 {
        let conv = match g {
            Groups::Soc => ConvKind::Soc,
            Groups::Gs(g1, g2) => ConvKind::GsSoc { g1, g2 },
        };
        let formula_variant = match g {
            Groups::Soc => ConvVariant::Soc,
            Groups::Gs(g1, None) => ConvVariant::PermutedSoc { groups: g1 as u64 },
            Groups::Gs(g1, Some(g2)) => ConvVariant::GsSoc {
                g1: g1 as u64,
                g2: g2 as u64,
            },
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let net = LipConvnet::<f32>::new(LipConvnetConfig::table3(conv), &mut rng)?;
        out.push(ParamsRow {
            variant: Variant::table3(g).name(),
            groups: g.label(),
            params: net.num_params(),
            formula: lipconvnet15_params(32, 100, formula_variant)?,
            paper,
        });
    }
    Ok(out)
}

fn summary(
    cfg: &Config,
    runs: &[TrainRun],
    evals: &[RunEval],
    rows: &[ResultRow],
    params_full: &[ParamsRow],
    (train_s, eval_s, wall_s): (f64, f64, f64),
) -> serde_json::Value {
    let shapes = runs.first().map(|r| {
        r.variant
            .net_config(cfg)
            .conv_shapes()
            .iter()
            .map(|&(i, o, k, s)| format!("{i}->{o} {k}x{k} stride {s}"))
            .collect::<Vec<_>>()
    });
    let per_run: Vec<serde_json::Value> = runs
        .iter()
        .zip(evals)
        .map(|(r, e)| {
            json!({
                "variant": r.variant.name(),
                "seed": r.seed,
                "params": r.net.num_params(),
                "lipschitz_bound": e.bound,
                "layer_bounds": e.layer_bounds,
                "epoch_seconds": r.log.seconds,
                "final_train_loss": r.log.loss.last(),
                "final_train_acc": r.log.train_acc.last(),
                "max_ratio": e.max_ratio,
                "attacked": e.points.iter().filter(|p| p.attacked).count(),
                "certified_flipped": e.certified_flipped,
                "ratio_violations": e.ratio_violations,
                "certify_seconds": e.certify_s,
                "pgd_seconds": e.pgd_s,
                "checkpoint": r.checkpoint_path().display().to_string(),
            })
        })
        .collect();
    json!({
        "experiment": "lipconv",
        "data": {
            "source": "data/mnist-10k (10,000 MNIST digits; first 8,000 train, last 2,000 test)",
            "train": cfg.train_count,
            "test": cfg.test_count,
            "preprocessing": "pixels / 255 in [0, 1], zero-padded to 32x32 (an isometry), no normalisation, no augmentation",
        },
        "model": {
            "network": format!("LipConvnet depth {} (one SOC/GS-SOC convolution per stage when 5), {} initial channels, 1x32x32 inputs, 10 classes", cfg.depth, cfg.init_channels),
            "conv_shapes_in_out_k_stride": shapes,
            "certificate": "correct and (top1 - top2) / (sqrt(2) L) > eps, L = product of the layers' bounds 1 + sigma^(t+1)/(t+1)! e^sigma",
        },
        "config": cfg,
        "targets": targets(rows),
        "timing": {
            "train_seconds": train_s,
            "certify_and_pgd_seconds": eval_s,
            "wall_seconds": wall_s,
        },
        "runs": per_run,
        "params_full": params_full,
        "paper": {
            "table3": PAPER_TABLE3.iter().map(|(g, p, sp, acc, rob)| json!({
                "groups": g.label(), "params": p, "speedup": sp, "accuracy": acc, "robust_accuracy": rob,
            })).collect::<Vec<_>>(),
            "table4": PAPER_TABLE4.iter().map(|(g, a, paired, acc, rob)| json!({
                "groups": g.label(), "activation": a.name(), "paired": paired, "accuracy": acc, "robust_accuracy": rob,
            })).collect::<Vec<_>>(),
            "note": "LipConvnet-15 on CIFAR-100, 200 epochs, robust accuracy at eps = 36/255",
        },
    })
}

/// The targets on the first seed's Table 3 rows (`pass: null` when not measured).
fn targets(rows: &[ResultRow]) -> Vec<serde_json::Value> {
    let Some(first_seed_soc) = rows.iter().find(|r| r.variant == "soc") else {
        return Vec::new();
    };
    let soc = first_seed_soc;
    let mut t = vec![
        json!({"name": "soc_clean_acc", "measured": soc.clean_acc, "requirement": ">= 0.95", "pass": soc.clean_acc >= 0.95}),
        json!({"name": "soc_cert_1_58", "measured": soc.cert_1_58, "requirement": ">= 0.30", "pass": soc.cert_1_58 >= 0.30}),
    ];
    for r in rows.iter().filter(|r| r.variant.ends_with("_mmp_paired")) {
        let d_clean = r.clean_acc - soc.clean_acc;
        let d_cert = r.cert_1_58 - soc.cert_1_58;
        t.push(json!({
            "name": format!("{}_within_2_points_of_soc", r.variant),
            "measured": {"clean_diff": d_clean, "cert_1_58_diff": d_cert},
            "requirement": "clean and cert_1_58 within 0.02 of SOC's (or above)",
            "pass": d_clean >= -0.02 && d_cert >= -0.02,
        }));
        let need = if r.groups.ends_with(",-)") { 1.6 } else { 1.2 };
        t.push(json!({
            "name": format!("{}_speedup", r.variant),
            "measured": r.speedup,
            "requirement": format!(">= {need}"),
            "pass": r.speedup.map(|s| s >= need),
        }));
    }
    t
}

fn print_results(
    cfg: &Config,
    rows: &[ResultRow],
    evals: &[RunEval],
    (train_s, eval_s, wall_s): (f64, f64, f64),
) {
    println!(
        "lipconv: LipConvnet depth {}, {} initial channels, {} epochs on {} MNIST digits, tested on {} \
         (certified accuracy at eps; PGD {} steps at eps = {PGD_EPS})",
        cfg.depth, cfg.init_channels, cfg.epochs, cfg.train_count, cfg.test_count, cfg.pgd_steps
    );
    let pct = |v: f64| format!("{:.1}", 100.0 * v);
    let table: Vec<Vec<String>> = rows
        .iter()
        .zip(evals)
        .map(|(r, e)| {
            vec![
                r.variant.clone(),
                r.groups.clone(),
                r.params.to_string(),
                format!("{:.2}", r.train_s_per_epoch),
                r.speedup.map_or(String::new(), |s| format!("{s:.2}")),
                pct(r.clean_acc),
                pct(r.cert_0_5),
                pct(r.cert_1_0),
                pct(r.cert_1_58),
                pct(r.pgd_1_58),
                format!("{:.2e}", r.lipschitz_bound - 1.0),
                format!("{:.3}", e.max_ratio),
            ]
        })
        .collect();
    print_table(
        &[
            "variant",
            "groups",
            "params",
            "s/epoch",
            "speedup",
            "clean %",
            "cert 0.5",
            "cert 1.0",
            "cert 1.58",
            "PGD 1.58",
            "L - 1",
            "max ratio",
        ],
        &table,
    );
    println!(
        "time: training {train_s:.1} s, certification + PGD {eval_s:.1} s, total {wall_s:.1} s"
    );
}

fn final_checks(runs: &[TrainRun], evals: &[RunEval]) -> Result<()> {
    for (r, e) in runs.iter().zip(evals) {
        if e.certified_flipped > 0 {
            return Err(Error::Check(format!(
                "variant {} seed {}: PGD flipped {} test points certified at eps = {PGD_EPS} (a certificate is wrong)",
                r.variant.name(),
                r.seed,
                e.certified_flipped
            )));
        }
        if e.ratio_violations > 0 {
            return Err(Error::Check(format!(
                "variant {} seed {}: {} attacked pairs have ||f(x) - f(x')|| / ||x - x'|| above the certified bound {} (largest {})",
                r.variant.name(),
                r.seed,
                e.ratio_violations,
                e.bound,
                e.max_ratio
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Figures.

/// Short legend label of a variant: `SOC`, `(4,1) MMP paired`.
fn legend(v: &Variant) -> String {
    match v.groups {
        Groups::Soc => "SOC".into(),
        g => format!(
            "{} {} {}",
            g.label(),
            match v.act {
                Act::MaxMin => "MM",
                Act::MaxMinPermuted => "MMP",
            },
            if v.paired { "paired" } else { "plain" }
        ),
    }
}

fn is_table3(cfg: &Config, v: &Variant) -> bool {
    cfg.table3.iter().any(|&g| Variant::table3(g) == *v)
}

fn figures(
    run: &Run,
    cfg: &Config,
    runs: &[TrainRun],
    evals: &[RunEval],
    rows: &[ResultRow],
) -> Result<()> {
    let seed0 = cfg.seeds[0];
    let first: Vec<(&TrainRun, &RunEval, &ResultRow)> = runs
        .iter()
        .zip(evals)
        .zip(rows)
        .filter(|((r, _), _)| r.seed == seed0)
        .map(|((r, e), row)| (r, e, row))
        .collect();
    // 1. Certified accuracy against eps: Table 3 rows, and the ablation cells.
    let curve_plot = |title: &str, keep: &dyn Fn(&Variant) -> bool| {
        let mut p = XyPlot::new(title, "radius eps (L2)", "certified accuracy");
        for (r, e, _) in &first {
            if keep(&r.variant) {
                let mut s = Series::line(legend(&r.variant), e.curve.clone());
                s.style = plot::Style::Line;
                p = p.with(s);
            }
        }
        p
    };
    let mut panels: Vec<Plot> = vec![curve_plot("Table 3 rows", &|v| is_table3(cfg, v)).into()];
    if !cfg.ablation.is_empty() {
        panels.push(
            curve_plot("Table 4 cells (GS-SOC)", &|v| {
                cfg.ablation.contains(&v.groups)
            })
            .into(),
        );
    }
    let ncols = panels.len();
    run.figure_grid(
        "cert_curve",
        &format!("Certified accuracy against the radius (MNIST test, seed {seed0})"),
        &panels,
        ncols,
        (700, 520),
        "Certified accuracy on the test set against the L2 radius eps for every variant (first seed), Table 3 rows left and Table 4 cells right.",
    )?;
    // 2. Accuracy and certified accuracy against parameters (Table 3 rows).
    let scatter = |title: &str, y: fn(&ResultRow) -> f64| {
        let mut p = XyPlot::new(title, "trainable parameters", "accuracy");
        for (r, _, row) in &first {
            if is_table3(cfg, &r.variant) {
                p = p.with(Series::points(
                    legend(&r.variant),
                    vec![(row.params as f64, y(row))],
                ));
            }
        }
        Plot::from(p)
    };
    run.figure_grid(
        "acc_vs_params",
        &format!("Accuracy against parameters (MNIST test, seed {seed0})"),
        &[
            scatter("clean accuracy", |r| r.clean_acc),
            scatter("certified accuracy at eps = 1.58", |r| r.cert_1_58),
            scatter("PGD accuracy at eps = 1.58 (upper bound)", |r| r.pgd_1_58),
        ],
        3,
        (520, 460),
        "Clean, certified (eps = 1.58) and PGD accuracy of the Table 3 variants against their trainable parameter counts (first seed).",
    )?;
    // 3. The Table 4 grid: activation x permutation, per ablation group.
    if !cfg.ablation.is_empty() {
        let mut maps = Vec::new();
        for &g in &cfg.ablation {
            for (what, pick) in [
                (
                    "certified acc. at 1.58 (%)",
                    (|e: &RunEval| e.cert[2]) as fn(&RunEval) -> f64,
                ),
                ("clean acc. (%)", |e: &RunEval| e.clean_acc),
            ] {
                let mut vals = Vec::with_capacity(4);
                for act in [Act::MaxMin, Act::MaxMinPermuted] {
                    for paired in [false, true] {
                        let v = Variant {
                            groups: g,
                            act,
                            paired,
                        };
                        let val = first
                            .iter()
                            .find(|(r, _, _)| r.variant == v)
                            .map_or(f64::NAN, |(_, e, _)| 100.0 * pick(e));
                        vals.push(val);
                    }
                }
                let h = Heatmap::new(
                    format!("GS-SOC {}: {what}", g.label()),
                    "channel shuffles",
                    "activation",
                    2,
                    2,
                    vals,
                )?
                .with_ticks(
                    vec!["plain".into(), "paired".into()],
                    vec!["MaxMin".into(), "MaxMinPermuted".into()],
                )?
                .with_decimals(1);
                maps.push(Plot::from(h));
            }
        }
        run.figure_grid(
            "ablation",
            &format!("Table 4 in miniature (MNIST test, seed {seed0})"),
            &maps,
            2,
            (620, 520),
            "Certified (eps = 1.58) and clean test accuracy of each GS-SOC ablation group for MaxMin / MaxMinPermuted (rows) and plain / paired shuffles (columns), first seed.",
        )?;
    }
    Ok(())
}
