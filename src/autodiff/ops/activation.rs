//! Activations: [`Var::relu`], [`Var::tanh`], [`Var::sigmoid`] (elementwise).

use crate::autodiff::ops::elementwise::{unary_from_input, unary_from_output};
use crate::autodiff::tape::Var;
use crate::real::Real;

impl<'t, T: Real> Var<'t, T> {
    /// Rectified linear unit `z = max(x, 0)`, with NaN propagated (`relu(NaN) = NaN`, as in
    /// PyTorch: a NaN activation must reach the loss, where training stops, instead of being
    /// silently replaced by 0). Gradient: `dx = G ⊙ 1[x > 0]` (the subgradient 0 is used at the
    /// kink `x = 0`).
    ///
    /// # Example
    /// ```
    /// # let tape = gslab::Tape::<f64>::new();
    /// let x = tape.leaf(gslab::Tensor::from_vec(&[3], vec![-1.0, 0.0, 2.0])?);
    /// assert_eq!(x.relu().value().data(), &[0.0, 0.0, 2.0]);
    /// # Ok::<(), gslab::Error>(())
    /// ```
    pub fn relu(self) -> Var<'t, T> {
        let value = self
            .value()
            .map(|v| if v.is_nan() { v } else { v.max(T::zero()) });
        unary_from_input(self, value, |g, x| {
            g.zip_map(x, "relu backward", |gi, xi| {
                if xi > T::zero() { gi } else { T::zero() }
            })
        })
    }

    /// Hyperbolic tangent `z = tanh x`. Gradient: `dx = G ⊙ (1 − z²)` (from the stored output).
    pub fn tanh(self) -> Var<'t, T> {
        let value = self.value().map(|v| v.tanh());
        unary_from_output(self, value, |g, y| {
            g.zip_map(y, "tanh backward", |gi, yi| gi * (T::one() - yi * yi))
        })
    }

    /// Logistic sigmoid `z = σ(x) = 1 / (1 + e^(−x))`, evaluated as `e^x / (1 + e^x)` for
    /// `x < 0` so neither branch overflows. Gradient: `dx = G ⊙ z(1 − z)` (from the stored output).
    pub fn sigmoid(self) -> Var<'t, T> {
        let value = self.value().map(sigmoid);
        unary_from_output(self, value, |g, y| {
            g.zip_map(y, "sigmoid backward", |gi, yi| gi * yi * (T::one() - yi))
        })
    }
}

/// Overflow-free logistic function.
fn sigmoid<T: Real>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}

#[cfg(test)]
mod tests {
    use crate::autodiff::ops::test_util::{check, close, off_zero, project, randn, t};
    use crate::autodiff::tape::Tape;

    #[test]
    fn grad_relu() {
        check(
            "relu",
            |_, v| project(v[0].relu(), 27),
            &[off_zero(&[3, 4], 39)],
        );
    }

    #[test]
    fn grad_tanh() {
        check(
            "tanh",
            |_, v| project(v[0].tanh(), 28),
            &[randn(&[3, 4], 40)],
        );
    }

    #[test]
    fn grad_sigmoid() {
        let x = randn(&[3, 4], 41).scale(3.0); // both branches of the stable formula
        check("sigmoid", |_, v| project(v[0].sigmoid(), 29), &[x]);
    }

    /// Hand-worked values of `relu`, `tanh` and `sigmoid` (the `exp`, `log`, `powf`, `square`
    /// part is `elementwise::tests::forward_exp_log_powf_square`).
    #[test]
    fn forward_activations() {
        let tape = Tape::<f64>::new();
        let ln2 = 2f64.ln();
        let ln3 = 3f64.ln();
        let x = tape.constant(t(&[5], &[-1.5, 0.0, ln2, ln3, -1000.0]));
        assert_eq!(x.relu().value().data(), &[0.0, 0.0, ln2, ln3, 0.0]);
        // NaN is propagated, not replaced by 0 (a NaN state must reach the loss).
        let nan = tape.constant(t(&[3], &[f64::NAN, -1.0, 2.0]));
        let r = nan.relu().value();
        assert!(r.data()[0].is_nan());
        assert_eq!(&r.data()[1..], &[0.0, 2.0]);
        // tanh(ln 2) = (2 − 1/2)/(2 + 1/2) = 0.6; tanh(ln 3) = (3 − 1/3)/(3 + 1/3) = 0.8
        let th = x.tanh().value();
        close(&th.data()[1..4], &[0.0, 0.6, 0.8], 1e-15);
        // σ(0) = 1/2, σ(ln 2) = 2/3, σ(ln 3) = 3/4, σ(−1000) = 0 without overflow
        let sg = x.sigmoid().value();
        close(&sg.data()[1..], &[0.5, 2.0 / 3.0, 0.75, 0.0], 1e-15);
    }
}
