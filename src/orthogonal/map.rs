//! [`OrthoMap`]: the choice of block map from skew generators to orthogonal blocks, and the
//! orthogonality error used by every test and experiment.

use crate::autodiff::tape::Var;
use crate::orthogonal::cayley::{cayley, cayley_tensor};
use crate::orthogonal::expm::{expm_skew, expm_skew_tensor};
use crate::real::Real;
use crate::tensor::Tensor;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};

/// Which map turns the free parameters of a skew generator `K` into an orthogonal block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum OrthoMap {
    /// `Q = (I + K)(I − K)⁻¹` (the paper's and the official code's default).
    #[default]
    Cayley,
    /// `Q = exp(K)` (the official code's `method="exp"`).
    Exp,
}

impl OrthoMap {
    /// Tape op: `(k, b(b−1)/2)` free parameters → `(k, b, b)` orthogonal blocks.
    ///
    /// # Panics
    /// If `theta` is not `(k, b(b−1)/2)`.
    pub fn apply<'t, T: Real>(self, theta: Var<'t, T>, b: usize) -> Var<'t, T> {
        match self {
            Self::Cayley => cayley(theta, b),
            Self::Exp => expm_skew(theta, b),
        }
    }

    /// The same map without a tape.
    ///
    /// # Panics
    /// If `theta` is not `(k, b(b−1)/2)`.
    pub fn blocks<T: Real>(self, theta: &Tensor<T>, b: usize) -> Tensor<T> {
        match self {
            Self::Cayley => cayley_tensor(theta, b),
            Self::Exp => expm_skew_tensor(theta, b),
        }
    }

    /// The name used in CSV outputs: `"cayley"` or `"exp"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cayley => "cayley",
            Self::Exp => "exp",
        }
    }
}

/// `‖QᵀQ − I‖_max` of one square matrix, computed in `T`.
fn orth_err_one<T: Real>(q: MatRef<'_, T>) -> T {
    let n = q.nrows();
    let mut g = Mat::<T>::zeros(n, n);
    matmul(
        g.as_mut(),
        Accum::Replace,
        q.transpose(),
        q,
        T::one(),
        Par::Seq,
    );
    let mut worst = T::zero();
    for i in 0..n {
        for j in 0..n {
            let e = if i == j {
                g[(i, j)] - T::one()
            } else {
                g[(i, j)]
            };
            worst = worst.max(e.abs());
        }
    }
    worst
}

/// `max_j ‖Q_jᵀQ_j − I‖_max` over a square `(n, n)` matrix or a `(k, b, b)` stack, computed in
/// `T` itself (so an f32 result measures f32 rounding).
///
/// # Panics
/// If the tensor is not a square matrix or a stack of square matrices.
pub fn orthogonality_error<T: Real>(q: &Tensor<T>) -> T {
    let (k, r, c) = match q.shape() {
        &[r, c] => (1, r, c),
        &[k, r, c] => (k, r, c),
        s => panic!("orthogonality_error: expected (n, n) or (k, b, b), got {s:?}"),
    };
    assert!(
        r == c,
        "orthogonality_error: blocks must be square, got {:?}",
        q.shape()
    );
    (0..k)
        .map(|j| {
            orth_err_one(MatRef::from_row_major_slice(
                &q.data()[j * r * r..][..r * r],
                r,
                r,
            ))
        })
        .fold(T::zero(), |a, b| a.max(b))
}
