//! Shared support for the experiment binaries (in progress).
