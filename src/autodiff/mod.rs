//! Define-by-run reverse-mode automatic differentiation: the [`tape`], the [`ops`] recorded on
//! it, the [`params`] that enter it as leaves, and the finite-difference [`gradcheck`] every op is
//! tested with.

pub mod gradcheck;
pub mod ops;
pub mod params;
pub mod tape;
