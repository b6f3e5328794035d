//! [`Butterfly`]: BOFT's block butterfly `Q = F_{m−1} ⋯ F_1 F_0` (Liu et al., 2024; PEFT), with
//! `F_i = P_i B_i P_iᵀ`, `B_i` block-diagonal with `r` blocks of `b × b` (`n = r·b`) and
//! `P_i = perm2mat(block_butterfly_perm(n, r/2^i, b/2))` ([`Perm::block_butterfly`], digest §2.5;
//! `b/2` is PEFT's integer division `block_size // 2`).
//!
//! As a chain the permutations between factors are composed once:
//! `Q = P_{m−1} B_{m−1} (P_{m−1}ᵀ P_{m−2}) B_{m−2} ⋯ (P_1ᵀ P_0) B_0 P_0ᵀ`.

use crate::error::{Error, Result};
use crate::perm::Perm;
use crate::real::Real;
use crate::structured::{
    BlockShape, ChainLayout, LinearOp, block_shape_of, identity_chain, random_blocks,
};
use crate::tensor::Tensor;
use rand::Rng;
use std::sync::Arc;

/// A BOFT block butterfly `Q = F_{m−1} ⋯ F_0`, `F_i = P_i B_i P_iᵀ` (PEFT permutations).
#[derive(Clone, Debug)]
pub struct Butterfly<T: Real> {
    layout: Arc<ChainLayout>,
    blocks: Vec<Tensor<T>>,
    r: usize,
}

/// Validates `(n, r, m)` and builds the chain.
fn butterfly_layout(n: usize, r: usize, m: usize) -> Result<ChainLayout> {
    if r == 0 || !r.is_power_of_two() {
        return Err(Error::InvalidArgument(format!(
            "BOFT needs the block count r to be a power of 2, got r={r}"
        )));
    }
    if !n.is_multiple_of(r) || n / r < 2 {
        return Err(Error::InvalidArgument(format!(
            "BOFT needs r | n with block size b = n/r >= 2, got n={n}, r={r}"
        )));
    }
    let max_m = 1 + r.trailing_zeros() as usize;
    if m == 0 || m > max_m {
        return Err(Error::InvalidArgument(format!(
            "BOFT with r={r} blocks allows 1 <= m <= 1 + log2(r) = {max_m} factors, got m={m}"
        )));
    }
    peft_chain(n, r, m)
}

/// The PEFT BOFT chain `F_{m−1} ⋯ F_0`, `F_i = P_i B_i P_iᵀ` with
/// `P_i = block_butterfly_perm(n, r/2^i, b/2)` (b = n/r), as a [`ChainLayout`] with the
/// permutations composed once: `[P_0ᵀ, P_1ᵀP_0, …, P_{m−1}ᵀP_{m−2}, P_{m−1}]`. Only the checks of
/// [`Perm::block_butterfly`] and [`ChainLayout::new`] apply; callers validate `(n, r, m)`.
///
/// # Errors
/// If a butterfly permutation is invalid for these sizes.
pub fn peft_chain(n: usize, r: usize, m: usize) -> Result<ChainLayout> {
    let b = n / r;
    let p: Vec<Perm> = (0..m)
        .map(|i| Perm::block_butterfly(n, r >> i, b / 2))
        .collect::<Result<_>>()?;
    let mut perms = Vec::with_capacity(m + 1);
    perms.push(p[0].inverse());
    for i in 1..m {
        perms.push(p[i].inverse().compose(&p[i - 1]));
    }
    perms.push(p[m - 1].clone());
    ChainLayout::new(vec![BlockShape::square(r, b); m], perms)
}

impl<T: Real> Butterfly<T> {
    /// `m` factors with `r` identity blocks of size `n/r` each, so `Q = I`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `r` is not a power of 2, does not divide `n`, leaves blocks
    /// smaller than 2, or `m` is not in `1..=1 + log2 r`.
    pub fn new(n: usize, r: usize, m: usize) -> Result<Self> {
        let layout = butterfly_layout(n, r, m)?;
        let blocks = identity_chain(&layout);
        Ok(Self {
            layout: Arc::new(layout),
            blocks,
            r,
        })
    }

    /// `m` factors with i.i.d. `N(0, 1/b)` block entries.
    ///
    /// # Errors
    /// As [`Butterfly::new`].
    pub fn random<R: Rng + ?Sized>(n: usize, r: usize, m: usize, rng: &mut R) -> Result<Self> {
        let layout = butterfly_layout(n, r, m)?;
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
        let layout = butterfly_layout(s.n_in(), s.k, blocks.len())?;
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

    fn blocks(&self) -> &[Tensor<T>] {
        &self.blocks
    }
}
