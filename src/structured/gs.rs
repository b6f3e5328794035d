//! [`Gs`]: the class 𝒢𝒮(P_L, P, P_R) of Definition 3.1, `A = P_L (L P R) P_R`.
//!
//! `R = diag(R_1, …, R_{k_R})` with `b_R¹ × b_R²` blocks, `L = diag(L_1, …, L_{k_L})` with
//! `b_L¹ × b_L²` blocks, and the size rules `b_L²·k_L = b_R¹·k_R = s`, `b_L¹·k_L = m`,
//! `b_R²·k_R = n` (A is `m × n`). As a chain: factors `[R, L]`, permutations `[P_R, P, P_L]`.
//!
//! GSOFT (§6.1 and the official `BlockdiagButterflyMultiply`) is `Q = Pᵀ L P R` with
//! `P = P_(k_L, s)` in the scatter reading (digest §2.2, §8): [`Gs::gsoft`]. Constructors that
//! take both factors take `L` first, as the paper writes `A = P_L (L P R) P_R`; the chain stores
//! them in application order (`[R, L]`, [`LinearOp::blocks`]).

use crate::blocks::Blocks;
use crate::error::{Error, Result};
use crate::perm::Perm;
use crate::real::Real;
use crate::structured::project::{block_rank_profile, project_blocks};
use crate::structured::{
    BlockShape, ChainLayout, LinearOp, block_shape_of, identity_blocks, random_blocks,
};
use crate::tensor::Tensor;
use rand::Rng;
use std::borrow::Cow;
use std::sync::Arc;

/// A matrix `A = P_L (L P R) P_R` of 𝒢𝒮(P_L, P, P_R) (Definition 3.1).
#[derive(Clone, Debug)]
pub struct Gs<T: Real> {
    layout: Arc<ChainLayout>,
    blocks: Vec<Tensor<T>>,
}

impl<T: Real> Gs<T> {
    /// `A = P_L (L P R) P_R` with blocks that are the leading parts of identities
    /// (`B_j[u][t] = [u = t]`).
    ///
    /// # Errors
    /// [`Error::BlockMismatch`] naming the sizes if a rule of Definition 3.1 fails.
    pub fn new(p_l: Perm, l: BlockShape, p: Perm, r: BlockShape, p_r: Perm) -> Result<Self> {
        let layout = ChainLayout::gs(p_l, l, p, r, p_r)?;
        Self::wrap(layout, vec![identity_blocks(r), identity_blocks(l)])
    }

    /// `A = P_L (L P R) P_R` with i.i.d. `N(0, 1/b²)` block entries.
    ///
    /// # Errors
    /// As [`Gs::new`].
    pub fn random<R: Rng + ?Sized>(
        p_l: Perm,
        l: BlockShape,
        p: Perm,
        r: BlockShape,
        p_r: Perm,
        rng: &mut R,
    ) -> Result<Self> {
        let layout = ChainLayout::gs(p_l, l, p, r, p_r)?;
        let rb = random_blocks(r, rng);
        let lb = random_blocks(l, rng);
        Self::wrap(layout, vec![rb, lb])
    }

    /// `A = P_L (L P R) P_R` with the block tensors `l` (`(k_L, b_L¹, b_L²)`) and `r`
    /// (`(k_R, b_R¹, b_R²)`).
    ///
    /// # Errors
    /// As [`Gs::new`], or if a tensor is not 3-D.
    pub fn from_blocks(p_l: Perm, l: Tensor<T>, p: Perm, r: Tensor<T>, p_r: Perm) -> Result<Self> {
        let ls = block_shape_of("L", &l)?;
        let rs = block_shape_of("R", &r)?;
        let layout = ChainLayout::gs(p_l, ls, p, rs, p_r)?;
        Self::wrap(layout, vec![r, l])
    }

    /// GSOFT's `Q = Pᵀ L P R` (§6.1, the official `BlockdiagButterflyMultiply`) with the block
    /// tensors `l` (`(k_L, b_L¹, b_L²)`) and `r` (`(k_R, b_R¹, b_R²)`), on the layout
    /// [`ChainLayout::gsoft`]: `P = P_(k_L, s)` in the scatter reading, `P_L = Pᵀ`, `P_R = I`.
    ///
    /// # Errors
    /// As [`Gs::from_blocks`].
    pub fn gsoft(l: Tensor<T>, r: Tensor<T>) -> Result<Self> {
        let ls = block_shape_of("L", &l)?;
        let rs = block_shape_of("R", &r)?;
        Self::from_layout(ChainLayout::gsoft(ls, rs)?, l, r)
    }

    /// [`Gs::gsoft`] with the square blocks of `blocks` in both factors (`r` blocks of `b × b`,
    /// `n = r·b`), i.i.d. `N(0, 1/b)` entries (`R` drawn first).
    ///
    /// # Errors
    /// Never for a valid [`Blocks`]; the `Result` is kept for symmetry with the other
    /// constructors.
    pub fn gsoft_random<R: Rng + ?Sized>(blocks: Blocks, rng: &mut R) -> Result<Self> {
        let s = blocks.shape();
        let r = random_blocks(s, rng);
        let l = random_blocks(s, rng);
        Self::gsoft(l, r)
    }

    /// `A = L P R` in 𝒢𝒮(I, P, I) with the default `P = P_(k_L, s)` (scatter reading), the
    /// class of Proposition 1 and Theorem 1.
    ///
    /// # Errors
    /// As [`Gs::from_blocks`].
    pub fn with_default_perm(l: Tensor<T>, r: Tensor<T>) -> Result<Self> {
        let ls = block_shape_of("L", &l)?;
        let rs = block_shape_of("R", &r)?;
        let p = Perm::shuffle_scatter(ls.k, ls.n_in())?;
        Self::from_blocks(
            Perm::identity(ls.n_out()),
            l,
            p,
            r,
            Perm::identity(rs.n_in()),
        )
    }

    /// `A` on a 2-factor layout (factors `[R, L]`, perms `[P_R, P, P_L]`, e.g. from
    /// [`ChainLayout::gs`], [`ChainLayout::gsoft`] or [`ChainLayout::monarch`]) with the blocks
    /// `l` of `L` and `r` of `R`.
    ///
    /// # Errors
    /// [`Error::BlockMismatch`] if the layout does not have 2 factors or a tensor does not match
    /// its factor.
    pub fn from_layout(layout: ChainLayout, l: Tensor<T>, r: Tensor<T>) -> Result<Self> {
        Self::wrap(layout, vec![r, l])
    }

    /// Algorithm 1: the Frobenius-nearest member of this matrix's class 𝒢𝒮(P_L, P, P_R) on
    /// `layout` to the dense `a` (`π(A) ∈ argmin_B ‖A − B‖_F`), by per-block truncated SVD at
    /// the block ranks Proposition 1 allows ([`project`](crate::structured::project)). The
    /// result rebuilds `π(A)` exactly as [`LinearOp::to_dense`] of its `gs`, and `ranks` holds
    /// the rank profile used.
    ///
    /// # Errors
    /// [`Error::BlockMismatch`] if the layout is not a 2-factor chain,
    /// [`Error::InvalidArgument`] if `a` is not `(n_out, n_in)` of the layout,
    /// [`Error::Numerical`] if an SVD fails.
    pub fn project(a: &Tensor<T>, layout: &ChainLayout) -> Result<Projection<T>> {
        let (l, r) = project_blocks(a, layout)?;
        Ok(Projection {
            gs: Self::from_layout(layout.clone(), l, r)?,
            ranks: block_rank_profile(layout)?,
        })
    }

    fn wrap(layout: ChainLayout, blocks: Vec<Tensor<T>>) -> Result<Self> {
        if layout.m() != 2 {
            return Err(Error::BlockMismatch(format!(
                "a GS(P_L, P, P_R) layout has 2 factors [R, L], got {}",
                layout.m()
            )));
        }
        layout.check_blocks(&blocks)?;
        Ok(Self {
            layout: Arc::new(layout),
            blocks,
        })
    }

    /// The left factor's blocks, `(k_L, b_L¹, b_L²)`.
    pub fn l(&self) -> &Tensor<T> {
        &self.blocks[1]
    }

    /// The right factor's blocks, `(k_R, b_R¹, b_R²)`.
    pub fn r(&self) -> &Tensor<T> {
        &self.blocks[0]
    }

    /// `P_L`, applied last.
    pub fn p_l(&self) -> &Perm {
        &self.layout.perms()[2]
    }

    /// `P`, between `R` and `L`.
    pub fn p(&self) -> &Perm {
        &self.layout.perms()[1]
    }

    /// `P_R`, applied first.
    pub fn p_r(&self) -> &Perm {
        &self.layout.perms()[0]
    }

    /// The intermediate length `s = b_L²·k_L = b_R¹·k_R`.
    pub fn s(&self) -> usize {
        self.layout.factors()[0].n_out()
    }
}

/// The result of [`Gs::project`]: the projected matrix and Proposition 1's block-rank profile
/// (`ranks[k1][k2]` = rank allowed in block `(k1, k2)` of `P_Lᵀ A P_Rᵀ`).
#[derive(Clone, Debug)]
pub struct Projection<T: Real> {
    /// `π(A)` as a GS matrix on the projection's layout.
    pub gs: Gs<T>,
    /// The `k_L × k_R` block-rank bounds of the layout ([`block_rank_profile`]).
    pub ranks: Vec<Vec<usize>>,
}

impl<T: Real> LinearOp<T> for Gs<T> {
    fn layout_arc(&self) -> &Arc<ChainLayout> {
        &self.layout
    }

    fn blocks(&self) -> Cow<'_, [Tensor<T>]> {
        Cow::Borrowed(&self.blocks)
    }
}
