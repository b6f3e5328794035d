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

use crate::error::{Error, Result};
use crate::perm::Perm;
use crate::real::Real;
use crate::structured::{BlockShape, ChainLayout, Gs, LinearOp, block_shape_of, check_nonempty};
use crate::tensor::Tensor;
use rand::Rng;
use std::sync::Arc;

/// A generalized Monarch matrix `M = P₁ L P₂ R` (a constrained [`Gs`]).
#[derive(Clone, Debug)]
pub struct Monarch<T: Real> {
    gs: Gs<T>,
}

/// Checks `k_L = b_R¹` and `k_R = b_L²` and returns `(P₁, P₂, P_R = I)`.
fn monarch_perms(l: BlockShape, r: BlockShape) -> Result<(Perm, Perm, Perm)> {
    check_nonempty("Monarch L", l)?;
    check_nonempty("Monarch R", r)?;
    if l.k != r.b1 || r.k != l.b2 {
        return Err(Error::BlockMismatch(format!(
            "Monarch needs k_L = b_R¹ and k_R = b_L², got k_L={}, b_R¹={}, k_R={}, b_L²={}",
            l.k, r.b1, r.k, l.b2
        )));
    }
    let s = r.n_out();
    Ok((
        Perm::shuffle_gather(l.k, l.n_out())?,
        Perm::shuffle_gather(r.k, s)?,
        Perm::identity(r.n_in()),
    ))
}

/// The Monarch layout `M = P₁ L P₂ R` as a 2-factor chain (factors `[R, L]`, permutations
/// `[I, P₂, P₁]`), with the constraints `k_L = b_R¹`, `k_R = b_L²` checked.
///
/// # Errors
/// [`Error::BlockMismatch`] naming `k_L, b_R¹, k_R, b_L²` if the Monarch constraints fail.
pub fn monarch_chain(l: BlockShape, r: BlockShape) -> Result<ChainLayout> {
    let (p1, p2, pr) = monarch_perms(l, r)?;
    ChainLayout::new(vec![r, l], vec![pr, p2, p1])
}

impl<T: Real> Monarch<T> {
    /// `M = P₁ L P₂ R` with blocks that are the leading parts of identities.
    ///
    /// # Errors
    /// [`Error::BlockMismatch`] naming `k_L, b_R¹, k_R, b_L²` if the Monarch constraints fail.
    pub fn new(l: BlockShape, r: BlockShape) -> Result<Self> {
        let (p1, p2, pr) = monarch_perms(l, r)?;
        Ok(Self {
            gs: Gs::new(p1, l, p2, r, pr)?,
        })
    }

    /// `M = P₁ L P₂ R` with i.i.d. `N(0, 1/b²)` block entries.
    ///
    /// # Errors
    /// As [`Monarch::new`].
    pub fn random<R: Rng + ?Sized>(l: BlockShape, r: BlockShape, rng: &mut R) -> Result<Self> {
        let (p1, p2, pr) = monarch_perms(l, r)?;
        Ok(Self {
            gs: Gs::random(p1, l, p2, r, pr, rng)?,
        })
    }

    /// The square Monarch matrix of size `n = k_L·k_R` with `k_L` blocks of `k_R × k_R` in `L`
    /// and `k_R` blocks of `k_L × k_L` in `R`, i.i.d. `N(0, 1/b)` entries.
    ///
    /// # Errors
    /// If `k_L` or `k_R` is zero.
    pub fn random_square<R: Rng + ?Sized>(k_l: usize, k_r: usize, rng: &mut R) -> Result<Self> {
        Self::random(
            BlockShape::square(k_l, k_r),
            BlockShape::square(k_r, k_l),
            rng,
        )
    }

    /// `M = P₁ L P₂ R` from the block tensors `l` (`(k_L, b_L¹, b_L²)`) and `r`
    /// (`(k_R, b_R¹, b_R²)`).
    ///
    /// # Errors
    /// As [`Monarch::new`], or if a tensor is not 3-D.
    pub fn from_blocks(l: Tensor<T>, r: Tensor<T>) -> Result<Self> {
        let (p1, p2, pr) = monarch_perms(block_shape_of("L", &l)?, block_shape_of("R", &r)?)?;
        Ok(Self {
            gs: Gs::from_blocks(p1, l, p2, r, pr)?,
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

    fn blocks(&self) -> &[Tensor<T>] {
        self.gs.blocks()
    }
}
