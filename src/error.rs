//! The crate's error type: every constructor, file reader and training loop validates what it
//! gets and returns one of these, naming the offending value.

use std::path::Path;
use std::sync::Arc;
use thiserror::Error;

/// Errors returned by constructors, file readers and training loops.
#[derive(Debug, Error, Clone)]
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
    #[error("non-finite loss {loss} at step {step}{}", context_suffix(.context))]
    NonFiniteLoss {
        /// Where: the run, model or configuration being trained (empty if the caller named none).
        context: String,
        /// The optimizer step (0-based) whose loss was not finite.
        step: usize,
        /// The loss value (NaN or ±inf).
        loss: f64,
    },
    /// The operating system could not read or write a file.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file involved.
        path: String,
        /// The operating system's error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// A file (or in-memory buffer) was read but its content is not what its format requires:
    /// bad magic number, truncated data, inconsistent header, missing entry.
    #[error("malformed file {path}: {msg}")]
    Format {
        /// The file involved (`<memory>` for a byte buffer).
        path: String,
        /// What is wrong, naming the entry.
        msg: String,
    },
    /// A stored tensor has another element type than the one requested.
    #[error("dtype mismatch in {path}: tensor '{name}' is {got}, expected {expected}")]
    Dtype {
        /// The file involved (`<memory>` for a byte buffer).
        path: String,
        /// The tensor's name.
        name: String,
        /// The dtype requested (`F32`, `F64`, ...).
        expected: String,
        /// The dtype found.
        got: String,
    },
    /// A numerical routine failed (singular solve, SVD not converged, ...).
    #[error("numerical failure: {0}")]
    Numerical(String),
}

/// `" (context)"`, or nothing for an empty context.
fn context_suffix(context: &str) -> String {
    if context.is_empty() {
        String::new()
    } else {
        format!(" ({context})")
    }
}

impl Error {
    /// [`Error::Io`] for `path`, keeping the operating system's error as the source.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.as_ref().display().to_string(),
            source: Arc::new(source),
        }
    }

    /// [`Error::Format`] for `path` with a message naming what is wrong.
    pub fn format(path: impl AsRef<Path>, msg: impl std::fmt::Display) -> Self {
        Self::Format {
            path: path.as_ref().display().to_string(),
            msg: msg.to_string(),
        }
    }

    /// The same error with its file path replaced by `path` (for errors of functions that read
    /// bytes, re-labelled by the function that read the file); other errors are unchanged.
    pub fn at_path(self, path: impl AsRef<Path>) -> Self {
        let p = path.as_ref().display().to_string();
        match self {
            Self::Io { source, .. } => Self::Io { path: p, source },
            Self::Format { msg, .. } => Self::Format { path: p, msg },
            Self::Dtype {
                name,
                expected,
                got,
                ..
            } => Self::Dtype {
                path: p,
                name,
                expected,
                got,
            },
            other => other,
        }
    }

    /// The same error with `context` prepended to what a [`Error::NonFiniteLoss`] names (e.g. the
    /// method and configuration being trained); other errors are unchanged.
    pub fn in_context(self, context: impl std::fmt::Display) -> Self {
        match self {
            Self::NonFiniteLoss {
                context: c,
                step,
                loss,
            } => Self::NonFiniteLoss {
                context: if c.is_empty() {
                    context.to_string()
                } else {
                    format!("{context}, {c}")
                },
                step,
                loss,
            },
            other => other,
        }
    }
}

/// `Result` with the crate's [`Error`](enum@Error).
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_keeps_its_source_and_path() {
        let e = Error::io(
            "/no/such/file",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        );
        assert!(std::error::Error::source(&e).is_some());
        assert!(e.to_string().contains("/no/such/file"), "{e}");
    }

    #[test]
    fn non_finite_loss_names_its_context() {
        let e = Error::NonFiniteLoss {
            context: String::new(),
            step: 3,
            loss: f64::NAN,
        }
        .in_context("GSOFT b=8")
        .in_context("task a");
        assert_eq!(
            e.to_string(),
            "non-finite loss NaN at step 3 (task a, GSOFT b=8)"
        );
    }

    #[test]
    fn at_path_relabels_file_errors_only() {
        let e = Error::format("<memory>", "truncated").at_path("x.bin");
        assert_eq!(e.to_string(), "malformed file x.bin: truncated");
        let e = Error::InvalidArgument("n".into()).at_path("x.bin");
        assert_eq!(e.to_string(), "invalid argument: n");
    }
}
