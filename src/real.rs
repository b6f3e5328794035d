//! [`Real`]: the one scalar trait of the crate, satisfied by `f32` and `f64`, with safe views of
//! generic data as the concrete type (for SIMD kernels and byte I/O).

use std::fmt::{Debug, Display};
use std::iter::Sum;

/// A slice of `T: Real` seen as the concrete type it is.
#[derive(Debug)]
pub enum RealSlice<'a> {
    /// `T = f32`.
    F32(&'a [f32]),
    /// `T = f64`.
    F64(&'a [f64]),
}

/// A mutable slice of `T: Real` seen as the concrete type it is.
#[derive(Debug)]
pub enum RealSliceMut<'a> {
    /// `T = f32`.
    F32(&'a mut [f32]),
    /// `T = f64`.
    F64(&'a mut [f64]),
}

/// A mutable `Vec<T>` (`T: Real`) seen as the concrete type it is.
#[derive(Debug)]
pub enum RealVecMut<'a> {
    /// `T = f32`.
    F32(&'a mut Vec<f32>),
    /// `T = f64`.
    F64(&'a mut Vec<f64>),
}

/// A real floating-point scalar usable everywhere in the crate: `num_traits::Float` for the
/// elementwise maths, `faer::traits::RealField` for the dense kernels, thread-safe for rayon.
///
/// Implemented for `f32` and `f64` only. The `view*` methods turn generic data into the concrete
/// type without any cast or `unsafe`: each implementation returns its own variant.
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
    /// `s` as a slice of the concrete type.
    fn view(s: &[Self]) -> RealSlice<'_>;
    /// `s` as a mutable slice of the concrete type.
    fn view_mut(s: &mut [Self]) -> RealSliceMut<'_>;
    /// `v` as a mutable `Vec` of the concrete type.
    fn view_vec_mut(v: &mut Vec<Self>) -> RealVecMut<'_>;
    /// The values of `v` if `Self` is `f32` (no copy), else `None`.
    fn from_f32_vec(v: Vec<f32>) -> Option<Vec<Self>>;
    /// The values of `v` if `Self` is `f64` (no copy), else `None`.
    fn from_f64_vec(v: Vec<f64>) -> Option<Vec<Self>>;
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
    fn view(s: &[Self]) -> RealSlice<'_> {
        RealSlice::F32(s)
    }
    fn view_mut(s: &mut [Self]) -> RealSliceMut<'_> {
        RealSliceMut::F32(s)
    }
    fn view_vec_mut(v: &mut Vec<Self>) -> RealVecMut<'_> {
        RealVecMut::F32(v)
    }
    fn from_f32_vec(v: Vec<f32>) -> Option<Vec<Self>> {
        Some(v)
    }
    fn from_f64_vec(_: Vec<f64>) -> Option<Vec<Self>> {
        None
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
    fn view(s: &[Self]) -> RealSlice<'_> {
        RealSlice::F64(s)
    }
    fn view_mut(s: &mut [Self]) -> RealSliceMut<'_> {
        RealSliceMut::F64(s)
    }
    fn view_vec_mut(v: &mut Vec<Self>) -> RealVecMut<'_> {
        RealVecMut::F64(v)
    }
    fn from_f32_vec(_: Vec<f32>) -> Option<Vec<Self>> {
        None
    }
    fn from_f64_vec(v: Vec<f64>) -> Option<Vec<Self>> {
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind<T: Real>(v: &mut [T]) -> (&'static str, &'static str) {
        let a = match T::view(v) {
            RealSlice::F32(_) => "f32",
            RealSlice::F64(_) => "f64",
        };
        let b = match T::view_mut(v) {
            RealSliceMut::F32(s) => {
                s[0] = 2.5;
                "f32"
            }
            RealSliceMut::F64(s) => {
                s[0] = 3.5;
                "f64"
            }
        };
        (a, b)
    }

    #[test]
    fn views_name_the_concrete_type_and_alias_the_data() {
        let mut a = [0.0f32; 2];
        assert_eq!(kind(&mut a), ("f32", "f32"));
        assert_eq!(a[0], 2.5);
        let mut b = [0.0f64; 2];
        assert_eq!(kind(&mut b), ("f64", "f64"));
        assert_eq!(b[0], 3.5);
        assert_eq!(f32::from_f32_vec(vec![1.0]), Some(vec![1.0f32]));
        assert_eq!(f64::from_f32_vec(vec![1.0]), None);
        let mut v = vec![1.0f64];
        if let RealVecMut::F64(w) = f64::view_vec_mut(&mut v) {
            w.push(2.0);
        }
        assert_eq!(v, vec![1.0, 2.0]);
    }
}
