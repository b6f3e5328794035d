//! Activations: [`Var::relu`], [`Var::tanh`], [`Var::sigmoid`] (elementwise).

use crate::autodiff::ops::elementwise::{unary_from_input, unary_from_output};
use crate::autodiff::tape::Var;
use crate::real::Real;

impl<'t, T: Real> Var<'t, T> {
    /// Rectified linear unit `z = max(x, 0)`, with NaN propagated (`relu(NaN) = NaN`, as in
    /// PyTorch: a NaN activation must reach the loss, where training stops, instead of being
    /// silently replaced by 0). Gradient: `dx = G ⊙ 1[x > 0]` (the subgradient 0 is used at the
    /// kink `x = 0`).
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
