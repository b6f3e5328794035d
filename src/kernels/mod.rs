//! Fast batched kernels for block-diagonal chains (in progress).
