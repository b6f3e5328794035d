//! The experiments' error type: a failure is reported as what it is (a library error, a bad
//! command-line value, a file that cannot be written, a figure that cannot be drawn), with the
//! file or value it concerns.

use std::path::Path;
use thiserror::Error;

/// `Result` with the experiments' [`Error`](enum@Error).
pub type Result<T> = std::result::Result<T, Error>;

/// Errors of the experiments, their outputs and their command lines.
#[derive(Debug, Error)]
pub enum Error {
    /// A library call failed (sizes, permutations, numerical failure, non-finite loss, ...).
    #[error(transparent)]
    Gslab(#[from] gslab::Error),
    /// A command-line value out of its range or inconsistent with another, described in words
    /// naming the flag.
    #[error("invalid argument: {0}")]
    Usage(String),
    /// A file or directory could not be created, written or read.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A CSV file could not be written or parsed.
    #[error("CSV error on {path}: {source}")]
    Csv {
        /// The file involved.
        path: String,
        /// The CSV library's error.
        #[source]
        source: csv::Error,
    },
    /// A JSON file could not be written or parsed.
    #[error("JSON error on {path}: {source}")]
    Json {
        /// The file involved.
        path: String,
        /// The JSON library's error.
        #[source]
        source: serde_json::Error,
    },
    /// A figure file could not be drawn or written.
    #[error("cannot draw {path}: {msg}")]
    Plot {
        /// The figure file involved.
        path: String,
        /// The drawing backend's message.
        msg: String,
    },
    /// A figure description that cannot be drawn (no panels, sizes that do not match, an edge
    /// leaving the diagram, no caption), or a font that cannot be loaded.
    #[error("invalid figure: {0}")]
    Figure(String),
    /// A count as printed in the paper (`1.42M`, `592K`) that is not a number with an optional
    /// K/M/B suffix.
    #[error("not a printed count: {0:?}")]
    PrintedValue(String),
    /// A rayon thread pool could not be started.
    #[error("cannot build a pool of {threads} threads: {msg}")]
    ThreadPool {
        /// The requested number of threads.
        threads: usize,
        /// Why it failed.
        msg: String,
    },
    /// A result contradicts a guarantee the experiment checks (e.g. an attack breaking a
    /// certified prediction): a bug, described in words.
    #[error("check failed: {0}")]
    Check(String),
    /// One experiment of `reproduce` failed.
    #[error("{name}: {source}")]
    Experiment {
        /// The experiment's name.
        name: String,
        /// Its error.
        source: Box<Error>,
    },
}

impl Error {
    /// [`Error::Io`] for `path`, keeping the operating system's error as the source.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// [`Error::Csv`] for `path`.
    pub fn csv(path: impl AsRef<Path>, source: csv::Error) -> Self {
        Self::Csv {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// [`Error::Json`] for `path`.
    pub fn json(path: impl AsRef<Path>, source: serde_json::Error) -> Self {
        Self::Json {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// [`Error::Plot`] for `path`.
    pub fn plot(path: impl AsRef<Path>, msg: impl std::fmt::Display) -> Self {
        Self::Plot {
            path: path.as_ref().display().to_string(),
            msg: msg.to_string(),
        }
    }
}
