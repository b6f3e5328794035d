//! Trainable orthogonal parametrizations: the Cayley and exponential block maps from free skew
//! parameters ([`cayley`], [`expm`], [`map`]), the orthogonal chain they build ([`chain`]), the
//! named orthogonal layers ([`layers`]), the adapters on frozen linear layers ([`adapters`]),
//! Theorem 1's orthogonal-block representation ([`theorem1`]) and Haar-random orthogonal
//! matrices ([`haar`]).

pub mod adapters;
pub mod cayley;
pub mod chain;
pub mod conv;
pub mod expm;
pub mod haar;
pub mod layers;
pub mod map;
pub mod theorem1;

pub use chain::OrthoChain;
pub use haar::{haar_orthogonal, haar_orthogonal_blocks, haar_special_orthogonal};
pub use layers::{
    OrthoBlockDiag, OrthoButterfly, OrthoDense, OrthoGs, OrthoGsChain, OrthoLayer, OrthoMonarch,
};
pub use map::{OrthoMap, orthogonality_error};
