//! How a vector is cut into blocks: [`Blocks`] (a dimension `n` cut into `r` square blocks of size
//! `b`, `n = r·b`), [`BlockRule`] (a block size or a block count to apply to any dimension) and
//! [`BlockShape`] (`k` blocks of `b1 × b2`, one block-diagonal factor).
//!
//! The paper writes `r` for the number of blocks and `b` for the block size (OFT/BOFT notation);
//! both are `usize`, so a function taking `(n, r)` would silently accept a block size where a count
//! is meant (they coincide at `n = 64`, `b = r = 8`). Every constructor of the crate therefore takes
//! a [`Blocks`], built by naming what is given: `Blocks::count(n, r)` or `Blocks::size(n, b)`.
//!
//! ```
//! use gslab::Blocks;
//! let by_count = Blocks::count(1024, 32)?; // 32 blocks of 32
//! let by_size = Blocks::size(768, 8)?; // 96 blocks of 8
//! assert_eq!((by_size.r(), by_size.b(), by_size.n()), (96, 8, 768));
//! assert_eq!(by_count, Blocks::size(1024, 32)?);
//! assert!(Blocks::size(768, 7).is_err()); // 7 does not divide 768
//! # Ok::<(), gslab::Error>(())
//! ```
//!
//! A bare number where blocks are expected does not compile:
//!
//! ```compile_fail
//! use gslab::orthogonal::{OrthoGs, OrthoMap};
//! let q = OrthoGs::<f64>::new(8, OrthoMap::Cayley); // 8 blocks or blocks of 8? Not a `Blocks`.
//! ```

use crate::error::{Error, Result};

/// A dimension `n` cut into `r` equal square blocks of size `b` (`n = r·b`, both at least 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Blocks {
    r: usize,
    b: usize,
}

impl Blocks {
    /// `r` blocks of size `n / r`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming `n` and `r` unless `r ≥ 1` divides `n ≥ 1`.
    pub fn count(n: usize, r: usize) -> Result<Self> {
        if n == 0 || r == 0 || !n.is_multiple_of(r) {
            return Err(Error::InvalidArgument(format!(
                "the block count r = {r} must divide the dimension n = {n} > 0"
            )));
        }
        Ok(Self { r, b: n / r })
    }

    /// Blocks of size `b`, `n / b` of them.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming `n` and `b` unless `b ≥ 1` divides `n ≥ 1`.
    pub fn size(n: usize, b: usize) -> Result<Self> {
        if n == 0 || b == 0 || !n.is_multiple_of(b) {
            return Err(Error::InvalidArgument(format!(
                "the block size b = {b} must divide the dimension n = {n} > 0"
            )));
        }
        Ok(Self { r: n / b, b })
    }

    /// The dimension `n = r·b`.
    pub fn n(&self) -> usize {
        self.r * self.b
    }

    /// The number of blocks `r`.
    pub fn r(&self) -> usize {
        self.r
    }

    /// The block size `b`.
    pub fn b(&self) -> usize {
        self.b
    }

    /// The factor shape: `r` blocks of `b × b`.
    pub fn shape(&self) -> BlockShape {
        BlockShape::square(self.r, self.b)
    }
}

impl std::fmt::Display for Blocks {
    /// `r=… blocks of b=… (n=…)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "r={} blocks of b={} (n={})", self.r, self.b, self.n())
    }
}

/// A block size or a block count, to be applied to a dimension that is not known yet (an adapter
/// on a layer of any width, a formula over all layers of a model): [`BlockRule::on`] turns it into
/// the [`Blocks`] of a dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum BlockRule {
    /// Fixed block size `b` (`n / b` blocks); the paper's GLUE setting.
    Size(usize),
    /// Fixed number of blocks `r` (size `n / r`); the paper's Stable Diffusion setting.
    Count(usize),
}

impl BlockRule {
    /// The blocks of dimension `n` under this rule.
    ///
    /// # Errors
    /// As [`Blocks::size`] or [`Blocks::count`].
    pub fn on(self, n: usize) -> Result<Blocks> {
        match self {
            Self::Size(b) => Blocks::size(n, b),
            Self::Count(r) => Blocks::count(n, r),
        }
    }
}

impl std::fmt::Display for BlockRule {
    /// `b=…` or `r=…`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Size(b) => write!(f, "b={b}"),
            Self::Count(r) => write!(f, "r={r}"),
        }
    }
}

/// Shape of one block-diagonal factor: `k` blocks of `b1 × b2` (rows × columns), mapping a vector
/// of length `k·b2` to one of length `k·b1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockShape {
    /// Number of blocks.
    pub k: usize,
    /// Rows per block.
    pub b1: usize,
    /// Columns per block.
    pub b2: usize,
}

impl BlockShape {
    /// `k` blocks of `b1 × b2`.
    pub fn new(k: usize, b1: usize, b2: usize) -> Self {
        Self { k, b1, b2 }
    }

    /// `k` square blocks of `b × b`.
    pub fn square(k: usize, b: usize) -> Self {
        Self { k, b1: b, b2: b }
    }

    /// Output length `k·b1`.
    pub fn n_out(&self) -> usize {
        self.k * self.b1
    }

    /// Input length `k·b2`.
    pub fn n_in(&self) -> usize {
        self.k * self.b2
    }

    /// Entries `k·b1·b2`.
    pub fn numel(&self) -> usize {
        self.k * self.b1 * self.b2
    }

    /// The tensor shape `[k, b1, b2]` of the factor's blocks.
    pub fn tensor_shape(&self) -> [usize; 3] {
        [self.k, self.b1, self.b2]
    }

    /// The shape of the transposed factor: `k` blocks of `b2 × b1`.
    pub fn transposed(&self) -> Self {
        Self::new(self.k, self.b2, self.b1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_and_size_name_what_they_take() {
        let a = Blocks::count(64, 4).unwrap();
        let b = Blocks::size(64, 4).unwrap();
        assert_eq!((a.r(), a.b()), (4, 16));
        assert_eq!((b.r(), b.b()), (16, 4));
        assert_ne!(a, b);
        let e = Blocks::count(96, 5).unwrap_err().to_string();
        assert!(
            e.contains("block count r = 5") && e.contains("n = 96"),
            "{e}"
        );
        let e = Blocks::size(96, 0).unwrap_err().to_string();
        assert!(e.contains("block size b = 0"), "{e}");
        assert!(Blocks::count(0, 1).is_err());
        assert_eq!(
            BlockRule::Size(8).on(768).unwrap(),
            Blocks::count(768, 96).unwrap()
        );
        assert_eq!(BlockRule::Count(32).on(1024).unwrap().b(), 32);
        assert_eq!(a.to_string(), "r=4 blocks of b=16 (n=64)");
    }
}
