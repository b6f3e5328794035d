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

/// `out[i, j] = f(x[i, j], r[j])` over the rows of `x`.
fn map_rows<T: Real>(x: &Tensor<T>, r: &Tensor<T>, f: impl Fn(T, T) -> T) -> Tensor<T> {
    let n = r.numel();
    let mut out = x.clone();
    for chunk in out.data_mut().chunks_exact_mut(n) {
        chunk
            .iter_mut()
            .zip(r.data())
            .for_each(|(a, &b)| *a = f(*a, b));
    }
    out
}

impl<'t, T: Real> Var<'t, T> {
    /// Adds a row vector to every row: `z[i, j] = x[i, j] + b[j]`.
    /// Gradients: `dx = G`, `db[j] = Σ_i G[i, j]`.
    ///
    /// # Panics
    /// If `b` is not 1-D of length `x.shape().last()`; the message names `add_row` and both shapes.
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
            let ds = needs[1].then(|| sum_rows(&g.mul(&xv), n));
            vec![dx, ds]
        })
    }
}
