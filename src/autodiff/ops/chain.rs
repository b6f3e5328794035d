//! Tape op for structured chain products (in progress).
