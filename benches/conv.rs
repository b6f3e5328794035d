//! Criterion benchmarks of the convolution kernels against faer's dense GEMM on the
//! im2col-equivalent shape, and of the SOC / GS-SOC layers (issue 14).
//!
//! IDs are `GROUP/CASE/THREADS` (e.g. `conv2d/fwd/t2`), so `cargo bench --bench conv -- conv2d/`
//! or `-- t1` select subsets. Throughput is `Throughput::Elements(flops)`, so criterion's
//! "Gelem/s" reads as **GFLOP/s**:
//! - `conv2d`: `conv2d_forward_into`, f32, 3×3 kernel, batch 128, 64 → 64 channels, 16×16
//!   images; flops `2·batch·h·w·c_out·c_in·k²` (`gslab::count::conv2d_flops`); forward+backward
//!   (`conv2d_backward_into`, input and kernel gradients) counted as 3× the forward
//!   (`gslab::count::fwd_bwd_flops`).
//! - `gemm`: faer `matmul` `C = A·B` with `A` 64 × 576, `B` 576 × 32768 (`M = c_out`,
//!   `K = c_in·k²`, `N = batch·h·w`), the product the convolution lowers to, `2·M·K·N` flops
//!   (`gslab::count::dense_flops`);
//!   forward+backward as 3 such products (`C = A·B`, `dA = dC·Bᵀ`, `dB = Aᵀ·dC`).
//! - `layer`: one SOC / GS-SOC layer forward + backward in training mode (5 terms), f32, stride 1,
//!   `c → c` channels: 64 channels on 16×16 images (batch 4), 256 channels on 8×8 images
//!   (batch 2). Variants `soc`, `gs4` (`(4, −)`), `gs4_1`, `gs4_2`, `gs4_4`. Throughput is the
//!   batch (images/s), so the time ratios are the speedups.
//!
//! - `gemm/square1024`: a square 1024³ faer GEMM, the machine's dense rate, for context.
//!
//! `GSLAB_CONV_ROUNDS=15 cargo bench --bench conv` prints instead an interleaved best-of-15
//! table of all cases with the target ratios (conv2d / GEMM rate, GS-SOC / SOC time): each round
//! runs every case once, so a busy phase of the shared machine hits all cases alike.
//!
//! Every case runs in its own rayon pool of 1 and of 2 threads, with `Par::rayon(0)` meaning
//! "all threads of that pool" (the `speed` experiment pins its workers and keeps freed memory in
//! the heap; these benches measure the library as a user gets it). The setup functions
//! (`conv_case`, `gemm_case`, `layer_case`) build the inputs and return the closure that is
//! timed. The `speed` experiment measures the same cases (its `conv2d`, `conv_gemm`, `soc`,
//! `gs_soc_4` and `gs_soc_4x2` rows, with the same sizes, products and FLOP counts) and
//! evaluates the targets in its `summary.json`.

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use gslab::count::{conv2d_flops, dense_flops, fwd_bwd_flops};
use gslab::kernels::conv::{ConvGeom, conv2d_backward_into, conv2d_forward_into};
use gslab::orthogonal::conv::{GsSoc, Mode, SocSettings};
use gslab::{Tape, Tensor};
use rand::{SeedableRng, rngs::StdRng};
use std::hint::black_box;
use std::time::Duration;

type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// The convolution: batch 128, 64 → 64 channels, 16×16, 3×3, one group.
const CONV: (usize, usize, usize, usize, usize) = (128, 64, 16, 16, 3);

/// A timed convolution: returns its flops and a closure running forward (or forward+backward).
pub fn conv_case(
    (batch, c, h, w, k): (usize, usize, usize, usize, usize),
    groups: usize,
    with_backward: bool,
) -> (u64, impl FnMut() + Send) {
    let geom = ConvGeom::new(c, c, h, w, k, groups).expect("geometry");
    let mut r = StdRng::seed_from_u64(1);
    let x = Tensor::<f32>::randn(&[batch, c, h, w], 1.0, &mut r);
    let wt = Tensor::<f32>::randn(&geom.kernel_shape(), 0.1, &mut r);
    let dy = Tensor::<f32>::randn(&[batch, c, h, w], 1.0, &mut r);
    let (mut y, mut dx, mut dw) = (
        Tensor::zeros(x.shape()),
        Tensor::zeros(x.shape()),
        Tensor::zeros(wt.shape()),
    );
    let fwd = conv2d_flops(&geom, batch);
    let flops = if with_backward {
        fwd_bwd_flops(fwd)
    } else {
        fwd
    } as u64;
    let run = move || {
        conv2d_forward_into(black_box(&x), &wt, groups, &mut y, Par::rayon(0));
        if with_backward {
            conv2d_backward_into(
                (&x, &wt, groups),
                &dy,
                Some(&mut dx),
                Some(&mut dw),
                Par::rayon(0),
            );
        }
    };
    (flops, run)
}

/// The im2col-equivalent GEMM of a convolution, `(c_out × c_in·k²) · (c_in·k² × batch·h·w)`:
/// returns its flops and a closure running it (3 products with `with_backward`).
pub fn gemm_case(
    (batch, c, h, w, k): (usize, usize, usize, usize, usize),
    with_backward: bool,
) -> (u64, impl FnMut() + Send) {
    let (m, kk, n) = (c, c * k * k, batch * h * w);
    let mut r = StdRng::seed_from_u64(2);
    let mat = |rows: usize, cols: usize, r: &mut StdRng| {
        Tensor::<f32>::randn(&[rows, cols], 1.0, r).to_mat()
    };
    let (a, b, dc) = (mat(m, kk, &mut r), mat(kk, n, &mut r), mat(m, n, &mut r));
    let (mut cm, mut da, mut db) = (
        Mat::<f32>::zeros(m, n),
        Mat::<f32>::zeros(m, kk),
        Mat::<f32>::zeros(kk, n),
    );
    let fwd = dense_flops(m, kk, n);
    let flops = if with_backward {
        fwd_bwd_flops(fwd)
    } else {
        fwd
    } as u64;
    let run = move || {
        let par = Par::rayon(0);
        matmul(
            cm.as_mut(),
            Accum::Replace,
            black_box(a.as_ref()),
            b.as_ref(),
            1.0,
            par,
        );
        if with_backward {
            matmul(
                da.as_mut(),
                Accum::Replace,
                dc.as_ref(),
                b.transpose(),
                1.0,
                par,
            );
            matmul(
                db.as_mut(),
                Accum::Replace,
                a.transpose(),
                dc.as_ref(),
                1.0,
                par,
            );
        }
    };
    (flops, run)
}

/// A square faer GEMM `C = A·B` of size `n` (`2n³` flops): the machine's dense GEMM rate, for
/// context.
pub fn square_gemm_case(n: usize) -> (u64, impl FnMut() + Send) {
    let mut r = StdRng::seed_from_u64(4);
    let a = Tensor::<f32>::randn(&[n, n], 1.0, &mut r).to_mat();
    let b = Tensor::<f32>::randn(&[n, n], 1.0, &mut r).to_mat();
    let mut c = Mat::<f32>::zeros(n, n);
    let run = move || {
        matmul(
            c.as_mut(),
            Accum::Replace,
            black_box(a.as_ref()),
            b.as_ref(),
            1.0,
            Par::rayon(0),
        );
    };
    (2 * (n * n * n) as u64, run)
}

/// The layer variants of the speed comparison: (id, `(g₁, g₂)`; `(1, None)` is plain SOC).
pub const LAYERS: [(&str, (usize, Option<usize>)); 5] = [
    ("soc", (1, None)),
    ("gs4", (4, None)),
    ("gs4_1", (4, Some(1))),
    ("gs4_2", (4, Some(2))),
    ("gs4_4", (4, Some(4))),
];

/// The layer sizes of the speed comparison: (channels, image side, batch).
pub const LAYER_SIZES: [(usize, usize, usize); 2] = [(64, 16, 4), (256, 8, 2)];

/// One training step's forward + backward of a `c → c`, stride-1, 3×3 SOC / GS-SOC layer
/// (paired shuffles, 5 terms, power iteration included) on a `(batch, c, side, side)` f32 input,
/// with the input gradient: returns the closure that runs it.
pub fn layer_case(
    (c, side, batch): (usize, usize, usize),
    groups: (usize, Option<usize>),
) -> impl FnMut() + Send {
    let mut r = StdRng::seed_from_u64(3);
    let mut layer = GsSoc::<f32>::new(
        (c, c),
        (3, 1),
        groups,
        groups.0 > 1,
        SocSettings::default(),
        &mut r,
    )
    .expect("layer");
    let x = Tensor::<f32>::randn(&[batch, c, side, side], 1.0, &mut r);
    let proj = Tensor::<f32>::randn(&[batch, c, side, side], 1.0, &mut r);
    move || {
        let tape = Tape::new();
        let xv = tape.leaf(black_box(&x).clone());
        let (y, leaves) = layer.forward(&tape, xv, Mode::Train);
        let grads = tape.backward(y.mul(tape.constant(proj.clone())).sum());
        let g: Vec<Tensor<f32>> = leaves.iter().map(|&v| grads.wrt(v)).collect();
        black_box((grads.wrt(xv), g));
    }
}

fn pools() -> Vec<(usize, rayon::ThreadPool)> {
    [1, 2]
        .into_iter()
        .map(|t| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(t).build();
            (t, pool.expect("pool"))
        })
        .collect()
}

fn timed(
    g: &mut Group<'_>,
    name: &str,
    threads: usize,
    pool: &rayon::ThreadPool,
    (flops, mut run): (u64, impl FnMut() + Send),
) {
    g.throughput(Throughput::Elements(flops));
    g.bench_function(BenchmarkId::new(name, format!("t{threads}")), |bch| {
        bch.iter(|| pool.install(&mut run))
    });
}

fn bench_conv(c: &mut Criterion) {
    let pools = pools();
    let mut g = c.benchmark_group("conv2d");
    for (t, pool) in &pools {
        timed(&mut g, "fwd", *t, pool, conv_case(CONV, 1, false));
        timed(&mut g, "fwdbwd", *t, pool, conv_case(CONV, 1, true));
    }
    g.finish();
    let mut g = c.benchmark_group("gemm");
    for (t, pool) in &pools {
        timed(&mut g, "fwd", *t, pool, gemm_case(CONV, false));
        timed(&mut g, "fwdbwd", *t, pool, gemm_case(CONV, true));
        timed(&mut g, "square1024", *t, pool, square_gemm_case(1024));
    }
    g.finish();
}

fn bench_layers(c: &mut Criterion) {
    let pools = pools();
    let mut g = c.benchmark_group("layer");
    for size in LAYER_SIZES {
        for (name, groups) in LAYERS {
            for (t, pool) in &pools {
                let mut run = layer_case(size, groups);
                g.throughput(Throughput::Elements(size.2 as u64));
                let id = format!("{name}_c{}_s{}_b{}", size.0, size.1, size.2);
                g.bench_function(BenchmarkId::new(id, format!("t{t}")), |bch| {
                    bch.iter(|| pool.install(&mut run))
                });
            }
        }
    }
    g.finish();
}

/// A timed case behind a box, for a list of mixed cases.
fn boxed<F: FnMut() + Send + 'static>((work, run): (u64, F)) -> (u64, Box<dyn FnMut() + Send>) {
    (work, Box::new(run))
}

/// Interleaved best-of-`rounds` timings of every case, printed as a table: in each round every
/// case runs once (after one warm-up round), so slow phases of a shared machine hit all cases
/// alike; the table gives the best time of each case, its rate and the ratios the issue's
/// targets are stated in (convolution vs GEMM, GS-SOC vs SOC).
fn interleaved(rounds: usize) {
    println!("interleaved best of {rounds} rounds (f32)");
    for (t, pool) in pools() {
        pool.install(|| {
            type Case = (String, u64, Box<dyn FnMut() + Send>);
            let mut cases: Vec<Case> = Vec::new();
            let mut push = |name: &str, (work, run): (u64, Box<dyn FnMut() + Send>)| {
                cases.push((name.to_string(), work, run))
            };
            push("conv2d/fwd", boxed(conv_case(CONV, 1, false)));
            push("gemm/fwd", boxed(gemm_case(CONV, false)));
            push("conv2d/fwdbwd", boxed(conv_case(CONV, 1, true)));
            push("gemm/fwdbwd", boxed(gemm_case(CONV, true)));
            push("gemm/square1024", boxed(square_gemm_case(1024)));
            for size in LAYER_SIZES {
                for (name, groups) in LAYERS {
                    let id = format!("layer/{name}_c{}_s{}_b{}", size.0, size.1, size.2);
                    push(&id, (size.2 as u64, Box::new(layer_case(size, groups))));
                }
            }
            let mut best = vec![f64::INFINITY; cases.len()];
            for round in 0..=rounds {
                for (j, (_, _, run)) in cases.iter_mut().enumerate() {
                    let t0 = std::time::Instant::now();
                    run();
                    if round > 0 {
                        best[j] = best[j].min(t0.elapsed().as_secs_f64());
                    }
                }
            }
            let at = |name: &str| best[cases.iter().position(|c| c.0 == name).expect("case")];
            for (j, (name, work, _)) in cases.iter().enumerate() {
                let rate = if name.starts_with("layer") {
                    format!("{:.1} images/s", *work as f64 / best[j])
                } else {
                    format!("{:.1} GFLOP/s", *work as f64 / best[j] / 1e9)
                };
                let ratio = if let Some(rest) = name.strip_prefix("conv2d/") {
                    format!(
                        "conv / GEMM rate {:.2}",
                        at(&format!("gemm/{rest}")) / best[j]
                    )
                } else if name.starts_with("layer/") {
                    let soc = name.replacen(name.split('_').next().unwrap_or(""), "layer/soc", 1);
                    let soc = soc
                        .replace("_1_c", "_c")
                        .replace("_2_c", "_c")
                        .replace("_4_c", "_c");
                    format!("time / SOC {:.2}", best[j] / at(&soc))
                } else {
                    String::new()
                };
                println!(
                    "t{t} {name:<28} {:>9.3} ms  {rate:>20}  {ratio}",
                    best[j] * 1e3
                );
            }
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .without_plots();
    targets = bench_conv, bench_layers
}
/// `cargo bench --bench conv` runs the criterion benchmarks; with `GSLAB_CONV_ROUNDS=N` in the
/// environment it prints the interleaved best-of-`N` table instead ([`interleaved`]).
fn main() {
    if let Some(rounds) = std::env::var("GSLAB_CONV_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        interleaved(rounds);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
