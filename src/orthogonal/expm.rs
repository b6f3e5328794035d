//! The matrix exponential (faer has none) and the exponential map over a stack of skew blocks.
//!
//! **Algorithm** (scaling and squaring with diagonal Padé approximants, Higham 2005):
//! `exp(A) = r_m(2^{−s} A)^{2^s}` with `r_m = q_m(A)⁻¹ p_m(A)`,
//!
//! ```text
//! p_m(A) = Σ_{j=0..m} c_j A^j,   q_m(A) = p_m(−A),   c_j = (2m−j)! m! / ((2m)! j! (m−j)!),
//! ```
//!
//! evaluated as `p_m = V + U`, `q_m = V − U` with `V` the even and `U` the odd part. The degree
//! `m ∈ {3, 5, 7, 9, 13}` and the scaling `s` come from the 1-norm: the smallest `m` with
//! `‖A‖₁ ≤ θ_m`, else `m = 13` and `s = ⌈log₂(‖A‖₁/θ₁₃)⌉`, with Higham's double-precision
//! thresholds `θ_m`, for which the backward error is below `2⁻⁵³`. The same thresholds are used
//! for `f32` (more accurate than f32 needs; the blocks are small, so the cost does not matter).
//! `m = 13` uses Higham's evaluation with `A², A⁴, A⁶` only.
//!
//! **Skew inputs are exactly orthogonal in exact arithmetic at every stage**: for skew `K`, `V` is
//! symmetric and `U` skew, so `q_m(K) = (V − U) = (V + U)ᵀ = p_m(K)ᵀ` and
//! `r_m(K) = (p_m(K)ᵀ)⁻¹ p_m(K)` is orthogonal (a Cayley-like map); squaring keeps
//! orthogonality. Only rounding separates the computed `Q` from the orthogonal group. A zero
//! matrix gives `U = 0`, `V = I`, `s = 0` and `exp(0) = I` bit for bit.
//!
//! **Backward** (the Fréchet derivative). For `Q = exp(K)` and `G = ∂ℓ/∂Q`,
//! `dℓ = ⟨G, L(K, dK)⟩ = ⟨L(Kᵀ, G), dK⟩`, so `∂ℓ/∂K = L(Kᵀ, G)`, computed from the block-triangular
//! identity (Mathias 1996)
//!
//! ```text
//! exp([[X, E], [0, X]]) = [[exp(X), L(X, E)], [0, exp(X)]]
//! ```
//!
//! with `X = Kᵀ = −K`. `L(X, ·)` is linear, so `E = c·G` is scaled to `‖cG‖₁ = max(‖X‖₁, 1)`
//! and the result divided by `c`; this keeps the `2b × 2b` exponential's norm (and so its
//! scaling and its rounding) governed by `K`. Finally `∂ℓ/∂θ_(i,l) = (∂ℓ/∂K)_il − (∂ℓ/∂K)_li`.

use crate::autodiff::tape::Var;
use crate::orthogonal::cayley::{
    LuSolver, check_free, for_each_block, free_grad_from_skew, skew_from_free,
};
use crate::real::Real;
use crate::tensor::Tensor;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};

/// Higham's (2005) double-precision thresholds: `‖A‖₁ ≤ θ_m` makes the degree-`m` diagonal Padé
/// approximant exact to unit roundoff (backward error).
const THETA: [(usize, f64); 5] = [
    (3, 1.495_585_217_958_292e-2),
    (5, 2.539_398_330_063_23e-1),
    (7, 9.504_178_996_162_932e-1),
    (9, 2.097_847_961_257_068e0),
    (13, 5.371_920_351_148_152e0),
];

/// Coefficients `c_0..c_m` of the degree-`m` diagonal Padé numerator of `exp`, from the
/// recurrence `c_0 = 1`, `c_j = c_{j−1}·(m−j+1) / (j·(2m−j+1))`.
pub fn pade_coefficients(m: usize) -> Vec<f64> {
    let mut c = vec![1.0f64; m + 1];
    for j in 1..=m {
        c[j] = c[j - 1] * (m - j + 1) as f64 / (j * (2 * m - j + 1)) as f64;
    }
    c
}

/// The 1-norm `max_j Σ_i |A_ij|`, in f64.
fn norm1<T: Real>(a: MatRef<'_, T>) -> f64 {
    (0..a.ncols())
        .map(|j| {
            (0..a.nrows())
                .map(|i| a[(i, j)].to_f64().abs())
                .sum::<f64>()
        })
        .fold(0.0, f64::max)
}

/// `a · b` into a new matrix, sequentially.
fn mul<T: Real>(a: MatRef<'_, T>, b: MatRef<'_, T>) -> Mat<T> {
    let mut c = Mat::zeros(a.nrows(), b.ncols());
    matmul(c.as_mut(), Accum::Replace, a, b, T::one(), Par::Seq);
    c
}

/// `Σ coef_i · mats_i + c0·I` for square matrices of size `n`.
fn lincomb<T: Real>(n: usize, c0: f64, terms: &[(f64, &Mat<T>)]) -> Mat<T> {
    Mat::from_fn(n, n, |i, j| {
        let mut v = if i == j { T::from_f64(c0) } else { T::zero() };
        for (c, m) in terms {
            v += T::from_f64(*c) * m[(i, j)];
        }
        v
    })
}

/// The odd and even parts `(U, V)` of the degree-`m` Padé numerator at `a`.
fn pade_parts<T: Real>(a: MatRef<'_, T>, m: usize) -> (Mat<T>, Mat<T>) {
    let n = a.nrows();
    let c = pade_coefficients(m);
    let a2 = mul(a, a.as_ref());
    let a4 = mul(a2.as_ref(), a2.as_ref());
    if m == 13 {
        let a6 = mul(a4.as_ref(), a2.as_ref());
        let u_in = lincomb(n, 0.0, &[(c[13], &a6), (c[11], &a4), (c[9], &a2)]);
        let u_out = lincomb(n, c[1], &[(c[7], &a6), (c[5], &a4), (c[3], &a2)]);
        let mut u_sum = mul(a6.as_ref(), u_in.as_ref());
        u_sum += &u_out;
        let u = mul(a, u_sum.as_ref());
        let v_in = lincomb(n, 0.0, &[(c[12], &a6), (c[10], &a4), (c[8], &a2)]);
        let v_out = lincomb(n, c[0], &[(c[6], &a6), (c[4], &a4), (c[2], &a2)]);
        let mut v = mul(a6.as_ref(), v_in.as_ref());
        v += &v_out;
        return (u, v);
    }
    // m ∈ {3, 5, 7, 9}: even powers up to A^(m−1).
    let mut pw: Vec<Mat<T>> = vec![a2, a4];
    while 2 * pw.len() < m - 1 {
        let next = mul(pw[pw.len() - 1].as_ref(), pw[0].as_ref());
        pw.push(next);
    }
    let half = (m - 1) / 2; // number of even powers A², …, A^(m−1) used
    let odd: Vec<(f64, &Mat<T>)> = (0..half).map(|i| (c[2 * i + 3], &pw[i])).collect();
    let even: Vec<(f64, &Mat<T>)> = (0..half).map(|i| (c[2 * i + 2], &pw[i])).collect();
    let u = mul(a, lincomb(n, c[1], &odd).as_ref());
    let v = lincomb(n, c[0], &even);
    (u, v)
}

/// The matrix exponential of a square matrix by scaling and squaring with a diagonal Padé
/// approximant (module docs), computed in `T`, sequentially.
///
/// # Panics
/// If `a` is not square.
pub fn expm<T: Real>(a: MatRef<'_, T>) -> Mat<T> {
    let n = a.nrows();
    assert!(
        a.ncols() == n,
        "expm: expected a square matrix, got {}x{}",
        n,
        a.ncols()
    );
    let nrm = norm1(a);
    let (m, s) = match THETA.iter().find(|(_, th)| nrm <= *th) {
        Some(&(m, _)) => (m, 0i32),
        None => (13, (nrm / THETA[4].1).log2().ceil().max(0.0) as i32),
    };
    let scale = T::from_f64(0.5f64.powi(s));
    let a_s = Mat::from_fn(n, n, |i, j| a[(i, j)] * scale);
    let (u, v) = pade_parts(a_s.as_ref(), m);
    let mut solver = LuSolver::<T>::new(n, n);
    let mut r = &v + &u; // p_m
    solver.matrix_mut().copy_from(&v - &u); // q_m
    solver.solve_in_place(r.as_mut());
    for _ in 0..s {
        r = mul(r.as_ref(), r.as_ref());
    }
    r
}

/// The Fréchet derivative `L(A, E) = d/dt exp(A + tE)|_{t=0}` from the upper-right block of
/// `exp([[A, cE], [0, A]]) / c`, with `c` chosen so that `‖cE‖₁ = max(‖A‖₁, 1)`.
///
/// # Panics
/// If `a` and `e` are not square of the same size.
pub fn expm_frechet<T: Real>(a: MatRef<'_, T>, e: MatRef<'_, T>) -> Mat<T> {
    let n = a.nrows();
    assert!(
        a.ncols() == n && e.nrows() == n && e.ncols() == n,
        "expm_frechet: expected square A and E of one size, got {}x{} and {}x{}",
        n,
        a.ncols(),
        e.nrows(),
        e.ncols()
    );
    let ne = norm1(e);
    if ne == 0.0 {
        return Mat::zeros(n, n);
    }
    let c = norm1(a).max(1.0) / ne;
    let ct = T::from_f64(c);
    let mut z = Mat::<T>::zeros(2 * n, 2 * n);
    z.as_mut().submatrix_mut(0, 0, n, n).copy_from(a);
    z.as_mut().submatrix_mut(n, n, n, n).copy_from(a);
    for i in 0..n {
        for j in 0..n {
            z[(i, n + j)] = ct * e[(i, j)];
        }
    }
    let ez = expm(z.as_ref());
    let inv_c = T::from_f64(1.0 / c);
    Mat::from_fn(n, n, |i, j| ez[(i, n + j)] * inv_c)
}

/// `exp(K_j)` of every block of a `(k, b, b)` stack, in parallel over blocks.
fn expm_stack<T: Real>(ks: &Tensor<T>, b: usize) -> Tensor<T> {
    let k = ks.shape()[0];
    let mut out = Tensor::zeros(&[k, b, b]);
    for_each_block(
        out.data_mut(),
        b * b,
        20 * k * b * b * b,
        || (),
        |_, j, dst| {
            let kj = MatRef::from_row_major_slice(&ks.data()[j * b * b..(j + 1) * b * b], b, b);
            MatMut::from_row_major_slice_mut(dst, b, b).copy_from(expm(kj));
        },
    );
    out
}

/// The exponential map of every block without a tape: `Q_j = exp(K_j)` from `(k, b(b−1)/2)`
/// free parameters; `(k, b, b)`.
///
/// # Panics
/// If `theta` is not `(k, b(b−1)/2)`.
pub fn expm_skew_tensor<T: Real>(theta: &Tensor<T>, b: usize) -> Tensor<T> {
    check_free(theta, b, "expm_skew");
    expm_stack(&skew_from_free(theta, b), b)
}

/// `∂ℓ/∂θ` for `Q = exp(K)`: `∂ℓ/∂K_j = L(K_jᵀ, G_j)` per block, then the free projection.
fn expm_backward<T: Real>(g: &Tensor<T>, ks: &Tensor<T>, b: usize) -> Tensor<T> {
    let k = ks.shape()[0];
    let mut gk = Tensor::zeros(&[k, b, b]);
    for_each_block(
        gk.data_mut(),
        b * b,
        160 * k * b * b * b,
        || (),
        |_, j, dst| {
            let kj = MatRef::from_row_major_slice(&ks.data()[j * b * b..(j + 1) * b * b], b, b);
            let gj = MatRef::from_row_major_slice(&g.data()[j * b * b..(j + 1) * b * b], b, b);
            let l = expm_frechet(kj.transpose(), gj);
            MatMut::from_row_major_slice_mut(dst, b, b).copy_from(l);
        },
    );
    free_grad_from_skew(&gk, b)
}

/// Tape op: the exponential map of every block, `(k, b(b−1)/2)` free parameters → `(k, b, b)`
/// orthogonal blocks `Q_j = exp(K_j)`, with the exact backward `∂ℓ/∂K = L(Kᵀ, G)` (module docs).
///
/// # Panics
/// If `theta` is not `(k, b(b−1)/2)`.
pub fn expm_skew<'t, T: Real>(theta: Var<'t, T>, b: usize) -> Var<'t, T> {
    check_free(&theta.value(), b, "expm_skew");
    let ks = skew_from_free(&theta.value(), b);
    let q = expm_stack(&ks, b);
    theta.tape().push_op(q, &[theta], move |g, needs| {
        vec![needs[0].then(|| expm_backward(g, &ks, b))]
    })
}
