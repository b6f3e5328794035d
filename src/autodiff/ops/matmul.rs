//! Matrix products on the tape: 2-D [`Var::matmul`] / [`Var::matmul_t`] and batched 3-D
//! [`Var::bmm`] / [`Var::bmm_t`].
//!
//! For `C = op(A)·op(B)` with `op` the identity or the transpose, the gradients are again
//! products of transposed views (no transposed copies are made):
//!
//! | flags `(ta, tb)` | `dA` | `dB` |
//! |---|---|---|
//! | `(false, false)` | `G·Bᵀ` | `Aᵀ·G` |
//! | `(false, true)`  | `G·B`  | `Gᵀ·A` |
//! | `(true, false)`  | `B·Gᵀ` | `A·G`  |
//! | `(true, true)`   | `Bᵀ·Gᵀ` | `Gᵀ·Aᵀ` |

use crate::autodiff::tape::Var;
use crate::real::Real;
use crate::tensor::Tensor;

/// `(rows, cols)` of the last two axes of `s`, swapped if `t`.
fn op_dims(s: &[usize], t: bool) -> (usize, usize) {
    let (r, c) = (s[s.len() - 2], s[s.len() - 1]);
    if t { (c, r) } else { (r, c) }
}

/// Checks ranks, batch sizes and inner sizes of `op(A)·op(B)`; panics naming `op` and both shapes.
fn check(a: &[usize], ta: bool, b: &[usize], tb: bool, rank: usize, op: &str) {
    let ok = a.len() == rank
        && b.len() == rank
        && (rank == 2 || a[0] == b[0])
        && op_dims(a, ta).1 == op_dims(b, tb).0;
    assert!(
        ok,
        "{op}: shape mismatch {a:?}{} vs {b:?}{} (need {rank}-D operands with matching inner sizes{})",
        if ta { "ᵀ" } else { "" },
        if tb { "ᵀ" } else { "" },
        if rank == 3 { " and batch" } else { "" }
    );
}

/// The two gradients of `C = op(A)·op(B)` through `prod(x, tx, y, ty) = op(x)·op(y)`.
fn product_grads<T: Real>(
    g: &Tensor<T>,
    a: &Tensor<T>,
    ta: bool,
    b: &Tensor<T>,
    tb: bool,
    needs: &[bool],
    prod: fn(&Tensor<T>, bool, &Tensor<T>, bool) -> Tensor<T>,
) -> Vec<Option<Tensor<T>>> {
    let da = needs[0].then(|| {
        if ta {
            prod(b, tb, g, true) // dA = (G·op(B)ᵀ)ᵀ = op(B)·Gᵀ
        } else {
            prod(g, false, b, !tb) // dA = G·op(B)ᵀ
        }
    });
    let db = needs[1].then(|| {
        if tb {
            prod(g, true, a, ta) // dB = (op(A)ᵀ·G)ᵀ = Gᵀ·op(A)
        } else {
            prod(a, !ta, g, false) // dB = op(A)ᵀ·G
        }
    });
    vec![da, db]
}

impl<'t, T: Real> Var<'t, T> {
    /// Matrix product `C = A·B` of 2-D variables, `(m, k)·(k, n) → (m, n)`.
    /// Gradients: `dA = G·Bᵀ`, `dB = Aᵀ·G`.
    ///
    /// # Panics
    /// If an operand is not 2-D or the inner sizes differ; the message names `matmul` and both shapes.
    pub fn matmul(self, other: Var<'t, T>) -> Var<'t, T> {
        self.matmul_op(false, other, false, "matmul")
    }

    /// `C = op(A)·op(B)` for 2-D variables, `op` transposing when its flag is set; e.g. the
    /// linear layer `x·Wᵀ` is `x.matmul_t(false, w, true)`. Gradients: see the module table.
    ///
    /// # Panics
    /// If an operand is not 2-D or the inner sizes differ; the message names `matmul_t` and both shapes.
    pub fn matmul_t(self, ta: bool, other: Var<'t, T>, tb: bool) -> Var<'t, T> {
        self.matmul_op(ta, other, tb, "matmul_t")
    }

    fn matmul_op(self, ta: bool, other: Var<'t, T>, tb: bool, op: &str) -> Var<'t, T> {
        check(&self.shape(), ta, &other.shape(), tb, 2, op);
        let (a, b) = (self.value(), other.value());
        let value = a.matmul_t(ta, &b, tb);
        self.tape().push_op(value, &[self, other], move |g, needs| {
            product_grads(g, &a, ta, &b, tb, needs, |x, tx, y, ty| {
                x.matmul_t(tx, y, ty)
            })
        })
    }

    /// Batched product `C[i] = A[i]·B[i]` of 3-D variables, `(B, m, k)·(B, k, n) → (B, m, n)`.
    /// Gradients: `dA[i] = G[i]·B[i]ᵀ`, `dB[i] = A[i]ᵀ·G[i]`.
    ///
    /// # Panics
    /// If an operand is not 3-D, the batch sizes differ or the inner sizes differ; the message
    /// names `bmm` and both shapes.
    pub fn bmm(self, other: Var<'t, T>) -> Var<'t, T> {
        self.bmm_op(false, other, false, "bmm")
    }

    /// Batched `C[i] = op(A[i])·op(B[i])` of 3-D variables. Gradients: see the module table,
    /// applied per batch entry.
    ///
    /// # Panics
    /// If an operand is not 3-D, the batch sizes differ or the inner sizes differ; the message
    /// names `bmm_t` and both shapes.
    pub fn bmm_t(self, ta: bool, other: Var<'t, T>, tb: bool) -> Var<'t, T> {
        self.bmm_op(ta, other, tb, "bmm_t")
    }

    fn bmm_op(self, ta: bool, other: Var<'t, T>, tb: bool, op: &str) -> Var<'t, T> {
        check(&self.shape(), ta, &other.shape(), tb, 3, op);
        let (a, b) = (self.value(), other.value());
        let value = a.bmm_t(ta, &b, tb);
        self.tape().push_op(value, &[self, other], move |g, needs| {
            product_grads(g, &a, ta, &b, tb, needs, |x, tx, y, ty| x.bmm_t(tx, y, ty))
        })
    }
}
