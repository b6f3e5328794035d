//! [`Linear`]: the affine layer `y = x·Wᵀ + b` (the `nn.Linear` convention: `W` has shape
//! `(out, in)`, `b` has shape `(out)`, `x` is a `(batch, in)` batch of rows).
//!
//! Parameters live outside the tape (micrograd style): each step [`Linear::enter`] puts them on a
//! fresh tape as leaves, the returned [`LinearVars`] apply the layer and name the leaves whose
//! gradients the optimizer reads, and the tape is dropped after the step.
//!
//! ```
//! use gslab::nn::linear::Linear;
//! use gslab::{Params, Tape, Tensor};
//! let mut layer = Linear::<f64>::seeded(3, 2, 0);
//! let tape = Tape::new();
//! let x = tape.constant(Tensor::ones(&[4, 3]));
//! let (y, vars) = layer.forward(&tape, x);
//! let grads = tape.backward(y.square().mean());
//! for (p, v) in layer.params_mut().into_iter().zip(vars.as_array()) {
//!     p.axpy(-0.1, &grads.wrt(v)); // plain SGD
//! }
//! ```

use crate::autodiff::params::Params;
use crate::autodiff::tape::{Tape, Var};
use crate::error::{Error, Result};
use crate::real::Real;
use crate::tensor::Tensor;
use rand::{Rng, SeedableRng, rngs::StdRng};

/// An affine layer `y = x·Wᵀ + b` with `W: (out, in)` and `b: (out)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Linear<T> {
    /// The weight `W`, shape `(out, in)`.
    pub weight: Tensor<T>,
    /// The bias `b`, shape `(out)`.
    pub bias: Tensor<T>,
}

/// The tape leaves of one [`Linear`] on one tape.
#[derive(Clone, Copy)]
pub struct LinearVars<'t, T: Real> {
    /// Leaf holding `W`.
    pub weight: Var<'t, T>,
    /// Leaf holding `b`.
    pub bias: Var<'t, T>,
}

impl<'t, T: Real> LinearVars<'t, T> {
    /// `y = x·Wᵀ + b` for a `(batch, in)` variable `x` (a transposed-view product, no copy of `W`).
    ///
    /// # Panics
    /// If `x` is not `(batch, in)`; the message names `matmul_t` and both shapes.
    pub fn apply(&self, x: Var<'t, T>) -> Var<'t, T> {
        x.matmul_t(false, self.weight, true).add_row(self.bias)
    }

    /// `[weight, bias]`, in the order of [`Linear::params_mut`].
    pub fn as_array(&self) -> [Var<'t, T>; 2] {
        [self.weight, self.bias]
    }
}

impl<T: Real> Linear<T> {
    /// Kaiming-uniform-like initialisation as in PyTorch's `nn.Linear`: every entry of `W` and
    /// `b` is drawn independently from `U(−1/√in, 1/√in)` (PyTorch's `kaiming_uniform_` with
    /// `a = √5` gives exactly this bound for `W`). With `in = 0` the parameters are all zero.
    pub fn new<R: Rng + ?Sized>(in_features: usize, out_features: usize, rng: &mut R) -> Self {
        if in_features == 0 {
            return Self {
                weight: Tensor::zeros(&[out_features, 0]),
                bias: Tensor::zeros(&[out_features]),
            };
        }
        let bound = 1.0 / (in_features as f64).sqrt();
        let weight = Tensor::rand_uniform(&[out_features, in_features], -bound, bound, rng);
        let bias = Tensor::rand_uniform(&[out_features], -bound, bound, rng);
        Self { weight, bias }
    }

    /// [`Linear::new`] with a `StdRng` seeded by `seed`.
    pub fn seeded(in_features: usize, out_features: usize, seed: u64) -> Self {
        Self::new(in_features, out_features, &mut StdRng::seed_from_u64(seed))
    }

    /// A layer from given parameters.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming both shapes unless `weight` is `(out, in)` and `bias` is `(out)`.
    pub fn from_tensors(weight: Tensor<T>, bias: Tensor<T>) -> Result<Self> {
        match (weight.shape(), bias.shape()) {
            ([out, _], [b]) if out == b => Ok(Self { weight, bias }),
            (w, b) => Err(Error::InvalidArgument(format!(
                "Linear: weight must be (out, in) and bias (out), got weight {w:?} and bias {b:?}"
            ))),
        }
    }

    /// Input size `in`.
    pub fn in_features(&self) -> usize {
        self.weight.shape()[1]
    }

    /// Output size `out`.
    pub fn out_features(&self) -> usize {
        self.weight.shape()[0]
    }

    /// Number of trainable scalars, `out·in + out`.
    pub fn param_count(&self) -> usize {
        self.weight.numel() + self.bias.numel()
    }

    /// Enters `W` and `b` on `tape` as leaves (copies of the current values).
    pub fn enter<'t>(&self, tape: &'t Tape<T>) -> LinearVars<'t, T> {
        LinearVars {
            weight: tape.leaf(self.weight.clone()),
            bias: tape.leaf(self.bias.clone()),
        }
    }

    /// Enters the parameters and applies the layer: returns `y = x·Wᵀ + b` and the leaves.
    ///
    /// # Panics
    /// If `x` is not `(batch, in)`; see [`LinearVars::apply`].
    pub fn forward<'t>(&self, tape: &'t Tape<T>, x: Var<'t, T>) -> (Var<'t, T>, LinearVars<'t, T>) {
        let vars = self.enter(tape);
        (vars.apply(x), vars)
    }

    /// `y = x·Wᵀ + b` without a tape (evaluation).
    ///
    /// # Panics
    /// If `x` is not `(batch, in)`.
    pub fn apply(&self, x: &Tensor<T>) -> Tensor<T> {
        let mut y = x.matmul_t(false, &self.weight, true);
        let n = self.bias.numel();
        for row in y.data_mut().chunks_mut(n) {
            row.iter_mut()
                .zip(self.bias.data())
                .for_each(|(v, &b)| *v += b);
        }
        y
    }
}

impl<T: Real> Params<T> for Linear<T> {
    /// `[W, b]`, in the order of [`LinearVars::as_array`].
    fn params(&self) -> Vec<&Tensor<T>> {
        vec![&self.weight, &self.bias]
    }
    fn params_mut(&mut self) -> Vec<&mut Tensor<T>> {
        vec![&mut self.weight, &mut self.bias]
    }
    fn param_names(&self) -> Vec<String> {
        vec!["weight".into(), "bias".into()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_bound_and_shapes() {
        let l = Linear::<f64>::seeded(16, 4, 3);
        assert_eq!(
            (l.in_features(), l.out_features(), l.param_count()),
            (16, 4, 68)
        );
        // bound 1/√16 = 0.25; with 68 draws the extremes come close to it
        assert!(l.weight.max_abs() < 0.25 && l.bias.max_abs() < 0.25);
        assert!(l.weight.max_abs() > 0.2);
        assert_eq!(l, Linear::seeded(16, 4, 3));
        assert_ne!(l, Linear::seeded(16, 4, 4));
    }

    #[test]
    fn forward_is_x_wt_plus_b() {
        let w = Tensor::from_vec(&[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let b = Tensor::from_vec(&[2], vec![0.5, -1.0]).unwrap();
        let l = Linear::from_tensors(w, b).unwrap();
        let tape = Tape::new();
        let x = tape.constant(Tensor::from_vec(&[1, 3], vec![1.0, 0.0, -1.0]).unwrap());
        let (y, _) = l.forward(&tape, x);
        // [1·1 + 3·(−1) + 0.5, 4·1 + 6·(−1) − 1]
        assert_eq!(y.value().data(), &[-1.5, -3.0]);
        let x = Tensor::from_vec(&[1, 3], vec![1.0, 0.0, -1.0]).unwrap();
        assert_eq!(l.apply(&x).data(), &[-1.5, -3.0]);
    }

    #[test]
    fn from_tensors_rejects_bad_shapes() {
        let err = Linear::from_tensors(Tensor::<f64>::zeros(&[2, 3]), Tensor::zeros(&[3]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[2, 3]") && err.contains("[3]"), "{err}");
    }
}
