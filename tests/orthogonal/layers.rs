//! The orthogonal layers: explicit dense definitions, the official index arithmetic, the
//! reference product, identity at init, gradients, parameter counts, and orthogonality over
//! training.

use crate::common::{max_abs_diff, probe, randn};
use gslab::kernels::reference::reference_dense;
use gslab::nn::optim::{Adam, Optimizer};
use gslab::orthogonal::cayley::cayley_tensor;
use gslab::orthogonal::{
    OrthoBlockDiag, OrthoButterfly, OrthoChain, OrthoDense, OrthoGs, OrthoGsChain, OrthoLayer,
    OrthoMap, OrthoMonarch, orthogonality_error,
};
use gslab::structured::LinearOp;
use gslab::{Blocks, Params, Real, Tape, Tensor, gradcheck};

/// `Blocks::count(n, r)`, unwrapped.
fn count(n: usize, r: usize) -> Blocks {
    Blocks::count(n, r).unwrap()
}

/// σ_(k,n)(i) = (i mod k)·(n/k) + ⌊i/k⌋, written out again here (Definition 5.2).
fn sigma(k: usize, n: usize) -> Vec<usize> {
    (0..n).map(|i| (i % k) * (n / k) + i / k).collect()
}

/// The dense matrix of the scatter reading, P[σ(i), i] = 1 (digest §2.2, official code).
fn scatter_matrix(sig: &[usize]) -> Tensor<f64> {
    let n = sig.len();
    let mut p = Tensor::zeros(&[n, n]);
    for (i, &s) in sig.iter().enumerate() {
        p.data_mut()[s * n + i] = 1.0;
    }
    p
}

/// The dense matrix of PEFT's perm2mat, P[i, perm[i]] = 1.
fn gather_matrix(perm: &[usize]) -> Tensor<f64> {
    let n = perm.len();
    let mut p = Tensor::zeros(&[n, n]);
    for (i, &s) in perm.iter().enumerate() {
        p.data_mut()[i * n + s] = 1.0;
    }
    p
}

/// PEFT's `block_butterfly_perm(n, nb, r_half)` re-derived from its description (digest §2.5).
fn peft_butterfly_perm(n: usize, nb: usize, r_half: usize) -> Vec<usize> {
    let bs = n / nb;
    let sub = bs / r_half;
    let mut out = Vec::new();
    for c in 0..nb {
        let evens = (0..sub).filter(|s| s % 2 == 0);
        let odds = (0..sub).filter(|s| s % 2 == 1);
        for s in evens.chain(odds) {
            out.extend((0..r_half).map(|t| c * bs + s * r_half + t));
        }
    }
    out
}

/// A dense block-diagonal matrix from a (k, b, b) stack.
fn block_diag_dense(blocks: &Tensor<f64>) -> Tensor<f64> {
    let (k, b) = (blocks.shape()[0], blocks.shape()[1]);
    let n = k * b;
    let mut d = Tensor::zeros(&[n, n]);
    for j in 0..k {
        for u in 0..b {
            for t in 0..b {
                d.data_mut()[(j * b + u) * n + j * b + t] = blocks.data()[(j * b + u) * b + t];
            }
        }
    }
    d
}

pub(crate) fn randomize<M: Params<f64>>(model: &mut M, std: f64, seed: u64) {
    for (i, p) in model.params_mut().into_iter().enumerate() {
        *p = randn(p.shape(), std, seed + i as u64);
    }
}

fn all_layers<T: Real>(map: OrthoMap) -> Vec<(&'static str, OrthoChain<T>)> {
    vec![
        ("OrthoGs", OrthoGs::new(count(16, 4), map).unwrap().into()),
        (
            "OrthoGsChain3",
            OrthoGsChain::new(count(16, 8), 3, map).unwrap().into(),
        ),
        (
            "OrthoBlockDiag",
            OrthoBlockDiag::new(count(16, 4), map).unwrap().into(),
        ),
        (
            "OrthoButterfly3",
            OrthoButterfly::new(count(16, 4), 3, map).unwrap().into(),
        ),
        (
            "OrthoMonarch",
            OrthoMonarch::new(count(16, 2), map).unwrap().into(),
        ),
        ("OrthoDense", OrthoDense::new(8, map).unwrap().into()),
    ]
}

/// OrthoGs against the digest's §8 reference algorithm (the official code's index arithmetic)
/// and against explicit matrices Pᵀ L P R with P[σ_(r,n)(i), i] = 1.
#[test]
fn ortho_gs_matches_official_code_index_arithmetic() {
    let (n, r) = (12, 4);
    let b = n / r;
    let mut q = OrthoGs::<f64>::new(count(n, r), OrthoMap::Cayley).unwrap();
    randomize(&mut q, 0.7, 3);
    let blocks = q.chain().block_tensors();
    let (rb, lb) = (&blocks[0], &blocks[1]);
    let dense = q.matrix();
    // §8: f[j·q+u] = Σ_t R_j[u][t] x[j·p+t]; g_a[c] = f[c·l + a]; h_a = L_a g_a; y[v·l + a] = h_a[v].
    for col in 0..n {
        let x: Vec<f64> = (0..n).map(|i| if i == col { 1.0 } else { 0.0 }).collect();
        let mut f = vec![0.0; n];
        for j in 0..r {
            for u in 0..b {
                f[j * b + u] = (0..b)
                    .map(|t| rb.data()[(j * b + u) * b + t] * x[j * b + t])
                    .sum();
            }
        }
        let mut y = vec![0.0; n];
        for a in 0..r {
            let g: Vec<f64> = (0..b).map(|c| f[c * r + a]).collect();
            for v in 0..b {
                let h: f64 = (0..b).map(|c| lb.data()[(a * b + v) * b + c] * g[c]).sum();
                y[v * r + a] = h;
            }
        }
        for (i, yi) in y.iter().enumerate() {
            let d = (dense.at2(i, col) - yi).abs();
            assert!(d < 1e-14, "column {col} row {i}: {d:e}");
        }
    }
    let p = scatter_matrix(&sigma(r, n));
    let want = p
        .transpose()
        .matmul(&block_diag_dense(lb))
        .matmul(&p)
        .matmul(&block_diag_dense(rb));
    assert!(max_abs_diff(&dense, &want) < 1e-14);
}

/// Every other layer against explicit dense products built from its definition.
#[test]
fn layers_match_explicit_dense_definitions() {
    let n = 16;
    // OrthoGsChain: (P²)ᵀ B_3 P B_2 P B_1, P[σ_(r,n)(i), i] = 1.
    let mut g = OrthoGsChain::<f64>::new(count(n, 8), 3, OrthoMap::Exp).unwrap();
    randomize(&mut g, 0.5, 40);
    let bl = g.chain().block_tensors();
    let p = scatter_matrix(&sigma(8, n));
    let want = p
        .matmul(&p)
        .transpose()
        .matmul(&block_diag_dense(&bl[2]))
        .matmul(&p)
        .matmul(&block_diag_dense(&bl[1]))
        .matmul(&p)
        .matmul(&block_diag_dense(&bl[0]));
    assert!(max_abs_diff(&g.matrix(), &want) < 1e-14, "OrthoGsChain");
    // m = 2 is OrthoGs exactly and m = 1 OrthoBlockDiag (same layouts).
    let g2 = OrthoGsChain::<f64>::new(count(n, 4), 2, OrthoMap::Cayley).unwrap();
    let o2 = OrthoGs::<f64>::new(count(n, 4), OrthoMap::Cayley).unwrap();
    assert_eq!(g2.layout(), o2.layout());
    let g1 = OrthoGsChain::<f64>::new(count(n, 4), 1, OrthoMap::Cayley).unwrap();
    let o1 = OrthoBlockDiag::<f64>::new(count(n, 4), OrthoMap::Cayley).unwrap();
    assert_eq!(g1.layout(), o1.layout());

    // OrthoBlockDiag: block diagonal.
    let mut o = OrthoBlockDiag::<f64>::new(count(n, 4), OrthoMap::Cayley).unwrap();
    randomize(&mut o, 0.5, 41);
    let want = block_diag_dense(&o.chain().block_tensors()[0]);
    assert!(max_abs_diff(&o.matrix(), &want) < 1e-15, "OrthoBlockDiag");

    // Boft: F_2 F_1 F_0, F_i = P_i B_i P_iᵀ, P_i = perm2mat(block_butterfly_perm(n, r/2^i, b/2)).
    let (r, m) = (4, 3);
    let b = n / r;
    let mut bo = OrthoButterfly::<f64>::new(count(n, r), m, OrthoMap::Cayley).unwrap();
    randomize(&mut bo, 0.5, 42);
    let bl = bo.chain().block_tensors();
    let mut want = Tensor::<f64>::eye(n);
    for (i, blk) in bl.iter().enumerate() {
        let pi = gather_matrix(&peft_butterfly_perm(n, r >> i, b / 2));
        let fi = pi.matmul(&block_diag_dense(blk)).matmul(&pi.transpose());
        want = fi.matmul(&want);
    }
    assert!(max_abs_diff(&bo.matrix(), &want) < 1e-14, "OrthoButterfly");

    // Monarch: Pᵀ L P R with k_L = 2 blocks of 8 in L, k_R = 8 blocks of 2 in R, P = P_(k_L,n).
    let mut mo = OrthoMonarch::<f64>::new(count(n, 2), OrthoMap::Exp).unwrap();
    randomize(&mut mo, 0.5, 43);
    let bl = mo.chain().block_tensors();
    assert_eq!(bl[0].shape(), &[8, 2, 2]);
    assert_eq!(bl[1].shape(), &[2, 8, 8]);
    let p = scatter_matrix(&sigma(2, n));
    let want = p
        .transpose()
        .matmul(&block_diag_dense(&bl[1]))
        .matmul(&p)
        .matmul(&block_diag_dense(&bl[0]));
    assert!(max_abs_diff(&mo.matrix(), &want) < 1e-14, "OrthoMonarch");
    // The Monarch constraint k_L·k_R = n: L's blocks fix R's (k_R blocks of size k_L).
    let mo = OrthoMonarch::<f64>::new(count(n, 4), OrthoMap::Cayley).unwrap();
    let f = mo.layout().factors();
    assert_eq!((f[0].k, f[0].b1, f[1].k, f[1].b1), (4, 4, 4, 4));

    // Dense: one Cayley block of size n.
    let mut d = OrthoDense::<f64>::new(6, OrthoMap::Cayley).unwrap();
    randomize(&mut d, 0.5, 44);
    let want = cayley_tensor(d.chain().factor_params(0), 6)
        .reshape(&[6, 6])
        .unwrap();
    assert!(max_abs_diff(&d.matrix(), &want) < 1e-15, "OrthoDense");
}

#[test]
fn layers_agree_with_reference_dense_and_are_orthogonal() {
    for map in [OrthoMap::Cayley, OrthoMap::Exp] {
        for (name, mut layer) in all_layers::<f64>(map) {
            randomize(&mut layer, 0.8, 5);
            let q = layer.matrix();
            let r = reference_dense(layer.layout(), &layer.block_tensors());
            assert!(
                max_abs_diff(&q, &r) < 1e-14,
                "{name} {map:?}: kernel vs reference"
            );
            let n = layer.n() as f64;
            let err = orthogonality_error(&q);
            assert!(err <= 10.0 * n * f64::EPSILON, "{name} {map:?}: {err:e}");
        }
    }
}

#[test]
fn layers_are_identity_at_init_exactly() {
    for map in [OrthoMap::Cayley, OrthoMap::Exp] {
        for (name, layer) in all_layers::<f64>(map) {
            let n = layer.n();
            assert!(layer.matrix() == Tensor::eye(n), "{name}: Q(0) != I");
            assert!(
                layer.to_dense() == Tensor::eye(n),
                "{name}: to_dense at init != I"
            );
            let x = randn::<f64>(&[5, n], 1.0, 9);
            let tape = Tape::new();
            let (y, _) = layer.forward(&tape, tape.constant(x.clone()));
            assert!(*y.value() == x, "{name}: forward at init != x");
        }
    }
}

#[test]
fn layers_gradcheck() {
    for map in [OrthoMap::Cayley, OrthoMap::Exp] {
        for (name, mut layer) in all_layers::<f64>(map) {
            randomize(&mut layer, 0.6, 21);
            let n = layer.n();
            let x = randn::<f64>(&[3, n], 1.0, 22);
            let w = randn::<f64>(&[3, n], 1.0, 23);
            let mut inputs = vec![x];
            inputs.extend(layer.params().into_iter().cloned());
            let r = gradcheck(
                |_, v| probe(layer.forward_with(v[0], &v[1..]), &w),
                &inputs,
                1e-6,
            );
            assert!(r.max_rel_err < 1e-6, "{name} {map:?}: {r}");
            // The transposed product X·Q as well (used by the OFT/BOFT adapters).
            let r = gradcheck(
                |_, v| probe(layer.forward_t_with(v[0], &v[1..]), &w),
                &inputs,
                1e-6,
            );
            assert!(r.max_rel_err < 1e-6, "{name} {map:?} transposed: {r}");
        }
    }
}

/// forward_t_with computes X·Q (not X·Qᵀ).
#[test]
fn transposed_forward_multiplies_by_q() {
    for (name, mut layer) in all_layers::<f64>(OrthoMap::Cayley) {
        randomize(&mut layer, 0.6, 61);
        let n = layer.n();
        let x = randn::<f64>(&[4, n], 1.0, 62);
        let tape = Tape::new();
        let leaves = layer.leaves(&tape);
        let y = layer.forward_t_with(tape.constant(x.clone()), &leaves);
        let want = x.matmul(&layer.matrix());
        assert!(max_abs_diff(&y.value(), &want) < 1e-14, "{name}");
    }
}

/// Free b(b−1)/2 and paper b² per block, worked by hand.
#[test]
fn parameter_counts_both_conventions() {
    let m = OrthoMap::Cayley;
    // OrthoGs n=16, r=4, b=4: 2 factors × 4 blocks × 6 = 48 free; 2 × 4 × 16 = 128 paper.
    let g = OrthoGs::<f64>::new(count(16, 4), m).unwrap();
    assert_eq!((g.free_param_count(), g.paper_param_count()), (48, 128));
    assert_eq!(
        g.param_count(),
        128,
        "LinearOp counts block entries (paper convention)"
    );
    // GSOFT at n=768, b=8 (r=96): paper 2·n·b = 12288; free 2·96·28 = 5376.
    let g = OrthoGs::<f32>::new(Blocks::size(768, 8).unwrap(), m).unwrap();
    assert_eq!((g.free_param_count(), g.paper_param_count()), (5376, 12288));
    // BOFT n=16, r=4, m=3: 3·4·6 = 72 free, 3·4·16 = 192 paper.
    let b = OrthoButterfly::<f64>::new(count(16, 4), 3, m).unwrap();
    assert_eq!((b.free_param_count(), b.paper_param_count()), (72, 192));
    // Monarch n=16 (k_L, k_R) = (2, 8): R 8 blocks of 2 (1 each), L 2 blocks of 8 (28 each).
    let mo = OrthoMonarch::<f64>::new(count(16, 2), m).unwrap();
    assert_eq!(
        (mo.free_param_count(), mo.paper_param_count()),
        (8 + 56, 32 + 128)
    );
    // Dense n=8: 28 free, 64 paper.
    let d = OrthoDense::<f64>::new(8, m).unwrap();
    assert_eq!((d.free_param_count(), d.paper_param_count()), (28, 64));
    assert_eq!(d.num_params(), 28);
}

#[test]
fn constructors_reject_bad_sizes() {
    let m = OrthoMap::Cayley;
    assert!(Blocks::count(16, 3).is_err());
    assert!(Blocks::count(16, 0).is_err());
    assert!(OrthoGsChain::<f64>::new(count(16, 4), 0, m).is_err());
    let e = OrthoButterfly::<f64>::new(count(16, 4), 4, m).unwrap_err(); // 2^3 does not divide 4
    assert!(
        e.to_string().contains("r=4 is not a multiple of 2^3"),
        "{e}"
    );
    let e = OrthoButterfly::<f64>::new(count(12, 4), 2, m).unwrap_err(); // odd block size 3
    assert!(e.to_string().contains("even block size, got b=3"), "{e}");
    assert!(
        OrthoButterfly::<f64>::new(count(12, 4), 1, m).is_ok(),
        "OFT allows odd blocks"
    );
    assert!(OrthoDense::<f64>::new(0, m).is_err());
}

fn orthogonal_under_adam<T: Real>() {
    for map in [OrthoMap::Cayley, OrthoMap::Exp] {
        let mut layers = all_layers::<T>(map);
        layers.push((
            "OrthoMonarch4",
            OrthoMonarch::new(count(16, 4), map).unwrap().into(),
        ));
        layers.push(("OrthoDense16", OrthoDense::new(16, map).unwrap().into()));
        for (name, mut layer) in layers {
            let n = layer.n();
            let x = randn::<T>(&[8, n], 1.0, 71);
            // A non-orthogonal target keeps the gradients from vanishing.
            let target = x.matmul(&randn::<T>(&[n, n], 1.0, 72));
            let mut opt = Adam::<T>::new(0.1);
            let tol = 10.0 * n as f64 * T::EPS.to_f64();
            let mut worst = 0.0f64;
            let mut max_param = 0.0f64;
            for step in 0..500 {
                let tape = Tape::new();
                let leaves = layer.leaves(&tape);
                let y = layer.forward_with(tape.constant(x.clone()), &leaves);
                let loss = y.mse(tape.constant(target.clone()));
                let grads = tape.backward(loss);
                let g: Vec<Tensor<T>> = leaves.iter().map(|v| grads.wrt(*v)).collect();
                opt.step(&mut layer.params_mut(), &g);
                let err = orthogonality_error(&layer.matrix()).to_f64();
                worst = worst.max(err);
                assert!(
                    err <= tol,
                    "{} {name} {map:?} step {step}: ‖QᵀQ−I‖ = {err:e} > {tol:e}",
                    T::DTYPE
                );
            }
            for p in layer.params() {
                max_param = max_param.max(p.max_abs().to_f64());
            }
            // The run must have moved far from the identity for the check to mean anything.
            assert!(max_param > 1.0, "{name}: parameters stayed at {max_param}");
            eprintln!(
                "{} {name:10} {map:?}: worst ‖QᵀQ−I‖ {:.1} eps (tol {:.0} eps), max |θ| {max_param:.1}",
                T::DTYPE,
                worst / T::EPS.to_f64(),
                10.0 * n as f64
            );
        }
    }
}

/// An orthogonal layer is an operator: `to_dense()` (`I·Q` through the transposed kernel) equals
/// `matrix()` (`(I·Qᵀ)ᵀ` through the forward kernel) and the reference product, `apply` is `X·Qᵀ`,
/// `pattern()` covers the nonzeros, and `to_chain()` freezes the same matrix.
#[test]
fn layers_are_operators() {
    for (name, mut layer) in all_layers::<f64>(OrthoMap::Cayley) {
        randomize(&mut layer, 0.7, 81);
        let q = layer.matrix();
        assert!(
            max_abs_diff(&layer.to_dense(), &q) < 1e-14,
            "{name}: to_dense vs matrix"
        );
        let x = randn::<f64>(&[3, layer.n()], 1.0, 82);
        let want = x.matmul_t(false, &q, true);
        assert!(
            max_abs_diff(&layer.apply(&x), &want) < 1e-14,
            "{name}: apply"
        );
        let p = layer.pattern();
        for i in 0..layer.n() {
            for j in 0..layer.n() {
                assert!(
                    q.at2(i, j) == 0.0 || p.get(i, j),
                    "{name}: ({i}, {j}) outside pattern"
                );
            }
        }
        assert!(
            max_abs_diff(&layer.to_chain().to_dense(), &q) < 1e-14,
            "{name}: to_chain"
        );
    }
}

/// ‖QᵀQ − I‖_max ≤ 10·n·eps after every one of 500 Adam steps at lr 0.1, every layer, both
/// maps, f64 and f32.
#[test]
fn layers_stay_orthogonal_over_500_adam_steps() {
    orthogonal_under_adam::<f64>();
    orthogonal_under_adam::<f32>();
}
