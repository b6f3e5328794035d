//! The output files of `finetune`: the CSVs, `summary.json`, the terminal tables, and the call
//! that draws the figures.

use super::figures;
use super::methods::{ABLATION_BS, ABLATION_MAX_M, Spec, ablation_spec};
use super::tasks::{Task, TaskData};
use super::train::{Base, split_sizes};
use super::{Config, Finished, WallTime, layer_shapes};
use crate::{Result, Run, print_table};
use gslab::Blocks;
use gslab::structured::pattern::gs_formula;
use serde::Serialize;
use serde_json::json;
use std::time::Instant;

/// Everything the outputs are made from.
pub(super) struct Context<'a> {
    pub(super) run: &'a Run,
    pub(super) cfg: &'a Config,
    pub(super) datas: &'a [TaskData],
    pub(super) bases: &'a [Base],
    pub(super) grid: &'a [Finished],
    pub(super) finals: &'a [Finished],
    pub(super) step_ms: &'a [((Task, Spec), f64)],
}

impl Context<'_> {
    /// The measured time per step of `(task, spec)`.
    pub(super) fn step_ms(&self, task: Task, spec: Spec) -> f64 {
        self.step_ms
            .iter()
            .find(|(k, _)| *k == (task, spec))
            .map_or(f64::NAN, |(_, v)| *v)
    }

    /// The final runs of `(task, spec)` (one per seed).
    pub(super) fn runs(&self, task: Task, spec: Spec) -> Vec<&Finished> {
        self.finals
            .iter()
            .filter(|f| f.key.task == task && f.key.spec == spec)
            .collect()
    }

    /// Mean, min and max of `f` over the final runs of `(task, spec)` (None if there are none).
    pub(super) fn stats(
        &self,
        task: Task,
        spec: Spec,
        f: impl Fn(&Finished) -> f64,
    ) -> Option<Stats> {
        let v: Vec<f64> = self.runs(task, spec).into_iter().map(f).collect();
        Stats::of(&v)
    }
}

/// Mean and range of a few values.
#[derive(Clone, Copy, Debug, Serialize)]
pub(super) struct Stats {
    pub(super) mean: f64,
    pub(super) min: f64,
    pub(super) max: f64,
}

impl Stats {
    fn of(v: &[f64]) -> Option<Self> {
        (!v.is_empty()).then(|| Stats {
            mean: v.iter().sum::<f64>() / v.len() as f64,
            min: v.iter().copied().fold(f64::INFINITY, f64::min),
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

/// One row of `results.csv` (the header, in this order).
#[derive(Serialize)]
struct ResultRow {
    task: &'static str,
    method: &'static str,
    config: String,
    params_free: usize,
    params_paper: usize,
    seed: u64,
    lr: f64,
    target_acc: f64,
    source_acc: f64,
    step_ms: f64,
}

/// One row of `grid.csv`.
#[derive(Serialize)]
struct GridRow {
    task: &'static str,
    method: &'static str,
    config: String,
    params_free: usize,
    params_paper: usize,
    seed: u64,
    lr: f64,
    val_acc: f64,
    target_acc: f64,
    source_acc: f64,
    final_loss: f64,
    chosen: bool,
}

/// One row of `checks.csv`.
#[derive(Serialize)]
struct CheckRow {
    task: &'static str,
    method: &'static str,
    config: String,
    seed: u64,
    merge_disagree: usize,
    merge_max_rel: f64,
    gram_dev_l1: f64,
    gram_dev_l2: f64,
    gram_bound_l1: f64,
    gram_bound_l2: f64,
    gram_eig_dev_l1: f64,
    gram_eig_dev_l2: f64,
    ortho_err: f64,
    ortho_bound: f64,
}

/// One row of `base.csv`.
#[derive(Serialize)]
struct BaseRow {
    task: &'static str,
    source_test_acc: f64,
    target_test_acc_before: f64,
    source_train: usize,
    source_test: usize,
    target_fit: usize,
    target_val: usize,
    target_test: usize,
    pretrain_seconds: f64,
}

/// Writes every output file, prints the tables and draws the figures.
pub(super) fn write_all(
    ctx: &Context,
    wall: &mut WallTime,
    t0: Instant,
    t_out: Instant,
) -> Result<()> {
    let run = ctx.run;
    let results: Vec<ResultRow> = ctx
        .finals
        .iter()
        .map(|f| ResultRow {
            task: f.key.task.name(),
            method: f.key.spec.method(),
            config: f.key.spec.config(),
            params_free: f.result.params_free,
            params_paper: f.result.params_paper,
            seed: f.key.seed,
            lr: f.key.lr,
            target_acc: f.result.target_acc,
            source_acc: f.result.source_acc,
            step_ms: ctx.step_ms(f.key.task, f.key.spec),
        })
        .collect();
    run.write_csv("results.csv", &results)?;
    let grid: Vec<GridRow> = ctx
        .grid
        .iter()
        .map(|f| GridRow {
            task: f.key.task.name(),
            method: f.key.spec.method(),
            config: f.key.spec.config(),
            params_free: f.result.params_free,
            params_paper: f.result.params_paper,
            seed: f.key.seed,
            lr: f.key.lr,
            val_acc: f.result.val_acc,
            target_acc: f.result.target_acc,
            source_acc: f.result.source_acc,
            final_loss: f.result.final_loss,
            chosen: ctx.finals.iter().any(|g| g.key == f.key),
        })
        .collect();
    run.write_csv("grid.csv", &grid)?;
    let checks: Vec<CheckRow> = ctx
        .finals
        .iter()
        .map(|f| {
            let c = &f.result.checks;
            CheckRow {
                task: f.key.task.name(),
                method: f.key.spec.method(),
                config: f.key.spec.config(),
                seed: f.key.seed,
                merge_disagree: c.merge_disagree,
                merge_max_rel: c.merge_max_rel,
                gram_dev_l1: c.gram_dev[0],
                gram_dev_l2: c.gram_dev[1],
                gram_bound_l1: c.gram_bound[0],
                gram_bound_l2: c.gram_bound[1],
                gram_eig_dev_l1: c.gram_eig_dev[0],
                gram_eig_dev_l2: c.gram_eig_dev[1],
                ortho_err: c.ortho_err,
                ortho_bound: c.ortho_bound,
            }
        })
        .collect();
    run.write_csv("checks.csv", &checks)?;
    let base: Vec<BaseRow> = ctx
        .datas
        .iter()
        .zip(ctx.bases)
        .map(|(d, b)| {
            let s = split_sizes(d);
            BaseRow {
                task: d.task.name(),
                source_test_acc: b.source_acc,
                target_test_acc_before: b.target_acc,
                source_train: s[0].1,
                source_test: s[1].1,
                target_fit: s[2].1,
                target_val: s[3].1,
                target_test: s[4].1,
                pretrain_seconds: b.seconds,
            }
        })
        .collect();
    run.write_csv("base.csv", &base)?;
    let table = table_rows(ctx);
    crate::write_csv_records(&run.path("table.csv"), &TABLE_HEADER, &table)?;
    let mab = mablation_rows(ctx)?;
    crate::write_csv_records(&run.path("mablation.csv"), &MAB_HEADER, &mab)?;
    figures::draw(ctx)?;
    wall.outputs = t_out.elapsed().as_secs_f64();
    wall.total = t0.elapsed().as_secs_f64();
    let summary = summary_json(ctx, wall)?;
    run.write_json("summary.json", &summary)?;
    run.finish()?;
    print_report(ctx, &table, &mab, &summary, wall);
    println!("outputs written to {}", run.out.display());
    Ok(())
}

const TABLE_HEADER: [&str; 12] = [
    "task",
    "method",
    "config",
    "params_paper",
    "params_free",
    "lr",
    "target_acc_pct",
    "target_min_pct",
    "target_max_pct",
    "source_acc_pct",
    "source_min_pct",
    "step_ms",
];

/// Per (task, configuration): mean and range over seeds, in percent.
fn table_rows(ctx: &Context) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for &task in &ctx.cfg.task_list {
        for &spec in &ctx.cfg.specs {
            let runs = ctx.runs(task, spec);
            let Some(first) = runs.first() else { continue };
            let t = ctx.stats(task, spec, |f| f.result.target_acc);
            let s = ctx.stats(task, spec, |f| f.result.source_acc);
            let (Some(t), Some(s)) = (t, s) else { continue };
            out.push(vec![
                task.name().to_string(),
                spec.method().to_string(),
                spec.config(),
                first.result.params_paper.to_string(),
                first.result.params_free.to_string(),
                format!("{:e}", first.key.lr),
                format!("{:.2}", 100.0 * t.mean),
                format!("{:.2}", 100.0 * t.min),
                format!("{:.2}", 100.0 * t.max),
                format!("{:.2}", 100.0 * s.mean),
                format!("{:.2}", 100.0 * s.min),
                format!("{:.2}", ctx.step_ms(task, spec)),
            ]);
        }
    }
    out
}

const MAB_HEADER: [&str; 11] = [
    "task",
    "b",
    "m",
    "from",
    "params_paper",
    "target_acc_pct",
    "target_min_pct",
    "target_max_pct",
    "dense_threshold_l1",
    "dense_threshold_l2",
    "step_ms",
];

/// The m-ablation points that were run, with Theorem 2's thresholds `1 + ⌈log_b r⌉` of the two
/// adapted widths (the input 1024 and the hidden width).
fn mablation_rows(ctx: &Context) -> Result<Vec<Vec<String>>> {
    let mut out = Vec::new();
    for &task in &ctx.cfg.task_list {
        for b in ABLATION_BS {
            for m in 1..=ABLATION_MAX_M {
                let spec = ablation_spec(b, m);
                let Some(t) = ctx.stats(task, spec, |f| f.result.target_acc) else {
                    continue;
                };
                let params = ctx.runs(task, spec)[0].result.params_paper;
                let [l1, l2] = thresholds(ctx.cfg.hidden, b)?;
                out.push(vec![
                    task.name().to_string(),
                    b.to_string(),
                    m.to_string(),
                    spec.label(),
                    params.to_string(),
                    format!("{:.2}", 100.0 * t.mean),
                    format!("{:.2}", 100.0 * t.min),
                    format!("{:.2}", 100.0 * t.max),
                    l1.to_string(),
                    l2.to_string(),
                    format!("{:.2}", ctx.step_ms(task, spec)),
                ]);
            }
        }
    }
    Ok(out)
}

/// Theorem 2's density thresholds at block size `b` for the input width 1024 and width `h`.
pub(super) fn thresholds(h: usize, b: usize) -> Result<[usize; 2]> {
    Ok([
        gs_formula(Blocks::size(super::tasks::FEATURES, b)?)?,
        gs_formula(Blocks::size(h, b)?)?,
    ])
}

/// `summary.json`.
fn summary_json(ctx: &Context, wall: &WallTime) -> Result<serde_json::Value> {
    let cfg = ctx.cfg;
    let finals = ctx.finals;
    let fold =
        |it: &mut dyn Iterator<Item = f64>| it.filter(|v| !v.is_nan()).fold(f64::NAN, f64::max);
    let one_sided = |f: &&Finished| {
        f.key.spec.is_orthogonal() && !matches!(f.key.spec, Spec::DoubleGsoft { .. })
    };
    let gram_one_sided = fold(
        &mut finals
            .iter()
            .filter(one_sided)
            .flat_map(|f| f.result.checks.gram_dev),
    );
    let gram_ratio = fold(&mut finals.iter().filter(one_sided).flat_map(|f| {
        let c = f.result.checks;
        [
            c.gram_dev[0] / c.gram_bound[0],
            c.gram_dev[1] / c.gram_bound[1],
        ]
    }));
    let gram_other_min = finals
        .iter()
        .filter(|f| matches!(f.key.spec, Spec::Lora { .. } | Spec::Full))
        .flat_map(|f| f.result.checks.gram_dev)
        .fold(f64::NAN, |a: f64, b| if a.is_nan() { b } else { a.min(b) });
    let dg = |f: &&Finished| matches!(f.key.spec, Spec::DoubleGsoft { .. });
    let dg_eig = fold(
        &mut finals
            .iter()
            .filter(dg)
            .flat_map(|f| f.result.checks.gram_eig_dev),
    );
    let dg_gram_min = finals
        .iter()
        .filter(dg)
        .flat_map(|f| f.result.checks.gram_dev)
        .fold(f64::NAN, |a: f64, b| if a.is_nan() { b } else { a.min(b) });
    let merge_rel = fold(&mut finals.iter().map(|f| f.result.checks.merge_max_rel));
    let merge_disagree: usize = finals.iter().map(|f| f.result.checks.merge_disagree).sum();
    let ortho = fold(&mut finals.iter().map(|f| f.result.checks.ortho_err));
    let ortho_ok = finals.iter().all(|f| {
        let c = f.result.checks;
        c.ortho_err.is_nan() || c.ortho_err <= c.ortho_bound
    });
    let mut per_task = Vec::new();
    for &task in &cfg.task_list {
        let ms = |s: Spec| ctx.step_ms(task, s);
        let acc = |s: Spec| ctx.stats(task, s, |f| f.result.target_acc);
        let src = |s: Spec| ctx.stats(task, s, |f| f.result.source_acc);
        let budget16: Vec<serde_json::Value> = [
            Spec::Lora { r: 8 },
            Spec::Oft { b: 16 },
            Spec::Boft { b: 8, m: 2 },
            Spec::Boft { b: 4, m: 4 },
            Spec::Gsoft { b: 8 },
            Spec::GsChain { b: 4, m: 4 },
        ]
        .into_iter()
        .filter_map(|s| {
            let a = acc(s)?;
            Some(json!({
                "method": s.label(),
                "params_paper": ctx.runs(task, s)[0].result.params_paper,
                "target_acc": a,
                "source_acc": src(s),
                "step_ms": ms(s),
            }))
        })
        .collect();
        per_task.push(json!({
            "task": task.name(),
            "about": task.about(),
            "step_ms_ratio_gsoft_b8_vs_lora_r8": ms(Spec::Gsoft { b: 8 }) / ms(Spec::Lora { r: 8 }),
            "step_ms_ratio_boft_b8_m2_vs_gsoft_b8": ms(Spec::Boft { b: 8, m: 2 }) / ms(Spec::Gsoft { b: 8 }),
            "equal_budget_16n": budget16,
        }));
    }
    // Chosen learning rates at an end of their grid (the grid may not bracket the optimum).
    let mut at_edge = Vec::new();
    for &task in &cfg.task_list {
        for &spec in &cfg.specs {
            let Some(f) = ctx.runs(task, spec).first().copied() else {
                continue;
            };
            let grid = cfg.grid(spec);
            let edge = if f.key.lr == grid[0] {
                "lowest"
            } else if f.key.lr == grid[grid.len() - 1] {
                "highest"
            } else {
                continue;
            };
            at_edge.push(json!({
                "task": task.name(),
                "method": spec.method(),
                "config": spec.config(),
                "lr": f.key.lr,
                "edge": edge,
            }));
        }
    }
    let bases: Vec<serde_json::Value> = ctx
        .datas
        .iter()
        .zip(ctx.bases)
        .map(|(d, b)| {
            json!({
                "task": d.task.name(),
                "source_test_acc": b.source_acc,
                "target_test_acc_before": b.target_acc,
            })
        })
        .collect();
    Ok(json!({
        "experiment": "finetune",
        "config": cfg,
        "wall_time_s": wall,
        "base": bases,
        "tasks": per_task,
        "lr_at_grid_edge": at_edge,
        "checks": {
            "merge_max_rel": merge_rel,
            "merge_disagreements": merge_disagree,
            "merge_bound": 1e-4,
            "gram_dev_one_sided_max": gram_one_sided,
            "gram_dev_over_bound_one_sided_max": gram_ratio,
            "gram_dev_lora_full_min": gram_other_min,
            "double_gsoft_gram_dev_min": dg_gram_min,
            "double_gsoft_eig_dev_max": dg_eig,
            "ortho_err_max": ortho,
            "ortho_within_bound": ortho_ok,
            "gram_reference": if cfg.scale { "diag(s) W0 W0^T diag(s)" } else { "W0 W0^T" },
        },
        "layers": layer_shapes(cfg.hidden).iter().map(|l| json!({"name": l.name, "in": l.in_features, "out": l.out_features})).collect::<Vec<_>>(),
    }))
}

fn print_report(
    ctx: &Context,
    table: &[Vec<String>],
    mab: &[Vec<String>],
    summary: &serde_json::Value,
    wall: &WallTime,
) {
    for (d, b) in ctx.datas.iter().zip(ctx.bases) {
        println!(
            "{}: {} | base source acc {:.2} %, target acc before fine-tuning {:.2} %",
            d.task.name(),
            d.task.about(),
            100.0 * b.source_acc,
            100.0 * b.target_acc
        );
    }
    println!(
        "finetune: {} steps of batch {}, {} seeds, accuracies in % (mean, min, max over seeds)",
        ctx.cfg.steps, ctx.cfg.batch, ctx.cfg.seeds
    );
    print_table(&TABLE_HEADER, table);
    println!("m-ablation (GS chains; m = 1 is OFT, m = 2 GSOFT; Theorem 2 thresholds per layer):");
    print_table(&MAB_HEADER, mab);
    println!(
        "checks: {}",
        serde_json::to_string(&summary["checks"]).unwrap_or_default()
    );
    for t in summary["tasks"].as_array().into_iter().flatten() {
        println!(
            "{}: step time GSOFT b=8 / LoRA r=8 = {:.2}, BOFT (8,2) / GSOFT b=8 = {:.2}",
            t["task"].as_str().unwrap_or(""),
            t["step_ms_ratio_gsoft_b8_vs_lora_r8"]
                .as_f64()
                .unwrap_or(f64::NAN),
            t["step_ms_ratio_boft_b8_m2_vs_gsoft_b8"]
                .as_f64()
                .unwrap_or(f64::NAN)
        );
    }
    println!(
        "wall time {:.1} s (data + pretraining {:.1}, step timing {:.1}, grid {:.1}, seeds {:.1}, outputs {:.1})",
        wall.total,
        wall.data_and_pretraining,
        wall.step_timing,
        wall.lr_grid,
        wall.seeds,
        wall.outputs
    );
}
