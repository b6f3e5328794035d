//! Structured linear operators and the GS theory about them.

pub mod layout;
