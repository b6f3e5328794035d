//! Plot helpers (in progress).
