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
    ///
    /// # Example
    /// ```
    /// # let tape = gslab::Tape::<f64>::new();
    /// let a = tape.leaf(gslab::Tensor::from_vec(&[2, 2], vec![1.0, 2.0, 3.0, 4.0])?);
    /// let b = tape.leaf(gslab::Tensor::from_vec(&[2, 2], vec![5.0, 6.0, 7.0, 8.0])?);
    /// assert_eq!(a.matmul(b).value().data(), &[19.0, 22.0, 43.0, 50.0]);
    /// # Ok::<(), gslab::Error>(())
    /// ```
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

#[cfg(test)]
mod tests {
    use crate::autodiff::ops::test_util::{check, project, randn, t};
    use crate::autodiff::tape::Tape;
    use crate::tensor::Tensor;

    #[test]
    fn grad_matmul() {
        check(
            "matmul",
            |_, v| project(v[0].matmul(v[1]), 17),
            &[randn(&[3, 4], 23), randn(&[4, 2], 24)],
        );
    }

    #[test]
    fn grad_matmul_t_all_flags() {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let a = if ta {
                randn(&[4, 3], 25)
            } else {
                randn(&[3, 4], 25)
            };
            let b = if tb {
                randn(&[2, 4], 26)
            } else {
                randn(&[4, 2], 26)
            };
            let name = format!("matmul_t({ta},{tb})");
            check(
                &name,
                move |_, v| project(v[0].matmul_t(ta, v[1], tb), 18),
                &[a, b],
            );
        }
    }

    #[test]
    fn grad_bmm() {
        check(
            "bmm",
            |_, v| project(v[0].bmm(v[1]), 19),
            &[randn(&[2, 3, 4], 27), randn(&[2, 4, 2], 28)],
        );
    }

    #[test]
    fn grad_bmm_t_all_flags() {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let a = if ta {
                randn(&[2, 4, 3], 29)
            } else {
                randn(&[2, 3, 4], 29)
            };
            let b = if tb {
                randn(&[2, 2, 4], 30)
            } else {
                randn(&[2, 4, 2], 30)
            };
            let name = format!("bmm_t({ta},{tb})");
            check(
                &name,
                move |_, v| project(v[0].bmm_t(ta, v[1], tb), 20),
                &[a, b],
            );
        }
    }

    #[test]
    fn forward_matmul_and_variants() {
        let tape = Tape::<f64>::new();
        let a = tape.constant(t(&[2, 2], &[1.0, 2.0, 3.0, 4.0]));
        let b = tape.constant(t(&[2, 2], &[5.0, 6.0, 7.0, 8.0]));
        assert_eq!(a.matmul(b).value().data(), &[19.0, 22.0, 43.0, 50.0]);
        // A·Bᵀ = [[1·5+2·6, 1·7+2·8], [3·5+4·6, 3·7+4·8]]
        assert_eq!(
            a.matmul_t(false, b, true).value().data(),
            &[17.0, 23.0, 39.0, 53.0]
        );
        // Aᵀ·B = [[1·5+3·7, 1·6+3·8], [2·5+4·7, 2·6+4·8]]
        assert_eq!(
            a.matmul_t(true, b, false).value().data(),
            &[26.0, 30.0, 38.0, 44.0]
        );
        let a3 = tape.constant(t(&[2, 1, 2], &[1.0, 2.0, 3.0, 4.0]));
        let b3 = tape.constant(t(&[2, 2, 1], &[5.0, 6.0, 7.0, 8.0]));
        // [1,2]·[5,6]ᵀ = 17, [3,4]·[7,8]ᵀ = 53
        assert_eq!(a3.bmm(b3).value().data(), &[17.0, 53.0]);
    }

    #[test]
    #[should_panic(expected = "matmul: shape mismatch [2, 3] vs [2, 3]")]
    fn matmul_mismatch_panics() {
        let tape = Tape::<f64>::new();
        let a = tape.leaf(Tensor::zeros(&[2, 3]));
        let _ = a.matmul(a);
    }

    #[test]
    #[should_panic(expected = "bmm: shape mismatch [2, 3, 4] vs [3, 4, 2]")]
    fn bmm_batch_mismatch_panics() {
        let tape = Tape::<f64>::new();
        let _ = tape
            .leaf(Tensor::zeros(&[2, 3, 4]))
            .bmm(tape.leaf(Tensor::zeros(&[3, 4, 2])));
    }

    #[test]
    #[should_panic(expected = "matmul_t: shape mismatch [2, 3]ᵀ vs [2, 4]ᵀ")]
    fn matmul_t_mismatch_panics() {
        let tape = Tape::<f64>::new();
        let a = tape.leaf(Tensor::zeros(&[2, 3]));
        let _ = a.matmul_t(true, tape.leaf(Tensor::zeros(&[2, 4])), true);
    }

    #[test]
    #[should_panic(expected = "bmm_t: shape mismatch [2, 3, 4] vs [2, 3, 5]")]
    fn bmm_t_mismatch_panics() {
        let tape = Tape::<f64>::new();
        let a = tape.leaf(Tensor::zeros(&[2, 3, 4]));
        let _ = a.bmm_t(false, tape.leaf(Tensor::zeros(&[2, 3, 5])), false);
    }
}
