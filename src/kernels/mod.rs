//! Fast batched kernels for block-diagonal chains.

pub mod chain;
pub(crate) mod claims;
pub mod conv;
mod gather;
pub(crate) mod plan;
pub(crate) mod pool;
pub(crate) mod run;
pub mod transpose;
pub(crate) mod weight_grads;
