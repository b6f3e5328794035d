//! [`Params`]: a model's trainable tensors in a fixed order, and how they enter a tape as leaves.
//!
//! Trainable parameters live outside the tape: each step enters them as leaves
//! ([`Params::leaves`]), the loss is built and differentiated, and an optimizer updates the
//! tensors in place from the gradients, matched by position.

use crate::autodiff::tape::{Tape, Var};
use crate::real::Real;
use crate::tensor::Tensor;

/// A model's trainable tensors, always listed in the same order (optimizer state is matched
/// by position).
pub trait Params<T: Real> {
    /// The trainable tensors.
    fn params(&self) -> Vec<&Tensor<T>>;
    /// The same tensors, mutably, in the same order.
    fn params_mut(&mut self) -> Vec<&mut Tensor<T>>;
    /// One name per tensor (used when saving); `p0, p1, …` by default.
    fn param_names(&self) -> Vec<String> {
        (0..self.params().len()).map(|i| format!("p{i}")).collect()
    }
    /// Enters every parameter on `tape` as a leaf, in order.
    fn leaves<'t>(&self, tape: &'t Tape<T>) -> Vec<Var<'t, T>> {
        self.params()
            .into_iter()
            .map(|p| tape.leaf(p.clone()))
            .collect()
    }
    /// Total number of trainable scalars.
    fn num_params(&self) -> usize {
        self.params().iter().map(|p| p.numel()).sum()
    }
}

impl<T: Real> Params<T> for Vec<Tensor<T>> {
    fn params(&self) -> Vec<&Tensor<T>> {
        self.iter().collect()
    }
    fn params_mut(&mut self) -> Vec<&mut Tensor<T>> {
        self.iter_mut().collect()
    }
}
