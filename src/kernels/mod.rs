//! Fast kernels and the data they run on.
//!
//! - [`layout`]: [`ChainLayout`](layout::ChainLayout), the sizes and permutations of a chain
//!   `P_{m+1} B_m P_m ⋯ B_1 P_1`, with the paper's named layouts;
//! - [`reference`](mod@reference): the slow reference product every fast kernel is tested against;
//! - [`chain`]: batched forward and backward of block-diagonal chains (entry points), run by
//!   `run` (the plan runner) with `plan` (cached execution plans), `gather` and [`transpose`]
//!   (shuffle gathers as tiled transpositions), `weight_grads`, `claims` (work sharing with
//!   stable worker ownership) and `pool` (per-thread buffers); `small_blocks` holds register
//!   kernels for f32 blocks of 8 and 16 (products and weight gradients), where faer's products
//!   are too thin;
//! - [`small_inv`], [`batch_inv`]: Gauss–Jordan inverses of `I − K` blocks (one block, or many
//!   interleaved in SIMD lanes) and small row-major products, for the Cayley map;
//! - [`conv`]: grouped 2-D convolutions (im2col + faer products, forward and backward) and the
//!   truncated convolution exponential, with naive references;
//! - [`cpu`]: the instruction-set level every SIMD kernel dispatches on.

pub mod batch_inv;
pub mod chain;
pub(crate) mod claims;
pub mod conv;
pub mod cpu;
mod gather;
pub mod layout;
pub(crate) mod plan;
pub(crate) mod pool;
pub mod reference;
pub(crate) mod run;
pub(crate) mod small_blocks;
pub mod small_inv;
pub mod transpose;
pub(crate) mod weight_grads;
