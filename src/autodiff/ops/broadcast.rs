//! Broadcasting of a row vector over a batch: `add_row` (a bias) and `mul_row` (a scale).
//!
//! `x` has shape `(…, n)` (typically `(batch, n)`) and the row `r` has shape `(n)`; the row is
//! applied to every slice `x[i, :]` along the last axis. The row's gradient sums over the batch.

use crate::autodiff::tape::Var;
use crate::real::Real;
use crate::tensor::Tensor;

/// Panics unless `x` has a last axis equal to the length of the 1-D `row`.
fn check_row(x: &[usize], row: &[usize], op: &str) -> usize {
    let ok = row.len() == 1 && x.last() == Some(&row[0]);
    assert!(
        ok,
        "{op}: shape mismatch {x:?} vs {row:?} (need x = (…, n) and row = (n))"
    );
    row[0]
}

/// Column sums of `g` viewed as `(numel / n, n)`: `s[j] = Σ_i g[i, j]`.
fn sum_rows<T: Real>(g: &Tensor<T>, n: usize) -> Tensor<T> {
    let mut s = vec![T::zero(); n];
    for chunk in g.data().chunks_exact(n) {
        s.iter_mut().zip(chunk).for_each(|(a, &b)| *a += b);
    }
    Tensor::from_vec(&[n], s).expect("sum_rows: n elements")
}

/// Column sums of the product `g ⊙ x` viewed as `(numel / n, n)`: `s[j] = Σ_i g[i, j]·x[i, j]`
/// (one pass, no temporary product).
fn sum_rows_of_product<T: Real>(g: &Tensor<T>, x: &Tensor<T>, n: usize) -> Tensor<T> {
    let mut s = vec![T::zero(); n];
    for (gr, xr) in g.data().chunks_exact(n).zip(x.data().chunks_exact(n)) {
        s.iter_mut()
            .zip(gr.iter().zip(xr))
            .for_each(|(a, (&p, &q))| *a += p * q);
    }
    Tensor::from_vec(&[n], s).expect("sum_rows_of_product: n elements")
}

/// `out[i, j] = f(x[i, j], r[j])` over the rows of `x` (written once, in one pass).
fn map_rows<T: Real>(x: &Tensor<T>, r: &Tensor<T>, f: impl Fn(T, T) -> T) -> Tensor<T> {
    let n = r.numel();
    let mut out = Vec::with_capacity(x.numel());
    for chunk in x.data().chunks_exact(n) {
        out.extend(chunk.iter().zip(r.data()).map(|(&a, &b)| f(a, b)));
    }
    Tensor::from_vec(x.shape(), out).expect("map_rows: the shape of x")
}

impl<'t, T: Real> Var<'t, T> {
    /// Adds a row vector to every row: `z[i, j] = x[i, j] + b[j]`.
    /// Gradients: `dx = G`, `db[j] = Σ_i G[i, j]`.
    ///
    /// # Panics
    /// If `b` is not 1-D of length `x.shape().last()`; the message names `add_row` and both shapes.
    ///
    /// # Example
    /// ```
    /// # let tape = gslab::Tape::<f64>::new();
    /// let x = tape.leaf(gslab::Tensor::from_vec(&[2, 2], vec![1.0, 2.0, 3.0, 4.0])?);
    /// let b = tape.leaf(gslab::Tensor::from_vec(&[2], vec![10.0, 20.0])?);
    /// assert_eq!(x.add_row(b).value().data(), &[11.0, 22.0, 13.0, 24.0]);
    /// # Ok::<(), gslab::Error>(())
    /// ```
    pub fn add_row(self, b: Var<'t, T>) -> Var<'t, T> {
        let n = check_row(&self.shape(), &b.shape(), "add_row");
        let value = map_rows(&self.value(), &b.value(), |a, c| a + c);
        self.tape().push_op(value, &[self, b], move |g, needs| {
            vec![
                needs[0].then(|| g.clone()),
                needs[1].then(|| sum_rows(g, n)),
            ]
        })
    }

    /// Multiplies every row by a row vector: `z[i, j] = x[i, j] · s[j]`.
    /// Gradients: `dx[i, j] = G[i, j] · s[j]`, `ds[j] = Σ_i G[i, j] · x[i, j]`.
    ///
    /// # Panics
    /// If `s` is not 1-D of length `x.shape().last()`; the message names `mul_row` and both shapes.
    pub fn mul_row(self, s: Var<'t, T>) -> Var<'t, T> {
        let n = check_row(&self.shape(), &s.shape(), "mul_row");
        let (xv, sv) = (self.value(), s.value());
        let value = map_rows(&xv, &sv, |a, c| a * c);
        self.tape().push_op(value, &[self, s], move |g, needs| {
            let dx = needs[0].then(|| map_rows(g, &sv, |a, c| a * c));
            let ds = needs[1].then(|| sum_rows_of_product(g, &xv, n));
            vec![dx, ds]
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::autodiff::ops::test_util::{check, project, randn, t};
    use crate::autodiff::tape::Tape;
    use crate::tensor::Tensor;

    #[test]
    fn grad_add_row() {
        check(
            "add_row",
            |_, v| project(v[0].add_row(v[1]), 15),
            &[randn(&[4, 3], 19), randn(&[3], 20)],
        );
    }

    #[test]
    fn grad_mul_row() {
        check(
            "mul_row",
            |_, v| project(v[0].mul_row(v[1]), 16),
            &[randn(&[4, 3], 21), randn(&[3], 22)],
        );
    }

    /// The broadcast part of the hand-worked reduction and broadcast values (the reductions are
    /// `reduce::tests::forward_reductions`, the transpose `shape::tests::forward_transpose`).
    #[test]
    fn forward_broadcast() {
        let tape = Tape::<f64>::new();
        let x = tape.constant(t(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
        let r = tape.constant(t(&[3], &[10.0, 20.0, 30.0]));
        assert_eq!(
            x.add_row(r).value().data(),
            &[11.0, 22.0, 33.0, 14.0, 25.0, 36.0]
        );
        assert_eq!(
            x.mul_row(r).value().data(),
            &[10.0, 40.0, 90.0, 40.0, 100.0, 180.0]
        );
    }

    #[test]
    #[should_panic(expected = "add_row: shape mismatch [4, 3] vs [4]")]
    fn add_row_mismatch_panics() {
        let tape = Tape::<f64>::new();
        let _ = tape
            .leaf(Tensor::zeros(&[4, 3]))
            .add_row(tape.leaf(Tensor::zeros(&[4])));
    }

    #[test]
    #[should_panic(expected = "mul_row: shape mismatch [2, 3] vs [2]")]
    fn mul_row_mismatch_panics() {
        let tape = Tape::<f64>::new();
        let _ = tape
            .leaf(Tensor::zeros(&[2, 3]))
            .mul_row(tape.leaf(Tensor::zeros(&[2])));
    }
}
