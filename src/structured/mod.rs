//! Structured linear operators and the GS theory about them.

pub mod block_diag;
pub mod butterfly;
pub mod dense;
pub mod gs;
pub mod gs_chain;
pub mod layout;
pub mod low_rank;
pub mod monarch;
pub mod pattern;
pub mod project;
pub mod theorem1;
