//! The issues' speed targets, evaluated on the rows of a sweep, each with a load-robust
//! cross-check from the 1-thread CPU times and the largest run-queue wait among the rows it reads.
//!
//! The convolution targets (issue 14): `conv2d` reaches at least 0.5 of the GFLOP/s of faer's
//! GEMM on its im2col-equivalent shape forward and 0.4 forward+backward; a GS-SOC `(4, −)` layer
//! takes at most 0.5 of the time of a SOC layer with the same channels, and the `(4, 2)` layer at
//! most `1/1.2` (forward+backward in training, at both layer sizes). The paper reports training
//! speedups over SOC of 1.64 for `(4, −)` and 1.21–1.23 for `(4, 1)`, `(4, 2)`, `(4, 4)` (whole
//! LipConvnet-15 runs on a V100, Table 3): the `(4, −)` target, `≤ 0.5`, is stricter than the
//! paper's `1/1.64 = 0.61`, and the `(4, 2)` target is the paper's `1/1.2`.

use super::timing::{Identity, Sweep, find, find_index};
use super::workloads::CONV_KERNEL;
use super::{Config, Op, Pass, Point, is_gemm_baseline_name};
use gslab::structured::pattern::boft_formula;
use serde::Serialize;
use serde_json::{Value, json};

/// One evaluated target.
#[derive(Clone, Debug, Serialize)]
pub(super) struct Target {
    pub(super) name: String,
    pub(super) description: String,
    /// The measured value (`null` if a needed row is missing, e.g. only one thread count).
    pub(super) measured: Value,
    pub(super) requirement: &'static str,
    /// `null` when not measured.
    pub(super) pass: Option<bool>,
    /// Load-robust cross-check (not the target's definition): the same ratio from the **CPU
    /// time** per call of the **1-thread** runs, which other load on the machine barely changes
    /// (a time-sliced thread accrues no CPU time while it waits).
    pub(super) cross_check_1t_cpu: Option<f64>,
    /// Largest run-queue wait / wall time among the rows the target reads: how much other load
    /// disturbed it (0 = undisturbed; see `Diag::runq_wait_s`).
    pub(super) max_runq_wait_fraction: Option<f64>,
}

fn ratio_target(
    name: impl Into<String>,
    description: String,
    value: Option<f64>,
    cross_check: Option<f64>,
    requirement: &'static str,
    ok: impl Fn(f64) -> bool,
) -> Target {
    Target {
        name: name.into(),
        description,
        measured: value.map_or(Value::Null, |v| json!(v)),
        requirement,
        pass: value.map(ok),
        cross_check_1t_cpu: cross_check,
        max_runq_wait_fraction: None,
    }
}

/// The targets with [`Target::max_runq_wait_fraction`] filled in from the rows each one reads.
pub(super) fn evaluate_targets(sw: &Sweep, cfg: &Config) -> Vec<Target> {
    let g = &cfg.grid;
    let tp = g.target;
    let t_hi = *cfg.threads.iter().max().unwrap_or(&1);
    let big = Point { n: g.big_n, ..tp };
    let both = |op, pass| vec![(op, tp, t_hi, pass), (op, tp, 1, pass)];
    let ap = g.adapter;
    let cp = g.conv;
    let conv_both = |op, pass| vec![(op, cp, t_hi, pass), (op, cp, 1, pass)];
    let layer_uses = g.conv_layers.iter().flat_map(|&lp| {
        let pair = move |op| vec![(op, lp, t_hi, Pass::FwdBwd), (op, lp, 1, Pass::FwdBwd)];
        [Op::GsSoc4, Op::GsSoc4x2].map(|op| [pair(op), pair(Op::Soc)].concat())
    });
    let uses: Vec<Vec<(Op, Point, usize, Pass)>> = [
        [both(Op::Gs, Pass::Fwd), both(Op::Dense, Pass::Fwd)].concat(),
        [both(Op::Gs, Pass::FwdBwd), both(Op::Dense, Pass::FwdBwd)].concat(),
        [both(Op::Boft, Pass::Fwd), both(Op::Gs, Pass::Fwd)].concat(),
        [both(Op::Cayley, Pass::FwdBwd), both(Op::Gs, Pass::FwdBwd)].concat(),
        vec![
            (Op::Gs, big, 1, Pass::FwdBwd),
            (Op::Gs, big, t_hi, Pass::FwdBwd),
        ],
        Vec::new(),
        vec![
            (Op::GsoftStep, ap, t_hi, Pass::FwdBwd),
            (Op::LoraStep, ap, t_hi, Pass::FwdBwd),
            (Op::GsoftStep, ap, 1, Pass::FwdBwd),
            (Op::LoraStep, ap, 1, Pass::FwdBwd),
        ],
        vec![
            (Op::BoftStep, ap, t_hi, Pass::FwdBwd),
            (Op::GsoftStep, ap, t_hi, Pass::FwdBwd),
            (Op::BoftStep, ap, 1, Pass::FwdBwd),
            (Op::GsoftStep, ap, 1, Pass::FwdBwd),
        ],
        [
            conv_both(Op::Conv2d, Pass::Fwd),
            conv_both(Op::ConvGemm, Pass::Fwd),
        ]
        .concat(),
        [
            conv_both(Op::Conv2d, Pass::FwdBwd),
            conv_both(Op::ConvGemm, Pass::FwdBwd),
        ]
        .concat(),
    ]
    .into_iter()
    .chain(layer_uses)
    .collect();
    let mut targets = target_values(sw, cfg);
    assert_eq!(targets.len(), uses.len(), "one list of rows per target");
    for (t, used) in targets.iter_mut().zip(uses) {
        t.max_runq_wait_fraction = used
            .iter()
            .filter_map(|&(op, p, th, pass)| {
                find_index(sw, g, op, p, th, "f32", pass)
                    .map(|i| sw.diag[i].runq_wait_s / sw.rows[i].median_s)
            })
            .reduce(f64::max);
    }
    targets
}

/// The targets, evaluated on the rows of the sweep.
fn target_values(sw: &Sweep, cfg: &Config) -> Vec<Target> {
    let g = &cfg.grid;
    let tp = g.target;
    let t_hi = *cfg.threads.iter().max().unwrap_or(&1);
    let at = |op, p, t, pass| find(sw, g, op, p, t, "f32", pass);
    let gfl = |op, pass| at(op, tp, t_hi, pass).map(|r| r.gflops);
    let secs = |op, p, t, pass| at(op, p, t, pass).map(|r| r.median_s);
    let div = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
    // 1-thread CPU seconds per call, and the GFLOP/s they imply.
    let cpu = |op, p, pass| find_index(sw, g, op, p, 1, "f32", pass).map(|i| sw.diag[i].cpu_s);
    let cpu_gfl = |op, pass| {
        find_index(sw, g, op, tp, 1, "f32", pass)
            .map(|i| sw.rows[i].gflops * sw.rows[i].median_s / sw.diag[i].cpu_s)
    };
    let where_ = format!(
        "n={}, b={}, batch={}, f32, {t_hi} threads",
        tp.n, tp.b, tp.batch
    );
    let m_boft = gslab::Blocks::size(tp.n, tp.b)
        .and_then(boft_formula)
        .map_or_else(|_| "?".to_string(), |m| m.to_string());
    let big = Point { n: g.big_n, ..tp };
    let fwd_ids: Vec<&Identity> = sw
        .identity
        .iter()
        .filter(|i| i.pass == "fwd" && !is_gemm_baseline_name(i.op))
        .collect();
    let ap = g.adapter;
    let step_where = format!(
        "one training step (forward, backward, Adam) of the adapted {} -> {} layer inside a network, b = r = {}, batch={}, f32, {t_hi} threads",
        ap.n,
        ap.n / 2,
        ap.b,
        ap.batch
    );
    let mut targets = vec![
        ratio_target(
            "gs_fwd_gflops_vs_dense",
            format!(
                "GS (m=2) forward GFLOP/s / faer dense GEMM GFLOP/s on the equivalent dense product, {where_}"
            ),
            div(gfl(Op::Gs, Pass::Fwd), gfl(Op::Dense, Pass::Fwd)),
            div(cpu_gfl(Op::Gs, Pass::Fwd), cpu_gfl(Op::Dense, Pass::Fwd)),
            ">= 0.5",
            |v| v >= 0.5,
        ),
        ratio_target(
            "gs_fwdbwd_gflops_vs_dense",
            format!("GS forward+backward GFLOP/s / dense forward+backward GFLOP/s, {where_}"),
            div(gfl(Op::Gs, Pass::FwdBwd), gfl(Op::Dense, Pass::FwdBwd)),
            div(
                cpu_gfl(Op::Gs, Pass::FwdBwd),
                cpu_gfl(Op::Dense, Pass::FwdBwd),
            ),
            ">= 0.4",
            |v| v >= 0.4,
        ),
        ratio_target(
            "boft_time_vs_gs",
            format!("BOFT with {m_boft} factors (dense) forward time / GS forward time, {where_}"),
            div(
                secs(Op::Boft, tp, t_hi, Pass::Fwd),
                secs(Op::Gs, tp, t_hi, Pass::Fwd),
            ),
            div(cpu(Op::Boft, tp, Pass::Fwd), cpu(Op::Gs, tp, Pass::Fwd)),
            "in [2.2, 3.9]",
            |v| (2.2..=3.9).contains(&v),
        ),
        ratio_target(
            "cayley_fwdbwd_time_vs_gs_fwdbwd",
            format!(
                "Cayley map with backward for {} blocks of {b}x{b} / GS forward+backward time, {where_}",
                tp.n / tp.b,
                b = tp.b
            ),
            div(
                secs(Op::Cayley, tp, t_hi, Pass::FwdBwd),
                secs(Op::Gs, tp, t_hi, Pass::FwdBwd),
            ),
            div(
                cpu(Op::Cayley, tp, Pass::FwdBwd),
                cpu(Op::Gs, tp, Pass::FwdBwd),
            ),
            "<= 0.10",
            |v| v <= 0.10,
        ),
        ratio_target(
            "gs_fwdbwd_speedup_threads",
            format!(
                "GS forward+backward time on 1 thread / on {t_hi} threads, n={}, b={}, batch={}, f32",
                big.n, big.b, big.batch
            ),
            if t_hi > 1 {
                div(
                    secs(Op::Gs, big, 1, Pass::FwdBwd),
                    secs(Op::Gs, big, t_hi, Pass::FwdBwd),
                )
            } else {
                None
            },
            None,
            ">= 1.6",
            |v| v >= 1.6,
        ),
        Target {
            name: "fwd_bitwise_identical_threads".into(),
            description: format!(
                "forward outputs bitwise identical on 1 and {t_hi} threads for every op but the faer GEMM baselines (dense, conv_gemm) ({} comparisons)",
                fwd_ids.len()
            ),
            measured: if fwd_ids.is_empty() {
                Value::Null
            } else {
                json!(fwd_ids.iter().all(|i| i.identical))
            },
            requirement: "true",
            pass: (!fwd_ids.is_empty()).then(|| fwd_ids.iter().all(|i| i.identical)),
            cross_check_1t_cpu: None,
            max_runq_wait_fraction: None,
        },
        // The adapter training steps (the `finetune` experiment's speed targets).
        ratio_target(
            "gsoft_step_vs_lora_step",
            format!(
                "GSOFT (b={}) step time / LoRA (r={}) step time, {step_where}",
                ap.b, ap.b
            ),
            div(
                secs(Op::GsoftStep, ap, t_hi, Pass::FwdBwd),
                secs(Op::LoraStep, ap, t_hi, Pass::FwdBwd),
            ),
            div(
                cpu(Op::GsoftStep, ap, Pass::FwdBwd),
                cpu(Op::LoraStep, ap, Pass::FwdBwd),
            ),
            "<= 1.3",
            |v| v <= 1.3,
        ),
        ratio_target(
            "boft_step_vs_gsoft_step",
            format!(
                "BOFT (b={}, m=2) step time / GSOFT (b={}) step time, {step_where}",
                ap.b, ap.b
            ),
            div(
                secs(Op::BoftStep, ap, t_hi, Pass::FwdBwd),
                secs(Op::GsoftStep, ap, t_hi, Pass::FwdBwd),
            ),
            div(
                cpu(Op::BoftStep, ap, Pass::FwdBwd),
                cpu(Op::GsoftStep, ap, Pass::FwdBwd),
            ),
            "<= 2.0",
            |v| v <= 2.0,
        ),
    ];
    targets.extend(conv_targets(sw, cfg));
    targets
}

/// The convolution targets of issue 14 (module docs): `conv2d` against its im2col-equivalent
/// GEMM at [`super::Grid::conv`], then per layer size of [`super::Grid::conv_layers`] GS-SOC
/// `(4, −)` and `(4, 2)` against SOC.
fn conv_targets(sw: &Sweep, cfg: &Config) -> Vec<Target> {
    let g = &cfg.grid;
    let t_hi = *cfg.threads.iter().max().unwrap_or(&1);
    let cp = g.conv;
    let kk = CONV_KERNEL * CONV_KERNEL;
    let row = |op, p, t, pass| find_index(sw, g, op, p, t, "f32", pass);
    let div = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
    let gfl = |op, pass| row(op, cp, t_hi, pass).map(|i| sw.rows[i].gflops);
    // GFLOP/s from the 1-thread CPU time per call.
    let cpu_gfl = |op, pass| {
        row(op, cp, 1, pass).map(|i| sw.rows[i].gflops * sw.rows[i].median_s / sw.diag[i].cpu_s)
    };
    let secs = |op, p, t| row(op, p, t, Pass::FwdBwd).map(|i| sw.rows[i].median_s);
    let cpu = |op, p| row(op, p, 1, Pass::FwdBwd).map(|i| sw.diag[i].cpu_s);
    let conv_where = format!(
        "{k}x{k} kernel, batch {}, {c} -> {c} channels, {s}x{s} images, one group, f32, {t_hi} threads",
        cp.batch,
        k = CONV_KERNEL,
        c = cp.n,
        s = cp.b
    );
    let mut out = vec![
        ratio_target(
            "conv2d_fwd_gflops_vs_gemm",
            format!(
                "conv2d forward GFLOP/s / faer GEMM GFLOP/s on the im2col-equivalent product ({} x {}) . ({} x {}), {conv_where}",
                cp.n,
                kk * cp.n,
                kk * cp.n,
                cp.batch * cp.b * cp.b
            ),
            div(gfl(Op::Conv2d, Pass::Fwd), gfl(Op::ConvGemm, Pass::Fwd)),
            div(
                cpu_gfl(Op::Conv2d, Pass::Fwd),
                cpu_gfl(Op::ConvGemm, Pass::Fwd),
            ),
            ">= 0.5",
            |v| v >= 0.5,
        ),
        ratio_target(
            "conv2d_fwdbwd_gflops_vs_gemm",
            format!(
                "conv2d forward+backward (input and kernel gradients) GFLOP/s / the 3 GEMMs C = A.B, dA = dC.B^T, dB = A^T.dC GFLOP/s, {conv_where}"
            ),
            div(
                gfl(Op::Conv2d, Pass::FwdBwd),
                gfl(Op::ConvGemm, Pass::FwdBwd),
            ),
            div(
                cpu_gfl(Op::Conv2d, Pass::FwdBwd),
                cpu_gfl(Op::ConvGemm, Pass::FwdBwd),
            ),
            ">= 0.4",
            |v| v >= 0.4,
        ),
    ];
    for &lp in &g.conv_layers {
        let layer_where = format!(
            "one training forward+backward (5 terms, power iteration, input and parameter gradients) of a stride-1 {c} -> {c} {k}x{k} layer, {s}x{s} images, batch {}, paired shuffles, f32, {t_hi} threads",
            lp.batch,
            k = CONV_KERNEL,
            c = lp.n,
            s = lp.b
        );
        let vs_soc = |op| {
            (
                div(secs(op, lp, t_hi), secs(Op::Soc, lp, t_hi)),
                div(cpu(op, lp), cpu(Op::Soc, lp)),
            )
        };
        let (v, check) = vs_soc(Op::GsSoc4);
        out.push(ratio_target(
            format!("gs_soc_4_time_vs_soc_c{}", lp.n),
            format!(
                "GS-SOC (4, -) time / SOC time, {layer_where} (paper: speedup 1.64, time ratio 0.61)"
            ),
            v,
            check,
            "<= 0.5",
            |v| v <= 0.5,
        ));
        let (v, check) = vs_soc(Op::GsSoc4x2);
        out.push(ratio_target(
            format!("gs_soc_4x2_time_vs_soc_c{}", lp.n),
            format!(
                "GS-SOC (4, 2) time / SOC time, {layer_where} (paper: speedups 1.21-1.23 for (4, 1), (4, 2), (4, 4))"
            ),
            v,
            check,
            "<= 0.833 (1/1.2)",
            |v| v <= 1.0 / 1.2,
        ));
    }
    out
}
