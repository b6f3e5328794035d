//! Fast batched kernels for block-diagonal chains.

pub mod chain;
pub(crate) mod pool;
