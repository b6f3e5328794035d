//! Fast batched kernels for block-diagonal chains.

pub mod chain;
pub(crate) mod claims;
mod gather;
pub(crate) mod plan;
pub(crate) mod pool;
pub mod transpose;
