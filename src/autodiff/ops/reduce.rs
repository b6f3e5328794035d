//! Reductions: [`Var::sum`] and [`Var::mean`] over all elements (to a 0-D scalar), and
//! [`Var::sum_axis`] / [`Var::mean_axis`] along one axis of a 2-D variable.

use crate::autodiff::tape::Var;
use crate::real::Real;
use crate::tensor::Tensor;

/// `(rows, cols)` of a 2-D shape; panics naming `op` otherwise.
fn dims2(s: &[usize], axis: usize, op: &str) -> (usize, usize) {
    match s {
        [r, c] if axis < 2 => (*r, *c),
        _ => panic!("{op}: need a 2-D variable and axis 0 or 1, got shape {s:?} and axis {axis}"),
    }
}

/// `Σ` of a `(r, c)` row-major buffer along `axis`, times `scale`.
fn reduce_axis<T: Real>(x: &Tensor<T>, r: usize, c: usize, axis: usize, scale: T) -> Tensor<T> {
    if axis == 0 {
        let mut s = vec![T::zero(); c];
        for row in x.data().chunks_exact(c.max(1)).take(r) {
            s.iter_mut().zip(row).for_each(|(a, &b)| *a += b);
        }
        Tensor::from_vec(&[c], s.into_iter().map(|v| v * scale).collect()).expect("sum_axis 0")
    } else {
        let s = (0..r)
            .map(|i| x.data()[i * c..(i + 1) * c].iter().copied().sum::<T>() * scale)
            .collect();
        Tensor::from_vec(&[r], s).expect("sum_axis 1")
    }
}

/// Broadcasts the reduced gradient `g` back to `(r, c)`, times `scale`.
fn expand_axis<T: Real>(g: &Tensor<T>, r: usize, c: usize, axis: usize, scale: T) -> Tensor<T> {
    let gd = g.data();
    if axis == 0 {
        Tensor::from_fn(&[r, c], |k| gd[k % c] * scale)
    } else {
        Tensor::from_fn(&[r, c], |k| gd[k / c] * scale)
    }
}

impl<'t, T: Real> Var<'t, T> {
    /// Sum of all elements, `s = Σ_i x_i`, a 0-D variable. Gradient: `dx_i = G`.
    pub fn sum(self) -> Var<'t, T> {
        self.total(T::one())
    }

    /// Mean of all elements, `s = (1/N) Σ_i x_i`, a 0-D variable. Gradient: `dx_i = G / N`.
    /// (An empty tensor gives `s = 0`.)
    pub fn mean(self) -> Var<'t, T> {
        let n = self.value().numel().max(1);
        self.total(T::one() / T::from_usize(n))
    }

    /// `s = scale · Σ_i x_i`; gradient `dx_i = scale · G`.
    fn total(self, scale: T) -> Var<'t, T> {
        let shape = self.shape();
        let value = Tensor::scalar(self.value().sum() * scale);
        self.tape().push_op(value, &[self], move |g, needs| {
            vec![needs[0].then(|| Tensor::full(&shape, g.item() * scale))]
        })
    }

    /// Sum along `axis` of a 2-D `(r, c)` variable: axis 0 gives `s[j] = Σ_i x[i, j]` (shape `(c)`),
    /// axis 1 gives `s[i] = Σ_j x[i, j]` (shape `(r)`). Gradient: `dx[i, j] = G[j]` resp. `G[i]`.
    ///
    /// # Panics
    /// If `x` is not 2-D or `axis > 1`; the message names `sum_axis`, the shape and the axis.
    ///
    /// # Example
    /// ```
    /// # let tape = gslab::Tape::<f64>::new();
    /// let x = tape.leaf(gslab::Tensor::from_vec(&[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])?);
    /// assert_eq!(x.sum_axis(0).value().data(), &[5.0, 7.0, 9.0]);
    /// # Ok::<(), gslab::Error>(())
    /// ```
    pub fn sum_axis(self, axis: usize) -> Var<'t, T> {
        self.reduce_axis_op(axis, false, "sum_axis")
    }

    /// Mean along `axis` of a 2-D `(r, c)` variable: the [`sum_axis`](Var::sum_axis) divided by
    /// the reduced size `r` (axis 0) or `c` (axis 1). Gradient: `G[j] / r` resp. `G[i] / c`.
    ///
    /// # Panics
    /// If `x` is not 2-D or `axis > 1`; the message names `mean_axis`, the shape and the axis.
    pub fn mean_axis(self, axis: usize) -> Var<'t, T> {
        self.reduce_axis_op(axis, true, "mean_axis")
    }

    fn reduce_axis_op(self, axis: usize, mean: bool, op: &str) -> Var<'t, T> {
        let (r, c) = dims2(&self.shape(), axis, op);
        let len = if axis == 0 { r } else { c };
        let scale = if mean {
            T::one() / T::from_usize(len.max(1))
        } else {
            T::one()
        };
        let value = reduce_axis(&self.value(), r, c, axis, scale);
        self.tape().push_op(value, &[self], move |g, needs| {
            vec![needs[0].then(|| expand_axis(g, r, c, axis, scale))]
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::autodiff::ops::test_util::{check, project, randn, t};
    use crate::autodiff::tape::Tape;

    #[test]
    fn grad_sum_mean() {
        check(
            "sum",
            |_, v| v[0].sum().mul_scalar(1.5),
            &[randn(&[3, 4], 35)],
        );
        check(
            "mean",
            |_, v| v[0].mean().mul_scalar(1.5),
            &[randn(&[3, 4], 36)],
        );
    }

    #[test]
    fn grad_sum_mean_axis() {
        for axis in 0..2 {
            check(
                "sum_axis",
                move |_, v| project(v[0].sum_axis(axis), 25),
                &[randn(&[3, 4], 37)],
            );
            check(
                "mean_axis",
                move |_, v| project(v[0].mean_axis(axis), 26),
                &[randn(&[3, 4], 38)],
            );
        }
    }

    /// The reduction part of the hand-worked reduction and broadcast values (the broadcasts are
    /// `broadcast::tests::forward_broadcast`, the transpose `shape::tests::forward_transpose`).
    #[test]
    fn forward_reductions() {
        let tape = Tape::<f64>::new();
        let x = tape.constant(t(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
        assert_eq!(x.sum().value().item(), 21.0);
        assert_eq!(x.mean().value().item(), 3.5);
        assert_eq!(x.sum().shape(), Vec::<usize>::new());
        assert_eq!(x.sum_axis(0).value().data(), &[5.0, 7.0, 9.0]);
        assert_eq!(x.sum_axis(1).value().data(), &[6.0, 15.0]);
        assert_eq!(x.mean_axis(0).value().data(), &[2.5, 3.5, 4.5]);
        assert_eq!(x.mean_axis(1).value().data(), &[2.0, 5.0]);
    }

    #[test]
    #[should_panic(expected = "sum_axis: need a 2-D variable and axis 0 or 1, got shape [2, 2, 2]")]
    fn sum_axis_needs_2d_panics() {
        let tape = Tape::<f64>::new();
        let _ = tape.leaf(crate::Tensor::zeros(&[2, 2, 2])).sum_axis(0);
    }

    #[test]
    #[should_panic(
        expected = "mean_axis: need a 2-D variable and axis 0 or 1, got shape [2, 3] and axis 2"
    )]
    fn mean_axis_bad_axis_panics() {
        let tape = Tape::<f64>::new();
        let _ = tape.leaf(crate::Tensor::zeros(&[2, 3])).mean_axis(2);
    }
}
