//! Trainable orthogonal parametrizations: Cayley and exponential block maps, orthogonal
//! structured layers and adapters.

pub mod adapters;
pub mod batch_inv;
pub mod cayley;
pub mod conv;
pub mod expm;
pub mod haar;
pub mod layers;
pub mod map;
pub mod small_inv;

pub use haar::{haar_orthogonal, haar_orthogonal_blocks, haar_special_orthogonal};
pub use map::{OrthoMap, orthogonality_error};
