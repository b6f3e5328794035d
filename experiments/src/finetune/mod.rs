//! `finetune`: orthogonal fine-tuning on real data, a miniature of the paper's Table 1 (§7.1:
//! GSOFT adapts a pretrained network as well as LoRA, OFT and BOFT at about the same number of
//! trainable parameters, and more cheaply than BOFT), plus the ablation the paper never ran, over
//! the number m of GS factors.
//!
//! **Setup.** A base MLP `1024 → h → h → head` (ReLU, `h = 512`) is pretrained on the source task
//! (Adam, learning rate 1e-3 with cosine decay, batch 128, `--pretrain-epochs` epochs, seeded by
//! `--seed`; cached as `base_<task>.safetensors`) and frozen. Every hidden linear layer gets the
//! adapter (as the paper adapts every linear layer of RoBERTa); the head is trainable and, as in
//! the paper, not counted in "# Params". Two transfer tasks on the shipped MNIST digits
//! ([`tasks`]): new classes (0–4 → 5–9, fresh head) and domain shift (upright → rotated by
//! 90°, same head, forgetting measured on the upright digits). Images are zero-padded to 32 × 32
//! and flattened (n = 1024, which every block size divides).
//!
//! **Methods** ([`methods`]): head only (the floor), full fine-tuning, LoRA r ∈ {1, 2, 4, 8, 16},
//! OFT b ∈ {4, 8, 16, 32}, BOFT (b, m) ∈ {(8, 2), (4, 4), (16, 2)}, GSOFT b ∈ {4, 8, 16, 32},
//! Double GSOFT b ∈ {8, 16}, and the m-ablation: GS chains with m ∈ {1, 2, 3, 4} factors at
//! b ∈ {4, 8}, and m = 5 at b = 4 (m = 1 is OFT's block-diagonal class and m = 2 is GSOFT, whose
//! rows it reuses; Theorem 2's density threshold `1 + ⌈log_b r⌉` is marked: 5 at b = 4, and 4
//! (n = 1024) and 3 (n = 512) at b = 8). Orthogonal adapters use the exact
//! Cayley map with the official code's scale vector (`--map exp`, `--no-scale` change that).
//!
//! **Protocol.** Every run has the same step budget (`--steps` Adam steps of batch `--batch`,
//! linear warmup over 10 % then cosine decay). The learning rate of every (task, method,
//! configuration) is chosen from a 5-point grid ([`Spec::lr_grid`]) by accuracy on a validation
//! split (the last 20 % of the `--target-train` target examples; fitting uses the first 80 %) on
//! the first seed; `--seeds` seeds run at the chosen rate (the first seed's run is the grid run
//! itself). Reported accuracies are those after the last step (the paper reports the best
//! evaluation score seen during training). Time per step (`step_ms`) is measured before training,
//! each configuration alone on the run's thread pool, in interleaved rounds (the best round's
//! median, [`train::step_ms`]); the runs themselves train concurrently, one per worker thread.
//!
//! **Checks** after every run ([`checks`]): merged vs adapted predictions and logits on the
//! whole target test set, the neuron Gram matrix `W'W'ᵀ` against `diag(s)·W₀W₀ᵀ·diag(s)`, and the
//! orthogonality of every block. Training never forms a dense rotation or an `n × n` matrix
//! (`tests/finetune_alloc.rs` checks that no allocation reaches `n²` f32 during training steps).
//!
//! **Reliability** ([`train`]): per-run checkpoints every epoch, `--resume` to bitwise the same
//! numbers, and a non-finite loss stops with an error naming task, method, configuration, seed,
//! learning rate and step.
//!
//! Outputs in `--out` (default `results/finetune/`): `results.csv`
//! (`task,method,config,params_free,params_paper,seed,lr,target_acc,source_acc,step_ms`, one row
//! per task, method, configuration and seed at the chosen learning rate), `grid.csv` (every grid
//! point, with its validation accuracy), `table.csv` (mean, min and max over seeds per
//! configuration), `mablation.csv`, `checks.csv`, `base.csv` (the pretrained models' accuracies),
//! `summary.json` (settings, wall time, check aggregates, the step-time ratios), the figures
//! `acc_vs_params`, `acc_vs_time`, `mablation`, `forgetting` (PNG and SVG, listed in
//! `figures.json`), and `checkpoints/`.

pub mod checks;
mod figures;
pub mod methods;
pub mod model;
mod output;
pub mod tasks;
pub mod train;

use crate::{CommonArgs, Error, Result, Run};
use clap::Parser;
use gslab::orthogonal::OrthoMap;
use methods::{Spec, default_specs, parse_method, quick_specs};
use rayon::prelude::*;
use serde::Serialize;
use std::time::Instant;
use tasks::{Sizes, Task, TaskData};
use train::{Base, Outcome, RunKey, RunResult, Setup};

/// Orthogonal fine-tuning of a pretrained MLP on MNIST transfer tasks: GSOFT vs OFT, BOFT, LoRA
/// and full fine-tuning, and the ablation over the number of GS factors.
#[derive(Parser, Debug)]
#[command(
    name = "finetune",
    version,
    about = "Table 1 in miniature: GSOFT vs OFT, BOFT, LoRA and full fine-tuning of a pretrained MLP on two MNIST transfer tasks, and the ablation over the number of GS factors"
)]
pub struct Args {
    /// `--seed`, `--threads`, `--out`, `--quick`.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Fine-tuning seeds (default 3; --quick: 2).
    #[arg(long)]
    pub seeds: Option<usize>,
    /// Adam steps per fine-tuning run (default 300; --quick: 30).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Steps per epoch, the checkpoint interval; must divide --steps (default 50; --quick: 10).
    #[arg(long)]
    pub epoch_steps: Option<usize>,
    /// Fine-tuning batch size (default 32).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Target training examples, 80 % for fitting and 20 % for the learning-rate choice
    /// (default 1000; --quick: 200).
    #[arg(long)]
    pub target_train: Option<usize>,
    /// Width of the hidden layers (default 512; --quick: 128).
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Pretraining epochs over the source data (default 3; --quick: 1).
    #[arg(long)]
    pub pretrain_epochs: Option<usize>,
    /// Block map of the orthogonal adapters: cayley or exp.
    #[arg(long, default_value = "cayley", value_parser = parse_map)]
    pub map: OrthoMap,
    /// Orthogonal adapters without the scale vector (then the neuron Gram matrix is kept).
    #[arg(long)]
    pub no_scale: bool,
    /// Only these methods (comma-separated: head, full, lora, oft, boft, gsoft, double_gsoft,
    /// gs_chain).
    #[arg(long, value_delimiter = ',', value_parser = parse_method)]
    pub methods: Option<Vec<String>>,
    /// Only these tasks (comma-separated: new_classes, rotation).
    #[arg(long, value_delimiter = ',', value_parser = Task::parse)]
    pub tasks: Option<Vec<Task>>,
    /// Multiplies every learning-rate grid (default 1).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub lr_scale: f64,
    /// Continue from the checkpoints in `--out` (finished runs are read back, unfinished ones
    /// continue after their last epoch).
    #[arg(long)]
    pub resume: bool,
    /// Test hook: stop every run after this many epochs, leaving its checkpoint.
    #[arg(long, hide = true)]
    pub interrupt_after_epochs: Option<usize>,
    /// Test hook: put a NaN pixel into the batch of this step of every fine-tuning run.
    #[arg(long, hide = true)]
    pub nan_at_step: Option<usize>,
}

fn parse_map(s: &str) -> std::result::Result<OrthoMap, String> {
    match s {
        "cayley" => Ok(OrthoMap::Cayley),
        "exp" => Ok(OrthoMap::Exp),
        _ => Err(format!("unknown map '{s}' (expected cayley or exp)")),
    }
}

/// The resolved settings of a run (written to `summary.json`).
#[derive(Clone, Debug, Serialize)]
struct Config {
    seed: u64,
    seeds: usize,
    steps: usize,
    epoch_steps: usize,
    batch: usize,
    hidden: usize,
    pretrain_epochs: usize,
    map: &'static str,
    scale: bool,
    lr_scale: f64,
    sizes: Sizes,
    tasks: Vec<&'static str>,
    threads: usize,
    #[serde(skip)]
    task_list: Vec<Task>,
    #[serde(skip)]
    specs: Vec<Spec>,
    /// Step timing: rounds, and timed steps per configuration and round.
    timing: (usize, usize),
}

impl Config {
    /// Validates the arguments before anything is written.
    fn new(args: &Args) -> Result<Self> {
        let quick = args.common.quick;
        let pick =
            |v: Option<usize>, full: usize, q: usize| v.unwrap_or(if quick { q } else { full });
        let seeds = pick(args.seeds, 3, 2);
        let steps = pick(args.steps, 300, 30);
        let epoch_steps = pick(args.epoch_steps, 50, 10);
        let batch = pick(args.batch, 32, 32);
        let target_train = pick(args.target_train, 1000, 200);
        let hidden = pick(args.hidden, 512, 128);
        let pretrain_epochs = pick(args.pretrain_epochs, 3, 1);
        for (flag, v) in [
            ("--seeds", seeds),
            ("--steps", steps),
            ("--epoch-steps", epoch_steps),
            ("--batch", batch),
            ("--hidden", hidden),
            ("--pretrain-epochs", pretrain_epochs),
        ] {
            if v == 0 {
                return Err(Error::Usage(format!("{flag} must be at least 1")));
            }
        }
        if !steps.is_multiple_of(epoch_steps) {
            return Err(Error::Usage(format!(
                "--epoch-steps {epoch_steps} must divide --steps {steps}"
            )));
        }
        if target_train < 5 {
            return Err(Error::Usage(format!(
                "--target-train must be at least 5 (4 to fit, 1 to validate), got {target_train}"
            )));
        }
        if !(args.lr_scale.is_finite() && args.lr_scale > 0.0) {
            return Err(Error::Usage(format!(
                "--lr-scale must be a positive finite number, got {}",
                args.lr_scale
            )));
        }
        if args.interrupt_after_epochs == Some(0) {
            return Err(Error::Usage(
                "--interrupt-after-epochs must be at least 1".into(),
            ));
        }
        let mut specs = if quick {
            quick_specs()
        } else {
            default_specs()
        };
        if let Some(m) = &args.methods {
            specs.retain(|s| m.iter().any(|name| name == s.method()));
        }
        // Every block size must divide the hidden width (the input width 1024 is a power of 2).
        for s in &specs {
            let layers = layer_shapes(hidden);
            s.count_params(&layers, gslab::count::Convention::Paper)
                .map_err(|e| {
                    Error::Usage(format!("--hidden {hidden} does not fit {}: {e}", s.label()))
                })?;
        }
        let task_list = args.tasks.clone().unwrap_or_else(|| Task::ALL.to_vec());
        Ok(Self {
            seed: args.common.seed,
            seeds,
            steps,
            epoch_steps,
            batch,
            hidden,
            pretrain_epochs,
            map: args.map.name(),
            scale: !args.no_scale,
            lr_scale: args.lr_scale,
            sizes: Sizes {
                source_train: if quick { 1500 } else { usize::MAX },
                target_train,
                test: if quick { 400 } else { usize::MAX },
            },
            tasks: task_list.iter().map(|t| t.name()).collect(),
            threads: 0,
            task_list,
            specs,
            timing: if quick { (2, 1) } else { (8, 3) },
        })
    }

    /// The fine-tuning seeds: `--seed`, `--seed + 1`, ….
    fn seed_list(&self) -> Vec<u64> {
        (0..self.seeds as u64).map(|i| self.seed + i).collect()
    }

    /// The learning-rate grid of `spec` (times `--lr-scale`).
    fn grid(&self, spec: Spec) -> Vec<f64> {
        spec.lr_grid().iter().map(|l| l * self.lr_scale).collect()
    }
}

/// The adapted layers of the MLP with hidden width `h`, in `gslab::count`'s terms.
pub fn layer_shapes(h: usize) -> [gslab::count::LinearShape; 2] {
    use gslab::count::LinearShape;
    [
        LinearShape::new("l1", tasks::FEATURES as u64, h as u64, true, 1),
        LinearShape::new("l2", h as u64, h as u64, true, 1),
    ]
}

/// One finished run with its key.
#[derive(Clone, Debug)]
struct Finished {
    key: RunKey,
    result: RunResult,
}

/// Runs the experiment and writes every output into `--out`.
///
/// # Errors
/// Invalid arguments (checked before anything is written), a non-finite loss naming the run and
/// step, a checkpoint that cannot be read or written, or an output file that cannot be written.
pub fn run(args: Args) -> Result<()> {
    let mut cfg = Config::new(&args)?;
    let run = args.common.setup("finetune")?;
    cfg.threads = run.threads;
    let checkpoints = run.path("checkpoints");
    std::fs::create_dir_all(&checkpoints).map_err(|e| Error::io(&checkpoints, e))?;
    let setup = Setup {
        steps: cfg.steps,
        epoch_steps: cfg.epoch_steps,
        batch: cfg.batch,
        hidden: cfg.hidden,
        map: args.map,
        scale: cfg.scale,
        pretrain_epochs: cfg.pretrain_epochs,
        checkpoints,
        resume: args.resume,
        interrupt_after: args.interrupt_after_epochs,
        nan_at_step: args.nan_at_step,
        fingerprint: format!(
            "steps={} epoch_steps={} batch={} hidden={} map={} scale={} pretrain_epochs={} sizes={:?}",
            cfg.steps,
            cfg.epoch_steps,
            cfg.batch,
            cfg.hidden,
            cfg.map,
            cfg.scale,
            cfg.pretrain_epochs,
            cfg.sizes
        ),
    };
    run.install(|| experiment(&run, &cfg, &setup))
}

/// Wall time of the phases, seconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
struct WallTime {
    data_and_pretraining: f64,
    step_timing: f64,
    lr_grid: f64,
    seeds: f64,
    outputs: f64,
    total: f64,
}

fn experiment(run: &Run, cfg: &Config, setup: &Setup) -> Result<()> {
    let t0 = Instant::now();
    let mut wall = WallTime::default();
    let datas: Vec<TaskData> = cfg
        .task_list
        .iter()
        .map(|&t| tasks::load(t, cfg.sizes))
        .collect::<Result<_>>()?;
    let bases: Vec<Base> = first_error(
        datas
            .par_iter()
            .map(|d| train::pretrain(d, setup, cfg.seed, &run.out))
            .collect(),
    )?;
    wall.data_and_pretraining = t0.elapsed().as_secs_f64();
    for (d, b) in datas.iter().zip(&bases) {
        println!(
            "{}: base model source accuracy {:.4}, target accuracy before fine-tuning {:.4}",
            d.task.name(),
            b.source_acc,
            b.target_acc
        );
    }

    // Time per step of every configuration, measured alone on the whole pool.
    let t1 = Instant::now();
    let timing_keys: Vec<(usize, RunKey)> = datas
        .iter()
        .enumerate()
        .flat_map(|(i, d)| {
            cfg.specs.iter().map(move |&spec| {
                (
                    i,
                    RunKey {
                        task: d.task,
                        spec,
                        seed: cfg.seed,
                        lr: cfg.grid(spec)[1],
                    },
                )
            })
        })
        .collect();
    let ms = train::step_ms(&timing_keys, &datas, &bases, setup, cfg.timing)?;
    let step_ms: Vec<((Task, Spec), f64)> = timing_keys
        .iter()
        .zip(ms)
        .map(|((_, k), v)| ((k.task, k.spec), v))
        .collect();
    wall.step_timing = t1.elapsed().as_secs_f64();

    // Phase 1: the learning-rate grid on the first seed.
    let t2 = Instant::now();
    let grid_keys: Vec<(usize, RunKey)> = datas
        .iter()
        .enumerate()
        .flat_map(|(i, d)| {
            cfg.specs.iter().flat_map(move |&spec| {
                cfg.grid(spec).into_iter().map(move |lr| {
                    (
                        i,
                        RunKey {
                            task: d.task,
                            spec,
                            seed: cfg.seed,
                            lr,
                        },
                    )
                })
            })
        })
        .collect();
    let n_runs = grid_keys.len() + datas.len() * cfg.specs.len() * (cfg.seeds - 1);
    let bar = run.progress(n_runs as u64, "finetune");
    let grid = train_all(&grid_keys, &datas, &bases, setup, &bar)?;
    wall.lr_grid = t2.elapsed().as_secs_f64();
    let Some(grid) = grid else {
        bar.finish_and_clear();
        println!(
            "stopped every run after {} epochs (--interrupt-after-epochs); continue with --resume",
            setup.interrupt_after.unwrap_or(0)
        );
        return Ok(());
    };
    let chosen = choose_lrs(cfg, &grid);

    // Phase 2: the other seeds at the chosen learning rates.
    let t3 = Instant::now();
    let seed_keys: Vec<(usize, RunKey)> = chosen
        .iter()
        .flat_map(|&(i, key)| {
            cfg.seed_list()
                .into_iter()
                .skip(1)
                .map(move |seed| (i, RunKey { seed, ..key }))
        })
        .collect();
    let seeds = train_all(&seed_keys, &datas, &bases, setup, &bar)?;
    bar.finish_and_clear();
    wall.seeds = t3.elapsed().as_secs_f64();
    let Some(seeds) = seeds else {
        println!("stopped (--interrupt-after-epochs); continue with --resume");
        return Ok(());
    };
    let mut finals: Vec<Finished> = Vec::new();
    for &(_, key) in &chosen {
        let first = grid
            .iter()
            .find(|f| f.key == key)
            .expect("the chosen key is a grid run");
        finals.push(first.clone());
        finals.extend(
            seeds
                .iter()
                .filter(|f| f.key.task == key.task && f.key.spec == key.spec)
                .cloned(),
        );
    }
    let t4 = Instant::now();
    let ctx = output::Context {
        run,
        cfg,
        datas: &datas,
        bases: &bases,
        grid: &grid,
        finals: &finals,
        step_ms: &step_ms,
    };
    output::write_all(&ctx, &mut wall, t0, t4)?;
    Ok(())
}

/// Trains every key (concurrently, on the run's pool), returning the finished runs in key order,
/// or `None` if the interrupt hook stopped them. The first error in key order is returned.
fn train_all(
    keys: &[(usize, RunKey)],
    datas: &[TaskData],
    bases: &[Base],
    setup: &Setup,
    bar: &indicatif::ProgressBar,
) -> Result<Option<Vec<Finished>>> {
    let outcomes: Vec<Result<Outcome>> = keys
        .par_iter()
        .map(|&(i, key)| {
            let r = train::fine_tune(&key, &datas[i], &bases[i].mlp, setup);
            bar.inc(1);
            r
        })
        .collect();
    let outcomes = first_error(outcomes)?;
    let mut out = Vec::with_capacity(keys.len());
    for (&(_, key), o) in keys.iter().zip(outcomes) {
        match o {
            Outcome::Done(result) => out.push(Finished { key, result }),
            Outcome::Interrupted => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// The values, or the first error in order.
fn first_error<T>(v: Vec<Result<T>>) -> Result<Vec<T>> {
    v.into_iter().collect()
}

/// The chosen key (task index, run key at the best validation accuracy; ties go to the smaller
/// learning rate) of every (task, configuration), in task and configuration order.
fn choose_lrs(cfg: &Config, grid: &[Finished]) -> Vec<(usize, RunKey)> {
    let mut out = Vec::new();
    for (i, &task) in cfg.task_list.iter().enumerate() {
        for &spec in &cfg.specs {
            let best = grid
                .iter()
                .filter(|f| f.key.task == task && f.key.spec == spec)
                .fold(None::<&Finished>, |best, f| match best {
                    Some(b) if b.result.val_acc >= f.result.val_acc => Some(b),
                    _ => Some(f),
                })
                .expect("every configuration has grid runs");
            out.push((i, best.key));
        }
    }
    out
}
