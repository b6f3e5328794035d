//! Haar-distributed random orthogonal matrices: the uniform distribution on `O(n)` and `SO(n)`,
//! for random orthogonal targets, initialisations and tests.
//!
//! `Q R = G` with `G` Gaussian gives a `Q` whose distribution depends on the sign convention of
//! the QR routine; multiplying column `j` of `Q` by `sign(R_jj)` makes the factorization unique
//! (positive diagonal of `R`), and then `Q` is Haar-distributed (Mezzadri, "How to generate random
//! matrices from the classical compact groups", Notices AMS 54, 2007).

use crate::real::Real;
use crate::tensor::Tensor;
use faer::Mat;
use rand::Rng;

/// A Haar-distributed (uniform) random matrix of `O(n)`, as an `(n, n)` tensor: the `Q` of a QR
/// of an `n × n` standard Gaussian matrix (drawn in f64), with column `j` multiplied by
/// `sign(R_jj)`. Computed in f64 and rounded to `T`.
pub fn haar_orthogonal<T: Real, R: Rng + ?Sized>(n: usize, rng: &mut R) -> Tensor<T> {
    Tensor::<f64>::from_mat(haar_mat(n, rng).as_ref()).cast()
}

/// A Haar-distributed random matrix of `SO(n)` (orthogonal with determinant `+1`): a
/// [`haar_orthogonal`] draw with its first column negated when its determinant is `−1`, which maps
/// the Haar measure of `O(n)` onto that of `SO(n)`.
pub fn haar_special_orthogonal<T: Real, R: Rng + ?Sized>(n: usize, rng: &mut R) -> Tensor<T> {
    let mut q = haar_mat(n, rng);
    if n > 0 && q.determinant() < 0.0 {
        for i in 0..n {
            q[(i, 0)] = -q[(i, 0)];
        }
    }
    Tensor::<f64>::from_mat(q.as_ref()).cast()
}

/// `k` independent [`haar_orthogonal`] `b × b` blocks as a `(k, b, b)` tensor.
pub fn haar_orthogonal_blocks<T: Real, R: Rng + ?Sized>(
    k: usize,
    b: usize,
    rng: &mut R,
) -> Tensor<T> {
    let mut data = Vec::with_capacity(k * b * b);
    for _ in 0..k {
        data.extend_from_slice(haar_orthogonal::<T, R>(b, rng).data());
    }
    Tensor::from_vec(&[k, b, b], data).expect("k blocks of b x b")
}

/// The sign-fixed `Q` of a Gaussian matrix, in f64.
fn haar_mat<R: Rng + ?Sized>(n: usize, rng: &mut R) -> Mat<f64> {
    let g = Tensor::<f64>::randn(&[n, n], 1.0, rng).to_mat();
    let qr = g.qr();
    let mut q = qr.compute_thin_Q();
    let r = qr.thin_R();
    for j in 0..n {
        if r[(j, j)] < 0.0 {
            for i in 0..n {
                q[(i, j)] = -q[(i, j)];
            }
        }
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orthogonal::orthogonality_error;
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn draws_are_orthogonal_to_rounding() {
        let mut rng = StdRng::seed_from_u64(1);
        for n in [1, 2, 7, 32] {
            let q = haar_orthogonal::<f64, _>(n, &mut rng);
            assert!(orthogonality_error(&q) < 10.0 * n as f64 * f64::EPSILON);
            let s = haar_special_orthogonal::<f64, _>(n, &mut rng);
            assert!(orthogonality_error(&s) < 10.0 * n as f64 * f64::EPSILON);
            assert!((s.to_mat().determinant() - 1.0).abs() < 1e-12, "n = {n}");
        }
        let blocks = haar_orthogonal_blocks::<f32, _>(3, 4, &mut rng);
        assert_eq!(blocks.shape(), &[3, 4, 4]);
        assert!(orthogonality_error(&blocks) < 40.0 * f32::EPSILON);
    }

    /// Haar on O(n) is invariant under `Q ↦ −Q`, so every entry has mean 0 and `Q_00` has
    /// variance `1/n`. Householder QR alone has a sign bias on the diagonal: for `n = 1` it would
    /// always return the same sign, and for `n = 2` `E[Q_00]` would be far from 0. With 4000 draws
    /// the mean's standard error is `sqrt(1/(n·4000))`, so the bound 0.05 is over 4.4 standard
    /// errors for `n = 2` and over 3 for `n = 1`.
    #[test]
    fn entries_have_mean_zero_and_variance_one_over_n() {
        let mut rng = StdRng::seed_from_u64(7);
        for n in [1usize, 2, 5] {
            let draws = 4000;
            let (mut sum, mut sum_sq) = (0.0, 0.0);
            for _ in 0..draws {
                let q00 = haar_orthogonal::<f64, _>(n, &mut rng).data()[0];
                sum += q00;
                sum_sq += q00 * q00;
            }
            let mean = sum / draws as f64;
            let var = sum_sq / draws as f64 - mean * mean;
            assert!(mean.abs() < 0.05, "n = {n}: mean of Q_00 = {mean}");
            assert!((var - 1.0 / n as f64).abs() < 0.05, "n = {n}: var {var}");
        }
    }
}
