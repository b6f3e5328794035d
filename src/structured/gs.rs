//! [`Gs`]: the class 𝒢𝒮(P_L, P, P_R) of Definition 3.1, `A = P_L (L P R) P_R`.
//!
//! `R = diag(R_1, …, R_{k_R})` with `b_R¹ × b_R²` blocks, `L = diag(L_1, …, L_{k_L})` with
//! `b_L¹ × b_L²` blocks, and the size rules `b_L²·k_L = b_R¹·k_R = s`, `b_L¹·k_L = m`,
//! `b_R²·k_R = n` (A is `m × n`). As a chain: factors `[R, L]`, permutations `[P_R, P, P_L]`.
//!
//! GSOFT (§6.1 and the official `BlockdiagButterflyMultiply`) is `Q = Pᵀ L P R` with
//! `P = P_(k_L, s)` in the scatter reading (digest §2.2, §8): [`Gs::gsoft`].

use crate::error::{Error, Result};
use crate::perm::Perm;
use crate::real::Real;
use crate::structured::{
    BlockShape, ChainLayout, LinearOp, block_shape_of, identity_blocks, random_blocks,
};
use crate::tensor::Tensor;
use rand::Rng;
use std::sync::Arc;

/// A matrix `A = P_L (L P R) P_R` of 𝒢𝒮(P_L, P, P_R) (Definition 3.1).
#[derive(Clone, Debug)]
pub struct Gs<T: Real> {
    layout: Arc<ChainLayout>,
    blocks: Vec<Tensor<T>>,
}

/// Checks the size rules of Definition 3.1 and builds the chain `[R, L]`, `[P_R, P, P_L]`.
fn gs_layout(p_l: Perm, l: BlockShape, p: Perm, r: BlockShape, p_r: Perm) -> Result<ChainLayout> {
    for (name, s) in [("L", l), ("R", r)] {
        if s.k == 0 || s.b1 == 0 || s.b2 == 0 {
            return Err(Error::BlockMismatch(format!(
                "GS factor {name} has an empty block shape: k={}, b1={}, b2={}",
                s.k, s.b1, s.b2
            )));
        }
    }
    let s = l.b2 * l.k;
    if s != r.b1 * r.k {
        return Err(Error::BlockMismatch(format!(
            "Definition 3.1 needs b_L²·k_L = b_R¹·k_R (= s), got b_L²={}, k_L={} (s={s}) and b_R¹={}, k_R={} (s={})",
            l.b2,
            l.k,
            r.b1,
            r.k,
            r.b1 * r.k
        )));
    }
    let (m, n) = (l.b1 * l.k, r.b2 * r.k);
    for (name, perm, want, rule) in [
        ("P_R", &p_r, n, "n = b_R²·k_R"),
        ("P", &p, s, "s = b_L²·k_L"),
        ("P_L", &p_l, m, "m = b_L¹·k_L"),
    ] {
        if perm.len() != want {
            return Err(Error::BlockMismatch(format!(
                "{name} has size {} but Definition 3.1 needs {rule} = {want}",
                perm.len()
            )));
        }
    }
    ChainLayout::new(vec![r, l], vec![p_r, p, p_l])
}

/// `P = P_(k_L, s)` (scatter) and `P_L = Pᵀ` extended to the output size: the gather map
/// `σ_(k_L, m)` (`y[v·k_L + a] = h[a·b_L¹ + v]`, step 4 of the reference algorithm).
fn gsoft_perms(l: BlockShape) -> Result<(Perm, Perm)> {
    let p = Perm::shuffle_scatter(l.k, l.n_in())?;
    let p_l = Perm::shuffle_gather(l.k, l.n_out())?;
    Ok((p_l, p))
}

impl<T: Real> Gs<T> {
    /// `A = P_L (L P R) P_R` with blocks that are the leading parts of identities
    /// (`B_j[u][t] = [u = t]`).
    ///
    /// # Errors
    /// [`Error::BlockMismatch`] naming the sizes if a rule of Definition 3.1 fails.
    pub fn new(p_l: Perm, l: BlockShape, p: Perm, r: BlockShape, p_r: Perm) -> Result<Self> {
        let layout = gs_layout(p_l, l, p, r, p_r)?;
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
        let layout = gs_layout(p_l, l, p, r, p_r)?;
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
        let layout = gs_layout(p_l, ls, p, rs, p_r)?;
        Self::wrap(layout, vec![r, l])
    }

    /// GSOFT's `Q = Pᵀ L P R` (§6.1, the official `BlockdiagButterflyMultiply`): `P = P_(k_L, s)`
    /// in the scatter reading ([`Perm::shuffle_scatter`]), `P_L = Pᵀ` (for rectangular `L` the
    /// gather map `σ_(k_L, m)`), `P_R = I`. Per vector this is
    /// `y = gather(L·gather(R·x, σ_(b_L², s)), σ_(k_L, m))`.
    ///
    /// # Errors
    /// As [`Gs::from_blocks`].
    pub fn gsoft(l: Tensor<T>, r: Tensor<T>) -> Result<Self> {
        let ls = block_shape_of("L", &l)?;
        let rs = block_shape_of("R", &r)?;
        let (p_l, p) = gsoft_perms(ls)?;
        let p_r = Perm::identity(rs.n_in());
        Self::from_blocks(p_l, l, p, r, p_r)
    }

    /// [`Gs::gsoft`] with `k` square blocks of `b × b` in both factors (`n = k·b`), i.i.d.
    /// `N(0, 1/b)` entries.
    ///
    /// # Errors
    /// If `k` or `b` is zero.
    pub fn gsoft_random<R: Rng + ?Sized>(k: usize, b: usize, rng: &mut R) -> Result<Self> {
        let s = BlockShape::square(k, b);
        if k == 0 || b == 0 {
            return Err(Error::BlockMismatch(format!(
                "GSOFT needs k > 0 blocks of size b > 0, got k={k}, b={b}"
            )));
        }
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

    fn wrap(layout: ChainLayout, blocks: Vec<Tensor<T>>) -> Result<Self> {
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

impl<T: Real> LinearOp<T> for Gs<T> {
    fn layout_arc(&self) -> &Arc<ChainLayout> {
        &self.layout
    }

    fn blocks(&self) -> &[Tensor<T>] {
        &self.blocks
    }
}
