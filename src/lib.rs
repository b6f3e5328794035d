//! # gslab: Group-and-Shuffle structured orthogonal matrices
//!
//! A pure-Rust research crate for the structured matrices of *Group and Shuffle: Efficient
//! Structured Orthogonal Parametrization* (Gorbunov et al., NeurIPS 2024).
//!
//! A GS matrix is `A = P_L (L P R) P_R` (Definition 3.1): `R` multiplies contiguous groups of the
//! input by small dense blocks ("group"), the permutation `P` redistributes the entries into new
//! groups ("shuffle"), and `L` multiplies the new groups by small dense blocks. With orthogonal
//! blocks (Cayley or matrix exponential of skew-symmetric generators) `A` is orthogonal, and two
//! factors reach the density that block butterflies (BOFT) need `1 + ⌈log₂ r⌉` factors for.
//!
//! Conventions used everywhere:
//! - an operator acts on the rows of a `(batch, n)` tensor: `apply(X) = X·Aᵀ` (as `nn.Linear`);
//! - a [`Perm`] stores a gather map, `(P x)[i] = x[σ(i)]`;
//! - block-diagonal factors store their blocks as a `(k, b1, b2)` row-major tensor.

pub mod autodiff;
pub mod count;
pub mod error;
pub mod exp;
pub mod io;
pub mod kernels;
pub mod nn;
pub mod orthogonal;
pub mod perm;
pub mod plot;
pub mod real;
pub mod structured;
pub mod tensor;

pub use autodiff::gradcheck::{GradcheckReport, gradcheck};
pub use autodiff::tape::{Grads, Tape, Var};
pub use error::{Error, Result};
pub use perm::Perm;
pub use real::Real;
pub use tensor::Tensor;
