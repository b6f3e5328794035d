//! The crate's error type: every constructor and CLI validates its arguments and returns one of
//! these, naming the offending value.

use thiserror::Error;

/// Errors returned by constructors, I/O and training loops.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// A buffer's length does not match the product of the requested shape.
    #[error("invalid shape: shape {shape:?} needs {expected} elements but {got} were given")]
    InvalidShape {
        /// The requested shape.
        shape: Vec<usize>,
        /// Elements the shape needs.
        expected: usize,
        /// Elements supplied.
        got: usize,
    },
    /// A map is not a bijection of `{0, .., n-1}`.
    #[error("not a permutation of 0..{n}: {reason}")]
    NotAPermutation {
        /// Size of the domain.
        n: usize,
        /// The first repeated, missing or out-of-range index, in words.
        reason: String,
    },
    /// Block sizes and block counts that do not chain (Definition 3.1 / 5.1 size rules).
    #[error("block mismatch: {0}")]
    BlockMismatch(String),
    /// Any other invalid argument (sizes, counts, ranks, flags), described in words.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Training produced a non-finite loss.
    #[error("non-finite loss {loss} at step {step}")]
    NonFiniteLoss {
        /// The optimizer step (0-based) whose loss was not finite.
        step: usize,
        /// The loss value (NaN or ±inf).
        loss: f64,
    },
    /// File input or output failed.
    #[error("i/o error on {path}: {msg}")]
    Io {
        /// The file involved.
        path: String,
        /// What went wrong.
        msg: String,
    },
    /// A numerical routine failed (singular solve, SVD not converged, ...).
    #[error("numerical failure: {0}")]
    Numerical(String),
}

/// `Result` with the crate's [`Error`](enum@Error).
pub type Result<T> = std::result::Result<T, Error>;
