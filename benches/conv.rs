//! Criterion benchmarks of the convolution kernels against faer's dense GEMM on the
//! im2col-equivalent shape, and of the SOC / GS-SOC layers (issue 14).
//!
//! IDs are `GROUP/CASE/THREADS` (e.g. `conv2d/fwd/t2`), so `cargo bench --bench conv -- conv2d/`
//! or `-- t1` select subsets. Throughput is `Throughput::Elements(flops)`, so criterion's
//! "Gelem/s" reads as **GFLOP/s**:
//! - `conv2d`: `conv2d_forward_into`, f32, 3×3 kernel, batch 128, 64 → 64 channels, 16×16
//!   images; flops `2·batch·h·w·c_out·c_in·k²` ([`ConvGeom::flops`]); forward+backward
//!   (`conv2d_backward_into`, input and kernel gradients) counted as 3× the forward.
//! - `gemm`: faer `matmul` `C = A·B` with `A` 64 × 576, `B` 576 × 32768 (`M = c_out`,
//!   `K = c_in·k²`, `N = batch·h·w`), the product the convolution lowers to, `2·M·K·N` flops;
//!   forward+backward as 3 such products (`C = A·B`, `dA = dC·Bᵀ`, `dB = Aᵀ·dC`).
//! - `layer`: one SOC / GS-SOC layer forward + backward in training mode (5 terms), f32, stride 1,
//!   `c → c` channels: 64 channels on 16×16 images (batch 16), 256 channels on 8×8 images
//!   (batch 8). Variants `soc`, `gs4` (`(4, −)`), `gs4_1`, `gs4_2`, `gs4_4`. Throughput is the
//!   batch (images/s), so the time ratios are the speedups.
//!
//! Every case runs in its own rayon pool of 1 and of 2 threads (`gslab::threads::pool`, workers
//! pinned), with `Par::rayon(0)` meaning "all threads of that pool". The setup functions
//! (`conv_case`, `gemm_case`, `layer_case`) build the inputs and return the closure that is
//! timed, so the `speed` experiment can reuse them.

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use gslab::Tensor;
use gslab::kernels::conv::{ConvGeom, conv2d_backward_into, conv2d_forward_into};
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
    let flops = geom.flops(batch) * if with_backward { 3 } else { 1 };
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
    let flops = 2 * (m * kk * n) as u64 * if with_backward { 3 } else { 1 };
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

fn pools() -> Vec<(usize, rayon::ThreadPool)> {
    [1, 2]
        .into_iter()
        .map(|t| (t, gslab::threads::pool(t, true).expect("pool")))
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
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .without_plots();
    targets = bench_conv
}
criterion_main!(benches);
