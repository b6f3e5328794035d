//! Safetensors input and output (in progress).
