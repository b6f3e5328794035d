//! Criterion benchmarks of the structured chain kernels against faer's dense GEMM, the Cayley
//! map and one full `OrthoGs` training step.
//!
//! IDs are `OP/PASS/nN_bB_BBATCH` (e.g. `gs/fwd/n1024_b32_B256`), so `cargo bench -- gs/` or
//! `cargo bench -- n1024` select subsets. Throughput is `Throughput::Elements(flops)`, so
//! criterion's "Gelem/s" reads as **GFLOP/s**, with the FLOP model of `gslab::count` (2 per
//! multiply-add; permutations are free): chain forward `2·batch·Σ_i k_i·b_i¹·b_i²` (GS `m = 2`:
//! `2·batch·2·n·b`), dense forward `2·batch·n²`, forward+backward 3× forward (backward = data +
//! weight gradients = 2× forward); Cayley of `k` blocks `b × b`: forward `k·(8/3)·b³` (LU + `b`
//! right-hand sides), with backward `k·(20/3)·b³`; a training step: GS forward+backward plus the
//! Cayley forward+backward of both factors.
//!
//! Everything runs on rayon's global pool (all cores) with `Par::rayon(0)`; see the `speed`
//! binary for separate 1- and 2-thread pools.
//!
//! **Grid and pruning** (f32 unless noted; `n ∈ {256, 1024, 4096}`, `b ∈ {16, 32, 64}`,
//! `batch ∈ {32, 256}`), 83 benchmarks, a few seconds each with the config below:
//! - `gs` (GSOFT, `m = 2`): the full grid, forward and forward+backward (36).
//! - `gs_chain3` (3 factors), `boft` (`1 + log2 r` factors, `r = n/b`, which makes it dense),
//!   `block_diag`: `n = 1024`, batch 256, every `b` (6 each).
//! - `monarch`: square blocks only, `b = √n` (16, 32, 64 for the three `n`), batch 256 (6).
//! - `dense` (faer GEMM `Y = X·Wᵀ`, backward `dX = dY·W`, `dW = dYᵀ·X`): every `n`, batch 256,
//!   flat sampling (one `n = 4096` forward+backward is ~0.2–0.5 s) (6).
//! - `cayley`: 32 blocks of 32×32, forward and with backward (2).
//! - `orthogs_step`: one training step (Cayley, product, backward, Adam) at `n = 1024`, `b = 32`,
//!   batch 256 (1).
//! - `gs_breakdown`: at `n = 1024`, `b = 32`, batch 256: forward, forward saving the factor
//!   inputs, the transposed chain alone, `chain_backward` alone (4).
//! - `f64`: GS and dense forward at `n = 1024`, `b = 32`, batch 256 (2).
//! - `shuffle_gather`: the GS shuffle gather of that forward, SIMD tiled transposition against
//!   the element-by-element indexed gather (2).
//! - `batch_inverse`: the Cayley forward's 32 inversions of 32 × 32 blocks, one block at a time
//!   against the interleaved SIMD groups, f32 and f64 (4).
//! - `cross_core_write`: writing 256 KiB that the other worker of a 2-thread pool has just read,
//!   against memory only the writing thread touched (2): why the kernels keep per-worker buffers.
//!
//! `cargo bench -- --test` runs every benchmark once (a few seconds).

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main,
};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use gslab::Params;
use gslab::count::{cayley_flops, chain_flops, dense_flops, fwd_bwd_flops, orthogs_step_flops};
use gslab::kernels::batch_inv::invert_unpivoted_blocks;
use gslab::kernels::chain::{
    chain_backward, chain_backward_into, chain_forward, chain_forward_into, chain_forward_saved,
    chain_forward_saved_into, chain_forward_t,
};
use gslab::kernels::small_inv::invert_unpivoted_in_place;
use gslab::kernels::transpose::transpose;
use gslab::nn::optim::{Adam, Optimizer};
use gslab::orthogonal::OrthoMap;
use gslab::orthogonal::cayley::{cayley, cayley_with_inverse, skew_dim, skew_from_free};
use gslab::orthogonal::{OrthoGs, OrthoLayer};
use gslab::structured::pattern::boft_formula;
use gslab::structured::{BlockDiag, BlockShape, Butterfly, Gs, GsChain, LinearOp, Monarch};
use gslab::{Blocks, Real, Tape, Tensor};
use rand::{SeedableRng, rngs::StdRng};
use std::hint::black_box;
use std::time::Duration;

const NS: [usize; 3] = [256, 1024, 4096];
const BS: [usize; 3] = [16, 32, 64];
const BATCHES: [usize; 2] = [32, 256];
/// The reference point.
const N0: usize = 1024;
const B0: usize = 32;
const BATCH0: usize = 256;

type Group<'a> = BenchmarkGroup<'a, WallTime>;

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn id(n: usize, b: usize, batch: usize) -> String {
    format!("n{n}_b{b}_B{batch}")
}

/// Registers `fwd` and `fwdbwd` of a chain operator on `batch` random rows, writing into
/// preallocated outputs (the `_into` kernels) as the dense baseline does.
fn chain_pair<T: Real, O: LinearOp<T>>(g: &mut Group<'_>, op: &O, b: usize, batch: usize) {
    let (n_out, n_in) = op.shape();
    let mut r = rng(7);
    let x = Tensor::<T>::randn(&[batch, n_in], 1.0, &mut r);
    let dy = Tensor::<T>::randn(&[batch, n_out], 1.0, &mut r);
    let blocks = op.blocks().into_owned();
    let (layout, blocks) = (op.layout(), &blocks[..]);
    let (mut y, mut dx) = (
        Tensor::zeros(&[batch, n_out]),
        Tensor::zeros(&[batch, n_in]),
    );
    let mut dbs: Vec<Tensor<T>> = blocks.iter().map(|t| Tensor::zeros(t.shape())).collect();
    let fwd = chain_flops(layout.macs_per_vector(), batch);
    let name = id(n_in, b, batch);
    g.throughput(Throughput::Elements(fwd as u64));
    g.bench_function(BenchmarkId::new("fwd", &name), |bch| {
        bch.iter(|| chain_forward_into(layout, blocks, black_box(&x), &mut y, Par::rayon(0)))
    });
    g.throughput(Throughput::Elements(fwd_bwd_flops(fwd) as u64));
    g.bench_function(BenchmarkId::new("fwdbwd", &name), |bch| {
        bch.iter(|| {
            let par = Par::rayon(0);
            let saved = chain_forward_saved_into(layout, blocks, black_box(&x), &mut y, par);
            chain_backward_into(layout, blocks, (&x, &saved), &dy, (&mut dx, &mut dbs), par);
        })
    });
}

/// `2·n/b`-independent dense GEMM `Y = X·Wᵀ` (and its backward) at `(n, batch)`.
fn dense_pair<T: Real>(g: &mut Group<'_>, n: usize, batch: usize, with_bwd: bool) {
    let mut r = rng(11);
    let mat = |rows, cols, r: &mut StdRng| Tensor::<T>::randn(&[rows, cols], 1.0, r).to_mat();
    let (w, x, dy) = (
        mat(n, n, &mut r),
        mat(batch, n, &mut r),
        mat(batch, n, &mut r),
    );
    let (mut y, mut dx, mut dw) = (
        Mat::<T>::zeros(batch, n),
        Mat::zeros(batch, n),
        Mat::zeros(n, n),
    );
    let fwd = dense_flops(n, n, batch);
    let par = Par::rayon(0);
    let one = T::one();
    let name = id(n, n, batch);
    g.throughput(Throughput::Elements(fwd as u64));
    g.bench_function(BenchmarkId::new("fwd", &name), |bch| {
        bch.iter(|| {
            matmul(
                y.as_mut(),
                Accum::Replace,
                black_box(&x),
                w.transpose(),
                one,
                par,
            )
        })
    });
    if !with_bwd {
        return;
    }
    g.throughput(Throughput::Elements(fwd_bwd_flops(fwd) as u64));
    g.bench_function(BenchmarkId::new("fwdbwd", &name), |bch| {
        bch.iter(|| {
            matmul(
                y.as_mut(),
                Accum::Replace,
                black_box(&x),
                w.transpose(),
                one,
                par,
            );
            matmul(dx.as_mut(), Accum::Replace, &dy, &w, one, par);
            matmul(dw.as_mut(), Accum::Replace, dy.transpose(), &x, one, par);
        })
    });
}

fn bench_gs(c: &mut Criterion) {
    let mut g = c.benchmark_group("gs");
    for n in NS {
        for b in BS {
            let op = Gs::<f32>::gsoft_random(Blocks::size(n, b).expect("blocks"), &mut rng(1))
                .expect("gs");
            for batch in BATCHES {
                chain_pair(&mut g, &op, b, batch);
            }
        }
    }
    g.finish();
}

fn bench_others(c: &mut Criterion) {
    let mut g = c.benchmark_group("gs_chain3");
    for b in BS {
        let f = [BlockShape::square(N0 / b, b); 3];
        let op = GsChain::<f32>::random_shuffled(&f, &mut rng(2)).expect("gs chain");
        chain_pair(&mut g, &op, b, BATCH0);
    }
    g.finish();
    let mut g = c.benchmark_group("boft");
    for b in BS {
        let blocks = Blocks::size(N0, b).expect("blocks");
        let m = boft_formula(blocks).expect("r is a power of 2: a dense butterfly exists");
        let op = Butterfly::<f32>::random(blocks, m, &mut rng(3)).expect("boft");
        chain_pair(&mut g, &op, b, BATCH0);
    }
    g.finish();
    let mut g = c.benchmark_group("block_diag");
    for b in BS {
        let op = BlockDiag::<f32>::random(BlockShape::square(N0 / b, b), &mut rng(4))
            .expect("block diag");
        chain_pair(&mut g, &op, b, BATCH0);
    }
    g.finish();
    let mut g = c.benchmark_group("monarch");
    for (n, b) in NS.into_iter().zip(BS) {
        let op = Monarch::<f32>::random_square(Blocks::count(n, b).expect("blocks"), &mut rng(5))
            .expect("monarch");
        chain_pair(&mut g, &op, b, BATCH0);
    }
    g.finish();
    let mut g = c.benchmark_group("dense");
    g.sampling_mode(SamplingMode::Flat);
    for n in NS {
        dense_pair::<f32>(&mut g, n, BATCH0, true);
    }
    g.finish();
}

fn bench_cayley(c: &mut Criterion) {
    let (k, b) = (N0 / B0, B0);
    let mut r = rng(6);
    let theta = Tensor::<f32>::randn(&[k, skew_dim(b)], 0.1, &mut r);
    let gq = Tensor::<f32>::randn(&[k, b, b], 1.0, &mut r);
    let mut g = c.benchmark_group("cayley");
    let name = format!("k{k}_b{b}");
    g.throughput(Throughput::Elements(cayley_flops(k, b, false) as u64));
    g.bench_function(BenchmarkId::new("fwd", &name), |bch| {
        bch.iter(|| cayley_with_inverse(black_box(&theta), b))
    });
    g.throughput(Throughput::Elements(cayley_flops(k, b, true) as u64));
    g.bench_function(BenchmarkId::new("fwdbwd", &name), |bch| {
        bch.iter(|| {
            let tape = Tape::new();
            let t = tape.leaf(theta.clone());
            let q = cayley(t, b);
            tape.backward_with(q, gq.clone()).wrt(t)
        })
    });
    g.finish();
}

/// The Cayley forward's inversion of the 32 blocks `I − K_j` (32 × 32, f32 and f64): one block
/// at a time (`invert_unpivoted_in_place`) against the interleaved groups of
/// `invert_unpivoted_blocks` (AVX-512 or AVX2 lanes, bitwise the same result). Each iteration
/// restores the input first (a 128 KiB / 256 KiB copy, in both rows). Throughput: `k·b³`
/// multiply-adds as 2 FLOPs each.
fn bench_batch_inverse(c: &mut Criterion) {
    fn pair<T: Real>(g: &mut Group<'_>, k: usize, b: usize) {
        let mut r = rng(8);
        let theta = Tensor::<T>::randn(&[k, skew_dim(b)], 0.1, &mut r);
        // I − K_j for every block, as the Cayley forward builds it.
        let a0: Vec<T> = (skew_from_free(&theta, b).data().iter().enumerate())
            .map(|(e, &v)| {
                if (e % (b * b)).is_multiple_of(b + 1) {
                    T::one()
                } else {
                    -v
                }
            })
            .collect();
        let mut a = a0.clone();
        let mut scratch = Vec::new();
        let name = format!("{}_k{k}_b{b}", T::DTYPE.to_lowercase());
        g.throughput(Throughput::Elements((2 * k * b * b * b) as u64));
        g.bench_function(BenchmarkId::new("one_block", &name), |bch| {
            bch.iter(|| {
                a.copy_from_slice(&a0);
                a.chunks_exact_mut(b * b)
                    .for_each(|blk| invert_unpivoted_in_place(blk, b));
                black_box(&a);
            })
        });
        g.bench_function(BenchmarkId::new("interleaved", &name), |bch| {
            bch.iter(|| {
                a.copy_from_slice(&a0);
                invert_unpivoted_blocks(&mut a, b, &mut scratch);
                black_box(&a);
            })
        });
    }
    let mut g = c.benchmark_group("batch_inverse");
    pair::<f32>(&mut g, N0 / B0, B0);
    pair::<f64>(&mut g, N0 / B0, B0);
    g.finish();
}

/// One training step of an `OrthoGs` layer on `ℓ = ⟨Y, G⟩`: Cayley of both factors, the GS
/// product, backward, Adam.
fn bench_step(c: &mut Criterion) {
    let (n, b, batch) = (N0, B0, BATCH0);
    let k = n / b;
    let mut r = rng(8);
    let mut layer =
        OrthoGs::<f32>::new(Blocks::size(n, b).expect("blocks"), OrthoMap::Cayley).expect("layer");
    let params = (0..2)
        .map(|_| Tensor::randn(&[k, skew_dim(b)], 0.1, &mut r))
        .collect();
    layer.set_params(params).expect("params");
    let x = Tensor::<f32>::randn(&[batch, n], 1.0, &mut r);
    let gy = Tensor::<f32>::randn(&[batch, n], 1.0, &mut r);
    let mut adam = Adam::new(1e-3);
    let flops = orthogs_step_flops(Blocks::size(n, b).expect("blocks"), batch);
    let mut g = c.benchmark_group("orthogs_step");
    g.throughput(Throughput::Elements(flops as u64));
    g.bench_function(BenchmarkId::new("fwdbwd", id(n, b, batch)), |bch| {
        bch.iter(|| {
            let grads = {
                let tape = Tape::new();
                let leaves = layer.leaves(&tape);
                let y = layer.forward_with(tape.constant(x.clone()), &leaves);
                let mut gr = tape.backward_with(y, gy.clone());
                leaves
                    .iter()
                    .map(|l| gr.take(*l).expect("gradient"))
                    .collect::<Vec<_>>()
            };
            adam.step(&mut layer.params_mut(), &grads);
        })
    });
    g.finish();
}

/// Where the GS forward+backward time goes, at the reference point: the plain forward, the
/// forward that saves the factor inputs, the transposed chain alone (the data-gradient flow),
/// and `chain_backward` alone on a saved forward (data flow + weight gradients).
fn bench_breakdown(c: &mut Criterion) {
    let op =
        Gs::<f32>::gsoft_random(Blocks::size(N0, B0).expect("blocks"), &mut rng(1)).expect("gs");
    let blocks = op.blocks().into_owned();
    let (layout, blocks) = (op.layout(), &blocks[..]);
    let mut r = rng(12);
    let x = Tensor::<f32>::randn(&[BATCH0, N0], 1.0, &mut r);
    let dy = Tensor::<f32>::randn(&[BATCH0, N0], 1.0, &mut r);
    let fwd = chain_flops(layout.macs_per_vector(), BATCH0);
    let name = id(N0, B0, BATCH0);
    let par = Par::rayon(0);
    let mut g = c.benchmark_group("gs_breakdown");
    g.throughput(Throughput::Elements(fwd as u64));
    g.bench_function(BenchmarkId::new("fwd", &name), |bch| {
        bch.iter(|| chain_forward(layout, blocks, black_box(&x), par))
    });
    g.bench_function(BenchmarkId::new("fwd_saved", &name), |bch| {
        bch.iter(|| chain_forward_saved(layout, blocks, black_box(&x), par))
    });
    g.bench_function(BenchmarkId::new("fwd_t", &name), |bch| {
        bch.iter(|| chain_forward_t(layout, blocks, black_box(&dy), par))
    });
    let (_, saved) = chain_forward_saved(layout, blocks, &x, par);
    g.throughput(Throughput::Elements((2.0 * fwd) as u64));
    g.bench_function(BenchmarkId::new("bwd", &name), |bch| {
        bch.iter(|| chain_backward(layout, blocks, (&x, &saved), black_box(&dy), par))
    });
    g.finish();
}

/// The f64 point: GS and dense forward at the reference size.
fn bench_f64(c: &mut Criterion) {
    let mut g = c.benchmark_group("f64");
    let op =
        Gs::<f64>::gsoft_random(Blocks::size(N0, B0).expect("blocks"), &mut rng(9)).expect("gs");
    let x = Tensor::<f64>::randn(&[BATCH0, N0], 1.0, &mut rng(10));
    g.throughput(Throughput::Elements(
        chain_flops(op.layout().macs_per_vector(), BATCH0) as u64,
    ));
    g.bench_function(BenchmarkId::new("gs_fwd", id(N0, B0, BATCH0)), |bch| {
        bch.iter(|| chain_forward(op.layout(), &op.blocks(), black_box(&x), Par::rayon(0)))
    });
    g.finish();
    let mut g = c.benchmark_group("f64_dense");
    dense_pair::<f64>(&mut g, N0, BATCH0, false);
    g.finish();
}

/// The GS shuffle gather of one forward at `n = 1024`, `b = 32`, batch 256 (32 blocks, per sample
/// `D[j][v] = S[v][j]` with source rows one panel block apart): the SIMD tiled transposition
/// against the element-by-element indexed gather it replaced. Throughput in elements moved.
fn bench_transpose(c: &mut Criterion) {
    let (k, b, batch) = (N0 / B0, B0, BATCH0);
    let bs = b * batch + 16;
    let src: Vec<f32> = (0..k * bs).map(|i| i as f32).collect();
    let base: Vec<usize> = (0..k * b).map(|f| (f % b) * bs + f / b).collect();
    let mut dst = vec![0f32; k * bs];
    let mut g = c.benchmark_group("shuffle_gather");
    g.throughput(Throughput::Elements((k * b * batch) as u64));
    g.bench_function(BenchmarkId::new("tiled", id(N0, B0, BATCH0)), |bch| {
        bch.iter(|| {
            for s in 0..batch {
                transpose(&mut dst[s * b..], bs, &src[s * b..], bs, k, b);
            }
        })
    });
    g.bench_function(BenchmarkId::new("indexed", id(N0, B0, BATCH0)), |bch| {
        bch.iter(|| {
            for s in 0..batch {
                for (j, bj) in base.chunks_exact(b).enumerate() {
                    let d = &mut dst[j * bs + s * b..j * bs + (s + 1) * b];
                    for (dd, &o) in d.iter_mut().zip(bj) {
                        *dd = src[o + s * b];
                    }
                }
            }
            black_box(&dst);
        })
    });
    g.finish();
}

/// Writing 256 KiB (a chunk's scratch, or a layer's column-major block copy at n = 1024) right
/// after a two-thread region in which the *other* worker read it too (`shared`) or only this
/// thread did (`own`): the cost the kernels avoid by keeping each worker on its own buffers
/// (`kernels::pool`, `kernels::claims`). Needs a 2-thread pool; throughput in bytes written.
fn bench_cross_core(c: &mut Criterion) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("a 2-thread rayon pool");
    let n = 64 * 1024;
    let src = vec![2.0f32; n];
    let mut dst = vec![1.0f32; n];
    let mut g = c.benchmark_group("cross_core_write");
    g.throughput(Throughput::Bytes((n * 4) as u64));
    for shared in [false, true] {
        let name = if shared { "shared" } else { "own" };
        g.bench_function(BenchmarkId::new(name, "256KiB"), |bch| {
            bch.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let sum = |v: &[f32]| black_box(v.iter().sum::<f32>());
                    pool.install(|| {
                        rayon::join(|| sum(&dst), || if shared { sum(&dst) } else { 0.0 })
                    });
                    total += pool.install(|| {
                        let t = std::time::Instant::now();
                        dst.copy_from_slice(&src);
                        black_box(&dst);
                        t.elapsed()
                    });
                }
                total
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    // `without_plots()` is required: plotters' ab_glyph feature is on and criterion registers no
    // font (rust-notes §3, §5).
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .without_plots()
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_gs, bench_others, bench_breakdown, bench_cayley, bench_step, bench_f64,
        bench_transpose, bench_cross_core, bench_batch_inverse
}
criterion_main!(benches);
