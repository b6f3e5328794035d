//! Trainable orthogonal parametrizations (in progress).
