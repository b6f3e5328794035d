//! The figures of `finetune`: target accuracy against trainable parameters and against time per
//! step (with the Pareto frontier), the m-ablation with Theorem 2's density thresholds, and the
//! source accuracy after fine-tuning (forgetting) against parameters. Every point is the mean
//! over seeds with a min–max whisker.

use super::methods::{ABLATION_BS, ABLATION_MAX_M, FAMILIES, Spec, ablation_spec};
use super::output::{Context, thresholds};
use super::tasks::Task;
use crate::Result;
use crate::plot::{
    EntryStyle, RefLine, Scale, SpreadFigure, SpreadPanel, SpreadPoint, SpreadSeries, save_spread,
};

/// Pixel size of one panel.
const PANEL: (u32, u32) = (620, 470);

/// The points of one family: `(x, mean, min, max)` of `y` over seeds, per configuration.
fn family_points(
    ctx: &Context,
    task: Task,
    family: &str,
    x: &dyn Fn(Spec) -> f64,
    y: &dyn Fn(&super::Finished) -> f64,
) -> Vec<SpreadPoint> {
    let mut pts: Vec<SpreadPoint> = ctx
        .cfg
        .specs
        .iter()
        .filter(|s| s.method() == family)
        .filter_map(|&s| {
            let st = ctx.stats(task, s, y)?;
            Some(SpreadPoint {
                x: x(s),
                y: st.mean,
                lo: st.min,
                hi: st.max,
            })
        })
        .collect();
    pts.sort_by(|a, b| a.x.total_cmp(&b.x));
    pts
}

/// The points on the upper-left frontier: no other point has at most the same `x` and a
/// higher mean.
fn pareto(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut p: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|q| q.0.is_finite() && q.1.is_finite())
        .collect();
    p.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    let mut out: Vec<(f64, f64)> = Vec::new();
    for q in p {
        if out.last().is_none_or(|l| q.1 > l.1) {
            out.push(q);
        }
    }
    out
}

fn family_legend(ctx: &Context, skip_head: bool) -> Vec<(String, EntryStyle)> {
    FAMILIES
        .iter()
        .enumerate()
        .filter(|(_, f)| ctx.cfg.specs.iter().any(|s| s.method() == **f))
        .filter(|(_, f)| !(skip_head && **f == "head"))
        .map(|(i, f)| (f.to_string(), EntryStyle::Marker(i)))
        .collect()
}

/// Accuracy (or source accuracy) against `x` for every task, one panel per task: every family
/// as points (points at `x = 0` are not drawn on a log axis), except that with `head_line` the
/// head-only floor is a dashed line instead; the extra reference line `hline`; and the Pareto
/// frontier if `frontier`.
#[allow(clippy::too_many_arguments)]
fn scatter_panels(
    ctx: &Context,
    x: &dyn Fn(Task, Spec) -> f64,
    x_label: &str,
    x_scale: Scale,
    y: &dyn Fn(&super::Finished) -> f64,
    y_label: &str,
    tasks: &[Task],
    head_line: bool,
    hline: &dyn Fn(Task) -> Option<RefLine>,
    frontier: bool,
) -> Vec<SpreadPanel> {
    tasks
        .iter()
        .map(|&task| {
            let mut series = Vec::new();
            let mut all = Vec::new();
            for (i, fam) in FAMILIES.iter().enumerate() {
                if head_line && *fam == "head" {
                    continue;
                }
                let pts = family_points(ctx, task, fam, &|s| x(task, s), y);
                all.extend(pts.iter().map(|p| (p.x, p.y)));
                if !pts.is_empty() {
                    series.push(SpreadSeries {
                        color: i,
                        points: pts,
                        line: false,
                    });
                }
            }
            let mut hlines: Vec<RefLine> = hline(task).into_iter().collect();
            if head_line && let Some(st) = ctx.stats(task, Spec::Head, y) {
                hlines.push(RefLine {
                    at: st.mean,
                    label: format!("head only ({:.1} %)", 100.0 * st.mean),
                });
            }
            SpreadPanel {
                title: format!("task {}", task.name()),
                x_label: x_label.into(),
                y_label: y_label.into(),
                x_scale,
                y_scale: Scale::Linear,
                series,
                frontier: if frontier { pareto(&all) } else { Vec::new() },
                vlines: Vec::new(),
                hlines,
            }
        })
        .collect()
}

/// Draws and registers the four figures.
pub(super) fn draw(ctx: &Context) -> Result<()> {
    let run = ctx.run;
    let tasks = &ctx.cfg.task_list;
    let params = |task: Task, s: Spec| {
        ctx.runs(task, s)
            .first()
            .map_or(f64::NAN, |f| f.result.params_paper as f64)
    };
    let target = |f: &super::Finished| f.result.target_acc;
    let source = |f: &super::Finished| f.result.source_acc;
    let steps = format!(
        "{} steps, batch {}, {} seeds",
        ctx.cfg.steps, ctx.cfg.batch, ctx.cfg.seeds
    );
    let mut legend = family_legend(ctx, true);
    legend.push(("Pareto frontier".into(), EntryStyle::Frontier));
    legend.push(("head only".into(), EntryStyle::Dashed));
    let none = |_: Task| None;

    let fig = SpreadFigure {
        title: format!("Target accuracy vs trainable parameters ({steps})"),
        ncols: tasks.len(),
        panels: scatter_panels(
            ctx,
            &params,
            "trainable parameters of the adapted layers (paper convention, log)",
            Scale::Log,
            &target,
            "target test accuracy",
            tasks,
            true,
            &none,
            true,
        ),
        legend_heading: "method".into(),
        legend: legend.clone(),
    };
    save_spread(&run.path("acc_vs_params"), &fig, PANEL)?;
    run.register_figure(
        "acc_vs_params",
        "Target test accuracy (mean over seeds, whiskers min to max) against trainable parameters of the two adapted layers in the paper's convention, one panel per task, with the Pareto frontier and the head-only floor dashed.",
    )?;

    let time = |task: Task, s: Spec| ctx.step_ms(task, s);
    let fig = SpreadFigure {
        title: format!("Target accuracy vs time per training step ({steps})"),
        ncols: tasks.len(),
        panels: scatter_panels(
            ctx,
            &time,
            "time per training step of the whole model [ms] (log)",
            Scale::Log,
            &target,
            "target test accuracy",
            tasks,
            false,
            &none,
            true,
        ),
        legend_heading: "method".into(),
        legend: {
            let mut l = family_legend(ctx, false);
            l.push(("Pareto frontier".into(), EntryStyle::Frontier));
            l
        },
    };
    save_spread(&run.path("acc_vs_time"), &fig, PANEL)?;
    run.register_figure(
        "acc_vs_time",
        "Target test accuracy against the measured median wall time of one training step (forward, backward and Adam update of the whole model), with the Pareto frontier.",
    )?;

    let mut panels = Vec::new();
    for &task in tasks {
        let mut series = Vec::new();
        let mut vlines = Vec::new();
        for (k, b) in ABLATION_BS.into_iter().enumerate() {
            let pts: Vec<SpreadPoint> = (1..=ABLATION_MAX_M)
                .filter_map(|m| {
                    let st = ctx.stats(task, ablation_spec(b, m), target)?;
                    Some(SpreadPoint {
                        x: m as f64,
                        y: st.mean,
                        lo: st.min,
                        hi: st.max,
                    })
                })
                .collect();
            if pts.is_empty() {
                continue;
            }
            series.push(SpreadSeries {
                color: k,
                points: pts,
                line: true,
            });
            let [l1, l2] = thresholds(ctx.cfg.hidden, b)?;
            let h = ctx.cfg.hidden;
            if l1 == l2 {
                vlines.push(RefLine {
                    at: l1 as f64,
                    label: format!("b={b}: dense at n=1024 and n={h}"),
                });
            } else {
                for (at, n) in [(l1, 1024), (l2, h)] {
                    vlines.push(RefLine {
                        at: at as f64,
                        label: format!("b={b}: dense at n={n}"),
                    });
                }
            }
        }
        panels.push(SpreadPanel {
            title: format!("task {}", task.name()),
            x_label: "number of GS factors m (1 = OFT, 2 = GSOFT)".into(),
            y_label: "target test accuracy".into(),
            x_scale: Scale::Linear,
            y_scale: Scale::Linear,
            series,
            frontier: Vec::new(),
            vlines,
            hlines: Vec::new(),
        });
    }
    let mut legend: Vec<(String, EntryStyle)> = ABLATION_BS
        .iter()
        .enumerate()
        .filter(|(_, b)| {
            ctx.cfg
                .specs
                .iter()
                .any(|s| matches!(s, Spec::GsChain { b: sb, .. } if sb == *b))
        })
        .map(|(k, b)| (format!("GS chain b={b}"), EntryStyle::Marker(k)))
        .collect();
    legend.push(("Theorem 2: 1+ceil(log_b r)".into(), EntryStyle::Dashed));
    let fig = SpreadFigure {
        title: format!("m-ablation: orthogonal GS chains with m factors ({steps})"),
        ncols: tasks.len(),
        panels,
        legend_heading: "block size".into(),
        legend,
    };
    save_spread(&run.path("mablation"), &fig, PANEL)?;
    run.register_figure(
        "mablation",
        "Target test accuracy of orthogonal GS chains against the number of factors m at block sizes 4 and 8, with Theorem 2's density thresholds of the two adapted widths dashed.",
    )?;

    let base_source = |task: Task| {
        let i = tasks.iter().position(|t| *t == task)?;
        Some(RefLine {
            at: ctx.bases[i].source_acc,
            label: format!("base model ({:.1} %)", 100.0 * ctx.bases[i].source_acc),
        })
    };
    let fig = SpreadFigure {
        title: format!("Forgetting: source accuracy after fine-tuning ({steps})"),
        ncols: tasks.len(),
        panels: scatter_panels(
            ctx,
            &params,
            "trainable parameters of the adapted layers (paper convention, log)",
            Scale::Log,
            &source,
            "source test accuracy after fine-tuning",
            tasks,
            false,
            &base_source,
            false,
        ),
        legend_heading: "method".into(),
        legend: {
            let mut l = family_legend(ctx, true);
            l.push(("base model".into(), EntryStyle::Dashed));
            l
        },
    };
    save_spread(&run.path("forgetting"), &fig, PANEL)?;
    run.register_figure(
        "forgetting",
        "Source-task test accuracy after fine-tuning against trainable parameters (rotation: upright digits with the fine-tuned head; new classes: the adapted body under the pretrained 0-4 head), with the base model's accuracy dashed (head-only fine-tuning keeps it on new classes).",
    )?;
    Ok(())
}
