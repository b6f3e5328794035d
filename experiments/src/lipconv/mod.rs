//! `lipconv`: certified-robust 1-Lipschitz LipConvnets on real MNIST digits — the paper's
//! Table 3 (SOC against GS-SOC with groups (4, −), (4, 1), (4, 2), (4, 4)) and Table 4
//! (MaxMin / MaxMinPermuted × plain / paired shuffles) in miniature (digest §5, §6.3–6.4).
//!
//! **Data.** The 10,000 digits shipped in `data/mnist-10k/` ([`gslab::nn::data::mnist`]): the
//! first 8,000 train, the last 2,000 test, pixels in `[0, 1]` zero-padded to 32×32 (an isometry,
//! so a radius in the padded space is the same radius on the digits), no normalisation and no
//! augmentation.
//!
//! **Model.** [`LipConvnet`] with `--depth` convolutions (default 5: one stride-2 convolution
//! per stage) and `--init-channels` channels in stage 1 (default 4), 10 classes; every variant
//! has the same layout and differs only in its convolution, activation and shuffles.
//!
//! **Recipe** (the same for every variant; defaults chosen on short runs, see
//! `papers/group-and-shuffle.md`): `--epochs` 8 (2 with `--quick`), Adam (learning rate 0.01; `--optimizer sgd` is the official
//! code's SGD with momentum 0.9 and weight decay 5·10⁻⁴, learning rate 0.1), batch 64, the
//! official step schedule (×0.1 at 50 % and 75 % of the steps), and the offset cross-entropy
//! `CE(s·(z − o·e_y))` with `s = 4` (`--loss-scale`) and `o = √2·1.58` (`--loss-offset`), the
//! margin that certifies radius 1.58 at `L = 1` (`o = 0, s = 1` is the official plain
//! cross-entropy). Kernels are normalised as the official SOC code does
//! (`--scaling official`; the certificate follows the kernel either way). Per-epoch data order
//! from a generator seeded by `(seed, epoch)`: every variant sees the same batches.
//!
//! **Certification** (as `evaluate_certificates` of the SOC code): a test point is certified at
//! radius `ε` when it is classified correctly and `(z_top1 − z_top2)/(√2·L) > ε`, with `L` the
//! evaluated network's certified Lipschitz bound ([`LipConvnetEval::lipschitz_bound`](gslab::nn::lipconvnet::LipConvnetEval::lipschitz_bound), which
//! carries the Taylor truncation bound of every layer); inputs are not normalised, so no other
//! factor enters.
//!
//! **Attack** ([`robust`]): L2 PGD on the margin `max_{j≠y} z_j − z_y` of the evaluated network
//! (gradients through [`LipConvnetEval::forward`](gslab::nn::lipconvnet::LipConvnetEval::forward)) at `ε = 1.58` inside the `[0, 1]` box: an upper
//! bound of the robust accuracy. The run fails (after writing its outputs) if a certified point
//! is flipped or a measured `‖f(x) − f(x')‖/‖x − x'‖` exceeds `L`: either is a bug.
//!
//! **Reliability** ([`train`]): every training run writes a checkpoint
//! (`checkpoints/VARIANT_sSEED.safetensors`: parameters, optimizer state, spectral state, epoch
//! and logs, atomically) after every epoch; `--resume` continues an interrupted run to bitwise
//! the same numbers; `--stop-after N` interrupts every run after `N` epochs. A non-finite loss
//! stops the run with an error naming the variant, the epoch and the step.
//!
//! Outputs in `--out` (default `results/lipconv/`): `results.csv` (one row per variant and seed),
//! `params_full.csv` (parameter tallies of the built full-size LipConvnet-15 variants),
//! `epochs.csv` (training log), `cert_curve.csv` (certified accuracy against `ε`),
//! `points.csv` (per test point: label, prediction, margin, certified radius, the PGD result and
//! the measured ratio), `summary.json` (configuration, targets, timings, the paper's numbers)
//! and the figures `cert_curve`, `acc_vs_params`, `ablation` (PNG and SVG, `figures.json`).

mod output;
pub mod robust;
pub mod train;

use crate::{CommonArgs, Error, Result, Run};
use clap::Parser;
use gslab::autodiff::ops::maxmin::MaxMinOrder;
use gslab::nn::data::mnist::{Mnist, TRAIN_COUNT, load_mnist, mnist_dir};
use gslab::nn::lipconvnet::{Activation, ConvKind, LipConvnet, LipConvnetConfig};
use gslab::orthogonal::conv::{BoundScaling, SocSettings};
use rand::SeedableRng;
use serde::Serialize;
use std::time::Instant;

/// Train SOC and GS-SOC LipConvnets on MNIST and certify them (Tables 3 and 4 in miniature).
#[derive(Parser, Debug)]
#[command(
    name = "lipconv",
    version,
    about = "Certified-robust 1-Lipschitz LipConvnets (SOC vs GS-SOC) on real MNIST digits: Tables 3 and 4 in miniature"
)]
pub struct Args {
    /// `--seed`, `--threads`, `--out`, `--quick`.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Training epochs of every run (default 8; --quick: 2).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Convolutions of the network, a multiple of 5 (default 5).
    #[arg(long)]
    pub depth: Option<usize>,
    /// Channels of stage 1 (default 4; with 4 groups and paired shuffles at least 4).
    #[arg(long)]
    pub init_channels: Option<usize>,
    /// Mini-batch size (default 64).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Optimizer: `adam` (default) or `sgd` (the official recipe: momentum 0.9, weight decay
    /// 5e-4).
    #[arg(long, value_parser = parse_optimizer)]
    pub optimizer: Option<OptimizerKind>,
    /// Learning rate before the step schedule (default: 0.1 for SGD, the official code's; 0.01
    /// for Adam).
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Margin offset `o` of the loss `CE(s·(z − o·e_y))` (default √2·1.58 = 2.234).
    #[arg(long, allow_negative_numbers = true)]
    pub loss_offset: Option<f64>,
    /// Logit scale `s` of the loss `CE(s·(z − o·e_y))` (default 4).
    #[arg(long, allow_negative_numbers = true)]
    pub loss_scale: Option<f64>,
    /// Kernel normalisation: `official` (default: the official SOC code's, without the `k` factor
    /// of the Fantastic-Four bound) or `provable` (with it, `‖L‖ ≤ 0.7`).
    #[arg(long, value_parser = parse_scaling)]
    pub scaling: Option<BoundScaling>,
    /// Number of seeds per variant: `--seed`, `--seed + 1`, ... (default 1).
    #[arg(long, default_value_t = 1)]
    pub seeds: u64,
    /// Table 3 rows to train: `soc` and GS-SOC groups `4` (= (4, −)), `4/1`, `4/2`, `4/4`
    /// (comma-separated; default all five).
    #[arg(long, value_delimiter = ',')]
    pub table3: Option<Vec<String>>,
    /// GS-SOC groups whose Table 4 cells (MaxMin / MaxMinPermuted × plain / paired) are trained
    /// (comma-separated like `--table3`, `none` for no ablation; default `4`: the cells of
    /// (4, −); `4,4/4` adds those of (4, 4)).
    #[arg(long, value_delimiter = ',')]
    pub ablation: Option<Vec<String>>,
    /// Training images (the first ones of the 8,000; default 8000, --quick: 1024).
    #[arg(long)]
    pub train_count: Option<usize>,
    /// Test images (the first ones of the last 2,000; default 2000, --quick: 200).
    #[arg(long)]
    pub test_count: Option<usize>,
    /// PGD steps of the attack at ε = 1.58 (default 10; --quick: 5).
    #[arg(long)]
    pub pgd_steps: Option<usize>,
    /// Continue the runs from their checkpoints in `--out` (same configuration required).
    #[arg(long)]
    pub resume: bool,
    /// Stop every run after this many epochs, as if interrupted (continue with `--resume`).
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// Test hook: make the loss of this (0-based, global) training step non-finite.
    #[arg(long, hide = true)]
    pub inject_nan_step: Option<usize>,
}

/// Default of `--epochs`.
pub const DEFAULT_EPOCHS: usize = 8;
/// Default of `--loss-scale`.
pub const DEFAULT_LOSS_SCALE: f64 = 4.0;
/// Default of `--init-channels`.
pub const DEFAULT_INIT_CHANNELS: usize = 4;
/// The radii at which certified accuracy is reported.
pub const EPS_REPORTED: [f64; 3] = [0.5, 1.0, 1.58];
/// The radius of the PGD attack (the standard MNIST L2 radius).
pub const PGD_EPS: f64 = 1.58;

/// The convolution of a variant, as the paper writes its groups: SOC, `(g₁, −)` or `(g₁, g₂)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Groups {
    /// Plain SOC.
    Soc,
    /// GS-SOC `(g1, −)` or `(g1, g2)`.
    Gs(usize, Option<usize>),
}

impl Groups {
    /// The paper's notation: `-`, `(4,-)`, `(4,1)`.
    pub fn label(self) -> String {
        match self {
            Self::Soc => "-".into(),
            Self::Gs(g1, None) => format!("({g1},-)"),
            Self::Gs(g1, Some(g2)) => format!("({g1},{g2})"),
        }
    }

    /// Part of a variant name: `soc`, `gs4`, `gs4x1`.
    fn slug(self) -> String {
        match self {
            Self::Soc => "soc".into(),
            Self::Gs(g1, None) => format!("gs{g1}"),
            Self::Gs(g1, Some(g2)) => format!("gs{g1}x{g2}"),
        }
    }

    fn conv(self) -> ConvKind {
        match self {
            Self::Soc => ConvKind::Soc,
            Self::Gs(g1, g2) => ConvKind::GsSoc { g1, g2 },
        }
    }
}

fn parse_groups(s: &str) -> std::result::Result<Groups, String> {
    let bad = || format!("'{s}' is not soc, G1 or G1/G2 with positive integers (e.g. 4, 4/2)");
    if s == "soc" {
        return Ok(Groups::Soc);
    }
    let num = |t: &str| t.parse::<usize>().ok().filter(|&g| g > 0).ok_or_else(bad);
    match s.split_once('/') {
        None => Ok(Groups::Gs(num(s)?, None)),
        Some((a, b)) => Ok(Groups::Gs(num(a)?, Some(num(b)?))),
    }
}

/// A `--table3` / `--ablation` list: `none` alone is the empty list.
fn groups_list(flag: &str, list: &[String]) -> Result<Vec<Groups>> {
    if list.len() == 1 && list[0] == "none" {
        return Ok(Vec::new());
    }
    list.iter()
        .map(|s| parse_groups(s).map_err(|m| Error::Usage(format!("{flag}: {m}"))))
        .collect()
}

/// The optimizer of every run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum OptimizerKind {
    /// SGD with momentum 0.9 and weight decay 5·10⁻⁴ (the official recipe).
    Sgd,
    /// Adam (β = (0.9, 0.999), no weight decay).
    Adam,
}

fn parse_optimizer(s: &str) -> std::result::Result<OptimizerKind, String> {
    match s {
        "sgd" => Ok(OptimizerKind::Sgd),
        "adam" => Ok(OptimizerKind::Adam),
        _ => Err(format!("'{s}' is not sgd or adam")),
    }
}

fn parse_scaling(s: &str) -> std::result::Result<BoundScaling, String> {
    match s {
        "provable" => Ok(BoundScaling::Provable),
        "official" => Ok(BoundScaling::OfficialSoc),
        _ => Err(format!("'{s}' is not provable or official")),
    }
}

fn scaling_name(s: BoundScaling) -> &'static str {
    match s {
        BoundScaling::Provable => "provable",
        BoundScaling::OfficialSoc => "official",
    }
}

/// The activation of a variant (both in the official code's order, min first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// MaxMin on the channel halves (Def. F.1).
    MaxMin,
    /// MaxMin on neighbouring channels (Def. F.2).
    MaxMinPermuted,
}

impl Act {
    fn name(self) -> &'static str {
        match self {
            Self::MaxMin => "MaxMin",
            Self::MaxMinPermuted => "MaxMinPermuted",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Self::MaxMin => "mm",
            Self::MaxMinPermuted => "mmp",
        }
    }

    fn activation(self) -> Activation {
        match self {
            Self::MaxMin => Activation::MaxMin(MaxMinOrder::MinFirst),
            Self::MaxMinPermuted => Activation::MaxMinPermuted(MaxMinOrder::MinFirst),
        }
    }
}

/// One trained configuration: a row of Table 3 or a cell of Table 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    /// The convolution.
    pub groups: Groups,
    /// The activation.
    pub act: Act,
    /// Paired shuffles (GS-SOC only).
    pub paired: bool,
}

impl Variant {
    /// SOC (MaxMin, no shuffles) or a GS-SOC Table 3 row (MaxMinPermuted, paired).
    fn table3(groups: Groups) -> Self {
        match groups {
            Groups::Soc => Self {
                groups,
                act: Act::MaxMin,
                paired: false,
            },
            Groups::Gs(..) => Self {
                groups,
                act: Act::MaxMinPermuted,
                paired: true,
            },
        }
    }

    /// `soc`, or `gs4x1_mmp_paired` (groups, activation, permutation).
    pub fn name(&self) -> String {
        match self.groups {
            Groups::Soc => "soc".into(),
            g => format!(
                "{}_{}_{}",
                g.slug(),
                self.act.slug(),
                if self.paired { "paired" } else { "plain" }
            ),
        }
    }

    /// The network of this variant under `cfg`.
    fn net_config(&self, cfg: &Config) -> LipConvnetConfig {
        LipConvnetConfig {
            depth: cfg.depth,
            init_channels: cfg.init_channels,
            in_channels: 1,
            input_size: 32,
            classes: 10,
            conv: self.groups.conv(),
            activation: self.act.activation(),
            paired: self.paired,
            settings: cfg.settings(),
        }
    }
}

/// The resolved configuration of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    epochs: usize,
    depth: usize,
    init_channels: usize,
    batch: usize,
    optimizer: OptimizerKind,
    lr: f64,
    momentum: f64,
    weight_decay: f64,
    /// Fractions of all steps at which the learning rate is multiplied by 0.1.
    milestones: [f64; 2],
    loss_offset: f64,
    loss_scale: f64,
    #[serde(serialize_with = "ser_scaling")]
    scaling: BoundScaling,
    train_terms: usize,
    eval_terms: usize,
    seeds: Vec<u64>,
    train_count: usize,
    test_count: usize,
    pgd_steps: usize,
    pgd_eps: f64,
    threads: usize,
    dtype: &'static str,
    #[serde(skip)]
    variants: Vec<Variant>,
    #[serde(skip)]
    table3: Vec<Groups>,
    #[serde(skip)]
    ablation: Vec<Groups>,
    #[serde(skip)]
    stop_after: Option<usize>,
    #[serde(skip)]
    resume: bool,
    #[serde(skip)]
    inject_nan_step: Option<usize>,
}

fn ser_scaling<S: serde::Serializer>(
    s: &BoundScaling,
    ser: S,
) -> std::result::Result<S::Ok, S::Error> {
    ser.serialize_str(scaling_name(*s))
}

impl Config {
    /// Validates the arguments (before anything is written).
    fn new(args: &Args) -> Result<Self> {
        let quick = args.common.quick;
        let usage = |m: String| Err(Error::Usage(m));
        let epochs = args
            .epochs
            .unwrap_or(if quick { 2 } else { DEFAULT_EPOCHS });
        if epochs == 0 {
            return usage("--epochs must be at least 1".into());
        }
        let depth = args.depth.unwrap_or(5);
        if depth == 0 || !depth.is_multiple_of(5) {
            return usage(format!(
                "--depth must be a positive multiple of 5, got {depth}"
            ));
        }
        let init_channels = args.init_channels.unwrap_or(DEFAULT_INIT_CHANNELS);
        if init_channels == 0 || !init_channels.is_multiple_of(2) {
            return usage(format!(
                "--init-channels must be even and positive, got {init_channels}"
            ));
        }
        let batch = args.batch.unwrap_or(64);
        if batch == 0 {
            return usage("--batch must be at least 1".into());
        }
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(v)
            } else {
                Err(Error::Usage(format!(
                    "{name} must be a positive finite number, got {v}"
                )))
            }
        };
        let optimizer = args.optimizer.unwrap_or(OptimizerKind::Adam);
        let default_lr = match optimizer {
            OptimizerKind::Sgd => 0.1,
            OptimizerKind::Adam => 0.01,
        };
        let lr = positive("--lr", args.lr.unwrap_or(default_lr))?;
        let loss_scale = positive(
            "--loss-scale",
            args.loss_scale.unwrap_or(DEFAULT_LOSS_SCALE),
        )?;
        let loss_offset = args
            .loss_offset
            .unwrap_or(std::f64::consts::SQRT_2 * PGD_EPS);
        if !(loss_offset.is_finite() && loss_offset >= 0.0) {
            return usage(format!(
                "--loss-offset must be finite and non-negative, got {loss_offset}"
            ));
        }
        if args.seeds == 0 {
            return usage("--seeds must be at least 1".into());
        }
        let train_count = args
            .train_count
            .unwrap_or(if quick { 1024 } else { TRAIN_COUNT });
        if train_count == 0 || train_count > TRAIN_COUNT {
            return usage(format!(
                "--train-count must be in 1..={TRAIN_COUNT}, got {train_count}"
            ));
        }
        let test_total = 10_000 - TRAIN_COUNT;
        let test_count = args
            .test_count
            .unwrap_or(if quick { 200 } else { test_total });
        if test_count == 0 || test_count > test_total {
            return usage(format!(
                "--test-count must be in 1..={test_total}, got {test_count}"
            ));
        }
        let pgd_steps = args.pgd_steps.unwrap_or(if quick { 5 } else { 10 });
        if pgd_steps == 0 {
            return usage("--pgd-steps must be at least 1".into());
        }
        if args.stop_after == Some(0) {
            return usage("--stop-after must be at least 1".into());
        }
        let table3 = match &args.table3 {
            Some(list) => groups_list("--table3", list)?,
            None => vec![
                Groups::Soc,
                Groups::Gs(4, None),
                Groups::Gs(4, Some(1)),
                Groups::Gs(4, Some(2)),
                Groups::Gs(4, Some(4)),
            ],
        };
        let ablation = match &args.ablation {
            Some(list) => groups_list("--ablation", list)?,
            None => vec![Groups::Gs(4, None)],
        };
        if ablation.contains(&Groups::Soc) {
            return usage("--ablation takes GS-SOC groups (e.g. 4,4/4), not soc".into());
        }
        let mut variants: Vec<Variant> = Vec::new();
        let mut push = |v: Variant| {
            if !variants.contains(&v) {
                variants.push(v);
            }
        };
        for &g in &table3 {
            push(Variant::table3(g));
        }
        for &g in &ablation {
            for act in [Act::MaxMin, Act::MaxMinPermuted] {
                for paired in [false, true] {
                    push(Variant {
                        groups: g,
                        act,
                        paired,
                    });
                }
            }
        }
        if variants.is_empty() {
            return usage("nothing to train: --table3 and --ablation are both empty".into());
        }
        let settings = SocSettings::default();
        let cfg = Self {
            epochs,
            depth,
            init_channels,
            batch,
            optimizer,
            lr,
            momentum: 0.9,
            weight_decay: 5e-4,
            milestones: [0.5, 0.75],
            loss_offset,
            loss_scale,
            scaling: args.scaling.unwrap_or(BoundScaling::OfficialSoc),
            train_terms: settings.train_terms,
            eval_terms: settings.eval_terms,
            seeds: (0..args.seeds).map(|i| args.common.seed + i).collect(),
            train_count,
            test_count,
            pgd_steps,
            pgd_eps: PGD_EPS,
            threads: 0,
            dtype: "f32",
            variants,
            table3,
            ablation,
            stop_after: args.stop_after,
            resume: args.resume,
            inject_nan_step: args.inject_nan_step,
        };
        // Every network must be buildable (groups dividing channels, paired shuffles): checked
        // here so that a bad --table3 / --ablation is a usage error before anything runs.
        for v in &cfg.variants {
            let mut rng = rand::rngs::StdRng::seed_from_u64(0);
            LipConvnet::<f32>::new(v.net_config(&cfg), &mut rng).map_err(|e| {
                Error::Usage(format!(
                    "variant {} (groups {}) cannot be built with --init-channels {} and --depth {}: {e}",
                    v.name(),
                    v.groups.label(),
                    cfg.init_channels,
                    cfg.depth
                ))
            })?;
        }
        Ok(cfg)
    }

    /// The SOC settings of every layer.
    fn settings(&self) -> SocSettings {
        SocSettings {
            scaling: self.scaling,
            ..SocSettings::default()
        }
    }
}

/// The training and test sets: padded to 32×32, the first `train_count` of the 8,000 training
/// records and the first `test_count` of the 2,000 test records.
fn load_data(cfg: &Config) -> Result<(Mnist<f32>, Mnist<f32>)> {
    let all = load_mnist::<f32>(mnist_dir())?.padded(32)?;
    let (train, test) = all.split(TRAIN_COUNT)?;
    let first = |n: usize| (0..n).collect::<Vec<_>>();
    Ok((
        train.subset(&first(cfg.train_count))?,
        test.subset(&first(cfg.test_count))?,
    ))
}

/// Runs the experiment and writes every output into `--out`.
///
/// # Errors
/// Invalid arguments (checked before anything is written); a non-finite loss
/// ([`gslab::Error::NonFiniteLoss`] naming the variant, epoch and step); a checkpoint that does
/// not match the configuration on `--resume`; a certified point flipped by the attack or a
/// measured ratio above the certified bound (after the outputs are written); a file that cannot
/// be read or written.
pub fn run(args: Args) -> Result<()> {
    let mut cfg = Config::new(&args)?;
    let run = args.common.setup("lipconv")?;
    cfg.threads = run.threads;
    run.install(|| experiment(&run, &cfg))
}

fn experiment(run: &Run, cfg: &Config) -> Result<()> {
    let started = Instant::now();
    let (train_set, test_set) = load_data(cfg)?;
    let mut runs = Vec::new();
    for &seed in &cfg.seeds {
        for v in &cfg.variants {
            runs.push(train::TrainRun::start(run, cfg, *v, seed)?);
        }
    }
    let stop = cfg.stop_after.map_or(cfg.epochs, |s| s.min(cfg.epochs));
    let steps_per_epoch = cfg.train_count.div_ceil(cfg.batch);
    let todo: usize = runs
        .iter()
        .map(|r| stop.saturating_sub(r.epochs_done()))
        .sum();
    let bar = run.progress((todo * steps_per_epoch) as u64, "lipconv");
    // Round-robin over the runs, one epoch each: load changes of the machine hit every variant
    // alike, which keeps the per-epoch times (and the speedups) comparable.
    for epoch in 0..stop {
        for r in runs.iter_mut() {
            if r.epochs_done() == epoch {
                bar.set_message(format!(
                    "{} s{} epoch {}",
                    r.variant.name(),
                    r.seed,
                    epoch + 1
                ));
                r.train_epoch(cfg, &train_set, &bar)?;
            }
        }
    }
    bar.finish_and_clear();
    let train_s = started.elapsed().as_secs_f64();
    if stop < cfg.epochs {
        println!(
            "lipconv: stopped after {stop} of {} epochs (--stop-after); checkpoints in {}; \
             continue with --resume",
            cfg.epochs,
            run.path("checkpoints").display()
        );
        return Ok(());
    }
    let t_eval = Instant::now();
    let bar = run.progress(runs.len() as u64, "certify + PGD");
    let mut evals = Vec::with_capacity(runs.len());
    for r in &runs {
        bar.set_message(format!("{} s{}", r.variant.name(), r.seed));
        evals.push(robust::evaluate(r, cfg, &test_set)?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let eval_s = t_eval.elapsed().as_secs_f64();
    let checks = output::write_all(run, cfg, &runs, &evals, (train_s, eval_s, started))?;
    println!("outputs written to {}", run.out.display());
    checks
}
