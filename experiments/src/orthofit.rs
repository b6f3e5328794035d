//! `orthofit`: trainable orthogonality. Fits target orthogonal matrices `Q*` with structured
//! orthogonal parametrizations (GS m=2, GS chain m=3, OFT, BOFT, Monarch, dense) under the Cayley
//! and the exponential block maps, and records the loss `‖Q − Q*‖_F²/n` and the orthogonality
//! error `‖QᵀQ − I‖_max` along training (paper §4, digest §10 T5/T6).
//!
//! Training is in f64 (Adam, cosine schedule, every parametrization starts at `Q = I`), so the
//! orthogonality error must stay at f64 rounding level, below `10·n·eps(f64)`.
//!
//! Outputs in `--out` (default `results/orthofit/`): `orthofit.csv`
//! (`method,map,target,params,step,seconds,loss,ortho_err`), `summary.json`, and the figures
//! `loss_steps`, `loss_seconds`, `ortho_err`, `final_loss` (PNG and SVG), with the
//! manifest `figures.json` (stem and caption of each) and the per-fit table `final.csv`.

use crate::plot::{self, BarPlot, LegendColumn, Panel, PanelGrid, Scale};
use crate::{CommonArgs, Error, Result, Run, print_table};
use clap::Parser;
use faer::Mat;
use gslab::Tensor;
use gslab::autodiff::tape::{Tape, Var};
use gslab::kernels::chain::chain_forward;
use gslab::nn::optim::{Adam, Optimizer};
use gslab::nn::schedule::Schedule;
use gslab::nn::train::loss_and_grads;
use gslab::orthogonal::{
    OrthoBlockDiag, OrthoButterfly, OrthoChain, OrthoDense, OrthoGs, OrthoGsChain, OrthoLayer,
    OrthoMap, OrthoMonarch, haar_special_orthogonal, orthogonality_error,
};
use gslab::structured::LinearOp;
use gslab::structured::pattern::boft_formula;
use gslab::{Blocks, Params};
use rand::{SeedableRng, rngs::StdRng};
use serde::Serialize;
use std::rc::Rc;
use std::time::Instant;

/// Fit target orthogonal matrices with structured orthogonal parametrizations (Cayley and exp).
#[derive(Parser, Debug)]
#[command(
    name = "orthofit",
    version,
    about = "Trainable orthogonality: fit target orthogonal matrices with GS, OFT, BOFT, Monarch and dense parametrizations (Cayley and exp)"
)]
pub struct Args {
    /// `--seed`, `--threads`, `--out`, `--quick`.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Matrix size n: 16, 64 or 256 (default 64; --quick: 16).
    #[arg(long)]
    pub n: Option<usize>,
    /// Optimizer steps per fit (default 1000; --quick: 100).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Log a CSV row every this many steps (default: steps/60, at least 1).
    #[arg(long)]
    pub log_every: Option<usize>,
    /// Peak Adam learning rate (cosine decay to lr/10, 5 % warmup).
    #[arg(long, default_value_t = DEFAULT_LR, allow_negative_numbers = true)]
    pub lr: f64,
}

/// Default of `--lr`: the peak Adam learning rate.
pub const DEFAULT_LR: f64 = 0.1;

/// The resolved configuration of a run.
#[derive(Clone, Debug, Serialize)]
struct Config {
    n: usize,
    steps: usize,
    log_every: usize,
    lr: f64,
    seed: u64,
    threads: usize,
    dtype: &'static str,
    ortho_bound: f64,
}

impl Config {
    /// Validates the arguments (before anything is created on disk); `threads` is set later.
    fn new(args: &Args) -> Result<Self> {
        let quick = args.common.quick;
        let n = args.n.unwrap_or(if quick { 16 } else { 64 });
        let is_pow4 = n.is_power_of_two() && n.trailing_zeros().is_multiple_of(2);
        if !(16..=256).contains(&n) || !is_pow4 {
            return Err(Error::Usage(format!(
                "--n must be 16, 64 or 256 (a power of 4), got {n}"
            )));
        }
        let steps = args.steps.unwrap_or(if quick { 100 } else { 1000 });
        if steps == 0 {
            return Err(Error::Usage("--steps must be at least 1".into()));
        }
        let log_every = args.log_every.unwrap_or((steps / 60).max(1));
        if log_every == 0 {
            return Err(Error::Usage("--log-every must be at least 1".into()));
        }
        if !(args.lr.is_finite() && args.lr > 0.0) {
            return Err(Error::Usage(format!(
                "--lr must be a positive finite number, got {}",
                args.lr
            )));
        }
        Ok(Self {
            n,
            steps,
            log_every,
            lr: args.lr,
            seed: args.common.seed,
            threads: 0,
            dtype: "f64",
            ortho_bound: 10.0 * n as f64 * f64::EPSILON,
        })
    }
}

/// The parametrizations compared, with their block sizes as functions of `n = 4^j`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    /// OrthoGs `Pᵀ L P R`, `r = b = √n`.
    Gs2,
    /// GsChain m=3, `b = 2^⌈log₂(n)/3⌉` (dense: `b³ ≥ n`).
    Gs3,
    /// OFT, block-diagonal with `b = 2√n`.
    Oft,
    /// BOFT, `b = 4`, `m = 1 + log₂(n/4)` factors (the fewest that make it dense).
    Boft,
    /// Orthogonal Monarch, `k_L = √n/2`, `k_R = 2√n`.
    Monarch,
    /// One dense `n × n` block.
    Dense,
}

const METHODS: [Method; 6] = [
    Method::Gs2,
    Method::Gs3,
    Method::Oft,
    Method::Boft,
    Method::Monarch,
    Method::Dense,
];

const MAPS: [OrthoMap; 2] = [OrthoMap::Cayley, OrthoMap::Exp];

impl Method {
    fn name(self) -> &'static str {
        match self {
            Self::Gs2 => "gs_m2",
            Self::Gs3 => "gs_m3",
            Self::Oft => "oft",
            Self::Boft => "boft",
            Self::Monarch => "monarch",
            Self::Dense => "dense",
        }
    }

    /// The layer at size `n` (identity at init) and a short description of its shape.
    fn build(self, n: usize, map: OrthoMap) -> Result<(OrthoChain<f64>, String)> {
        let s = n.isqrt();
        Ok(match self {
            Self::Gs2 => (
                OrthoGs::new(Blocks::count(n, s)?, map)?.into(),
                format!("OrthoGs: 2 factors x {s} blocks of {s}x{s}, P = P_({s},{n})"),
            ),
            Self::Gs3 => {
                let b = 1usize << (n.trailing_zeros() as usize).div_ceil(3);
                let r = n / b;
                (
                    OrthoGsChain::new(Blocks::count(n, r)?, 3, map)?.into(),
                    format!("GsChain: 3 factors x {r} blocks of {b}x{b}, P = P_({r},{n})"),
                )
            }
            Self::Oft => (
                OrthoBlockDiag::new(Blocks::count(n, s / 2)?, map)?.into(),
                format!("OFT: {} blocks of {b}x{b}", s / 2, b = 2 * s),
            ),
            Self::Boft => {
                let r = n / 4;
                let blocks = Blocks::size(n, 4)?;
                let m = boft_formula(blocks)?;
                (
                    OrthoButterfly::new(blocks, m, map)?.into(),
                    format!("BOFT: {m} butterfly factors x {r} blocks of 4x4 (PEFT perms)"),
                )
            }
            Self::Monarch => {
                let (kl, kr) = (s / 2, 2 * s);
                (
                    OrthoMonarch::new(Blocks::count(n, kl)?, map)?.into(),
                    format!("Monarch: R {kr} blocks of {kl}x{kl}, L {kl} blocks of {kr}x{kr}"),
                )
            }
            Self::Dense => (
                OrthoDense::new(n, map)?.into(),
                format!("dense: 1 block of {n}x{n}"),
            ),
        })
    }
}

/// A target matrix `Q*` (orthogonal, `det = +1`).
struct Target {
    name: &'static str,
    about: String,
    q: Tensor<f64>,
    /// For the GS target: the loss and `max |θ|` of the exact Cayley parameters of its blocks.
    certificate: Option<Certificate>,
}

/// Reachability certificate of the GS target by `gs_m2` with the Cayley map: the free
/// parameters from the inverse Cayley map `K = (I + Q)⁻¹(Q − I)` of every target block.
#[derive(Clone, Copy, Debug, Serialize)]
struct Certificate {
    /// `‖Q(θ) − Q*‖_F²/n` at those parameters (rounding level if the loss and layout agree).
    loss: f64,
    /// `max |θ|`: large when a block has an eigenvalue near −1 (hard for Cayley training).
    max_abs_param: f64,
}

/// The inverse Cayley map of every block of `blocks` (a `(k, b, b)` stack per factor) loaded
/// into `gs` (Cayley map), and the resulting loss against `target`.
fn cayley_certificate(
    mut gs: OrthoGs<f64>,
    blocks: &[Tensor<f64>],
    target: &Tensor<f64>,
) -> Result<Certificate> {
    use faer::prelude::Solve;
    let mut params = Vec::new();
    for t in blocks {
        let &[k, b, _] = t.shape() else {
            unreachable!("block stacks are 3-D")
        };
        let mut theta = Vec::with_capacity(k * b * (b - 1) / 2);
        for j in 0..k {
            let q = Mat::<f64>::from_fn(b, b, |r, c| t.data()[(j * b + r) * b + c]);
            let eye = Mat::<f64>::identity(b, b);
            let kk = (&eye + &q).partial_piv_lu().solve(&(&q - &eye));
            for r in 0..b {
                for c in r + 1..b {
                    theta.push(kk[(r, c)]);
                }
            }
        }
        params.push(Tensor::from_vec(&[k, b * (b - 1) / 2], theta)?);
    }
    let max_abs_param = params.iter().map(|p| p.max_abs()).fold(0.0, f64::max);
    gs.set_params(params)?;
    let d = gs.matrix().sub(target);
    let n = target.shape()[0] as f64;
    Ok(Certificate {
        loss: d.data().iter().map(|v| v * v).sum::<f64>() / n,
        max_abs_param,
    })
}

/// The three targets: a random GS member reachable by `gs_m2` (Haar SO(√n) blocks in the same
/// layout), a Haar random matrix of SO(n), and the orthonormal DCT-II matrix (with its last row
/// negated when its determinant is −1, since both maps only reach SO(n)).
fn targets(n: usize, seed: u64) -> Result<Vec<Target>> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6f72_7468_6f66_6974);
    let s = n.isqrt();
    let gs = OrthoGs::<f64>::new(Blocks::count(n, s)?, OrthoMap::Cayley)?;
    let blocks: Vec<Tensor<f64>> = (0..2)
        .map(|_| {
            let qs: Vec<f64> = (0..s)
                .flat_map(|_| haar_special_orthogonal::<f64, _>(s, &mut rng).into_vec())
                .collect();
            Tensor::from_vec(&[s, s, s], qs)
        })
        .collect::<gslab::Result<_>>()?;
    let gs_q = chain_forward(gs.layout(), &blocks, &Tensor::eye(n), faer::Par::Seq).transpose();
    let certificate = cayley_certificate(gs, &blocks, &gs_q)?;
    let dense_q = haar_special_orthogonal::<f64, _>(n, &mut rng);
    let mut dct = Tensor::from_fn(&[n, n], |idx| {
        let (k, j) = ((idx / n) as f64, (idx % n) as f64);
        let nf = n as f64;
        let s = if k == 0.0 {
            (1.0 / nf).sqrt()
        } else {
            (2.0 / nf).sqrt()
        };
        s * (std::f64::consts::PI * (2.0 * j + 1.0) * k / (2.0 * nf)).cos()
    });
    let det = dct.to_mat().determinant();
    let flipped = det < 0.0;
    if flipped {
        dct.data_mut()[(n - 1) * n..]
            .iter_mut()
            .for_each(|v| *v = -*v);
    }
    Ok(vec![
        Target {
            name: "gs",
            about: format!("random OrthoGs member, Haar SO({s}) blocks (reachable by gs_m2)"),
            q: gs_q,
            certificate: Some(certificate),
        },
        Target {
            name: "haar",
            about: format!("Haar random SO({n}) (QR of a Gaussian, sign-fixed)"),
            q: dense_q,
            certificate: None,
        },
        Target {
            name: "dct",
            about: if flipped {
                "orthonormal DCT-II, last row negated (det was -1)".into()
            } else {
                "orthonormal DCT-II (det +1)".into()
            },
            q: dct,
            certificate: None,
        },
    ])
}

/// One CSV row.
#[derive(Clone, Debug, Serialize)]
struct Row {
    method: &'static str,
    map: &'static str,
    target: &'static str,
    params: usize,
    step: usize,
    seconds: f64,
    loss: f64,
    ortho_err: f64,
}

/// Summary of one fit.
#[derive(Clone, Debug, Serialize)]
struct FitSummary {
    method: &'static str,
    map: &'static str,
    target: &'static str,
    free_params: usize,
    paper_params: usize,
    initial_loss: f64,
    final_loss: f64,
    max_ortho_err: f64,
    /// `max |θ|` of the trained free parameters (large generators cost orthogonality).
    max_abs_param: f64,
    seconds: f64,
}

/// `‖Q − Q*‖_F²/n` on the tape from the layer's parameter leaves, as `n · mse(I·Qᵀ, Q*ᵀ)`;
/// also returns the forward value `Qᵀ`.
fn fit_loss<'t>(
    model: &OrthoChain<f64>,
    tape: &'t Tape<f64>,
    leaves: &[Var<'t, f64>],
    eye: &Tensor<f64>,
    target_t: &Tensor<f64>,
) -> (Var<'t, f64>, Rc<Tensor<f64>>) {
    let n = eye.shape()[0] as f64;
    let qt = model.forward_with(tape.constant(eye.clone()), leaves);
    let value = qt.value();
    (qt.mse(tape.constant(target_t.clone())).mul_scalar(n), value)
}

/// Trains one layer on one target; logs rows at steps `0, log_every, …` and `steps`.
fn fit(
    cfg: &Config,
    method: Method,
    map: OrthoMap,
    target: &Target,
    bar: &indicatif::ProgressBar,
) -> Result<(Vec<Row>, FitSummary)> {
    let (mut model, _) = method.build(cfg.n, map)?;
    let eye = Tensor::eye(cfg.n);
    let target_t = target.q.transpose();
    // η = cfg.lr with a cosine decay to η/10 after a 5 % warmup.
    let sched = Schedule::cosine(0.1, cfg.steps, cfg.steps / 20);
    let mut opt = Adam::<f64>::new(cfg.lr);
    let params = model.free_param_count();
    let (mut rows, mut seconds, mut max_err) = (Vec::new(), 0.0f64, 0.0f64);
    for step in 0..=cfg.steps {
        let t0 = Instant::now();
        let mut qt = None;
        let (loss, grads) = loss_and_grads(&model, step, &mut |_, m, tape, leaves| {
            let (l, v) = fit_loss(m, tape, leaves, &eye, &target_t);
            qt = Some(v);
            l
        })?;
        // `seconds` of a row: all earlier steps plus this step's loss evaluation.
        let at_loss = seconds + t0.elapsed().as_secs_f64();
        if step < cfg.steps {
            opt.set_lr_factor(sched.factor_at(step));
            opt.step(&mut model.params_mut(), &grads);
        }
        seconds += t0.elapsed().as_secs_f64();
        if step % cfg.log_every == 0 || step == cfg.steps {
            let q = qt.expect("the loss closure ran").transpose();
            let ortho_err = orthogonality_error(&q);
            max_err = max_err.max(ortho_err);
            rows.push(Row {
                method: method.name(),
                map: map.name(),
                target: target.name,
                params,
                step,
                seconds: at_loss,
                loss,
                ortho_err,
            });
        }
        bar.inc(1);
    }
    let summary = FitSummary {
        method: method.name(),
        map: map.name(),
        target: target.name,
        free_params: params,
        paper_params: model.paper_param_count(),
        initial_loss: rows[0].loss,
        final_loss: rows[rows.len() - 1].loss,
        max_ortho_err: max_err,
        max_abs_param: model
            .params()
            .iter()
            .map(|p| p.max_abs())
            .fold(0.0, f64::max),
        seconds,
    };
    Ok((rows, summary))
}

/// Runs the experiment and writes every output into `--out`.
///
/// # Errors
/// Invalid arguments (checked before anything is written), a non-finite loss
/// ([`gslab::Error::NonFiniteLoss`] naming the step), or a file that cannot be written.
pub fn run(args: Args) -> Result<()> {
    let mut cfg = Config::new(&args)?;
    let run = args.common.setup("orthofit")?;
    cfg.threads = run.threads;
    run.install(|| experiment(&run, &cfg))
}

/// Every (method, map, target) fit, then the outputs.
fn experiment(run: &Run, cfg: &Config) -> Result<()> {
    let targets = targets(cfg.n, cfg.seed)?;
    let fits = METHODS.len() * MAPS.len() * targets.len();
    let bar = run.progress((fits * (cfg.steps + 1)) as u64, "orthofit");
    let (mut rows, mut sums) = (Vec::new(), Vec::new());
    for target in &targets {
        for method in METHODS {
            for map in MAPS {
                bar.set_message(format!("{} {} {}", target.name, method.name(), map.name()));
                let (r, s) = fit(cfg, method, map, target, &bar)?;
                rows.extend(r);
                sums.push(s);
            }
        }
    }
    bar.finish_and_clear();
    run.write_csv("orthofit.csv", &rows)?;
    run.write_csv("final.csv", &sums)?;
    write_summary(run, cfg, &targets, &sums)?;
    draw_figures(run, cfg, &rows)?;
    print_results(cfg, &sums);
    for t in &targets {
        if let Some(c) = t.certificate {
            println!(
                "target {}: inverse-Cayley parameters of its blocks give loss {:.1e} in gs_m2 \
                 (max |theta| = {:.1})",
                t.name, c.loss, c.max_abs_param
            );
        }
    }
    println!("outputs written to {}", run.out.display());
    Ok(())
}

fn write_summary(run: &Run, cfg: &Config, targets: &[Target], sums: &[FitSummary]) -> Result<()> {
    let methods: Vec<serde_json::Value> = METHODS
        .iter()
        .map(|&m| {
            let (layer, about) = m.build(cfg.n, OrthoMap::Cayley)?;
            Ok(serde_json::json!({
                "method": m.name(),
                "layout": about,
                "free_params": layer.free_param_count(),
                "paper_params": layer.paper_param_count(),
            }))
        })
        .collect::<Result<_>>()?;
    let tgts: Vec<serde_json::Value> = targets
        .iter()
        .map(|t| {
            serde_json::json!({
                "target": t.name,
                "about": t.about,
                "det": t.q.to_mat().determinant(),
                "ortho_err": orthogonality_error(&t.q),
                "gs_m2_cayley_certificate": t.certificate,
            })
        })
        .collect();
    let max_err = sums.iter().map(|s| s.max_ortho_err).fold(0.0, f64::max);
    let summary = serde_json::json!({
        "experiment": "orthofit",
        "loss": "||Q - Q*||_F^2 / n",
        "ortho_err": "||Q^T Q - I||_max of the trained Q, computed in f64",
        "param_conventions": {
            "free_params": "sum_i k_i * b_i (b_i - 1) / 2 (strict upper triangle of each skew generator; stored and trained)",
            "paper_params": "sum_i k_i * b_i^2 (the paper's K = A - A^T with a full A)",
        },
        "config": cfg,
        "methods": methods,
        "targets": tgts,
        "fits": sums,
        "max_ortho_err": max_err,
        "ortho_bound_10_n_eps": cfg.ortho_bound,
        "ortho_ok": max_err <= cfg.ortho_bound,
    });
    run.write_json("summary.json", &summary)?;
    Ok(())
}

fn print_results(cfg: &Config, sums: &[FitSummary]) {
    let mut targets: Vec<&str> = Vec::new();
    for s in sums {
        if !targets.contains(&s.target) {
            targets.push(s.target);
        }
    }
    let mut table = Vec::new();
    for method in METHODS {
        for map in MAPS {
            let fits: Vec<&FitSummary> = sums
                .iter()
                .filter(|s| s.method == method.name() && s.map == map.name())
                .collect();
            let Some(first) = fits.first() else { continue };
            let mut row = vec![
                method.name().to_string(),
                map.name().to_string(),
                first.free_params.to_string(),
            ];
            for t in &targets {
                let f = fits.iter().find(|s| s.target == *t);
                row.push(f.map_or(String::new(), |f| format!("{:.3e}", f.final_loss)));
            }
            let err = fits.iter().map(|s| s.max_ortho_err).fold(0.0, f64::max);
            let secs: f64 = fits.iter().map(|s| s.seconds).sum();
            row.push(format!("{err:.1e}"));
            row.push(format!("{secs:.2}"));
            table.push(row);
        }
    }
    println!(
        "orthofit: n = {}, {} Adam steps (f64); final loss ||Q - Q*||_F^2 / n per target \
         (all start at Q = I, loss ~2)",
        cfg.n, cfg.steps
    );
    let mut header = vec!["method", "map", "params"];
    header.extend(targets.iter().copied());
    header.extend(["max ortho err", "seconds"]);
    print_table(&header, &table);
    let max_err = sums.iter().map(|s| s.max_ortho_err).fold(0.0, f64::max);
    println!(
        "max ||Q^T Q - I||_max over all fits and logged steps: {max_err:.2e} (bound 10*n*eps = {:.2e})",
        cfg.ortho_bound
    );
}

// ---------------------------------------------------------------------------------------------
// Figures. Every fit starts at Q = I, so every loss curve starts in the same corner: the panel
// grids share one legend column beside the panels (`plot::PanelGrid`) instead of a legend inside
// each chart.

/// Pixel size of one panel of the loss and orthogonality figures.
const PANEL: (u32, u32) = (470, 360);

/// The three figures from the logged rows.
fn draw_figures(run: &Run, cfg: &Config, rows: &[Row]) -> Result<()> {
    let target_names: Vec<&str> = {
        let mut t: Vec<&str> = Vec::new();
        for r in rows {
            if !t.contains(&r.target) {
                t.push(r.target);
            }
        }
        t
    };
    let legend: Vec<String> = METHODS
        .iter()
        .map(|&m| {
            let (layer, _) = m
                .build(cfg.n, OrthoMap::Cayley)
                .expect("built before the fits");
            format!("{} ({})", m.name(), layer.free_param_count())
        })
        .collect();
    let panels = |x: fn(&Row) -> f64, y: fn(&Row) -> f64| -> Vec<Panel> {
        let mut out = Vec::new();
        for map in MAPS {
            for &t in &target_names {
                let series = METHODS
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        let pts = rows
                            .iter()
                            .filter(|r| {
                                r.method == m.name() && r.map == map.name() && r.target == t
                            })
                            .map(|r| (x(r), y(r)))
                            .collect();
                        (i, pts)
                    })
                    .collect();
                out.push(Panel {
                    title: format!("target {t}, {} map", map.name()),
                    lines: series,
                });
            }
        }
        out
    };
    let fig = |title: String, x_label: &str, y_label: &str, x_scale, y_scale, panels| PanelGrid {
        title,
        x_label: x_label.into(),
        y_label: y_label.into(),
        x_scale,
        y_scale,
        ncols: target_names.len(),
        panels,
        legend: LegendColumn {
            heading: "method (params)".into(),
            entries: legend.clone(),
            reference: None,
        },
        hline: None,
    };
    let save = |stem: &str, grid: &PanelGrid| plot::save_panels(&run.path(stem), grid, PANEL);
    let n = cfg.n;
    save(
        "loss_steps",
        &fig(
            format!("Fitting Q* (n = {n}): loss vs Adam steps; legend: method (free params)"),
            "step",
            "||Q - Q*||_F^2 / n",
            Scale::Linear,
            Scale::Log,
            panels(|r| r.step as f64, |r| r.loss),
        ),
    )?;
    save(
        "loss_seconds",
        &fig(
            format!("Fitting Q* (n = {n}): loss vs wall time"),
            "wall time [s] (log)",
            "||Q - Q*||_F^2 / n",
            Scale::Log,
            Scale::Log,
            panels(|r| r.seconds, |r| r.loss),
        ),
    )?;
    // In units of eps: plotters drops log-axis ticks below f64::EPSILON (`LogCoord::is_inf`).
    let mut ortho = fig(
        format!(
            "Orthogonality along training (n = {n}, f64, eps = 2.2e-16); step 0 is exactly 0 (Q = I), not drawn"
        ),
        "step",
        "||Q^T Q - I||_max / eps",
        Scale::Linear,
        Scale::Log,
        panels(|r| r.step as f64, |r| r.ortho_err / f64::EPSILON),
    );
    ortho.hline = Some(cfg.ortho_bound / f64::EPSILON);
    ortho.legend.reference = Some("bound 10 n eps".into());
    save("ortho_err", &ortho)?;
    // Final losses as bars on a linear axis: the structured methods' plateaus (0.4 to 1.4)
    // are indistinguishable on the log loss-curve axes, which also span the dense fits' 1e-6.
    let series = target_names
        .iter()
        .flat_map(|&t| MAPS.iter().map(move |&map| (t, map)))
        .map(|(t, map)| {
            let vals = METHODS
                .iter()
                .map(|m| {
                    rows.iter()
                        .rfind(|r| r.method == m.name() && r.map == map.name() && r.target == t)
                        .map_or(f64::NAN, |r| r.loss)
                })
                .collect();
            (format!("{t}/{}", map.name()), vals)
        })
        .collect();
    let bars = BarPlot {
        // Short series names: the bar legend is one row that does not wrap.
        title: format!(
            "Final loss after {} steps (n = {n}); bars: target/map",
            cfg.steps
        ),
        value_label: "||Q - Q*||_F^2 / n (linear; tiny values: see loss_steps)".into(),
        categories: legend.clone(),
        series,
        scale: Scale::Linear,
    };
    run.plot("final_loss", &bars.into())?;
    let captions = [
        (
            "loss_steps",
            "Loss ||Q - Q*||_F^2/n against Adam steps (log y), one panel per target and block map; every fit starts at Q = I.",
        ),
        (
            "loss_seconds",
            "The same losses against training wall time (log-log; sequential fits, one process).",
        ),
        (
            "ortho_err",
            "||Q^T Q - I||_max in units of eps(f64) along training, against the 10 n eps bound (dashed).",
        ),
        (
            "final_loss",
            "Final loss per method (free parameter count in brackets), target and map, on a linear axis.",
        ),
    ];
    for (stem, caption) in captions {
        run.register_figure(stem, caption)?;
    }
    run.finish()?;
    Ok(())
}
