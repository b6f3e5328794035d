//! Parameter and FLOP accounting (in progress).
