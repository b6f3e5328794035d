//! `speed`: wall-clock sweep of the structured chain kernels (GS, a 3-factor GS chain, Monarch,
//! BOFT, block-diagonal) against faer's dense GEMM on the equivalent dense product, plus the
//! Cayley map and one full training step of an `OrthoGs` layer, on 1 and 2 threads.
//!
//! Every measurement is the **median wall time** over repeats after a warm-up, taken in 5
//! rounds in which all the ops compared at one point (the structured ops, dense GEMM at the
//! same `(n, batch)`, Cayley of the same blocks) and the thread counts take turns, so that a
//! change of machine speed during the measurement hits them alike; every timed block starts
//! with 2 untimed calls; the two points the targets are read at (n = 1024 and the threading
//! point n = 4096, both b = 32, batch 256) run 3 times as many rounds. Each op runs inside a
//! dedicated rayon pool of the given size (`pool.install`), whose workers are pinned to CPUs
//! when it has several (`gslab::threads`: on this VM an unpinned woken worker often waited
//! behind the worker that woke it; `--no-pin` measures without pinning, and `summary.json`
//! records each worker's CPUs); the chain kernels get `Par::Seq` on 1 thread and
//! `Par::rayon(t)` on `t > 1` (they run `Par::Seq` faer products inside rayon tasks), the dense
//! GEMM gets the same `Par`. Every op writes into outputs allocated once per measurement
//! (dense: `faer::Mat`s; chain ops: the `_into` kernels; Cayley: the `_into` Cayley kernels), so
//! no row pays for allocating or page-faulting its results;
//! `orthogs_step` goes through the tape and the optimizer as a user's training loop does.
//!
//! Outputs (in `--out`, default `results/speed/`):
//! - `speed.csv`: `op,n,b,batch,threads,dtype,pass,median_s,gflops`, one row per measurement
//!   (`pass` is `fwd` or `fwdbwd`). Row conventions: `dense` has `b = n` (one `n × n` block);
//!   `cayley` has `n = k·b` for `k = n/b` blocks and `batch = 0` (no batch).
//! - `speed_diag.csv`: per-call CPU time, run-queue wait and minor page faults of every row
//!   (same key columns as `speed.csv`).
//! - `summary.json`: the targets with the measured value and pass/fail (plus a
//!   load-robust cross-check from the 1-thread CPU times), the 1-vs-2-thread bitwise comparison
//!   of every structured op's outputs, the grid, the load averages, and per-call diagnostics at
//!   the target point (CPU time, run-queue wait = time stolen by other load, minor page faults).
//! - `time_vs_n.{png,svg}` (log-log median time against `n`, one series per op) and
//!   `fraction_of_dense.{png,svg}` (GFLOP/s of every op divided by dense GEMM's at the same `n`,
//!   batch, threads and pass, in the same run).
//!
//! The sweep runs point-major (all ops at one size back to back) so that the ops compared by the
//! targets see the same machine load. `--ops a,b` restricts the sweep; `--budget-ms` sets the
//! timing budget per measurement. The full default grid takes about 1.5 minutes on 2 cores.
//!
//! FLOP convention (2 per multiply-add; permutations are free):
//! - chain op `A = P_{m+1} B_m ⋯ B_1 P_1`, forward: `2·batch·Σ_i k_i·b_i¹·b_i²` (GS with `m = 2`
//!   square factors: `2·batch·2·n·b`); dense: `2·batch·n²`; forward+backward: 3× forward (the
//!   backward counts 2× forward, data and weight gradients).
//! - Cayley map of `k` blocks of `b × b`: forward `k·(2/3·b³ + 2·b³)` (the FLOPs of an LU of
//!   `I − K` and `b` right-hand sides, kept as the convention; the Gauss–Jordan inversion used does
//!   `b³` multiply-adds); backward `k·4·b³` (the two products of `2 Nᵀ G Nᵀ`). The `cayley` rows
//!   time the kernels with caller-provided outputs (`cayley_with_inverse_into`,
//!   `cayley_backward_into`), as the chain rows time the `_into` chain kernels.
//! - `orthogs_step` (Cayley of both factors, the GS product, backward, Adam): GS forward+backward
//!   plus the Cayley forward+backward of its `2·n/b` blocks (Adam's `O(params)` work not counted).

use crate::exp::{CommonArgs, Run, format_table};
use crate::kernels::chain::{chain_backward_into, chain_forward_into, chain_forward_saved_into};
use crate::nn::optim::{Adam, Optimizer, Params};
use crate::orthogonal::OrthoMap;
use crate::orthogonal::cayley::{cayley_backward_into, cayley_with_inverse_into, skew_dim};
use crate::orthogonal::layers::OrthoGs;
use crate::plot::{self, BarPlot, Plot, Scale, Series, XyPlot};
use crate::structured::{
    BlockDiag, BlockShape, Butterfly, ChainLayout, Gs, GsChain, LinearOp, Monarch,
};
use crate::threads;
use crate::{Real, Result, Tape, Tensor};
use clap::Parser;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use rand::{SeedableRng, rngs::StdRng};
use rayon::ThreadPool;
use serde::Serialize;
use serde_json::{Value, json};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

/// Wall-clock sweep of the structured kernels against dense GEMM on 1 and 2 threads.
#[derive(Parser)]
#[command(name = "speed", version, about)]
pub struct Args {
    /// `--seed`, `--threads`, `--out`, `--quick`.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Timing budget of one measurement in milliseconds (repeats = budget / one call, at least
    /// 5; 3 with --quick). Default 150 (3 with --quick).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub budget_ms: Option<u64>,
    /// Only these ops (comma-separated: gs, gs_chain3, monarch, boft, block_diag, dense, cayley,
    /// orthogs_step); targets that need a missing op are reported as not measured.
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
}

impl Op {
    const ALL: [Op; 8] = [
        Op::Gs,
        Op::GsChain3,
        Op::Monarch,
        Op::Boft,
        Op::BlockDiag,
        Op::Dense,
        Op::Cayley,
        Op::OrthoGsStep,
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
        }
    }

    /// The passes measured: a training step is forward+backward only.
    fn passes(self) -> &'static [Pass] {
        match self {
            Op::OrthoGsStep => &[Pass::FwdBwd],
            _ => &[Pass::Fwd, Pass::FwdBwd],
        }
    }
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
            f64_ops: vec![Op::Gs, Op::Dense],
        }
    }

    /// Every `(op, point)` of the f32 sweep. Monarch only where `b = √n` (square blocks, the
    /// only Monarch with a single block size); dense ignores `b` (stored as `b = n`); Cayley
    /// ignores the batch (stored as 0). A block size needs `b | n` and at least 2 blocks.
    fn cases(&self) -> Vec<(Op, Point)> {
        let mut out = Vec::new();
        for op in Op::ALL {
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

    /// Whether the targets are read at `p`'s point: the target point, or the threading point
    /// (`big_n` with the target's block size and batch).
    fn is_target_point(&self, p: &Point) -> bool {
        let threading = Point {
            n: self.big_n,
            ..self.target
        };
        [self.target, threading]
            .iter()
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
    /// Pin the workers of multi-thread pools to CPUs ([`crate::threads::pool`]).
    pin: bool,
}

/// One CSV row.
#[derive(Clone, Debug, Serialize)]
struct Row {
    op: &'static str,
    n: usize,
    b: usize,
    batch: usize,
    threads: usize,
    dtype: &'static str,
    pass: &'static str,
    median_s: f64,
    gflops: f64,
}

/// One row of `speed_diag.csv`: the [`Diag`] of the `speed.csv` row with the same key.
#[derive(Clone, Debug, Serialize)]
struct DiagRow {
    op: &'static str,
    n: usize,
    b: usize,
    batch: usize,
    threads: usize,
    dtype: &'static str,
    pass: &'static str,
    cpu_s_per_call: f64,
    runq_wait_s_per_call: f64,
    minor_faults_per_call: f64,
}

/// A workload with its data, built once per `(op, point, dtype)` and timed on every pool.
enum Work<T: Real> {
    /// A chain operator with its inputs and caller-provided outputs (`Y`, `dX`, `dB_i`), written
    /// in place by the `_into` kernels as the dense baseline writes its preallocated matrices.
    Chain {
        layout: Arc<ChainLayout>,
        blocks: Vec<Tensor<T>>,
        x: Tensor<T>,
        dy: Tensor<T>,
        y: Tensor<T>,
        dx: Tensor<T>,
        dbs: Vec<Tensor<T>>,
    },
    Dense {
        w: Mat<T>,
        x: Mat<T>,
        dy: Mat<T>,
        y: Mat<T>,
        dx: Mat<T>,
        dw: Mat<T>,
    },
    /// The Cayley kernels with caller-provided outputs (`Q`, the inverses `N`, `∂ℓ/∂θ`), as the
    /// chain ops; the tape's own overhead is part of `orthogs_step`.
    Cayley {
        theta: Tensor<T>,
        g: Tensor<T>,
        b: usize,
        q: Tensor<T>,
        inv: Tensor<T>,
        dtheta: Tensor<T>,
    },
    Step {
        /// The initial state (the fingerprint always starts from it).
        init: OrthoGs<T>,
        /// The timed state, updated by every timed step.
        layer: OrthoGs<T>,
        adam: Adam<T>,
        x: Tensor<T>,
        g: Tensor<T>,
    },
}

const ADAM_LR: f64 = 1e-3;
/// Standard deviation of the random skew parameters (a generic, non-identity Cayley input).
const THETA_STD: f64 = 0.1;

fn randn<T: Real>(shape: &[usize], rng: &mut StdRng) -> Tensor<T> {
    Tensor::randn(shape, 1.0, rng)
}

fn randn_mat<T: Real>(rows: usize, cols: usize, rng: &mut StdRng) -> Mat<T> {
    randn::<T>(&[rows, cols], rng).to_mat()
}

fn chain_work<T: Real, O: LinearOp<T>>(op: &O, batch: usize, rng: &mut StdRng) -> Work<T> {
    let (n_out, n_in) = op.shape();
    let layout = Arc::clone(op.layout_arc());
    let dbs = layout
        .factors()
        .iter()
        .map(|f| Tensor::zeros(&f.tensor_shape()))
        .collect();
    Work::Chain {
        layout,
        blocks: op.blocks().to_vec(),
        x: randn(&[batch, n_in], rng),
        dy: randn(&[batch, n_out], rng),
        y: Tensor::zeros(&[batch, n_out]),
        dx: Tensor::zeros(&[batch, n_in]),
        dbs,
    }
}

/// Number of BOFT factors that makes the butterfly dense: `1 + log2 r`.
fn boft_factors(r: usize) -> usize {
    1 + r.trailing_zeros() as usize
}

impl<T: Real> Work<T> {
    fn build(op: Op, p: Point, rng: &mut StdRng) -> Result<Self> {
        let Point { n, b, batch } = p;
        let k = n / b;
        Ok(match op {
            Op::Gs => chain_work(&Gs::<T>::gsoft_random(k, b, rng)?, batch, rng),
            Op::GsChain3 => {
                let f = [BlockShape::square(k, b); 3];
                chain_work(&GsChain::<T>::random_shuffled(&f, rng)?, batch, rng)
            }
            // R: k blocks of b × b, L: b blocks of k × k (b = k = √n in the sweep).
            Op::Monarch => chain_work(&Monarch::<T>::random_square(b, k, rng)?, batch, rng),
            Op::Boft => chain_work(
                &Butterfly::<T>::random(n, k, boft_factors(k), rng)?,
                batch,
                rng,
            ),
            Op::BlockDiag => chain_work(&BlockDiag::<T>::random(k, b, b, rng)?, batch, rng),
            Op::Dense => Work::Dense {
                w: randn_mat(n, n, rng),
                x: randn_mat(batch, n, rng),
                dy: randn_mat(batch, n, rng),
                y: Mat::zeros(batch, n),
                dx: Mat::zeros(batch, n),
                dw: Mat::zeros(n, n),
            },
            Op::Cayley => Work::Cayley {
                theta: Tensor::randn(&[k, skew_dim(b)], THETA_STD, rng),
                g: randn(&[k, b, b], rng),
                b,
                q: Tensor::zeros(&[k, b, b]),
                inv: Tensor::zeros(&[k, b, b]),
                dtheta: Tensor::zeros(&[k, skew_dim(b)]),
            },
            Op::OrthoGsStep => {
                let mut layer = OrthoGs::<T>::new(n, k, OrthoMap::Cayley)?;
                let params = (0..2)
                    .map(|_| Tensor::randn(&[k, skew_dim(b)], THETA_STD, rng))
                    .collect();
                layer.set_params(params)?;
                Work::Step {
                    init: layer.clone(),
                    layer,
                    adam: Adam::new(ADAM_LR),
                    x: randn(&[batch, n], rng),
                    g: randn(&[batch, n], rng),
                }
            }
        })
    }

    /// Runs one pass. With `keep`, returns every output as a flat vector (forward: `Y`;
    /// forward+backward: `Y`, `dX` and the weight gradients; a training step: the parameters
    /// after one step from the initial state, leaving the timed state untouched).
    fn run(&mut self, pass: Pass, par: Par, keep: bool) -> Option<Vec<T>> {
        match self {
            Work::Chain {
                layout,
                blocks,
                x,
                dy,
                y,
                dx,
                dbs,
            } => {
                match pass {
                    Pass::Fwd => chain_forward_into(layout, blocks, x, y, par),
                    Pass::FwdBwd => {
                        let saved = chain_forward_saved_into(layout, blocks, x, y, par);
                        chain_backward_into(layout, blocks, (x, &saved), dy, (dx, dbs), par);
                    }
                }
                keep.then(|| match pass {
                    Pass::Fwd => y.data().to_vec(),
                    Pass::FwdBwd => {
                        let all = [&*y, &*dx].into_iter().chain(dbs.iter());
                        all.flat_map(|t| t.data().iter().copied()).collect()
                    }
                })
            }
            Work::Dense {
                w,
                x,
                dy,
                y,
                dx,
                dw,
            } => {
                let one = T::one();
                matmul(
                    y.as_mut(),
                    Accum::Replace,
                    x.as_ref(),
                    w.transpose(),
                    one,
                    par,
                );
                let mut mats = vec![&*y];
                if pass == Pass::FwdBwd {
                    matmul(
                        dx.as_mut(),
                        Accum::Replace,
                        dy.as_ref(),
                        w.as_ref(),
                        one,
                        par,
                    );
                    matmul(
                        dw.as_mut(),
                        Accum::Replace,
                        dy.transpose(),
                        x.as_ref(),
                        one,
                        par,
                    );
                    mats.extend([&*dx, &*dw]);
                }
                black_box(&mats);
                keep.then(|| mats.iter().flat_map(|m| mat_values(m)).collect())
            }
            Work::Cayley {
                theta,
                g,
                b,
                q,
                inv,
                dtheta,
            } => {
                cayley_with_inverse_into(theta, *b, q, inv);
                if pass == Pass::FwdBwd {
                    cayley_backward_into(g, inv, *b, dtheta);
                }
                keep.then(|| match pass {
                    Pass::Fwd => q.data().to_vec(),
                    Pass::FwdBwd => dtheta.data().to_vec(),
                })
            }
            Work::Step {
                init,
                layer,
                adam,
                x,
                g,
            } => {
                if keep {
                    let mut l = init.clone();
                    ortho_step(&mut l, &mut Adam::new(ADAM_LR), x, g);
                    let ps: Vec<Tensor<T>> = l.params().into_iter().cloned().collect();
                    Some(flatten(&ps))
                } else {
                    ortho_step(layer, adam, x, g);
                    None
                }
            }
        }
    }

    /// FLOPs of one pass (module docs).
    fn flops(&self, p: Point, pass: Pass) -> f64 {
        let cayley_fb = |blocks: usize, b: usize| blocks as f64 * (20.0 / 3.0) * (b as f64).powi(3);
        let fb = |fwd: f64| match pass {
            Pass::Fwd => fwd,
            Pass::FwdBwd => 3.0 * fwd,
        };
        match self {
            Work::Chain { layout, x, .. } => {
                fb(2.0 * layout.macs_per_vector() as f64 * x.shape()[0] as f64)
            }
            Work::Dense { .. } => fb(2.0 * (p.batch * p.n * p.n) as f64),
            Work::Cayley { .. } => {
                let k = (p.n / p.b) as f64;
                let b3 = (p.b as f64).powi(3);
                match pass {
                    Pass::Fwd => k * (8.0 / 3.0) * b3,
                    Pass::FwdBwd => cayley_fb(p.n / p.b, p.b),
                }
            }
            Work::Step { .. } => {
                3.0 * 2.0 * (p.batch * 2 * p.n * p.b) as f64 + cayley_fb(2 * p.n / p.b, p.b)
            }
        }
    }
}

/// One training step of an `OrthoGs` layer on the loss `ℓ = ⟨Y, G⟩`: Cayley map of both
/// factors, the GS product, backward through both, one Adam update.
fn ortho_step<T: Real>(layer: &mut OrthoGs<T>, adam: &mut Adam<T>, x: &Tensor<T>, g: &Tensor<T>) {
    let grads = {
        let tape = Tape::new();
        let leaves = layer.leaves(&tape);
        let xv = tape.constant(x.clone());
        let y = layer.forward_with(xv, &leaves);
        let mut grads = tape.backward_with(y, g.clone());
        leaves
            .iter()
            .map(|l| {
                grads
                    .take(*l)
                    .expect("every parameter leaf gets a gradient")
            })
            .collect::<Vec<_>>()
    };
    adam.step(&mut layer.params_mut(), &grads);
}

fn flatten<T: Real>(ts: &[Tensor<T>]) -> Vec<T> {
    ts.iter().flat_map(|t| t.data().iter().copied()).collect()
}

fn mat_values<T: Real>(m: &Mat<T>) -> Vec<T> {
    (0..m.ncols())
        .flat_map(|j| (0..m.nrows()).map(move |i| m[(i, j)]))
        .collect()
}

/// Bitwise equality of two output vectors (f32 → f64 is exact, so comparing the f64 bits
/// compares the original bits of every non-NaN value).
fn bitwise_equal<T: Real>(a: &[T], b: &[T]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(&x, &y)| Real::to_f64(x).to_bits() == Real::to_f64(y).to_bits())
}

const MAX_REPS: usize = 200;

/// Per-call diagnostics of a measurement, over the timed calls (not the warm-up).
#[derive(Clone, Copy, Debug, Serialize)]
struct Diag {
    /// Minor page faults per call (every fresh page an allocation touches costs one).
    faults: f64,
    /// CPU time of all threads of the process per call, seconds (`/proc/self/task/*/schedstat`).
    cpu_s: f64,
    /// Time threads of the process spent runnable but waiting for a CPU, per call, seconds: the
    /// direct measure of how much other load on the machine slowed this measurement. Summed over
    /// all threads (a rayon worker spinning between jobs is runnable too), so it can exceed the
    /// wall time.
    runq_wait_s: f64,
}

/// Timed rounds per measurement: the ops of a point and the thread counts take turns, round
/// after round, so that a change of machine speed during a measurement hits all of them alike.
const ROUNDS: usize = 5;

/// Factor on the number of rounds (and so of timed calls) at the two points the targets are
/// read at ([`Grid::is_target_point`]).
const TARGET_REPEATS: usize = 3;

/// Untimed calls at the start of every timed block: after the other pool's turn, the first call
/// pays for moving the data into this thread's caches and for the idle workers of the previous
/// pool, which is not the cost of the op.
const BLOCK_WARM_UP: usize = 2;

/// Samples and counters of one thread count of a measurement.
struct Acc {
    ts: Vec<f64>,
    /// `(minor faults, on-CPU ns, run-queue wait ns)`; `None` once a counter read failed.
    counters: Option<(u64, u64, u64)>,
}

impl Acc {
    fn new() -> Self {
        Self {
            ts: Vec::new(),
            counters: Some((0, 0, 0)),
        }
    }

    /// Runs [`BLOCK_WARM_UP`] untimed calls of `f` (the pool that ran before may still hold the
    /// CPUs and caches), then `reps` timed calls, adding the samples and the counter deltas.
    fn block(&mut self, f: &mut dyn FnMut(), reps: usize) {
        for _ in 0..BLOCK_WARM_UP {
            f();
        }
        let before = minor_faults().zip(sched_totals());
        for _ in 0..reps {
            let t = Instant::now();
            f();
            self.ts.push(t.elapsed().as_secs_f64());
        }
        let after = minor_faults().zip(sched_totals());
        self.counters = match (self.counters, before, after) {
            (Some(c), Some((f0, s0)), Some((f1, s1))) => Some((
                c.0 + f1.saturating_sub(f0),
                c.1 + s1.0.saturating_sub(s0.0),
                c.2 + s1.1.saturating_sub(s0.1),
            )),
            _ => None,
        };
    }

    /// Median of the samples and the per-call diagnostics.
    fn finish(mut self) -> (f64, Diag) {
        let n = self.ts.len().max(1) as f64;
        let per = |v: Option<u64>, scale: f64| v.map_or(f64::NAN, |v| v as f64 * scale / n);
        let c = self.counters;
        let diag = Diag {
            faults: per(c.map(|c| c.0), 1.0),
            cpu_s: per(c.map(|c| c.1), 1e-9),
            runq_wait_s: per(c.map(|c| c.2), 1e-9),
        };
        self.ts.sort_by(f64::total_cmp);
        let m = self.ts.len() / 2;
        let median = match self.ts.len() {
            0 => f64::NAN,
            l if l % 2 == 1 => self.ts[m],
            _ => 0.5 * (self.ts[m - 1] + self.ts[m]),
        };
        (median, diag)
    }
}

/// Warm-up of `f` for a quarter of `budget` (at least one call); returns the last call's time.
fn warm_up(f: &mut dyn FnMut(), budget: f64) -> f64 {
    let mut warm = 0.0;
    loop {
        let t = Instant::now();
        f();
        let last = t.elapsed().as_secs_f64();
        warm += last;
        if warm >= 0.25 * budget {
            return last;
        }
    }
}

/// Minor page faults of this process so far (`/proc/self/stat` field 10), if readable.
fn minor_faults() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(7)?.parse().ok()
}

/// `(on-CPU ns, run-queue wait ns)` summed over the live threads of this process (Linux
/// `/proc/self/task/*/schedstat`), if readable.
fn sched_totals() -> Option<(u64, u64)> {
    let mut tot = (0u64, 0u64);
    for e in std::fs::read_dir("/proc/self/task").ok()? {
        let s = std::fs::read_to_string(e.ok()?.path().join("schedstat")).ok()?;
        let mut it = s.split_whitespace().map(|v| v.parse::<u64>().ok());
        tot.0 += it.next()??;
        tot.1 += it.next()??;
    }
    Some(tot)
}

/// A 1-vs-t-thread output comparison.
#[derive(Clone, Debug, Serialize)]
struct Identity {
    op: &'static str,
    n: usize,
    b: usize,
    batch: usize,
    dtype: &'static str,
    pass: &'static str,
    identical: bool,
}

/// Results of the sweep.
struct Sweep {
    rows: Vec<Row>,
    /// Diagnostics, one per row.
    diag: Vec<Diag>,
    /// `(CPU s, run-queue wait s)` of the whole sweep, all threads of the process.
    sched: Option<(f64, f64)>,
    identity: Vec<Identity>,
    /// Per pool `(threads, the CPUs each worker may run on)`.
    cpus: Vec<(usize, Vec<Option<Vec<usize>>>)>,
}

fn dtype_name<T: Real>() -> &'static str {
    if T::DTYPE == "F32" { "f32" } else { "f64" }
}

/// Measures every pass of every case of `group` (the ops compared at one point) on every pool,
/// appending rows (in case, pass, pool order) and 1-vs-t comparisons.
///
/// Per pass, every `(case, pool)` gets its outputs kept (bitwise check) and a warm-up; then
/// [`ROUNDS`] rounds run, each timing one block of calls of every case on every pool in turn, so
/// a change of machine speed during the group hits all the compared ops alike (the targets are
/// ratios of these ops).
fn measure_group<T: Real>(
    group: &[(Op, Point)],
    cfg: &Config,
    pools: &[(usize, ThreadPool)],
    rng: &mut StdRng,
    out: &mut Sweep,
    tick: &dyn Fn(),
) -> Result<()> {
    let mut works: Vec<Work<T>> = group
        .iter()
        .map(|&(op, p)| Work::<T>::build(op, p, rng))
        .collect::<Result<_>>()?;
    let par_of = |t: usize| if t == 1 { Par::Seq } else { Par::rayon(t) };
    // results[case][pass index] = per pool (seconds, diag); identity[case][pass index].
    let mut results: Vec<Vec<Vec<(f64, Diag)>>> = group.iter().map(|_| Vec::new()).collect();
    let mut identical: Vec<Vec<Option<bool>>> = group.iter().map(|_| Vec::new()).collect();
    for pass in [Pass::Fwd, Pass::FwdBwd] {
        let members: Vec<usize> = (0..group.len())
            .filter(|&c| group[c].0.passes().contains(&pass))
            .collect();
        // reps[c][pool]: calls per round, clamp(budget / t_call, min_reps, MAX_REPS) in total.
        let mut reps: Vec<Vec<usize>> = vec![Vec::new(); group.len()];
        for &c in &members {
            let mut outputs: Vec<Vec<T>> = Vec::new();
            for (t, pool) in pools {
                let par = par_of(*t);
                let work = &mut works[c];
                let (kept, last) = pool.install(|| {
                    let kept = work.run(pass, par, true);
                    let mut call = || {
                        black_box(work.run(pass, par, false));
                    };
                    (kept, warm_up(&mut call, cfg.budget))
                });
                outputs.extend(kept);
                let total =
                    ((cfg.budget / last.max(1e-9)).ceil() as usize).clamp(cfg.min_reps, MAX_REPS);
                reps[c].push(total.div_ceil(ROUNDS));
            }
            identical[c].push(
                (outputs.len() >= 2)
                    .then(|| outputs[1..].iter().all(|o| bitwise_equal(&outputs[0], o))),
            );
        }
        let mut accs: Vec<Vec<Acc>> = (0..group.len())
            .map(|_| pools.iter().map(|_| Acc::new()).collect())
            .collect();
        // The two points the targets are read at (the target point and the threading point at
        // `big_n`) get TARGET_REPEATS times the rounds: more rounds average over more of the
        // machine's slow episodes.
        let at_target = group.iter().any(|&(_, p)| cfg.grid.is_target_point(&p));
        let rounds = ROUNDS * if at_target { TARGET_REPEATS } else { 1 };
        for _ in 0..rounds {
            for &c in &members {
                for (i, (t, pool)) in pools.iter().enumerate() {
                    let par = par_of(*t);
                    let (work, acc) = (&mut works[c], &mut accs[c][i]);
                    let mut call = || {
                        black_box(work.run(pass, par, false));
                    };
                    pool.install(|| acc.block(&mut call, reps[c][i]));
                }
            }
        }
        for &c in &members {
            let accs = std::mem::take(&mut accs[c]);
            results[c].push(accs.into_iter().map(Acc::finish).collect());
        }
    }
    for (c, &(op, p)) in group.iter().enumerate() {
        for (k, &pass) in op.passes().iter().enumerate() {
            let flops = works[c].flops(p, pass);
            for ((t, _), &(secs, diag)) in pools.iter().zip(&results[c][k]) {
                out.diag.push(diag);
                out.rows.push(Row {
                    op: op.name(),
                    n: p.n,
                    b: p.b,
                    batch: p.batch,
                    threads: *t,
                    dtype: dtype_name::<T>(),
                    pass: pass.name(),
                    median_s: secs,
                    gflops: flops / secs * 1e-9,
                });
                tick();
            }
            if let Some(identical) = identical[c][k] {
                out.identity.push(Identity {
                    op: op.name(),
                    n: p.n,
                    b: p.b,
                    batch: p.batch,
                    dtype: dtype_name::<T>(),
                    pass: pass.name(),
                    identical,
                });
            }
        }
    }
    Ok(())
}

/// Splits the point-major case list into groups of consecutive cases with the same key (the ops
/// compared at one point: the structured ops, dense at the same `(n, batch)`, Cayley at `n/b`
/// blocks, see [`Grid::cases`]).
fn point_groups<'a>(grid: &Grid, cases: &'a [(Op, Point)]) -> Vec<&'a [(Op, Point)]> {
    cases
        .chunk_by(|a, b| grid.point_key(&a.1) == grid.point_key(&b.1))
        .collect()
}

fn load_average() -> Option<String> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
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
    let diag_rows: Vec<DiagRow> = sw
        .rows
        .iter()
        .zip(&sw.diag)
        .map(|(r, d)| DiagRow {
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
    let targets = evaluate_targets(&sw, cfg);
    let summary = summary_json(run, cfg, &sw, &targets, load_start, elapsed);
    run.write_json("summary.json", &summary)?;
    plot::register_font()?;
    write_figures(run, cfg, &sw)?;
    print_report(cfg, &sw, &targets, elapsed);
    println!("outputs written to {}", run.out.display());
    Ok(())
}

/// Finds the row of `op` at `p` (row conventions applied), `threads`, `dtype`, `pass`.
fn find<'a>(
    sw: &'a Sweep,
    grid: &Grid,
    op: Op,
    p: Point,
    threads: usize,
    dtype: &str,
    pass: Pass,
) -> Option<&'a Row> {
    find_index(sw, grid, op, p, threads, dtype, pass).map(|i| &sw.rows[i])
}

/// The index of the row [`find`] returns.
fn find_index(
    sw: &Sweep,
    grid: &Grid,
    op: Op,
    p: Point,
    threads: usize,
    dtype: &str,
    pass: Pass,
) -> Option<usize> {
    let p = grid.point_for(op, p);
    sw.rows.iter().position(|r| {
        r.op == op.name()
            && r.n == p.n
            && r.b == p.b
            && r.batch == p.batch
            && r.threads == threads
            && r.dtype == dtype
            && r.pass == pass.name()
    })
}

/// One evaluated target.
#[derive(Clone, Debug, Serialize)]
struct Target {
    name: &'static str,
    description: String,
    /// The measured value (`null` if a needed row is missing, e.g. only one thread count).
    measured: Value,
    requirement: &'static str,
    /// `null` when not measured.
    pass: Option<bool>,
    /// Load-robust cross-check (not the target's definition): the same ratio from the **CPU
    /// time** per call of the **1-thread** runs, which other load on the machine barely changes
    /// (a time-sliced thread accrues no CPU time while it waits).
    cross_check_1t_cpu: Option<f64>,
    /// Largest run-queue wait / wall time among the rows the target reads: how much other load
    /// disturbed it (0 = undisturbed; see `Diag::runq_wait_s`).
    max_runq_wait_fraction: Option<f64>,
}

fn ratio_target(
    name: &'static str,
    description: String,
    value: Option<f64>,
    cross_check: Option<f64>,
    requirement: &'static str,
    ok: impl Fn(f64) -> bool,
) -> Target {
    Target {
        name,
        description,
        measured: value.map_or(Value::Null, |v| json!(v)),
        requirement,
        pass: value.map(ok),
        cross_check_1t_cpu: cross_check,
        max_runq_wait_fraction: None,
    }
}

/// The targets with [`Target::max_runq_wait_fraction`] filled in from the rows each one reads.
fn evaluate_targets(sw: &Sweep, cfg: &Config) -> Vec<Target> {
    let g = &cfg.grid;
    let tp = g.target;
    let t_hi = *cfg.threads.iter().max().unwrap_or(&1);
    let big = Point { n: g.big_n, ..tp };
    let both = |op, pass| vec![(op, tp, t_hi, pass), (op, tp, 1, pass)];
    let uses: [Vec<(Op, Point, usize, Pass)>; 6] = [
        [both(Op::Gs, Pass::Fwd), both(Op::Dense, Pass::Fwd)].concat(),
        [both(Op::Gs, Pass::FwdBwd), both(Op::Dense, Pass::FwdBwd)].concat(),
        [both(Op::Boft, Pass::Fwd), both(Op::Gs, Pass::Fwd)].concat(),
        [both(Op::Cayley, Pass::FwdBwd), both(Op::Gs, Pass::FwdBwd)].concat(),
        vec![
            (Op::Gs, big, 1, Pass::FwdBwd),
            (Op::Gs, big, t_hi, Pass::FwdBwd),
        ],
        Vec::new(),
    ];
    let mut targets = target_values(sw, cfg);
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
    let m_boft = boft_factors(tp.n / tp.b);
    let big = Point { n: g.big_n, ..tp };
    let fwd_ids: Vec<&Identity> = sw
        .identity
        .iter()
        .filter(|i| i.pass == "fwd" && i.op != "dense")
        .collect();
    vec![
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
            name: "fwd_bitwise_identical_threads",
            description: format!(
                "forward outputs bitwise identical on 1 and {t_hi} threads for every structured op and the Cayley map ({} comparisons)",
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
    ]
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

fn summary_json(
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
            .filter(|i| i.pass == pass && i.op != "dense")
            .collect();
        (!v.is_empty()).then(|| v.iter().all(|i| i.identical))
    };
    let mismatches: Vec<&Identity> = sw.identity.iter().filter(|i| !i.identical).collect();
    let fractions: Vec<Value> = Op::ALL
        .iter()
        .filter(|&&op| op != Op::Dense)
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
        "dense_bitwise_identical_1_vs_2_threads": sw.identity.iter().filter(|i| i.op == "dense").all(|i| i.identical),
        "bitwise_comparisons": sw.identity.len(),
        "bitwise_mismatches": mismatches,
        "fraction_of_dense_at_target": fractions,
        "flop_convention": "2 per multiply-add; chain fwd 2*batch*sum_i k_i*b1_i*b2_i, dense fwd 2*batch*n^2, fwdbwd = 3*fwd; cayley fwd k*(8/3)b^3, fwdbwd k*(20/3)b^3; orthogs_step = GS fwdbwd + cayley fwdbwd of 2n/b blocks",
    })
}

fn write_figures(run: &Run, cfg: &Config, sw: &Sweep) -> Result<()> {
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
        for op in Op::ALL.iter().filter(|op| op.passes().contains(&pass)) {
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
    let ops: Vec<Op> = Op::ALL.into_iter().filter(|&o| o != Op::Dense).collect();
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

fn print_report(cfg: &Config, sw: &Sweep, targets: &[Target], elapsed: f64) {
    let g = &cfg.grid;
    let tp = g.target;
    let header = [
        "op",
        "pass",
        "threads",
        "median ms",
        "GFLOP/s",
        "/ dense",
        "cpu ms",
        "runq ms",
        "faults",
    ];
    let mut rows = Vec::new();
    for op in Op::ALL {
        for &pass in op.passes() {
            for &t in &cfg.threads {
                let p = g.point_for(op, tp);
                if let Some(i) = find_index(sw, g, op, p, t, "f32", pass) {
                    let r = &sw.rows[i];
                    rows.push(vec![
                        op.name().to_string(),
                        pass.name().to_string(),
                        t.to_string(),
                        format!("{:.3}", r.median_s * 1e3),
                        format!("{:.1}", r.gflops),
                        format!("{:.2}", fraction_of_dense(sw, cfg, op, p, t, pass)),
                        format!("{:.3}", sw.diag[i].cpu_s * 1e3),
                        format!("{:.3}", sw.diag[i].runq_wait_s * 1e3),
                        format!("{:.0}", sw.diag[i].faults),
                    ]);
                }
            }
        }
    }
    println!(
        "speed at n={}, b={}, batch={}, f32 ({} measurements in {elapsed:.1} s):",
        tp.n,
        tp.b,
        tp.batch,
        sw.rows.len()
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
