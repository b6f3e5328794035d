//! [`Monarch`]: generalized Monarch matrices (Dao et al., 2022), `M = P₁ L P₂ R`, which are
//! 𝒢𝒮(P₁, P₂, I) with the hard constraints **`k_L = b_R¹` and `k_R = b_L²`** (digest §2.4).
//!
//! The constraints make `P₂` send exactly one output of every `R` block into every `L` block, so
//! every block of `M` has rank 1. With square blocks they force `k_L·k_R = n` (digest T16).
//!
//! Permutations (gather convention): `P₂ = σ_(k_R, s)` gathers entry `u` of every `R` block into
//! `L` block `u` (`U_L[u·k_R + j] = f[j·b_R¹ + u]`), and `P₁ = σ_(k_L, m)` interleaves the `L`
//! outputs (`y[v·k_L + a] = h[a·b_L¹ + v]`). In the square case `P₁ = P₂ᵀ`, i.e. Dao et al.'s
//! `M = P L Pᵀ R`.

use crate::blocks::Blocks;
use crate::error::Result;
use crate::real::Real;
use crate::structured::{
    BlockShape, ChainLayout, Gs, LinearOp, block_shape_of, identity_blocks, random_blocks,
};
use crate::tensor::Tensor;
use rand::Rng;
use std::borrow::Cow;
use std::sync::Arc;

/// A generalized Monarch matrix `M = P₁ L P₂ R` (a constrained [`Gs`]).
#[derive(Clone, Debug)]
pub struct Monarch<T: Real> {
    gs: Gs<T>,
}

impl<T: Real> Monarch<T> {
    /// `M = P₁ L P₂ R` with blocks that are the leading parts of identities.
    ///
    /// # Errors
    /// [`Error::BlockMismatch`](crate::Error::BlockMismatch) naming `k_L, b_R¹, k_R, b_L²` if the Monarch constraints fail.
    pub fn new(l: BlockShape, r: BlockShape) -> Result<Self> {
        let layout = ChainLayout::monarch(l, r)?;
        Self::from_layout(layout, identity_blocks(l), identity_blocks(r))
    }

    /// `M = P₁ L P₂ R` with i.i.d. `N(0, 1/b²)` block entries.
    ///
    /// # Errors
    /// As [`Monarch::new`].
    pub fn random<R: Rng + ?Sized>(l: BlockShape, r: BlockShape, rng: &mut R) -> Result<Self> {
        let layout = ChainLayout::monarch(l, r)?;
        let rb = random_blocks(r, rng);
        let lb = random_blocks(l, rng);
        Self::from_layout(layout, lb, rb)
    }

    /// The square Monarch matrix ([`ChainLayout::monarch_square`]): `L` has the `r` blocks of
    /// `b × b` of `l`, `R` has `b` blocks of `r × r` (`n = r·b`), i.i.d. `N(0, 1/b)` entries.
    ///
    /// # Errors
    /// Never for a valid [`Blocks`] (kept as `Result` like the other constructors).
    pub fn random_square<R: Rng + ?Sized>(l: Blocks, rng: &mut R) -> Result<Self> {
        Self::random(l.shape(), BlockShape::square(l.b(), l.r()), rng)
    }

    /// `M = P₁ L P₂ R` from the block tensors `l` (`(k_L, b_L¹, b_L²)`) and `r`
    /// (`(k_R, b_R¹, b_R²)`).
    ///
    /// # Errors
    /// As [`Monarch::new`], or if a tensor is not 3-D.
    pub fn from_blocks(l: Tensor<T>, r: Tensor<T>) -> Result<Self> {
        let layout = ChainLayout::monarch(block_shape_of("L", &l)?, block_shape_of("R", &r)?)?;
        Self::from_layout(layout, l, r)
    }

    fn from_layout(layout: ChainLayout, l: Tensor<T>, r: Tensor<T>) -> Result<Self> {
        Ok(Self {
            gs: Gs::from_layout(layout, l, r)?,
        })
    }

    /// The underlying GS representation 𝒢𝒮(P₁, P₂, I).
    pub fn gs(&self) -> &Gs<T> {
        &self.gs
    }

    /// Consumes the Monarch matrix and returns its GS representation.
    pub fn into_gs(self) -> Gs<T> {
        self.gs
    }
}

impl<T: Real> LinearOp<T> for Monarch<T> {
    fn layout_arc(&self) -> &Arc<ChainLayout> {
        self.gs.layout_arc()
    }

    fn blocks(&self) -> Cow<'_, [Tensor<T>]> {
        self.gs.blocks()
    }
}
