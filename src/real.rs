//! [`Real`]: the one scalar trait of the crate, satisfied by `f32` and `f64`.

use std::fmt::{Debug, Display};
use std::iter::Sum;

/// A real floating-point scalar usable everywhere in the crate: `num_traits::Float` for the
/// elementwise maths, `faer::traits::RealField` for the dense kernels, thread-safe for rayon.
///
/// Implemented for `f32` and `f64` only.
pub trait Real:
    num_traits::Float
    + num_traits::FloatConst
    + num_traits::NumAssign
    + faer::traits::RealField
    + Copy
    + Default
    + Send
    + Sync
    + Debug
    + Display
    + Sum
    + 'static
{
    /// The dtype name as used by safetensors and CSV outputs: `"F32"` or `"F64"`.
    const DTYPE: &'static str;
    /// Machine epsilon, `2^-23` for f32 and `2^-52` for f64.
    const EPS: Self;
    /// Converts from `f64` (rounding for f32).
    fn from_f64(x: f64) -> Self;
    /// Converts to `f64` (exact).
    fn to_f64(self) -> f64;
    /// Converts a count to the scalar type.
    fn from_usize(n: usize) -> Self {
        Self::from_f64(n as f64)
    }
}

impl Real for f32 {
    const DTYPE: &'static str = "F32";
    const EPS: Self = f32::EPSILON;
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl Real for f64 {
    const DTYPE: &'static str = "F64";
    const EPS: Self = f64::EPSILON;
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
}
