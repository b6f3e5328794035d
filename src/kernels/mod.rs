//! Fast batched kernels for block-diagonal chains.

pub mod chain;
