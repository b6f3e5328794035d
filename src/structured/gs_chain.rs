//! [`GsChain`]: the higher-order class 𝒢𝒮(P_{m+1}, …, P_1) of Definition 5.1,
//! `A = P_{m+1} B_m P_m ⋯ B_1 P_1` with block-diagonal `B_i` (`k_i` blocks of `b_i¹ × b_i²`) and
//! the size rule `b_i¹·k_i = b_{i+1}²·k_{i+1}`.

use crate::error::Result;
use crate::perm::Perm;
use crate::real::Real;
use crate::structured::{
    BlockShape, ChainLayout, LinearOp, block_shape_of, identity_chain, random_blocks,
};
use crate::tensor::Tensor;
use rand::Rng;
use std::borrow::Cow;
use std::sync::Arc;

/// A matrix of 𝒢𝒮(P_{m+1}, …, P_1): `A = P_{m+1} B_m P_m ⋯ B_1 P_1` (Definition 5.1).
#[derive(Clone, Debug)]
pub struct GsChain<T: Real> {
    layout: Arc<ChainLayout>,
    blocks: Vec<Tensor<T>>,
}

impl<T: Real> GsChain<T> {
    /// The chain with factor shapes `factors` (`B_1` first) and permutations `perms`
    /// (`P_1, …, P_{m+1}`), every block the leading part of an identity
    /// (`B_j[u][t] = [u = t]`).
    ///
    /// # Errors
    /// [`Error::BlockMismatch`](crate::Error::BlockMismatch) if the sizes do not chain (Definition 5.1) or `perms.len() ≠ m + 1`.
    pub fn new(factors: Vec<BlockShape>, perms: Vec<Perm>) -> Result<Self> {
        let layout = ChainLayout::new(factors, perms)?;
        let blocks = identity_chain(&layout);
        Self::from_layout(layout, blocks)
    }

    /// The chain with i.i.d. `N(0, 1/b_i²)` block entries drawn from `rng`.
    ///
    /// # Errors
    /// As [`GsChain::new`].
    pub fn random<R: Rng + ?Sized>(
        factors: Vec<BlockShape>,
        perms: Vec<Perm>,
        rng: &mut R,
    ) -> Result<Self> {
        let blocks = factors.iter().map(|&f| random_blocks(f, rng)).collect();
        Self::from_layout(ChainLayout::new(factors, perms)?, blocks)
    }

    /// The chain with the given block tensors (`B_1` first, each `(k_i, b_i¹, b_i²)`) and
    /// permutations `P_1, …, P_{m+1}`.
    ///
    /// # Errors
    /// [`Error::BlockMismatch`](crate::Error::BlockMismatch) for a tensor that is not 3-D, sizes that do not chain, or a
    /// wrong number of permutations.
    pub fn from_blocks(blocks: Vec<Tensor<T>>, perms: Vec<Perm>) -> Result<Self> {
        let factors = blocks
            .iter()
            .enumerate()
            .map(|(i, b)| block_shape_of(&format!("factor {i}"), b))
            .collect::<Result<Vec<_>>>()?;
        Self::from_layout(ChainLayout::new(factors, perms)?, blocks)
    }

    /// The chain `B_m P ⋯ P B_2 P B_1` of digest §10 with the default shuffle between factors:
    /// before factor `i + 1` the permutation is P_(k_{i+1}, s_i) in the scatter reading of the
    /// official code ([`Perm::shuffle_scatter`], `k_{i+1}` = number of blocks of the next factor,
    /// `s_i` = length between the factors); `P_1 = P_{m+1} = I`.
    ///
    /// # Errors
    /// As [`GsChain::from_blocks`], or if `k_{i+1}` does not divide `s_i`.
    pub fn with_shuffles(blocks: Vec<Tensor<T>>) -> Result<Self> {
        let factors = blocks
            .iter()
            .enumerate()
            .map(|(i, b)| block_shape_of(&format!("factor {i}"), b))
            .collect::<Result<Vec<_>>>()?;
        Self::from_layout(ChainLayout::gs_chain(&factors)?, blocks)
    }

    /// [`GsChain::with_shuffles`] with i.i.d. `N(0, 1/b_i²)` blocks of the given shapes.
    ///
    /// # Errors
    /// As [`GsChain::with_shuffles`].
    pub fn random_shuffled<R: Rng + ?Sized>(factors: &[BlockShape], rng: &mut R) -> Result<Self> {
        let blocks = factors.iter().map(|&f| random_blocks(f, rng)).collect();
        Self::with_shuffles(blocks)
    }

    /// Wraps a validated layout and matching blocks.
    ///
    /// # Errors
    /// [`Error::BlockMismatch`](crate::Error::BlockMismatch) if the blocks do not match the layout.
    pub fn from_layout(layout: ChainLayout, blocks: Vec<Tensor<T>>) -> Result<Self> {
        layout.check_blocks(&blocks)?;
        Ok(Self {
            layout: Arc::new(layout),
            blocks,
        })
    }

    /// Number of factors `m`.
    pub fn m(&self) -> usize {
        self.layout.m()
    }

    /// The permutations `P_1, …, P_{m+1}`.
    pub fn perms(&self) -> &[Perm] {
        self.layout.perms()
    }

    /// Replaces the block tensors (same shapes).
    ///
    /// # Errors
    /// [`Error::BlockMismatch`](crate::Error::BlockMismatch) naming the first tensor whose shape differs.
    pub fn set_blocks(&mut self, blocks: Vec<Tensor<T>>) -> Result<()> {
        self.layout.check_blocks(&blocks)?;
        self.blocks = blocks;
        Ok(())
    }
}

impl<T: Real> LinearOp<T> for GsChain<T> {
    fn layout_arc(&self) -> &Arc<ChainLayout> {
        &self.layout
    }

    fn blocks(&self) -> Cow<'_, [Tensor<T>]> {
        Cow::Borrowed(&self.blocks)
    }
}
