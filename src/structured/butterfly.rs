//! [`Butterfly`]: BOFT's block butterfly `Q = F_{m−1} ⋯ F_1 F_0` (Liu et al., 2024; PEFT), with
//! `F_i = P_i B_i P_iᵀ`, `B_i` block-diagonal with `r` blocks of `b × b` (`n = r·b`) and
//! `P_i = perm2mat(block_butterfly_perm(n, r/2^i, b/2))` ([`Perm::block_butterfly`](crate::Perm::block_butterfly), digest §2.5;
//! `b/2` is PEFT's integer division `block_size // 2`).
//!
//! As a chain the permutations between factors are composed once:
//! `Q = P_{m−1} B_{m−1} (P_{m−1}ᵀ P_{m−2}) B_{m−2} ⋯ (P_1ᵀ P_0) B_0 P_0ᵀ`
//! ([`ChainLayout::peft_butterfly`]). Sizes follow PEFT's rule, the one rule of the crate
//! ([`check_peft_butterfly`](crate::kernels::layout::check_peft_butterfly)): `m ≥ 1`, and for `m ≥ 2` an even block size and `2^{m−1} | r`.

use crate::blocks::Blocks;
use crate::error::{Error, Result};
use crate::real::Real;
use crate::structured::{ChainLayout, LinearOp, block_shape_of, identity_chain, random_blocks};
use crate::tensor::Tensor;
use rand::Rng;
use std::borrow::Cow;
use std::sync::Arc;

/// A BOFT block butterfly `Q = F_{m−1} ⋯ F_0`, `F_i = P_i B_i P_iᵀ` (PEFT permutations).
#[derive(Clone, Debug)]
pub struct Butterfly<T: Real> {
    layout: Arc<ChainLayout>,
    blocks: Vec<Tensor<T>>,
    r: usize,
}

impl<T: Real> Butterfly<T> {
    /// `m` factors, each with the `r` identity blocks of `b × b` of `blocks`, so `Q = I`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] from
    /// [`check_peft_butterfly`](crate::kernels::layout::check_peft_butterfly) (PEFT's rule: `m ≥ 1`; for
    /// `m ≥ 2` an even `b` and `2^{m−1} | r`), naming the failed condition.
    pub fn new(blocks: Blocks, m: usize) -> Result<Self> {
        let layout = ChainLayout::peft_butterfly(blocks, m)?;
        let tensors = identity_chain(&layout);
        Ok(Self {
            layout: Arc::new(layout),
            blocks: tensors,
            r: blocks.r(),
        })
    }

    /// `m` factors with i.i.d. `N(0, 1/b)` block entries.
    ///
    /// # Errors
    /// As [`Butterfly::new`].
    pub fn random<R: Rng + ?Sized>(blocks: Blocks, m: usize, rng: &mut R) -> Result<Self> {
        let r = blocks.r();
        let layout = ChainLayout::peft_butterfly(blocks, m)?;
        let blocks = layout
            .factors()
            .iter()
            .map(|&f| random_blocks(f, rng))
            .collect();
        Ok(Self {
            layout: Arc::new(layout),
            blocks,
            r,
        })
    }

    /// The butterfly with the given `(r, b, b)` block tensors, `B_0` first (`m = blocks.len()`).
    ///
    /// # Errors
    /// As [`Butterfly::new`], or [`Error::BlockMismatch`] if the tensors are not all `(r, b, b)`.
    pub fn from_blocks(blocks: Vec<Tensor<T>>) -> Result<Self> {
        let Some(first) = blocks.first() else {
            return Err(Error::InvalidArgument(
                "BOFT needs at least one factor, got none".into(),
            ));
        };
        let s = block_shape_of("BOFT factor 0", first)?;
        if s.b1 != s.b2 {
            return Err(Error::BlockMismatch(format!(
                "BOFT blocks must be square, got {}x{}",
                s.b1, s.b2
            )));
        }
        let layout = ChainLayout::peft_butterfly(Blocks::count(s.n_in(), s.k)?, blocks.len())?;
        layout.check_blocks(&blocks)?;
        Ok(Self {
            layout: Arc::new(layout),
            blocks,
            r: s.k,
        })
    }

    /// Number of blocks per factor `r`.
    pub fn r(&self) -> usize {
        self.r
    }

    /// Block size `b = n/r`.
    pub fn b(&self) -> usize {
        self.layout.n_in() / self.r
    }

    /// Number of factors `m`.
    pub fn m(&self) -> usize {
        self.layout.m()
    }
}

impl<T: Real> LinearOp<T> for Butterfly<T> {
    fn layout_arc(&self) -> &Arc<ChainLayout> {
        &self.layout
    }

    fn blocks(&self) -> Cow<'_, [Tensor<T>]> {
        Cow::Borrowed(&self.blocks)
    }
}
