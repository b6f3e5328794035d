//! Shape ops: [`Var::transpose`], [`Var::reshape`] and [`Var::gather_last`] (an index map along
//! the last axis, the building block for permutations and shuffles on the tape) and
//! [`Var::permute_last`].

use crate::autodiff::tape::Var;
use crate::perm::Perm;
use crate::real::Real;
use crate::tensor::Tensor;

impl<'t, T: Real> Var<'t, T> {
    /// Transpose of a 2-D variable, or of the last two axes of a 3-D one: `z[…, j, i] = x[…, i, j]`.
    /// Gradient: `dx = Gᵀ` (same axes).
    ///
    /// # Panics
    /// If `x` is not 2-D or 3-D; the message names `transpose` and the shape.
    pub fn transpose(self) -> Var<'t, T> {
        let value = self.value().transpose();
        self.tape().push_op(value, &[self], |g, needs| {
            vec![needs[0].then(|| g.transpose())]
        })
    }

    /// Same data, new shape (row-major order is kept; the buffer is copied once, since the tape
    /// node owns its tensor). Gradient: `dx = reshape(G, shape(x))`.
    ///
    /// # Panics
    /// If the element counts differ; the message names `reshape` and both shapes.
    pub fn reshape(self, shape: &[usize]) -> Var<'t, T> {
        let old = self.shape();
        let value = (*self.value()).clone().reshape(shape).unwrap_or_else(|_| {
            panic!("reshape: shape mismatch {old:?} vs {shape:?} (element counts differ)")
        });
        self.tape().push_op(value, &[self], move |g, needs| {
            vec![needs[0].then(|| g.clone().reshape(&old).expect("reshape backward"))]
        })
    }

    /// Gathers along the last axis by an index map: for `x` of shape `(…, n)` and `idx` of
    /// length `m`, `z[…, j] = x[…, idx[j]]`, shape `(…, m)`. With a [`Perm`]'s
    /// gather map this applies the permutation to every row.
    /// Gradient (scatter-add, so repeated indices accumulate): `dx[…, idx[j]] += G[…, j]`.
    ///
    /// # Panics
    /// If `x` is 0-D or an index is `≥ n`; the message names `gather_last`, the index and the shape.
    ///
    /// # Example
    /// ```
    /// # let tape = gslab::Tape::<f64>::new();
    /// let x = tape.leaf(gslab::Tensor::from_vec(&[1, 3], vec![1.0, 2.0, 3.0])?);
    /// assert_eq!(x.gather_last(&[2, 0, 2]).value().data(), &[3.0, 1.0, 3.0]);
    /// # Ok::<(), gslab::Error>(())
    /// ```
    pub fn gather_last(self, idx: &[usize]) -> Var<'t, T> {
        let shape = self.shape();
        assert!(
            !shape.is_empty(),
            "gather_last: x must have an axis, got shape {shape:?}"
        );
        let n = shape[shape.len() - 1];
        if let Some(&bad) = idx.iter().find(|&&i| i >= n) {
            panic!("gather_last: index {bad} out of range for x of shape {shape:?}");
        }
        let m = idx.len();
        let mut out_shape = shape.clone();
        *out_shape.last_mut().expect("non-empty") = m;
        let x = self.value();
        let rows = x.numel().checked_div(n).unwrap_or(0);
        let mut data = Vec::with_capacity(rows * m);
        for row in x.data().chunks_exact(n.max(1)) {
            data.extend(idx.iter().map(|&i| row[i]));
        }
        let value = Tensor::from_vec(&out_shape, data).expect("gather_last: sizes");
        let idx = idx.to_vec();
        self.tape().push_op(value, &[self], move |g, needs| {
            vec![needs[0].then(|| {
                let mut dx = Tensor::zeros(&shape);
                if m > 0 && n > 0 {
                    for (drow, grow) in dx
                        .data_mut()
                        .chunks_exact_mut(n)
                        .zip(g.data().chunks_exact(m))
                    {
                        idx.iter().zip(grow).for_each(|(&i, &gj)| drow[i] += gj);
                    }
                }
                dx
            })]
        })
    }

    /// Applies a permutation to every slice along the last axis, in the gather convention of
    /// [`Perm`]: `z[…, i] = x[…, σ(i)]` (the same as [`Perm::apply_rows`] on a 2-D `x`).
    /// Gradient: `dx[…, σ(i)] = G[…, i]`, i.e. `dx = P⁻¹ G` row by row.
    ///
    /// # Panics
    /// If the last axis of `x` is not `perm.len()`; the message names `permute_last` and both sizes.
    pub fn permute_last(self, perm: &Perm) -> Var<'t, T> {
        let shape = self.shape();
        assert!(
            shape.last() == Some(&perm.len()),
            "permute_last: shape mismatch {shape:?} vs permutation of length {}",
            perm.len()
        );
        self.gather_last(perm.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use crate::autodiff::ops::test_util::{check, project, randn, t};
    use crate::autodiff::tape::Tape;
    use crate::perm::Perm;
    use crate::tensor::Tensor;
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn grad_transpose() {
        check(
            "transpose 2-D",
            |_, v| project(v[0].transpose(), 21),
            &[randn(&[3, 4], 31)],
        );
        check(
            "transpose 3-D",
            |_, v| project(v[0].transpose(), 22),
            &[randn(&[2, 3, 4], 32)],
        );
    }

    #[test]
    fn grad_reshape() {
        check(
            "reshape",
            |_, v| project(v[0].reshape(&[2, 6]), 23),
            &[randn(&[3, 4], 33)],
        );
    }

    #[test]
    fn grad_gather_last() {
        // repeated (1 twice) and missing (3) indices
        let idx = [2, 1, 0, 1, 4];
        check(
            "gather_last",
            move |_, v| project(v[0].gather_last(&idx), 24),
            &[randn(&[3, 5], 34)],
        );
    }

    #[test]
    fn grad_permute_last() {
        let perm = Perm::shuffle_gather(2, 6).unwrap();
        check(
            "permute_last",
            move |_, v| project(v[0].permute_last(&perm), 30),
            &[randn(&[3, 6], 55)],
        );
    }

    /// The transpose part of the hand-worked reduction and broadcast values (the reductions are
    /// `reduce::tests::forward_reductions`, the broadcasts `broadcast::tests::forward_broadcast`).
    #[test]
    fn forward_transpose() {
        let tape = Tape::<f64>::new();
        let x = tape.constant(t(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
        assert_eq!(
            x.transpose().value().data(),
            &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
        );
        assert_eq!(x.transpose().shape(), vec![3, 2]);
    }

    #[test]
    fn forward_permute_last_matches_perm_apply_rows() {
        let perm = Perm::random(7, &mut StdRng::seed_from_u64(56));
        let x = randn(&[3, 7], 57);
        let tape = Tape::<f64>::new();
        let y = tape.constant(x.clone()).permute_last(&perm);
        assert_eq!(*y.value(), perm.apply_rows(&x));
    }

    #[test]
    fn forward_gather_last_and_scatter_add_backward() {
        let tape = Tape::<f64>::new();
        let x = tape.leaf(t(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
        let y = x.gather_last(&[2, 0, 2, 2]);
        assert_eq!(y.shape(), vec![2, 4]);
        assert_eq!(y.value().data(), &[3.0, 1.0, 3.0, 3.0, 6.0, 4.0, 6.0, 6.0]);
        let grads = tape.backward(y.sum());
        // index 0 gathered once, 1 never, 2 three times
        assert_eq!(
            grads.get(x).unwrap().data(),
            &[1.0, 0.0, 3.0, 1.0, 0.0, 3.0]
        );
    }

    #[test]
    #[should_panic(expected = "permute_last: shape mismatch [2, 5] vs permutation of length 6")]
    fn permute_last_mismatch_panics() {
        let tape = Tape::<f64>::new();
        let _ = tape
            .leaf(Tensor::zeros(&[2, 5]))
            .permute_last(&Perm::identity(6));
    }

    #[test]
    #[should_panic(expected = "reshape: shape mismatch [2, 3] vs [4]")]
    fn reshape_mismatch_panics() {
        let tape = Tape::<f64>::new();
        let _ = tape.leaf(Tensor::zeros(&[2, 3])).reshape(&[4]);
    }

    #[test]
    #[should_panic(expected = "gather_last: index 3 out of range")]
    fn gather_out_of_range_panics() {
        let tape = Tape::<f64>::new();
        let _ = tape.leaf(Tensor::zeros(&[2, 3])).gather_last(&[0, 3]);
    }

    #[test]
    #[should_panic(expected = "transpose")]
    fn transpose_of_1d_panics() {
        let tape = Tape::<f64>::new();
        let _ = tape.leaf(Tensor::zeros(&[3])).transpose();
    }

    #[test]
    #[should_panic(expected = "gather_last: x must have an axis, got shape []")]
    fn gather_last_of_scalar_panics() {
        let tape = Tape::<f64>::new();
        let _ = tape.leaf(Tensor::scalar(1.0)).gather_last(&[0]);
    }
}
