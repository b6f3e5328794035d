//! Orthogonal convolutions (digest §5): the skew orthogonal convolution [`Soc`] of Singla &
//! Feizi (2021) and its group-and-shuffle version [`GsSoc`]
//! `GrExpConv₂(ChShuffle₂(GrExpConv₁(ChShuffle₁(X))))` (eq. 3 of the paper with exponential
//! convolutions), plus what they are built from:
//! - [`skew`]: the skew kernel `L = M − convᵀ(M)` (skew-symmetric Jacobian);
//! - [`spectral`]: the Fantastic-Four bounds on `‖L‖₂`, their power-iteration estimates and the
//!   spectral normalisation;
//! - [`soc`]: the layer, its evaluation form with a certified Lipschitz bound, and the
//!   truncation error bound `σ^{t+1}/(t+1)!·e^σ` of the Taylor series;
//! - [`gs_soc`]: ChShuffle(g₁) → grouped SOC k×k → ChShuffle(g₂) → grouped SOC 1×1.
//!
//! Layers take an explicit [`Mode`]: training (`train_terms`, power iteration advanced) or
//! evaluation (`eval_terms`, exact singular values, state untouched). Their spectral state
//! ([`SpectralState`]) is part of a checkpoint.

pub mod gs_soc;
pub mod skew;
pub mod soc;
pub mod spectral;

pub use gs_soc::{GsSoc, GsSocEval};
pub use soc::{BoundScaling, Soc, SocEval, SocSettings, truncation_bound};

use crate::error::{Error, Result};
use crate::real::Real;
use crate::tensor::Tensor;

/// Training or evaluation: which number of Taylor terms a layer uses and whether its spectral
/// normalisation advances the power iteration (training) or uses exact singular values
/// (evaluation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `train_terms`, power iteration advanced by one training step.
    Train,
    /// `eval_terms`, exact singular values, no state change.
    Eval,
}

/// Non-trainable state that a checkpoint must keep for a bitwise resume: named tensors (the
/// power-iteration vectors) and named step counters. Composite layers prefix the names of their
/// parts (`soc1.u1`, `blocks.3.soc2.step`, …).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SpectralState<T> {
    /// Named tensors, in a fixed order.
    pub tensors: Vec<(String, Tensor<T>)>,
    /// Named counters, in a fixed order.
    pub counters: Vec<(String, u64)>,
}

impl<T: Real> SpectralState<T> {
    /// Appends `other` with its names prefixed by `prefix.`.
    pub fn push_prefixed(&mut self, prefix: &str, other: SpectralState<T>) {
        self.tensors.extend(
            other
                .tensors
                .into_iter()
                .map(|(n, t)| (format!("{prefix}.{n}"), t)),
        );
        self.counters.extend(
            other
                .counters
                .into_iter()
                .map(|(n, c)| (format!("{prefix}.{n}"), c)),
        );
    }

    /// The entries named `prefix.…`, with the prefix removed.
    pub fn sub(&self, prefix: &str) -> SpectralState<T> {
        let p = format!("{prefix}.");
        SpectralState {
            tensors: self
                .tensors
                .iter()
                .filter_map(|(n, t)| n.strip_prefix(&p).map(|s| (s.to_string(), t.clone())))
                .collect(),
            counters: self
                .counters
                .iter()
                .filter_map(|(n, c)| n.strip_prefix(&p).map(|s| (s.to_string(), *c)))
                .collect(),
        }
    }

    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Option<&Tensor<T>> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// The counter named `name`.
    pub fn counter(&self, name: &str) -> Option<u64> {
        self.counters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| *c)
    }

    /// Checks that `self` has exactly the names of `expected`, with the same tensor shapes.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the first missing, unknown or mis-shaped entry.
    pub fn check_names(&self, expected: &Self) -> Result<()> {
        for (n, t) in &expected.tensors {
            match self.tensor(n) {
                None => {
                    return Err(Error::InvalidArgument(format!(
                        "spectral state: missing tensor '{n}'"
                    )));
                }
                Some(s) if s.shape() != t.shape() => {
                    return Err(Error::InvalidArgument(format!(
                        "spectral state: tensor '{n}' has shape {:?}, expected {:?}",
                        s.shape(),
                        t.shape()
                    )));
                }
                _ => {}
            }
        }
        for (n, _) in &expected.counters {
            if self.counter(n).is_none() {
                return Err(Error::InvalidArgument(format!(
                    "spectral state: missing counter '{n}'"
                )));
            }
        }
        let unknown = self
            .tensors
            .iter()
            .map(|(n, _)| n)
            .find(|n| expected.tensor(n).is_none())
            .or_else(|| {
                self.counters
                    .iter()
                    .map(|(n, _)| n)
                    .find(|n| expected.counter(n).is_none())
            });
        match unknown {
            Some(n) => Err(Error::InvalidArgument(format!(
                "spectral state: unknown entry '{n}'"
            ))),
            None => Ok(()),
        }
    }
}
