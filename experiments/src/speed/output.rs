//! The outputs of a sweep: `speed_diag.csv` rows, `summary.json`, the figures and the terminal
//! report.

use super::targets::Target;
use super::timing::{Identity, Sweep, find, find_index, load_average};
use super::{Config, Op, Pass, Point, is_gemm_baseline_name};
use crate::plot::{BarPlot, Plot, Scale, Series, XyPlot};
use crate::{Result, Run, format_table};
use serde::Serialize;
use serde_json::{Value, json};

/// One row of `speed_diag.csv`: the [`Diag`] of the `speed.csv` row with the same key.
#[derive(Clone, Debug, Serialize)]
pub(super) struct DiagRow {
    pub(super) op: &'static str,
    pub(super) n: usize,
    pub(super) b: usize,
    pub(super) batch: usize,
    pub(super) threads: usize,
    pub(super) dtype: &'static str,
    pub(super) pass: &'static str,
    pub(super) cpu_s_per_call: f64,
    pub(super) runq_wait_s_per_call: f64,
    pub(super) minor_faults_per_call: f64,
}

/// GFLOP/s of `op` at `p` divided by dense GEMM's at the same `n`, batch, threads, pass, dtype
/// (Cayley has no batch: compared with dense at the target batch).
fn fraction_of_dense(sw: &Sweep, cfg: &Config, op: Op, p: Point, t: usize, pass: Pass) -> f64 {
    let g = &cfg.grid;
    let dp = Point {
        batch: if op == Op::Cayley {
            g.target.batch
        } else {
            p.batch
        },
        ..p
    };
    let mine = find(sw, g, op, p, t, "f32", pass);
    let dense = find(sw, g, Op::Dense, dp, t, "f32", pass);
    match (mine, dense) {
        (Some(a), Some(d)) => a.gflops / d.gflops,
        _ => f64::NAN,
    }
}

pub(super) fn summary_json(
    run: &Run,
    cfg: &Config,
    sw: &Sweep,
    targets: &[Target],
    load_start: Option<String>,
    elapsed: f64,
) -> Value {
    let t_hi = *cfg.threads.iter().max().unwrap_or(&1);
    let ids = |pass: &str| {
        let v: Vec<&Identity> = sw
            .identity
            .iter()
            .filter(|i| i.pass == pass && !is_gemm_baseline_name(i.op))
            .collect();
        (!v.is_empty()).then(|| v.iter().all(|i| i.identical))
    };
    let mismatches: Vec<&Identity> = sw.identity.iter().filter(|i| !i.identical).collect();
    let fractions: Vec<Value> = Op::ALL
        .iter()
        .filter(|&&op| op != Op::Dense && op.in_sweep())
        .flat_map(|&op| {
            op.passes().iter().map(move |&pass| {
                let p = cfg.grid.point_for(op, cfg.grid.target);
                let diag = |t: usize| {
                    find_index(sw, &cfg.grid, op, p, t, "f32", pass).map(|i| sw.diag[i])
                };
                json!({
                    "op": op.name(),
                    "pass": pass.name(),
                    "gflops_fraction_of_dense": fraction_of_dense(sw, cfg, op, p, t_hi, pass),
                    "per_call_diagnostics": cfg.threads.iter().map(|&t| json!({"threads": t, "diag": diag(t)})).collect::<Vec<_>>(),
                })
            })
        })
        .collect();
    json!({
        "quick": run.quick,
        "seed": run.seed,
        "threads": cfg.threads,
        "pinned": cfg.pin,
        "worker_cpus": sw.cpus.iter().map(|(t, c)| json!({"threads": t, "cpus": c})).collect::<Vec<_>>(),
        "budget_s": cfg.budget,
        "min_reps": cfg.min_reps,
        "grid": cfg.grid,
        "f64_ops": cfg.grid.f64_ops.iter().map(|o| o.name()).collect::<Vec<_>>(),
        "load_average_start": load_start,
        "load_average_end": load_average(),
        "elapsed_s": elapsed,
        "process_cpu_s": sw.sched.map(|s| s.0),
        "process_runq_wait_s": sw.sched.map(|s| s.1),
        "runq_wait_note": "time the process's threads were runnable but waiting for a CPU (other load on the machine); per measurement in per_call_diagnostics",
        "rows": sw.rows.len(),
        "targets": targets,
        "fwd_bitwise_identical_1_vs_2_threads": ids("fwd"),
        "fwdbwd_bitwise_identical_1_vs_2_threads": ids("fwdbwd"),
        "dense_bitwise_identical_1_vs_2_threads": sw.identity.iter().filter(|i| is_gemm_baseline_name(i.op)).all(|i| i.identical),
        "dense_bitwise_note": "dense_bitwise_identical_1_vs_2_threads covers faer's GEMM baselines (dense, conv_gemm); the other two flags cover every other op",
        "bitwise_comparisons": sw.identity.len(),
        "bitwise_mismatches": mismatches,
        "fraction_of_dense_at_target": fractions,
        "flop_convention": "2 per multiply-add; chain fwd 2*batch*sum_i k_i*b1_i*b2_i, dense fwd 2*batch*n^2, fwdbwd = 3*fwd; cayley fwd k*(8/3)b^3, fwdbwd k*(20/3)b^3; orthogs_step = GS fwdbwd + cayley fwdbwd of 2n/b blocks; adapter steps: the products performed (frozen GEMM, its data gradient where needed, adapter products forward and backward, Cayley forward and backward); conv2d fwd 2*batch*h*w*c_out*(c_in/g)*k^2 (its im2col GEMM), conv_gemm fwd 2*M*K*N (the same number), fwdbwd = 3*fwd; soc/gs_soc layers: sum over their convolutions of 3*terms*conv2d fwd (normalisation, power iteration, bias and shuffles not counted)",
    })
}

pub(super) fn write_figures(run: &Run, cfg: &Config, sw: &Sweep) -> Result<()> {
    let g = &cfg.grid;
    let t_hi = *cfg.threads.iter().max().unwrap_or(&1);
    let panel = |pass: Pass| {
        let mut plot = XyPlot::new(
            format!(
                "{} (b={} or √n for monarch, batch={}, f32, {t_hi} threads)",
                pass.name(),
                g.target.b,
                g.target.batch
            ),
            "n",
            "median time (s)",
        )
        .scales(Scale::Log, Scale::Log);
        for op in Op::ALL
            .iter()
            .filter(|op| op.in_sweep() && op.passes().contains(&pass))
        {
            let pts: Vec<(f64, f64)> =
                g.ns.iter()
                    .filter_map(|&n| {
                        let b = if *op == Op::Monarch {
                            (n as f64).sqrt().round() as usize
                        } else {
                            g.target.b
                        };
                        let p = Point {
                            n,
                            b,
                            batch: g.target.batch,
                        };
                        find(sw, g, *op, p, t_hi, "f32", pass).map(|r| (n as f64, r.median_s))
                    })
                    .collect();
            if !pts.is_empty() {
                plot = plot.with(Series::line(op.name(), pts));
            }
        }
        Plot::Xy(plot)
    };
    run.figure_grid(
        "time_vs_n",
        "speed: median wall time against n",
        &[panel(Pass::Fwd), panel(Pass::FwdBwd)],
        2,
        (760, 560),
        "Median wall time of one forward (left) and forward+backward (right) against n, log-log, one line per operation (f32, largest thread count).",
    )?;
    let tp = g.target;
    let ops: Vec<Op> = Op::ALL
        .into_iter()
        .filter(|&o| o != Op::Dense && o.in_sweep())
        .collect();
    let mut series = Vec::new();
    for pass in [Pass::Fwd, Pass::FwdBwd] {
        for &t in &cfg.threads {
            let vals = ops
                .iter()
                .map(|&op| fraction_of_dense(sw, cfg, op, g.point_for(op, tp), t, pass))
                .collect();
            series.push((format!("{} {t}T", pass.name()), vals));
        }
    }
    let bars = BarPlot {
        title: format!(
            "GFLOP/s / dense GEMM GFLOP/s (n={}, b={}, batch={}, f32)",
            tp.n, tp.b, tp.batch
        ),
        value_label: "fraction of dense GEMM GFLOP/s (same run)".into(),
        categories: ops.iter().map(|o| o.name().to_string()).collect(),
        series,
        scale: Scale::Linear,
    };
    run.figure(
        "fraction_of_dense",
        &Plot::Bars(bars),
        "GFLOP/s of each structured operation as a fraction of faer's dense GEMM GFLOP/s on the equivalent dense product, measured in the same run.",
    )?;
    run.finish()?;
    Ok(())
}

pub(super) fn print_report(cfg: &Config, sw: &Sweep, targets: &[Target], elapsed: f64) {
    let g = &cfg.grid;
    let tp = g.target;
    let header = [
        "op",
        "pass",
        "threads",
        "median ms",
        "GFLOP/s",
        "ratio",
        "cpu ms",
        "runq ms",
        "faults",
    ];
    let mut rows = Vec::new();
    // The ratio column: GFLOP/s / dense GEMM's (conv2d: / conv_gemm's), or a layer's time /
    // SOC's time at the same size, pass and threads.
    let ratio = |op: Op, p: Point, t: usize, pass: Pass, i: usize| {
        let other = |base: Op| find(sw, g, base, p, t, "f32", pass);
        match op {
            Op::Conv2d => other(Op::ConvGemm).map_or(f64::NAN, |b| sw.rows[i].gflops / b.gflops),
            Op::ConvGemm => f64::NAN,
            _ if op.conv_layer_groups().is_some() => {
                other(Op::Soc).map_or(f64::NAN, |b| sw.rows[i].median_s / b.median_s)
            }
            _ => fraction_of_dense(sw, cfg, op, p, t, pass),
        }
    };
    for op in Op::ALL {
        let points = g
            .fixed_points(op)
            .unwrap_or_else(|| vec![g.point_for(op, tp)]);
        for p in points {
            for &pass in op.passes() {
                for &t in &cfg.threads {
                    if let Some(i) = find_index(sw, g, op, p, t, "f32", pass) {
                        let r = &sw.rows[i];
                        let label = if op.conv_layer_groups().is_some() {
                            format!("{} c={}", op.name(), p.n)
                        } else {
                            op.name().to_string()
                        };
                        let ratio = ratio(op, p, t, pass, i);
                        rows.push(vec![
                            label,
                            pass.name().to_string(),
                            t.to_string(),
                            format!("{:.3}", r.median_s * 1e3),
                            format!("{:.1}", r.gflops),
                            if ratio.is_nan() {
                                String::new()
                            } else {
                                format!("{ratio:.2}")
                            },
                            format!("{:.3}", sw.diag[i].cpu_s * 1e3),
                            format!("{:.3}", sw.diag[i].runq_wait_s * 1e3),
                            format!("{:.0}", sw.diag[i].faults),
                        ]);
                    }
                }
            }
        }
    }
    println!(
        "speed at n={}, b={}, batch={}, f32 (adapter steps: n={} -> {}, b=r={}, batch={}) ({} measurements in {elapsed:.1} s):",
        tp.n,
        tp.b,
        tp.batch,
        g.adapter.n,
        g.adapter.n / 2,
        g.adapter.b,
        g.adapter.batch,
        sw.rows.len()
    );
    let layer_sizes: Vec<String> = g
        .conv_layers
        .iter()
        .map(|p| format!("{c} -> {c} on {s}x{s}, batch {}", p.batch, c = p.n, s = p.b))
        .collect();
    println!(
        "conv2d / conv_gemm: 3x3, {c} -> {c} channels, {s}x{s}, batch {}; layers: {}",
        g.conv.batch,
        layer_sizes.join("; "),
        c = g.conv.n,
        s = g.conv.b
    );
    println!(
        "ratio: GFLOP/s / dense GEMM's at the same point (conv2d: / conv_gemm's); layers: time / SOC's time"
    );
    print!("{}", format_table(&header, &rows));
    let trows: Vec<Vec<String>> = targets
        .iter()
        .map(|t| {
            vec![
                t.name.to_string(),
                match &t.measured {
                    Value::Number(x) => format!("{:.3}", x.as_f64().unwrap_or(f64::NAN)),
                    v => v.to_string(),
                },
                t.cross_check_1t_cpu
                    .map_or(String::new(), |v| format!("{v:.3}")),
                t.max_runq_wait_fraction
                    .map_or(String::new(), |v| format!("{:.0}%", 100.0 * v)),
                t.requirement.to_string(),
                match t.pass {
                    Some(true) => "pass".into(),
                    Some(false) => "FAIL".into(),
                    None => "n/a".into(),
                },
            ]
        })
        .collect();
    println!();
    print!(
        "{}",
        format_table(
            &[
                "target",
                "measured",
                "1T CPU-time check",
                "max runq wait",
                "requirement",
                "result"
            ],
            &trows
        )
    );
}
