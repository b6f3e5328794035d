//! `speed`: wall-clock sweep of the structured chain kernels (GS, a 3-factor GS chain, Monarch,
//! BOFT, block-diagonal) against faer's dense GEMM on the equivalent dense product, plus the
//! Cayley map and one full training step of an `OrthoGs` layer, the adapter training steps, the
//! convolution against its im2col-equivalent GEMM and the SOC / GS-SOC layers, on 1 and 2
//! threads.
//!
//! Every measurement is the **median wall time** over repeats after a warm-up, taken in 5
//! rounds in which all the ops compared at one point (the structured ops, dense GEMM at the
//! same `(n, batch)`, Cayley of the same blocks; `conv2d` and `conv_gemm`; the three layers at
//! one size) and the thread counts take turns, so that a change of machine speed during the
//! measurement hits them alike; every timed block starts with 2 untimed calls; the points the
//! targets are read at (n = 1024 and the threading point n = 4096, both b = 32, batch 256; the
//! adapter point; the convolution and layer points) run 3 times as many rounds. Each op runs inside a
//! dedicated rayon pool of the given size (`pool.install`), whose workers are pinned to CPUs
//! when it has several ([`crate::threads`]: a scheduler may queue a woken worker behind the
//! worker that woke it; `--no-pin` measures without pinning, and `summary.json` records each
//! worker's CPUs); the chain kernels get `Par::Seq` on 1 thread and
//! `Par::rayon(t)` on `t > 1` (they run `Par::Seq` faer products inside rayon tasks), the dense
//! GEMM gets the same `Par`. Every op writes into outputs allocated once per measurement
//! (dense: `faer::Mat`s; chain ops: the `_into` kernels; Cayley: the `_into` Cayley kernels), so
//! no row pays for allocating or page-faulting its results;
//! `orthogs_step` goes through the tape and the optimizer as a user's training loop does.
//!
//! The adapter training steps (`lora_step`, `gsoft_step`, `boft_step`; the `finetune`
//! experiment's speed targets) run at one point only (`Grid::adapter`): a frozen `n → n/2`
//! layer (1024 → 512, batch 256, f32) with LoRA of rank `b = 8`, GSOFT with `8 × 8` blocks or
//! BOFT with two butterfly factors of `8 × 8` blocks (Cayley, with the scale vector), one step =
//! forward through the tape, backward of `ℓ = ⟨Y, G⟩`, Adam update. The layer sits inside a
//! network, so the gradient reaches its input (`dX`, which both LoRA and GSOFT need there); the
//! `*_step_first` variants are the first layer of a network, whose input is data: LoRA then
//! skips the `G·W₀` product that an input-side rotation still needs (for the rotation's own
//! gradient).
//!
//! The convolution rows run at their own points, as the adapter steps do:
//! - `conv2d` and `conv_gemm` at `Grid::conv` (batch 128, 64 → 64 channels, 16×16 images, 3×3
//!   kernel, one group, f32): `conv2d` is `conv2d_forward_into` (forward) and then
//!   `conv2d_backward_into` with the input and kernel gradients (forward+backward), into outputs
//!   allocated once; `conv_gemm` is the im2col-equivalent GEMM through faer,
//!   `C = A·B` with `A` of `c_out × c_in·k²` and `B` of `c_in·k² × batch·h·w` (forward), plus
//!   `dA = dC·Bᵀ` and `dB = Aᵀ·dC` (forward+backward: 3 products of that size), as
//!   `benches/conv.rs` defines it. Both get the pool's `Par` as the chain kernels do.
//! - `soc`, `gs_soc_4` (GS-SOC `(4, −)`) and `gs_soc_4x2` (GS-SOC `(4, 2)`, paired shuffles) at
//!   each of `Grid::conv_layers` (64 channels on 16×16 images with batch 4, 256 channels on 8×8
//!   images with batch 2, the sizes of `benches/conv.rs`): one forward+backward of a stride-1
//!   `c → c` 3×3 layer in training mode (5 Taylor terms, the power iteration advanced, the
//!   default `SocSettings`) through the tape, with the loss `ℓ = Σ Y ⊙ P` for a fixed random `P`,
//!   the gradients of the input and of every parameter; no optimizer step. The tape's
//!   convolution ops run with `Par::rayon(0)`, so the pool alone sets the thread count.
//!
//! Row conventions of the convolution rows: `n` is the channel count (`c → c`), `b` the image
//! side (`h = w`), `batch` the number of images; the kernel is 3×3.
//!
//! Outputs (in `--out`, default `results/speed/`):
//! - `speed.csv`: `op,n,b,batch,threads,dtype,pass,median_s,gflops`, one row per measurement
//!   (`pass` is `fwd` or `fwdbwd`). Row conventions: `dense` has `b = n` (one `n × n` block);
//!   `cayley` has `n = k·b` for `k = n/b` blocks and `batch = 0` (no batch).
//! - `speed_diag.csv`: per-call CPU time, run-queue wait and minor page faults of every row
//!   (same key columns as `speed.csv`).
//! - `summary.json`: the issues' targets with the measured value and pass/fail (plus a
//!   load-robust cross-check from the 1-thread CPU times), the 1-vs-2-thread bitwise comparison
//!   of every op's outputs (the faer GEMM baselines `dense` and `conv_gemm` are reported apart:
//!   their bits are faer's business), the grid, the load averages, and per-call diagnostics at
//!   the target point (CPU time, run-queue wait = time stolen by other load, minor page faults).
//! - `time_vs_n.{png,svg}` (log-log median time against `n`, one series per op) and
//!   `fraction_of_dense.{png,svg}` (GFLOP/s of every op divided by dense GEMM's at the same `n`,
//!   batch, threads and pass, in the same run).
//!
//! The sweep runs point-major (all ops at one size back to back) so that the ops compared by the
//! targets see the same machine load. `--ops a,b` restricts the sweep; `--budget-ms` sets the
//! timing budget per measurement.
//!
//! FLOPs follow the one convention of `gslab::count` (2 per multiply-add; permutations are free):
//! chain forward `2·batch·Σ_i k_i·b_i¹·b_i²` ([`chain_flops`](gslab::count::chain_flops); GS with
//! `m = 2` square factors: `2·batch·2·n·b`), dense `2·batch·n²`
//! ([`dense_flops`](gslab::count::dense_flops)), forward+backward 3× forward; the Cayley map of
//! `k` blocks `k·(8/3)·b³` forward and `k·(20/3)·b³` with backward
//! ([`cayley_flops`](gslab::count::cayley_flops): the FLOPs of an LU of `I − K` and `b`
//! right-hand sides, kept as the convention although the Gauss–Jordan inversion used does `b³`
//! multiply-adds); `orthogs_step`: GS forward+backward plus the Cayley forward+backward of its
//! `2·n/b` blocks ([`orthogs_step_flops`](gslab::count::orthogs_step_flops)); the adapter steps:
//! the products they perform (frozen GEMM forward, its data-gradient GEMM where needed, the
//! chain or LoRA products forward and backward, the Cayley map of every block forward and
//! backward; the optimizer and the scale vector not counted); `conv2d`: its im2col-equivalent
//! GEMM `2·batch·h·w·c_out·c_in·k²` ([`conv2d_flops`](gslab::count::conv2d_flops)), and
//! `conv_gemm` the same number (`2·M·K·N`), forward+backward 3× forward; a SOC / GS-SOC layer
//! step: for each of its convolutions, `terms` convolutions forward, each with its data and
//! kernel gradient (3× forward), that is `3·terms·conv2d_flops` summed over the convolutions (the
//! spectral normalisation, the power iteration, the bias and the shuffles not counted). The
//! `cayley` rows
//! time the kernels with caller-provided outputs (`cayley_with_inverse_into`,
//! `cayley_backward_into`), as the chain rows time the `_into` chain kernels.
//!
//! Files: this one holds the command line and the grid of sizes; `workloads` builds and runs
//! one operation at one size, `timing` is the measurement harness, `targets` evaluates the
//! issue's speed targets, `output` writes the CSV, JSON, figures and the terminal report.
mod output;
mod targets;
mod timing;
mod workloads;

use crate::{CommonArgs, Result, Run, plot, threads};
use clap::Parser;
use rand::{SeedableRng, rngs::StdRng};
use serde::Serialize;
use std::time::Instant;
use timing::{Sweep, load_average, measure_group, point_groups, sched_totals};

/// Wall-clock sweep of the structured kernels against dense GEMM on 1 and 2 threads, plus the
/// adapter training steps, the convolution and the SOC / GS-SOC layers (module docs).
#[derive(Parser)]
#[command(name = "speed", version)]
pub struct Args {
    /// `--seed`, `--threads`, `--out`, `--quick`.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Timing budget of one measurement in milliseconds (repeats = budget / one call, at least
    /// 5; 3 with --quick). Default 150 (3 with --quick).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub budget_ms: Option<u64>,
    /// Only these ops (comma-separated: gs, gs_chain3, monarch, boft, block_diag, dense, cayley,
    /// orthogs_step, lora_step, gsoft_step, boft_step, lora_step_first, gsoft_step_first,
    /// boft_step_first, conv2d, conv_gemm, soc, gs_soc_4, gs_soc_4x2); targets that need a
    /// missing op are reported as not measured.
    #[arg(long, value_delimiter = ',', value_parser = parse_op)]
    pub ops: Option<Vec<Op>>,
    /// Leave the workers of the multi-thread pool unpinned (by default worker i runs on CPU i:
    /// see `gslab::threads`).
    #[arg(long)]
    pub no_pin: bool,
}

fn parse_op(s: &str) -> std::result::Result<Op, String> {
    Op::ALL.into_iter().find(|o| o.name() == s).ok_or_else(|| {
        let names: Vec<&str> = Op::ALL.iter().map(|o| o.name()).collect();
        format!("unknown op '{s}' (expected one of {})", names.join(", "))
    })
}

/// Runs the sweep and writes every output into `--out`.
///
/// # Errors
/// Invalid arguments (named in the message), or a file that cannot be written.
pub fn run(args: Args) -> Result<()> {
    {
        let run = args.common.setup("speed")?;
        // Thread counts {1, T}, T = --threads (default 2).
        let mut threads = vec![1, args.common.threads.map_or(2, |t| t as usize)];
        threads.dedup();
        let default_ms = if run.quick { 3 } else { 150 };
        let cfg = Config {
            grid: if run.quick {
                Grid::quick()
            } else {
                Grid::full()
            },
            threads,
            budget: args.budget_ms.unwrap_or(default_ms) as f64 * 1e-3,
            min_reps: if run.quick { 3 } else { 5 },
            ops: args.ops.unwrap_or_else(|| Op::ALL.to_vec()),
            pin: !args.no_pin,
        };
        sweep(&run, &cfg)
    }
}

/// The operations of the sweep, in output order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `gs`: GS with m = 2 factors (GSOFT's `Pᵀ L P R`).
    Gs,
    /// `gs_chain3`: a GS chain with m = 3 factors.
    GsChain3,
    /// `monarch`: a square Monarch matrix (b = √n).
    Monarch,
    /// `boft`: the BOFT butterfly with the factor count that makes it dense.
    Boft,
    /// `block_diag`: one block-diagonal factor.
    BlockDiag,
    /// `dense`: faer's dense GEMM on the equivalent dense product.
    Dense,
    /// `cayley`: the Cayley map over a stack of blocks.
    Cayley,
    /// `orthogs_step`: one training step of an OrthoGs layer (Cayley, product, backward, Adam).
    OrthoGsStep,
    /// `lora_step`: one training step of LoRA (rank `b`) on a frozen `n → n/2` layer inside a
    /// network (the gradient reaches the layer's input).
    LoraStep,
    /// `gsoft_step`: the same for GSOFT with `b × b` blocks.
    GsoftStep,
    /// `boft_step`: the same for BOFT with 2 butterfly factors of `b × b` blocks.
    BoftStep,
    /// `lora_step_first`: [`Op::LoraStep`] as the first layer of a network (the input is data:
    /// no input gradient).
    LoraStepFirst,
    /// `gsoft_step_first`: [`Op::GsoftStep`] as the first layer.
    GsoftStepFirst,
    /// `boft_step_first`: [`Op::BoftStep`] as the first layer.
    BoftStepFirst,
    /// `conv2d`: the grouped-convolution kernel (one group, 3×3) at `Grid::conv`.
    Conv2d,
    /// `conv_gemm`: faer's GEMM on the im2col-equivalent shape of [`Op::Conv2d`].
    ConvGemm,
    /// `soc`: one training forward+backward of a SOC layer at each of `Grid::conv_layers`.
    Soc,
    /// `gs_soc_4`: the same for GS-SOC `(4, −)` (paired shuffle).
    GsSoc4,
    /// `gs_soc_4x2`: the same for GS-SOC `(4, 2)` (paired shuffles).
    GsSoc4x2,
}

impl Op {
    const ALL: [Op; 19] = [
        Op::Gs,
        Op::GsChain3,
        Op::Monarch,
        Op::Boft,
        Op::BlockDiag,
        Op::Dense,
        Op::Cayley,
        Op::OrthoGsStep,
        Op::LoraStep,
        Op::GsoftStep,
        Op::BoftStep,
        Op::LoraStepFirst,
        Op::GsoftStepFirst,
        Op::BoftStepFirst,
        Op::Conv2d,
        Op::ConvGemm,
        Op::Soc,
        Op::GsSoc4,
        Op::GsSoc4x2,
    ];

    fn name(self) -> &'static str {
        match self {
            Op::Gs => "gs",
            Op::GsChain3 => "gs_chain3",
            Op::Monarch => "monarch",
            Op::Boft => "boft",
            Op::BlockDiag => "block_diag",
            Op::Dense => "dense",
            Op::Cayley => "cayley",
            Op::OrthoGsStep => "orthogs_step",
            Op::LoraStep => "lora_step",
            Op::GsoftStep => "gsoft_step",
            Op::BoftStep => "boft_step",
            Op::LoraStepFirst => "lora_step_first",
            Op::GsoftStepFirst => "gsoft_step_first",
            Op::BoftStepFirst => "boft_step_first",
            Op::Conv2d => "conv2d",
            Op::ConvGemm => "conv_gemm",
            Op::Soc => "soc",
            Op::GsSoc4 => "gs_soc_4",
            Op::GsSoc4x2 => "gs_soc_4x2",
        }
    }

    /// Whether this is an adapter training step (measured at [`Grid::adapter`] only).
    fn is_adapter_step(self) -> bool {
        matches!(
            self,
            Op::LoraStep
                | Op::GsoftStep
                | Op::BoftStep
                | Op::LoraStepFirst
                | Op::GsoftStepFirst
                | Op::BoftStepFirst
        )
    }

    /// Whether this is a convolution row at `Grid::conv` (`conv2d`, `conv_gemm`).
    fn is_conv(self) -> bool {
        matches!(self, Op::Conv2d | Op::ConvGemm)
    }

    /// Whether this is a SOC / GS-SOC layer (measured at `Grid::conv_layers`), and its groups
    /// `(g₁, g₂)` (`(1, None)` is plain SOC).
    fn conv_layer_groups(self) -> Option<(usize, Option<usize>)> {
        match self {
            Op::Soc => Some((1, None)),
            Op::GsSoc4 => Some((4, None)),
            Op::GsSoc4x2 => Some((4, Some(2))),
            _ => None,
        }
    }

    /// Whether this op is part of the `(n, b, batch)` sweep of the structured kernels (the ops
    /// of the figures and of `fraction_of_dense_at_target`).
    fn in_sweep(self) -> bool {
        !self.is_adapter_step() && !self.is_conv() && self.conv_layer_groups().is_none()
    }

    /// Whether this op is a faer GEMM baseline (`dense`, `conv_gemm`): its 1-vs-t-thread bitwise
    /// comparison is reported apart from the crate's own kernels.
    fn is_gemm_baseline(self) -> bool {
        matches!(self, Op::Dense | Op::ConvGemm)
    }

    /// The passes measured: a training step is forward+backward only.
    fn passes(self) -> &'static [Pass] {
        match self {
            _ if self.is_adapter_step() => &[Pass::FwdBwd],
            _ if self.conv_layer_groups().is_some() => &[Pass::FwdBwd],
            Op::OrthoGsStep => &[Pass::FwdBwd],
            _ => &[Pass::Fwd, Pass::FwdBwd],
        }
    }
}

/// Whether `name` is the name of a faer GEMM baseline ([`Op::is_gemm_baseline`]).
fn is_gemm_baseline_name(name: &str) -> bool {
    Op::ALL
        .iter()
        .any(|o| o.is_gemm_baseline() && o.name() == name)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    Fwd,
    FwdBwd,
}

impl Pass {
    fn name(self) -> &'static str {
        match self {
            Pass::Fwd => "fwd",
            Pass::FwdBwd => "fwdbwd",
        }
    }
}

/// A size point `(n, b, batch)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
struct Point {
    n: usize,
    b: usize,
    batch: usize,
}

/// The sizes swept, and where the targets are read.
#[derive(Clone, Debug, Serialize)]
struct Grid {
    ns: Vec<usize>,
    bs: Vec<usize>,
    batches: Vec<usize>,
    /// The target point (n = 1024, b = 32, batch = 256).
    target: Point,
    /// `n` of the threading target (4096).
    big_n: usize,
    /// Where the adapter training steps are measured: the `n → n/2` layer with block size (LoRA
    /// rank) `b` (n = 1024, b = 8, batch 256).
    adapter: Point,
    /// Where `conv2d` and `conv_gemm` are measured: `n` channels `→ n`, `b × b` images, `batch`
    /// images, 3×3 kernel (64 channels, 16×16, batch 128).
    conv: Point,
    /// Where the SOC / GS-SOC layers are measured, as `Grid::conv` (64 channels on 16×16 with
    /// batch 4, 256 channels on 8×8 with batch 2).
    conv_layers: Vec<Point>,
    /// Ops measured in f64 too, at the target point only.
    #[serde(skip)]
    f64_ops: Vec<Op>,
}

impl Grid {
    fn full() -> Self {
        Self {
            ns: vec![256, 1024, 4096],
            bs: vec![16, 32, 64],
            batches: vec![32, 256],
            target: Point {
                n: 1024,
                b: 32,
                batch: 256,
            },
            big_n: 4096,
            adapter: Point {
                n: 1024,
                b: 8,
                batch: 256,
            },
            conv: Point {
                n: 64,
                b: 16,
                batch: 128,
            },
            conv_layers: vec![
                Point {
                    n: 64,
                    b: 16,
                    batch: 4,
                },
                Point {
                    n: 256,
                    b: 8,
                    batch: 2,
                },
            ],
            f64_ops: vec![Op::Gs, Op::BlockDiag, Op::Dense, Op::Cayley],
        }
    }

    fn quick() -> Self {
        Self {
            ns: vec![64, 256],
            bs: vec![8, 16],
            batches: vec![8, 32],
            target: Point {
                n: 256,
                b: 16,
                batch: 32,
            },
            big_n: 256,
            adapter: Point {
                n: 256,
                b: 8,
                batch: 32,
            },
            conv: Point {
                n: 16,
                b: 8,
                batch: 4,
            },
            conv_layers: vec![
                Point {
                    n: 16,
                    b: 8,
                    batch: 2,
                },
                Point {
                    n: 32,
                    b: 4,
                    batch: 2,
                },
            ],
            f64_ops: vec![Op::Gs, Op::Dense],
        }
    }

    /// The points of an op measured outside the `(n, b, batch)` sweep (adapter steps,
    /// convolutions, SOC / GS-SOC layers); `None` for the ops of the sweep.
    fn fixed_points(&self, op: Op) -> Option<Vec<Point>> {
        if op.is_adapter_step() {
            Some(vec![self.adapter])
        } else if op.is_conv() {
            Some(vec![self.conv])
        } else if op.conv_layer_groups().is_some() {
            Some(self.conv_layers.clone())
        } else {
            None
        }
    }

    /// Every `(op, point)` of the f32 sweep. Monarch only where `b = √n` (square blocks, the
    /// only Monarch with a single block size); dense ignores `b` (stored as `b = n`); Cayley
    /// ignores the batch (stored as 0). A block size needs `b | n` and at least 2 blocks. The
    /// adapter steps, convolutions and layers at their own points ([`Grid::fixed_points`]).
    fn cases(&self) -> Vec<(Op, Point)> {
        let mut out = Vec::new();
        for op in Op::ALL {
            if let Some(points) = self.fixed_points(op) {
                out.extend(points.into_iter().map(|p| (op, p)));
                continue;
            }
            for &n in &self.ns {
                let bs: Vec<usize> = match op {
                    Op::Dense => vec![n],
                    Op::Monarch => self.bs.iter().copied().filter(|b| b * b == n).collect(),
                    _ => self
                        .bs
                        .iter()
                        .copied()
                        .filter(|b| n % b == 0 && n / b >= 2)
                        .collect(),
                };
                let batches = if op == Op::Cayley {
                    vec![0]
                } else {
                    self.batches.clone()
                };
                for &b in &bs {
                    for &batch in &batches {
                        out.push((op, Point { n, b, batch }));
                    }
                }
            }
        }
        // Point-major order, so that the ops compared with each other (all ops at one point,
        // dense at its (n, batch), Cayley with the largest batch) run back to back and see the
        // same machine load. The sort is stable: ops keep their order within a point.
        out.sort_by_key(|(_, p)| self.point_key(p));
        out
    }

    /// The point a case is compared at: `(n, batch, b)` with Cayley's batch read as the largest
    /// batch and dense's `b = n` read as the target block size.
    fn point_key(&self, p: &Point) -> (usize, usize, usize) {
        let max_batch = self.batches.iter().copied().max().unwrap_or(0);
        let batch = if p.batch == 0 { max_batch } else { p.batch };
        let b = if p.b == p.n { self.target.b } else { p.b };
        (p.n, batch, b)
    }

    /// Whether the targets are read at `p`'s point: the target point, the threading point
    /// (`big_n` with the target's block size and batch), the adapter point, the convolution
    /// point or a layer point.
    fn is_target_point(&self, p: &Point) -> bool {
        let threading = Point {
            n: self.big_n,
            ..self.target
        };
        [self.target, threading, self.adapter, self.conv]
            .iter()
            .chain(&self.conv_layers)
            .any(|t| self.point_key(p) == self.point_key(t))
    }

    /// The f64 points: [`Grid::f64_ops`] at the target point.
    fn f64_cases(&self) -> Vec<(Op, Point)> {
        self.f64_ops
            .iter()
            .map(|&op| (op, self.point_for(op, self.target)))
            .collect()
    }

    /// `p` with the row conventions of `op` applied (dense `b = n`, Cayley `batch = 0`).
    fn point_for(&self, op: Op, p: Point) -> Point {
        match op {
            Op::Dense => Point { b: p.n, ..p },
            Op::Cayley => Point { batch: 0, ..p },
            _ => p,
        }
    }
}

struct Config {
    grid: Grid,
    ops: Vec<Op>,
    threads: Vec<usize>,
    budget: f64,
    min_reps: usize,
    /// Pin the workers of multi-thread pools to CPUs ([`threads::pool`]).
    pin: bool,
}

fn sweep(run: &Run, cfg: &Config) -> Result<()> {
    let load_start = load_average();
    let started = Instant::now();
    let pools = cfg
        .threads
        .iter()
        .map(|&t| threads::pool(t, cfg.pin).map(|p| (t, p)))
        .collect::<Result<Vec<_>>>()?;
    let wanted = |c: &(Op, Point)| cfg.ops.contains(&c.0);
    let cases32: Vec<_> = cfg.grid.cases().into_iter().filter(wanted).collect();
    let cases64: Vec<_> = cfg.grid.f64_cases().into_iter().filter(wanted).collect();
    let total: usize = cases32
        .iter()
        .chain(&cases64)
        .map(|(op, _)| op.passes().len() * pools.len())
        .sum();
    let pb = run.progress(total as u64, "speed");
    let mut rng = StdRng::seed_from_u64(run.seed);
    let sched0 = sched_totals();
    let mut sw = Sweep {
        rows: Vec::new(),
        diag: Vec::new(),
        sched: None,
        identity: Vec::new(),
        cpus: pools
            .iter()
            .map(|(t, p)| (*t, threads::pinned_workers(p)))
            .collect(),
    };
    let tick = || pb.inc(1);
    for group in point_groups(&cfg.grid, &cases32) {
        let p = group[0].1;
        pb.set_message(format!("n={} b={} batch={}", p.n, p.b, p.batch));
        measure_group::<f32>(group, cfg, &pools, &mut rng, &mut sw, &tick)?;
    }
    for group in point_groups(&cfg.grid, &cases64) {
        pb.set_message(format!("f64 n={}", group[0].1.n));
        measure_group::<f64>(group, cfg, &pools, &mut rng, &mut sw, &tick)?;
    }
    pb.finish_and_clear();
    sw.sched = sched_totals()
        .zip(sched0)
        .map(|(a, b)| ((a.0 - b.0) as f64 * 1e-9, (a.1 - b.1) as f64 * 1e-9));
    let elapsed = started.elapsed().as_secs_f64();
    run.write_csv("speed.csv", &sw.rows)?;
    let diag_rows: Vec<output::DiagRow> = sw
        .rows
        .iter()
        .zip(&sw.diag)
        .map(|(r, d)| output::DiagRow {
            op: r.op,
            n: r.n,
            b: r.b,
            batch: r.batch,
            threads: r.threads,
            dtype: r.dtype,
            pass: r.pass,
            cpu_s_per_call: d.cpu_s,
            runq_wait_s_per_call: d.runq_wait_s,
            minor_faults_per_call: d.faults,
        })
        .collect();
    run.write_csv("speed_diag.csv", &diag_rows)?;
    let targets = targets::evaluate_targets(&sw, cfg);
    let summary = output::summary_json(run, cfg, &sw, &targets, load_start, elapsed);
    run.write_json("summary.json", &summary)?;
    plot::register_font()?;
    output::write_figures(run, cfg, &sw)?;
    output::print_report(cfg, &sw, &targets, elapsed);
    println!("outputs written to {}", run.out.display());
    Ok(())
}
