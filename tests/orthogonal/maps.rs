//! The block maps: Cayley and exp from free skew parameters.

use crate::common::{max_abs_diff, probe, randn};
use gslab::orthogonal::cayley::{
    cayley, cayley_backward_into, cayley_tensor, cayley_with_inverse, cayley_with_inverse_into,
    skew_dim, skew_from_free,
};
use gslab::orthogonal::expm::{expm, expm_frechet, expm_skew, expm_skew_tensor, pade_coefficients};
use gslab::orthogonal::{OrthoMap, orthogonality_error};
use gslab::{Real, Tape, Tensor, gradcheck};

/// Digest §10 T5. A = [[0,1,2],[0,0,3],[0,0,0]] and S = A − Aᵀ, i.e. free parameters
/// θ = (S01, S02, S12) = (1, 2, 3). By hand: I − S = [[1,−1,−2],[1,1,−3],[2,3,1]] has
/// det = 1 + 1² + 2² + 3² = 15 and adjugate [[10,−5,5],[−7,5,1],[1,−5,2]], so
/// (I − S)⁻¹ = adj/15 and (I + S)(I − S)⁻¹ = 2(I − S)⁻¹ − I =
/// [[5/15, −10/15, 10/15], [−14/15, −5/15, 2/15], [2/15, −10/15, −11/15]],
/// which is the digest's Q itself (not Qᵀ): the digest's vector is for (I + S)(I − S)⁻¹.
#[test]
fn cayley_test_vector_t5() {
    let theta = Tensor::<f64>::from_vec(&[1, 3], vec![1.0, 2.0, 3.0]).unwrap();
    let s = skew_from_free(&theta, 3);
    assert_eq!(
        s.data(),
        &[0.0, 1.0, 2.0, -1.0, 0.0, 3.0, -2.0, -3.0, 0.0],
        "S = A − Aᵀ"
    );
    let q = cayley_tensor(&theta, 3);
    let want = [
        1.0 / 3.0,
        -2.0 / 3.0,
        2.0 / 3.0,
        -14.0 / 15.0,
        -1.0 / 3.0,
        2.0 / 15.0,
        2.0 / 15.0,
        -2.0 / 3.0,
        -11.0 / 15.0,
    ];
    let want = Tensor::from_vec(&[1, 3, 3], want.to_vec()).unwrap();
    let err = max_abs_diff(&q, &want);
    assert!(err <= 4.0 * f64::EPSILON, "T5 error {err:e}");
    // QQᵀ = I as well as QᵀQ = I.
    assert!(orthogonality_error(&q) <= 4.0 * f64::EPSILON);
    let qt = Tensor::from_vec(
        &[1, 3, 3],
        q.reshape(&[3, 3]).unwrap().transpose().into_vec(),
    );
    assert!(orthogonality_error(&qt.unwrap()) <= 4.0 * f64::EPSILON);
}

fn zero_is_identity<T: Real>() {
    for b in [1usize, 2, 3, 5, 8] {
        let theta = Tensor::<T>::zeros(&[4, skew_dim(b)]);
        let mut want = Tensor::<T>::zeros(&[4, b, b]);
        for j in 0..4 {
            for i in 0..b {
                want.data_mut()[j * b * b + i * b + i] = T::one();
            }
        }
        for map in [OrthoMap::Cayley, OrthoMap::Exp] {
            assert!(map.blocks(&theta, b) == want, "{map:?} b={b}: Q(0) != I");
            let tape = Tape::new();
            let q = map.apply(tape.leaf(theta.clone()), b);
            assert!(*q.value() == want, "{map:?} op b={b}: Q(0) != I");
        }
    }
}

/// Digest §10 T6: all-zero parameters give Q = I bit for bit.
#[test]
fn zero_parameters_give_identity_exactly() {
    zero_is_identity::<f64>();
    zero_is_identity::<f32>();
}

fn orthogonal_to_rounding<T: Real>() {
    for (seed, b) in [2usize, 3, 4, 8, 16].into_iter().enumerate() {
        for std in [0.3, 1.0, 3.0] {
            let theta = randn::<T>(&[5, skew_dim(b)], std, 100 + seed as u64);
            for map in [OrthoMap::Cayley, OrthoMap::Exp] {
                let err = orthogonality_error(&map.blocks(&theta, b)).to_f64();
                let tol = 10.0 * b as f64 * T::EPS.to_f64();
                assert!(
                    err <= tol,
                    "{} {map:?} b={b} std={std}: ‖QᵀQ−I‖ = {err:e} > {tol:e}",
                    T::DTYPE
                );
            }
        }
    }
}

/// ‖QᵀQ − I‖_max ≤ 10·b·eps in the working precision, for both maps.
#[test]
fn maps_orthogonal_to_rounding_f64_and_f32() {
    orthogonal_to_rounding::<f64>();
    orthogonal_to_rounding::<f32>();
}

#[test]
fn cayley_gradcheck() {
    for (b, std) in [(2usize, 0.8), (4, 0.7), (5, 2.0)] {
        let theta = randn::<f64>(&[3, skew_dim(b)], std, 7 + b as u64);
        let w = randn::<f64>(&[3, b, b], 1.0, 11 + b as u64);
        let r = gradcheck(|_, v| probe(cayley(v[0], b), &w), &[theta], 1e-6);
        assert!(r.max_rel_err < 1e-6, "cayley b={b}: {r}");
    }
}

/// The `_into` Cayley kernels overwrite NaN-filled outputs with exactly what the allocating
/// forward and the tape's backward give.
#[test]
fn cayley_into_kernels_match_forward_and_tape_backward() {
    let (k, b) = (5, 7);
    let theta = randn::<f64>(&[k, skew_dim(b)], 0.9, 23);
    let g = randn::<f64>(&[k, b, b], 1.0, 29);
    let (q, n) = cayley_with_inverse(&theta, b);
    let (mut q2, mut n2) = (
        Tensor::full(&[k, b, b], f64::NAN),
        Tensor::full(&[k, b, b], f64::NAN),
    );
    cayley_with_inverse_into(&theta, b, &mut q2, &mut n2);
    assert_eq!((q2.data(), n2.data()), (q.data(), n.data()));
    let tape = Tape::new();
    let t = tape.leaf(theta.clone());
    let want = tape.backward_with(cayley(t, b), g.clone()).wrt(t);
    let mut got = Tensor::full(&[k, skew_dim(b)], f64::NAN);
    cayley_backward_into(&g, &n2, b, &mut got);
    assert_eq!(got.data(), want.data());
}

#[test]
#[should_panic(expected = "cayley_backward_into: dtheta of shape [2, 3] where (2, 6) is needed")]
fn cayley_backward_into_panics_on_wrong_gradient_shape() {
    let n = Tensor::<f64>::zeros(&[2, 4, 4]);
    cayley_backward_into(&n, &n, 4, &mut Tensor::zeros(&[2, 3]));
}

#[test]
fn expm_gradcheck() {
    // std 2.5 at b = 6 gives ‖K‖₁ well above θ₁₃ = 5.37, so scaling and squaring is exercised.
    for (b, std) in [(2usize, 0.8), (4, 0.7), (6, 2.5)] {
        let theta = randn::<f64>(&[3, skew_dim(b)], std, 17 + b as u64);
        let w = randn::<f64>(&[3, b, b], 1.0, 19 + b as u64);
        let r = gradcheck(|_, v| probe(expm_skew(v[0], b), &w), &[theta], 1e-6);
        assert!(r.max_rel_err < 1e-6, "expm b={b}: {r}");
    }
}

/// Rodrigues' formula for a 3×3 skew K with axis norm a:
/// exp(K) = I + (sin a / a) K + ((1 − cos a)/a²) K², an independent closed form.
#[test]
fn expm_matches_rodrigues_formula() {
    let dir = [0.3f64, -0.5, 0.8];
    let dn = (dir.iter().map(|x| x * x).sum::<f64>()).sqrt();
    for a in [1e-3, 0.2, 1.0, 3.0, 10.0, 40.0] {
        let th: Vec<f64> = dir.iter().map(|x| x / dn * a).collect();
        let theta = Tensor::from_vec(&[1, 3], th).unwrap();
        let k = skew_from_free(&theta, 3).reshape(&[3, 3]).unwrap();
        let k2 = k.matmul(&k);
        let want = Tensor::<f64>::eye(3)
            .add(&k.scale(a.sin() / a))
            .add(&k2.scale((1.0 - a.cos()) / (a * a)));
        let got = expm_skew_tensor(&theta, 3).reshape(&[3, 3]).unwrap();
        let err = max_abs_diff(&got, &want);
        // exp is well conditioned on skew matrices up to a factor ‖K‖: allow (1 + a)·10 eps.
        assert!(
            err <= 10.0 * (1.0 + a) * f64::EPSILON,
            "a={a}: |exp − Rodrigues| = {err:e}"
        );
    }
}

/// exp of a general (non-skew) matrix against its Taylor series summed to convergence.
#[test]
fn expm_matches_taylor_series_general_matrix() {
    for (seed, std) in [(1u64, 0.01), (2, 0.3), (3, 1.0), (4, 2.0)] {
        let a = randn::<f64>(&[5, 5], std, seed);
        let mut term = Tensor::<f64>::eye(5);
        let mut sum = term.clone();
        for j in 1..120 {
            term = term.matmul(&a).scale(1.0 / j as f64);
            sum = sum.add(&term);
        }
        let got = Tensor::from_mat(expm(a.mat()).as_ref());
        let rel = max_abs_diff(&got, &sum) / sum.max_abs();
        assert!(rel <= 1e-13, "std={std}: relative error {rel:e}");
    }
}

/// The Padé coefficients against hand values: degree 3 is (1, 1/2, 1/10, 1/120), i.e. Higham's
/// integer form (120, 60, 12, 1) divided by 120.
#[test]
fn pade_coefficients_degree_3() {
    let c = pade_coefficients(3);
    let want = [1.0, 0.5, 0.1, 1.0 / 120.0];
    for (x, y) in c.iter().zip(want) {
        assert!((x - y).abs() <= 1e-16, "{c:?}");
    }
    // Degree 13: Higham's b_1/b_0 = 32382376266240000 / 64764752532480000 = 1/2, b_13/b_0.
    let c = pade_coefficients(13);
    assert!((c[1] - 0.5).abs() < 1e-16);
    assert!((c[13] - 1.0 / 64_764_752_532_480_000.0).abs() < 1e-30);
}

/// The block-triangular Fréchet derivative against central differences of expm itself.
#[test]
fn expm_frechet_matches_finite_differences() {
    for (seed, std) in [(5u64, 0.5), (6, 3.0)] {
        let a = randn::<f64>(&[4, 4], std, seed);
        let e = randn::<f64>(&[4, 4], 1.0, seed + 50);
        let l = Tensor::from_mat(expm_frechet(a.mat(), e.mat()).as_ref());
        let h = 1e-5;
        let ep = Tensor::from_mat(expm(a.add(&e.scale(h)).mat()).as_ref());
        let em = Tensor::from_mat(expm(a.sub(&e.scale(h)).mat()).as_ref());
        let fd = ep.sub(&em).scale(0.5 / h);
        let rel = max_abs_diff(&l, &fd) / fd.max_abs();
        assert!(rel < 1e-7, "std={std}: rel {rel:e}");
    }
}

/// Cayley is the Padé(1,1) approximant of exp(2K):
/// (I + K)(I − K)⁻¹ = I + 2K + 2K² + 2K³ + 2K⁴ + …, exp(2K) = I + 2K + 2K² + (4/3)K³ + (2/3)K⁴ + …,
/// so cayley(tθ) − exp(2tθ) = (2/3)t³K³ + (4/3)t⁴K⁴ + O(t⁵).
#[test]
fn cayley_and_exp_agree_to_first_order() {
    let b = 4;
    let theta = randn::<f64>(&[2, skew_dim(b)], 0.5, 31);
    let k0 = skew_from_free(&theta, b);
    let k3 = k0.bmm(&k0).bmm(&k0);
    let k4 = k3.bmm(&k0);
    let mut prev_ratio = None;
    for t in [1e-1, 1e-2, 1e-3] {
        let c = cayley_tensor(&theta.scale(t), b);
        let e = expm_skew_tensor(&theta.scale(2.0 * t), b);
        let diff = c.sub(&e);
        let lead = k3.scale(2.0 / 3.0 * t * t * t);
        // O(t³): the difference matches the cubic term up to O(t⁴).
        let resid = diff.sub(&lead).max_abs();
        let bound = 2.0 * (4.0 / 3.0) * k4.max_abs() * t.powi(4) + 1e-15;
        assert!(resid <= bound, "t={t}: residual {resid:e} > {bound:e}");
        let ratio = diff.max_abs() / t.powi(3);
        if let Some(p) = prev_ratio {
            let change: f64 = ratio / p;
            assert!(
                (change - 1.0).abs() < 0.1,
                "diff/t³ not constant: {p} → {ratio}"
            );
        }
        prev_ratio = Some(ratio);
    }
}

#[test]
#[should_panic(expected = "cayley: free parameters must have shape (k, b(b-1)/2) = (k, 6)")]
fn cayley_rejects_wrong_parameter_shape() {
    cayley_tensor(&Tensor::<f64>::zeros(&[2, 5]), 4);
}

#[test]
#[should_panic(expected = "expm_skew")]
fn expm_rejects_wrong_parameter_shape() {
    expm_skew_tensor(&Tensor::<f64>::zeros(&[2, 3, 3]), 3);
}
