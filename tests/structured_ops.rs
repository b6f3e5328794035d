//! Structured operators and the chain kernels, checked against independent computations:
//! - every operator: the fast kernel, `to_dense()` + dense matmul, and the naive
//!   `reference_apply` agree in f64;
//! - digest T10: GSOFT's `y = Pᵀ L P R x` against a hand transcription of the official code's
//!   index arithmetic (digest §8) and against explicit 0/1 permutation matrices;
//! - BOFT against the explicit product of `P_i B_i P_iᵀ`;
//! - gradcheck of `chain_apply`; thread-count independence.
//!
//! Constructor errors, panics and the `_into` contracts: `tests/structured_contracts.rs`.

use gslab::autodiff::ops::chain::chain_apply;
use gslab::count::chain_flops;
use gslab::kernels::chain::{chain_backward, chain_forward, chain_forward_saved, chunk_rows};
use gslab::kernels::reference::{reference_apply, reference_dense};
use gslab::structured::*;
use gslab::{Blocks, Perm, Tape, Tensor, Var, gradcheck};
use std::sync::Arc;

mod common;
use common::{blocks_kb, rng};
use rand::rngs::StdRng;

/// Saved forward then backward of `op` on `x` with output gradient `dy`: `(Y, dX, [dB_i])`.
fn forward_backward<T: gslab::Real, O: LinearOp<T> + ?Sized>(
    op: &O,
    x: &Tensor<T>,
    dy: &Tensor<T>,
    par: faer::Par,
) -> (Tensor<T>, Tensor<T>, Vec<Tensor<T>>) {
    let (y, saved) = chain_forward_saved(op.layout(), &op.blocks(), x, par);
    let (dx, dbs) = chain_backward(op.layout(), &op.blocks(), (x, &saved), dy, par);
    (y, dx, dbs)
}

fn max_diff(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.data()
        .iter()
        .zip(b.data())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Fast kernel vs `to_dense()` + matmul vs naive `reference_apply`, forward and transposed.
fn check_three_ways(name: &str, op: &dyn LinearOp<f64>, batch: usize, seed: u64) {
    let (n_out, n_in) = op.shape();
    let x = Tensor::<f64>::randn(&[batch, n_in], 1.0, &mut rng(seed));
    let fast = op.apply(&x);
    let dense = op.to_dense();
    assert_eq!(dense.shape(), &[n_out, n_in], "{name}");
    let via_dense = x.matmul_t(false, &dense, true);
    let mut naive = Tensor::zeros(&[batch, n_out]);
    for s in 0..batch {
        let y = reference_apply(
            op.layout(),
            &op.blocks(),
            &x.data()[s * n_in..(s + 1) * n_in],
        );
        naive.data_mut()[s * n_out..(s + 1) * n_out].copy_from_slice(&y);
    }
    let scale = 1.0 + naive.max_abs();
    assert!(
        max_diff(&fast, &naive) < 1e-13 * scale,
        "{name}: kernel vs reference"
    );
    assert!(
        max_diff(&via_dense, &naive) < 1e-13 * scale,
        "{name}: dense vs reference"
    );
    let ref_dense = reference_dense(op.layout(), &op.blocks());
    assert!(
        max_diff(&dense, &ref_dense) < 1e-14 * (1.0 + ref_dense.max_abs()),
        "{name}: to_dense"
    );
    // apply_t(X) = X·A, against the reference dense matrix.
    let xt = Tensor::<f64>::randn(&[batch, n_out], 1.0, &mut rng(seed + 1));
    let want = xt.matmul(&ref_dense);
    assert!(
        max_diff(&op.apply_t(&xt), &want) < 1e-13 * (1.0 + want.max_abs()),
        "{name}: apply_t"
    );
}

/// The reversal `σ(i) = n − 1 − i`.
fn rev(n: usize) -> Perm {
    Perm::from_vec((0..n).rev().collect()).unwrap()
}

fn operators() -> Vec<(&'static str, Box<dyn LinearOp<f64>>)> {
    let r = &mut rng(11);
    let gs_perms = |r: &mut StdRng| (Perm::random(15, r), Perm::random(12, r), Perm::random(8, r));
    let (pl, p, pr) = gs_perms(r);
    let chain_f = vec![
        BlockShape::new(4, 3, 2),
        BlockShape::new(3, 2, 4),
        BlockShape::new(2, 5, 3),
    ];
    let chain_p = vec![
        Perm::random(8, r),
        Perm::random(12, r),
        Perm::random(6, r),
        Perm::random(10, r),
    ];
    vec![
        (
            "BlockDiag 3x(4x2)",
            Box::new(BlockDiag::random(BlockShape::new(3, 4, 2), r).unwrap())
                as Box<dyn LinearOp<f64>>,
        ),
        (
            "Gs rectangular, random perms",
            Box::new(
                Gs::random(
                    pl,
                    BlockShape::new(3, 5, 4),
                    p,
                    BlockShape::new(4, 3, 2),
                    pr,
                    r,
                )
                .unwrap(),
            ),
        ),
        (
            "Gs gsoft 4x3",
            Box::new(Gs::gsoft_random(blocks_kb(4, 3), r).unwrap()),
        ),
        // Blocks of 4–12 rows (multiples of a SIMD width), not only tiny odd ones.
        (
            "Gs gsoft 3x8",
            Box::new(Gs::gsoft_random(blocks_kb(3, 8), r).unwrap()),
        ),
        (
            "GsChain m=3 random perms, blocks 4-12",
            Box::new(
                GsChain::random(
                    vec![
                        BlockShape::new(2, 8, 6),
                        BlockShape::new(4, 4, 4),
                        BlockShape::new(2, 12, 8),
                    ],
                    vec![
                        Perm::random(12, r),
                        Perm::random(16, r),
                        Perm::random(16, r),
                        Perm::random(24, r),
                    ],
                    r,
                )
                .unwrap(),
            ),
        ),
        (
            "GsChain m=3 random perms",
            Box::new(GsChain::random(chain_f, chain_p, r).unwrap()),
        ),
        (
            "GsChain m=3 shuffles",
            Box::new(GsChain::random_shuffled(&[BlockShape::square(9, 3); 3], r).unwrap()),
        ),
        (
            "Monarch rectangular",
            Box::new(
                Monarch::random(BlockShape::new(4, 3, 2), BlockShape::new(2, 4, 5), r).unwrap(),
            ),
        ),
        (
            "Monarch square 4x3",
            Box::new(Monarch::random_square(blocks_kb(4, 3), r).unwrap()),
        ),
        (
            "Butterfly n=16 r=4 m=3",
            Box::new(Butterfly::random(Blocks::count(16, 4).unwrap(), 3, r).unwrap()),
        ),
        (
            "Butterfly n=24 r=4 m=3 (odd half-blocks of 3)",
            Box::new(Butterfly::random(Blocks::count(24, 4).unwrap(), 3, r).unwrap()),
        ),
        (
            "Butterfly n=24 r=12 m=3 (r not a power of 2)",
            Box::new(Butterfly::random(Blocks::count(24, 12).unwrap(), 3, r).unwrap()),
        ),
        (
            "GsChain reversal perms (negative strides)",
            Box::new(
                GsChain::random(
                    vec![BlockShape::new(3, 4, 4), BlockShape::new(2, 3, 6)],
                    vec![rev(12), rev(12), rev(6)],
                    r,
                )
                .unwrap(),
            ),
        ),
        (
            "LowRank 7x9 rank 2",
            Box::new(LowRank::random(7, 9, 2, r).unwrap()),
        ),
        ("Dense 6x5", Box::new(Dense::random(6, 5, r).unwrap())),
    ]
}

#[test]
fn every_operator_three_ways() {
    for (i, (name, op)) in operators().iter().enumerate() {
        check_three_ways(name, op.as_ref(), 5, 100 + i as u64);
        // A batch spanning several chunks of the kernel.
        let batch = 2 * chunk_rows(op.layout()) + 3;
        check_three_ways(name, op.as_ref(), batch, 200 + i as u64);
    }
}

/// Larger widths, where the kernel uses small chunks (many chunks per batch).
#[test]
fn wide_operators_three_ways() {
    let r = &mut rng(5);
    let gs = Gs::gsoft_random(blocks_kb(16, 64), r).unwrap();
    check_three_ways("gsoft 16x64", &gs, 70, 1);
    let bf = Butterfly::random(Blocks::count(1024, 32).unwrap(), 2, r).unwrap();
    check_three_ways("butterfly 1024", &bf, 20, 2);
}

/// The f32 kernel agrees with the f64 one to f32 rounding.
#[test]
fn f32_matches_f64() {
    let g64 = Gs::<f64>::gsoft_random(blocks_kb(8, 16), &mut rng(77)).unwrap();
    let g32 = Gs::<f32>::gsoft(g64.l().cast(), g64.r().cast()).unwrap();
    let x = Tensor::<f64>::randn(&[40, 128], 1.0, &mut rng(78));
    let y64 = g64.apply(&x);
    let y32: Tensor<f64> = g32.apply(&x.cast()).cast();
    assert!(max_diff(&y64, &y32) < 1e-5 * (1.0 + y64.max_abs()));
    let back: Tensor<f64> = g32.apply_t(&x.cast()).cast();
    assert!(max_diff(&g64.apply_t(&x), &back) < 1e-5 * (1.0 + back.max_abs()));
}

/// T10 block entries with Python's non-negative modulo.
fn t10_blocks() -> (Tensor<f64>, Tensor<f64>) {
    let r = Tensor::from_fn(&[4, 3, 3], |idx| {
        let (blk, i, j) = (idx / 9, (idx / 3) % 3, idx % 3);
        ((blk * 7 + i * 3 + j) % 5) as f64 - 2.0
    });
    let l = Tensor::from_fn(&[4, 3, 3], |idx| {
        let (blk, i, j) = (idx / 9, (idx / 3) % 3, idx % 3);
        ((blk * 5 + i * 2 + j * 3) % 7) as f64 - 3.0
    });
    (l, r)
}

/// Digest §8 "Reference algorithm" transcribed as plain loops: R with k blocks of q×p, L with
/// l blocks of s×r.
fn official_reference(l: &Tensor<f64>, r: &Tensor<f64>, x: &[f64]) -> Vec<f64> {
    let (k, q, p) = (r.shape()[0], r.shape()[1], r.shape()[2]);
    let (nl, s, rr) = (l.shape()[0], l.shape()[1], l.shape()[2]);
    let rb = |j: usize, u: usize, t: usize| r.data()[(j * q + u) * p + t];
    let lb = |a: usize, v: usize, c: usize| l.data()[(a * s + v) * rr + c];
    // 1. f[j·q+u] = Σ_t R_j[u][t] · x[j·p+t]
    let mut f = vec![0.0; k * q];
    for j in 0..k {
        for u in 0..q {
            f[j * q + u] = (0..p).map(|t| rb(j, u, t) * x[j * p + t]).sum();
        }
    }
    let mut y = vec![0.0; nl * s];
    for a in 0..nl {
        // 2. g_a[c] = f[c·l + a]
        let g: Vec<f64> = (0..rr).map(|c| f[c * nl + a]).collect();
        // 3. h_a = L_a g_a; 4. y[v·l + a] = h_a[v]
        for v in 0..s {
            y[v * nl + a] = (0..rr).map(|c| lb(a, v, c) * g[c]).sum();
        }
    }
    y
}

#[test]
fn t10_official_code_product() {
    let (l, r) = t10_blocks();
    let x: Vec<f64> = (1..=12).map(f64::from).collect();
    let want = official_reference(&l, &r, &x);
    let gs = Gs::gsoft(l.clone(), r.clone()).unwrap();
    let got = gs.apply(&Tensor::from_vec(&[1, 12], x.clone()).unwrap());
    // Integer data: every intermediate is an exactly representable integer.
    assert_eq!(got.data(), &want[..]);
    assert!(want.iter().any(|&v| v != 0.0));

    // Independent third route: explicit matrices, P[σ_(4,12)(i), i] = 1, Q = Pᵀ L P R.
    let n = 12;
    let sigma: Vec<usize> = (0..n).map(|i| (i % 4) * 3 + i / 4).collect();
    let mut pm = Tensor::<f64>::zeros(&[n, n]);
    for (i, &s) in sigma.iter().enumerate() {
        pm.data_mut()[s * n + i] = 1.0;
    }
    let bd = |t: &Tensor<f64>| {
        let mut m = Tensor::<f64>::zeros(&[n, n]);
        for idx in 0..t.numel() {
            let (blk, i, j) = (idx / 9, (idx / 3) % 3, idx % 3);
            m.data_mut()[(blk * 3 + i) * n + blk * 3 + j] = t.data()[idx];
        }
        m
    };
    let q = pm
        .matmul_t(true, &bd(&l), false)
        .matmul(&pm)
        .matmul(&bd(&r));
    let qx = q.matmul(&Tensor::from_vec(&[n, 1], x).unwrap());
    assert_eq!(qx.data(), &want[..]);
    assert_eq!(gs.to_dense().data(), q.data());
}

/// BOFT: the chain equals the explicit product `F_{m−1}⋯F_0`, `F_i = P_i B_i P_iᵀ`, built
/// from 0/1 matrices `P_i[a, perm_i[a]] = 1` (PEFT's `perm2mat`).
#[test]
fn butterfly_matches_explicit_factor_product() {
    for (n, r_blocks, m) in [(16, 4, 3), (24, 4, 2), (32, 8, 4), (48, 12, 3)] {
        let bf =
            Butterfly::<f64>::random(Blocks::count(n, r_blocks).unwrap(), m, &mut rng(3)).unwrap();
        let b = n / r_blocks;
        let mut q = Tensor::<f64>::eye(n);
        for (i, blocks) in bf.blocks().iter().enumerate() {
            let perm = Perm::block_butterfly(n, r_blocks >> i, b / 2).unwrap();
            let mut pm = Tensor::<f64>::zeros(&[n, n]);
            for (a, &s) in perm.as_slice().iter().enumerate() {
                pm.data_mut()[a * n + s] = 1.0;
            }
            let mut bd = Tensor::<f64>::zeros(&[n, n]);
            for idx in 0..blocks.numel() {
                let (blk, u, t) = (idx / (b * b), (idx / b) % b, idx % b);
                bd.data_mut()[(blk * b + u) * n + blk * b + t] = blocks.data()[idx];
            }
            let f = pm.matmul(&bd).matmul_t(false, &pm, true);
            q = f.matmul(&q);
        }
        assert!(
            max_diff(&bf.to_dense(), &q) < 1e-13,
            "n={n} r={r_blocks} m={m}"
        );
    }
}

/// Square Monarch is Dao et al.'s `P L Pᵀ R`: `P₁ = P₂ᵀ`, `P_R = I`; identity blocks give `I`.
#[test]
fn monarch_square_is_p_l_pt_r() {
    let m = Monarch::<f64>::random_square(blocks_kb(4, 3), &mut rng(9)).unwrap();
    assert_eq!(m.gs().p_l(), &m.gs().p().inverse());
    assert!(m.gs().p_r().is_identity());
    // Identity blocks give P₁ P₂ = I.
    let id = Monarch::<f64>::new(BlockShape::square(4, 3), BlockShape::square(3, 4)).unwrap();
    assert_eq!(max_diff(&id.to_dense(), &Tensor::eye(12)), 0.0);
}

/// Identity initialisations: GSOFT, BOFT, block-diagonal and GS chains with identity blocks are
/// exactly `I` (`Pᵀ I P I = I`).
#[test]
fn identity_initialisations() {
    let eye = Tensor::<f64>::eye(12);
    let gsoft = Gs::<f64>::gsoft(
        Tensor::from_fn(&[4, 3, 3], |i| if (i / 3) % 3 == i % 3 { 1.0 } else { 0.0 }),
        Tensor::from_fn(&[4, 3, 3], |i| if (i / 3) % 3 == i % 3 { 1.0 } else { 0.0 }),
    )
    .unwrap();
    assert_eq!(gsoft.to_dense(), eye);
    assert_eq!(
        Butterfly::<f64>::new(Blocks::count(12, 6).unwrap(), 2)
            .unwrap()
            .to_dense(),
        eye
    );
    assert_eq!(
        BlockDiag::<f64>::new(BlockShape::new(4, 3, 3))
            .unwrap()
            .to_dense(),
        eye
    );
    assert_eq!(Dense::<f64>::new(12, 12).unwrap().to_dense(), eye);
}

/// Parameter and FLOP counts of digest T4/T15 (n = 1024, b = 32).
#[test]
fn t4_param_and_flop_counts() {
    let gs = Gs::<f32>::gsoft(Tensor::zeros(&[32, 32, 32]), Tensor::zeros(&[32, 32, 32])).unwrap();
    assert_eq!(gs.param_count(), 65_536);
    assert_eq!(
        chain_flops(gs.layout().macs_per_vector(), 1),
        2.0 * 65_536.0
    );
    let bf = Butterfly::<f32>::new(Blocks::count(1024, 32).unwrap(), 6).unwrap();
    assert_eq!(bf.param_count(), 196_608);
    assert_eq!(
        chain_flops(bf.layout().macs_per_vector(), 10),
        2.0 * 196_608.0 * 10.0
    );
    assert_eq!(
        Dense::<f32>::new(1024, 1024).unwrap().param_count(),
        1_048_576
    );
    assert_eq!(LowRank::<f32>::new(10, 20, 3).unwrap().param_count(), 90);
    assert_eq!(
        BlockDiag::<f32>::new(BlockShape::new(3, 4, 2))
            .unwrap()
            .shape(),
        (12, 6)
    );
}

#[test]
fn accessors() {
    let (l, r) = t10_blocks();
    let gs = Gs::gsoft(l.clone(), r.clone()).unwrap();
    assert_eq!(gs.l(), &l);
    assert_eq!(gs.r(), &r);
    assert_eq!(gs.p(), &Perm::shuffle_scatter(4, 12).unwrap());
    assert_eq!(gs.p_l(), &gs.p().inverse());
    assert!(gs.p_r().is_identity());
    assert_eq!(gs.s(), 12);
    let u = Tensor::<f64>::randn(&[5, 2], 1.0, &mut rng(1));
    let v = Tensor::<f64>::randn(&[4, 2], 1.0, &mut rng(2));
    let lr = LowRank::from_factors(&u, &v).unwrap();
    assert_eq!(lr.rank(), 2);
    assert_eq!(lr.u()[(3, 1)], u.at2(3, 1));
    assert_eq!(lr.v()[(2, 0)], v.at2(2, 0));
    let uvt = u.matmul_t(false, &v, true);
    assert!(max_diff(&lr.to_dense(), &uvt) < 1e-15);
    let w = Tensor::<f64>::randn(&[3, 4], 1.0, &mut rng(4));
    assert_eq!(Dense::from_matrix(&w).unwrap().to_dense(), w);
    let bf = Butterfly::<f64>::new(Blocks::count(16, 4).unwrap(), 2).unwrap();
    assert_eq!((bf.r(), bf.b(), bf.m()), (4, 4, 2));
}

// ---------------------------------------------------------------- gradients

/// Σ W ⊙ Y for a fixed weight W, as a one-node tape op (gradient W).
fn weighted_sum<'t>(y: Var<'t, f64>) -> Var<'t, f64> {
    let yv = y.value();
    let w = Tensor::from_fn(yv.shape(), |i| (0.37 * i as f64 + 0.1).sin());
    let value = Tensor::scalar(yv.mul(&w).sum());
    y.tape()
        .push_op(value, &[y], move |g, _| vec![Some(w.scale(g.item()))])
}

fn gradcheck_op(name: &str, op: &dyn LinearOp<f64>, batch: usize) {
    let layout = Arc::clone(op.layout_arc());
    let x = Tensor::randn(&[batch, op.shape().1], 1.0, &mut rng(21));
    let mut inputs = vec![x];
    inputs.extend(op.blocks().iter().cloned());
    let rep = gradcheck(
        |_t, v| weighted_sum(chain_apply(v[0], &v[1..], &layout)),
        &inputs,
        1e-6,
    );
    assert!(rep.max_rel_err < 1e-6, "{name}: {rep}");
}

#[test]
fn gradcheck_chain_apply() {
    let r = &mut rng(31);
    gradcheck_op(
        "Gs gsoft",
        &Gs::gsoft_random(blocks_kb(3, 2), r).unwrap(),
        3,
    );
    let (pl, p, pr) = (Perm::random(10, r), Perm::random(6, r), Perm::random(4, r));
    let gs = Gs::random(
        pl,
        BlockShape::new(2, 5, 3),
        p,
        BlockShape::new(2, 3, 2),
        pr,
        r,
    )
    .unwrap();
    gradcheck_op("Gs rectangular", &gs, 3);
    let chain = GsChain::random(
        vec![
            BlockShape::new(2, 3, 2),
            BlockShape::new(3, 2, 2),
            BlockShape::new(2, 2, 3),
        ],
        vec![
            Perm::random(4, r),
            Perm::random(6, r),
            Perm::random(6, r),
            Perm::random(4, r),
        ],
        r,
    )
    .unwrap();
    gradcheck_op("GsChain m=3", &chain, 3);
    gradcheck_op(
        "BOFT",
        &Butterfly::random(Blocks::count(8, 4).unwrap(), 3, r).unwrap(),
        3,
    );
    gradcheck_op(
        "BlockDiag rectangular",
        &BlockDiag::random(BlockShape::new(3, 2, 3), r).unwrap(),
        4,
    );
    gradcheck_op("LowRank", &LowRank::random(5, 4, 2, r).unwrap(), 3);
    gradcheck_op(
        "Monarch",
        &Monarch::random_square(blocks_kb(2, 3), r).unwrap(),
        2,
    );
    gradcheck_op("Dense", &Dense::random(3, 4, r).unwrap(), 2);
}

/// Backward over many chunks equals the sum of single-row backward passes (each row is one
/// chunk, already validated by gradcheck): `dB = Σ_s dB(row s)` and `dX` row by row.
#[test]
fn backward_multi_chunk_equals_sum_of_rows() {
    let r = &mut rng(41);
    let op = Gs::<f64>::gsoft_random(blocks_kb(32, 64), r).unwrap(); // n = 2048: chunks of 8 rows
    let batch = 21;
    assert!(chunk_rows(op.layout()) < batch);
    let x = Tensor::<f64>::randn(&[batch, 2048], 1.0, r);
    let dy = Tensor::<f64>::randn(&[batch, 2048], 1.0, r);
    let (_, dx, dbs) = forward_backward(&op, &x, &dy, faer::Par::rayon(0));
    let mut sum: Vec<Tensor<f64>> = dbs.iter().map(|d| Tensor::zeros(d.shape())).collect();
    for s in 0..batch {
        let row = |t: &Tensor<f64>| {
            Tensor::from_vec(&[1, 2048], t.data()[s * 2048..(s + 1) * 2048].to_vec()).unwrap()
        };
        let (_, dxs, dbs_s) = forward_backward(&op, &row(&x), &row(&dy), faer::Par::Seq);
        assert!(max_diff(&dxs, &row(&dx)) < 1e-12);
        for (acc, d) in sum.iter_mut().zip(&dbs_s) {
            acc.add_assign(d);
        }
    }
    for (a, b) in sum.iter().zip(&dbs) {
        assert!(max_diff(a, b) < 1e-11);
    }
    // dX = dY · A against the dense matrix.
    let a = op.to_dense();
    assert!(max_diff(&dx, &dy.matmul(&a)) < 1e-11);
}

#[test]
#[should_panic(expected = "chain_apply")]
fn chain_apply_panics_on_wrong_input_width() {
    let op = BlockDiag::<f64>::new(BlockShape::new(2, 2, 2)).unwrap();
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::zeros(&[3, 5]));
    let b = tape.leaf(op.blocks()[0].clone());
    chain_apply(x, &[b], op.layout_arc());
}

#[test]
#[should_panic(expected = "chain_apply: factor 0 needs blocks of shape")]
fn chain_apply_panics_on_wrong_block_shape() {
    let op = BlockDiag::<f64>::new(BlockShape::new(2, 2, 2)).unwrap();
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::zeros(&[3, 4]));
    let b = tape.leaf(Tensor::zeros(&[2, 2, 3]));
    chain_apply(x, &[b], op.layout_arc());
}

// ---------------------------------------------------------------- determinism

fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn forward_and_backward_bitwise_identical_for_1_and_2_threads() {
    let r = &mut rng(51);
    let op = Gs::<f32>::gsoft_random(blocks_kb(32, 32), r).unwrap();
    let batch = 100; // several chunks at n = 1024
    assert!(chunk_rows(op.layout()) * 2 < batch);
    let x = Tensor::<f32>::randn(&[batch, 1024], 1.0, r);
    let dy = Tensor::<f32>::randn(&[batch, 1024], 1.0, r);
    let run = || {
        let (y, dx, dbs) = forward_backward(&op, &x, &dy, faer::Par::rayon(0));
        (y, dx, dbs)
    };
    let one = in_pool(1, run);
    let two = in_pool(2, run);
    assert_eq!(one.0.data(), two.0.data());
    assert_eq!(one.1.data(), two.1.data());
    assert_eq!(one.2, two.2);
    let seq = chain_forward(op.layout(), &op.blocks(), &x, faer::Par::Seq);
    assert_eq!(seq.data(), one.0.data());
}

/// A batch that fits in one chunk runs its blocks in parallel: the result must equal the dense
/// product and be bitwise the same for 1 and 2 threads and for `Par::Seq`.
#[test]
fn single_chunk_parallel_over_blocks() {
    let r = &mut rng(61);
    let op = Gs::<f64>::gsoft_random(blocks_kb(16, 8), r).unwrap(); // n = 128
    let batch = 5;
    assert!(chunk_rows(op.layout()) >= batch);
    let x = Tensor::<f64>::randn(&[batch, 128], 1.0, r);
    let dy = Tensor::<f64>::randn(&[batch, 128], 1.0, r);
    let run = |par: faer::Par| {
        let (y, dx, dbs) = forward_backward(&op, &x, &dy, par);
        (y, dx, dbs)
    };
    let one = in_pool(1, || run(faer::Par::rayon(0)));
    let two = in_pool(2, || run(faer::Par::rayon(0)));
    let seq = run(faer::Par::Seq);
    for other in [&two, &seq] {
        assert_eq!(one.0.data(), other.0.data());
        assert_eq!(one.1.data(), other.1.data());
        assert_eq!(one.2, other.2);
    }
    let a = op.to_dense();
    assert!(max_diff(&one.0, &x.matmul(&a.transpose())) < 1e-12);
    assert!(max_diff(&one.1, &dy.matmul(&a)) < 1e-12);
    let plain = chain_forward(op.layout(), &op.blocks(), &x, faer::Par::rayon(0));
    assert_eq!(plain.data(), one.0.data());
}

/// Single-block factors split their weight gradient into row tiles: `dA = dYᵀ·X` for a dense
/// operator, checked against the dense product and for 1 vs 2 threads.
#[test]
fn dense_weight_gradient_in_tiles() {
    let r = &mut rng(62);
    let op = Dense::<f64>::random(64, 48, r).unwrap();
    let batch = 96; // 64·48·96 ≥ 2^18 multiply-adds: the gradient is cut into row tiles
    let x = Tensor::<f64>::randn(&[batch, 48], 1.0, r);
    let dy = Tensor::<f64>::randn(&[batch, 64], 1.0, r);
    let run = || {
        let (_, dx, dbs) = forward_backward(&op, &x, &dy, faer::Par::rayon(0));
        (dx, dbs)
    };
    let (dx, dbs) = in_pool(2, run);
    let (dx1, dbs1) = in_pool(1, run);
    assert_eq!(dx.data(), dx1.data());
    assert_eq!(dbs, dbs1);
    let da = dy.transpose().matmul(&x);
    assert_eq!(dbs[0].shape(), &[1, 64, 48]);
    assert!(max_diff(&dbs[0].clone().reshape(&[64, 48]).unwrap(), &da) < 1e-11);
    assert!(max_diff(&dx, &dy.matmul(&op.to_dense())) < 1e-11);
}

/// Kernel buffers are recycled between calls (stale contents): interleaving operators of other
/// sizes must not change a result, and each result must still match the dense product.
#[test]
fn recycled_buffers_do_not_leak_between_calls() {
    let r = &mut rng(63);
    let gs = Gs::<f64>::gsoft_random(blocks_kb(8, 16), r).unwrap(); // n = 128
    let lr = LowRank::<f64>::random(96, 80, 8, r).unwrap();
    let x = Tensor::<f64>::randn(&[70, 128], 1.0, r);
    let dy = Tensor::<f64>::randn(&[70, 128], 1.0, r);
    let xl = Tensor::<f64>::randn(&[33, 80], 1.0, r);
    let dyl = Tensor::<f64>::randn(&[33, 96], 1.0, r);
    let run = |op: &dyn LinearOp<f64>, x: &Tensor<f64>, dy: &Tensor<f64>| {
        let (y, dx, dbs) = forward_backward(op, x, dy, faer::Par::rayon(0));
        (y, dx, dbs)
    };
    let first = run(&gs, &x, &dy);
    let low = run(&lr, &xl, &dyl);
    let again = run(&gs, &x, &dy);
    assert_eq!(first.0.data(), again.0.data());
    assert_eq!(first.1.data(), again.1.data());
    assert_eq!(first.2, again.2);
    let a = gs.to_dense();
    assert!(max_diff(&first.0, &x.matmul(&a.transpose())) < 1e-11);
    let al = lr.to_dense();
    assert!(max_diff(&low.0, &xl.matmul(&al.transpose())) < 1e-11);
    assert!(max_diff(&low.1, &dyl.matmul(&al)) < 1e-11);
}

/// T16: with square blocks Monarch needs k_L·k_R = n (k_L = b_R, k_R = b_L); at n = 768 the pair
/// (96, 8) is a Monarch, while equal counts k_L = k_R = 96 (b = 8) are a GS matrix but no Monarch.
#[test]
fn t16_monarch_constraint_vs_gs() {
    use gslab::structured::{BlockShape, Gs, LinearOp, Monarch};
    let mut rng = rng(16);
    let gs = Gs::<f64>::gsoft_random(blocks_kb(96, 8), &mut rng).unwrap();
    assert_eq!(gs.shape(), (768, 768));
    let err =
        Monarch::<f64>::new(BlockShape::square(96, 8), BlockShape::square(96, 8)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("k_L=96") && msg.contains("b_R¹=8"), "{msg}");
    let ok = Monarch::<f64>::new(BlockShape::square(96, 8), BlockShape::square(8, 96)).unwrap();
    assert_eq!(ok.shape(), (768, 768));
    for (k_l, k_r) in [(8, 96), (32, 24), (24, 32)] {
        assert!(Monarch::<f64>::random_square(blocks_kb(k_l, k_r), &mut rng).is_ok());
    }
}

/// f32 chains with square blocks of 8 and 16 run the register kernels (`kernels::small_blocks`)
/// for their block products and weight gradients: forward, data gradient and weight gradients
/// match the f64 dense products to f32 rounding, for GSOFT, BOFT (2 factors), OFT (one
/// block-diagonal factor) and a 3-factor GS chain, with batches inside one chunk and across
/// several (the in-place reads of X and dY included), bitwise the same for 1 and 2 threads.
#[test]
fn f32_small_blocks_match_f64_dense_and_threads() {
    let r = &mut rng(91);
    for b in [8, 16] {
        let n = 32 * b;
        let blocks = Blocks::size(n, b).unwrap();
        let ops: Vec<(&str, Box<dyn LinearOp<f64>>)> = vec![
            (
                "gsoft",
                Box::new(Gs::<f64>::gsoft_random(blocks, r).unwrap()),
            ),
            (
                "boft",
                Box::new(Butterfly::<f64>::random(blocks, 2, r).unwrap()),
            ),
            (
                "oft",
                Box::new(BlockDiag::<f64>::random(blocks.shape(), r).unwrap()),
            ),
            (
                "gs_chain3",
                Box::new(GsChain::<f64>::random_shuffled(&[blocks.shape(); 3], r).unwrap()),
            ),
        ];
        for (name, op) in &ops {
            let layout = op.layout_arc().clone();
            let b64 = op.blocks().to_vec();
            let b32: Vec<Tensor<f32>> = b64.iter().map(|t| t.cast()).collect();
            for batch in [5, 100] {
                let x = Tensor::<f64>::randn(&[batch, n], 1.0, r);
                let dy = Tensor::<f64>::randn(&[batch, n], 1.0, r);
                let (x32, dy32) = (x.cast::<f32>(), dy.cast::<f32>());
                let run = || {
                    let (y, saved) = chain_forward_saved(&layout, &b32, &x32, faer::Par::rayon(0));
                    let (dx, dbs) =
                        chain_backward(&layout, &b32, (&x32, &saved), &dy32, faer::Par::rayon(0));
                    (y, dx, dbs)
                };
                let one = in_pool(1, run);
                let two = in_pool(2, run);
                assert_eq!(one.0.data(), two.0.data(), "{name} b={b} batch={batch}");
                assert_eq!(one.1.data(), two.1.data(), "{name} b={b} batch={batch}");
                assert_eq!(one.2, two.2, "{name} b={b} batch={batch}");
                let a = op.to_dense();
                let tol = |t: &Tensor<f64>| 1e-5 * (1.0 + t.max_abs());
                let (y, dx) = (x.matmul(&a.transpose()), dy.matmul(&a));
                assert!(
                    max_diff(&one.0.cast(), &y) < tol(&y),
                    "{name} b={b}: forward"
                );
                assert!(max_diff(&one.1.cast(), &dx) < tol(&dx), "{name} b={b}: dX");
                let (_, dbs64) = {
                    let (_, saved) = chain_forward_saved(&layout, &b64, &x, faer::Par::Seq);
                    chain_backward(&layout, &b64, (&x, &saved), &dy, faer::Par::Seq)
                };
                for (g32, g64) in one.2.iter().zip(&dbs64) {
                    let tol = 1e-5 * batch as f64 * (1.0 + g64.max_abs());
                    assert!(max_diff(&g32.cast(), g64) < tol, "{name} b={b}: dB");
                }
            }
        }
    }
}
