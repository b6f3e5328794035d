//! Fast batched kernels for block-diagonal chains.

pub mod chain;
mod gather;
pub(crate) mod pool;
pub mod transpose;
