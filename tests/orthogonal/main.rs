//! Orthogonal parametrizations, one module per topic: the Cayley and exponential block maps
//! (exactness, test vector T5, identity at zero T6, gradients), the Cayley kernel against
//! faer's LU, the orthogonal layers, a seeded fit, and the adapters.

#[path = "../common/mod.rs"]
mod common;

mod adapters;
mod boft_rule;
mod cayley_kernel;
mod fit;
mod layers;
mod maps;
