//! Operations on [`Var`](crate::Var): one file per op family. Ops are inherent methods of `Var`
//! (except the free function [`chain::chain_apply`], which takes a chain layout), so they chain:
//! `x.matmul(w).add_row(b).relu()`.
//!
//! Each op file holds its forward passes, their backward rules, a doc example, and at its end a
//! `#[cfg(test)] mod tests` with that family's tests: forward values against hand-worked numbers,
//! a finite-difference gradcheck in f64 ([`gradcheck`](crate::gradcheck), step `1e-6`,
//! `max_rel_err < 1e-6`) of every op, and the panics on mismatched shapes. The helpers these
//! tests share (seeded inputs, the projection `Σ y ⊙ W` of an output to a scalar, the gradcheck
//! call with its step and tolerance) are in the test-only module `test_util`.
//!
//! Two kinds of tests live outside the op files:
//! - `chain_apply` on every structured operator (GS, GSOFT, GS chains, Monarch, BOFT,
//!   block-diagonal, low-rank, dense): gradchecks and shape panics in `tests/structured_ops.rs`;
//!   `chain.rs` itself checks one small GSOFT layout (input and block gradients, and the forward
//!   against [`reference_apply`](crate::kernels::reference::reference_apply));
//! - tests of ops composed on one tape (the gradcheck of a small MLP, f32 against f64, constants
//!   getting no gradient): in the tests of [`tape`](crate::autodiff::tape).

pub mod activation;
pub mod broadcast;
pub mod chain;
pub mod channel;
pub mod conv;
pub mod elementwise;
pub mod exp_conv;
pub mod loss;
pub mod matmul;
pub mod maxmin;
pub mod reduce;
pub mod shape;
#[cfg(test)]
pub(crate) mod test_util;
