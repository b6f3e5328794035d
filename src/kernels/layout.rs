//! [`ChainLayout`]: the shape of a product `A = P_{m+1} B_m P_m ⋯ B_1 P_1` (Definition 5.1),
//! without values, and the named layouts of the paper.
//!
//! Every structured operator of the crate (block-diagonal, GS, GS chains, Monarch, the BOFT
//! butterfly, low-rank, dense) and every orthogonal layer is such a chain. Factor `i` (0-based
//! here, `B_{i+1}` in the paper) is block-diagonal with `k` blocks of `b1 × b2`
//! ([`BlockShape`]), stored as a `(k, b1, b2)` row-major tensor; it maps a vector of length `k·b2`
//! to one of length `k·b1`. `perms[0]` is P_1 (applied to the input), `perms[i]` sits before
//! factor `i`, and `perms[m]` is P_{m+1} (applied last). Permutations use the gather convention
//! of [`Perm`].
//!
//! The named constructors ([`ChainLayout::gsoft`], [`ChainLayout::monarch`],
//! [`ChainLayout::peft_butterfly`], ...) are the only place each of the paper's layouts is
//! written; the structured operators and the orthogonal layers both call them.
//!
//! This module imports only the leaves below it (blocks, permutations, tensors, errors): it knows
//! sizes and permutations only. The kernels keep their
//! execution plans in the layout's [`KernelCache`] without this module knowing what they are.

use crate::blocks::{BlockShape, Blocks};
use crate::error::{Error, Result};
use crate::perm::Perm;
use crate::real::Real;
use crate::tensor::Tensor;
use std::any::Any;
use std::sync::{Arc, Mutex};

/// The sizes and permutations of `P_{m+1} B_m P_m ⋯ B_1 P_1`, validated at construction.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainLayout {
    factors: Vec<BlockShape>,
    perms: Vec<Perm>,
    /// Data the kernels derive from the layout (execution plans), built on first use.
    cache: KernelCache,
}

/// Derived data attached to a layout by the kernels, keyed by a small integer pair, at most
/// [`KernelCache::CAPACITY`] entries (the oldest is dropped first). Clones of a layout share it;
/// it never changes what a layout is (`Debug` shows only its size, equality ignores it).
#[derive(Clone, Default)]
pub struct KernelCache(Arc<Mutex<Vec<CacheEntry>>>);

/// A cached value with its key.
type CacheEntry = ((u8, usize), Arc<dyn Any + Send + Sync>);

impl KernelCache {
    /// Most entries kept.
    pub const CAPACITY: usize = 8;

    /// The value under `key`, built by `make` and stored on first use.
    ///
    /// # Panics
    /// If a value of another type is stored under `key`.
    pub(crate) fn get_or_insert<V: Any + Send + Sync>(
        &self,
        key: (u8, usize),
        make: impl FnOnce() -> V,
    ) -> Arc<V> {
        let downcast = |v: &Arc<dyn Any + Send + Sync>| {
            Arc::clone(v)
                .downcast::<V>()
                .expect("one value type per cache key")
        };
        {
            let entries = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, v)) = entries.iter().find(|(k, _)| *k == key) {
                return downcast(v);
            }
        }
        let v: Arc<dyn Any + Send + Sync> = Arc::new(make());
        let mut entries = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= Self::CAPACITY {
            entries.remove(0);
        }
        entries.push((key, Arc::clone(&v)));
        downcast(&v)
    }

    /// Number of cached values.
    pub fn len(&self) -> usize {
        self.0.lock().map_or(0, |v| v.len())
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for KernelCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KernelCache({} entries)", self.len())
    }
}

impl PartialEq for KernelCache {
    /// Always true: the cache is derived from the layout's sizes and permutations.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl ChainLayout {
    /// Builds and validates a chain: `factors.len() = m ≥ 1`, `perms.len() = m + 1`,
    /// `|P_1| = n_in(B_1)`, `|P_{i+1}| = n_out(B_i) = n_in(B_{i+1})` (Definition 5.1:
    /// `b_i¹·k_i = b_{i+1}²·k_{i+1}`) and `|P_{m+1}| = n_out(B_m)`.
    ///
    /// # Errors
    /// [`Error::BlockMismatch`] naming the factor and the sizes that do not chain, or an empty
    /// block shape.
    pub fn new(factors: Vec<BlockShape>, perms: Vec<Perm>) -> Result<Self> {
        if factors.is_empty() || perms.len() != factors.len() + 1 {
            return Err(Error::BlockMismatch(format!(
                "a chain of m factors needs m >= 1 and m + 1 permutations, got {} factors and {} permutations",
                factors.len(),
                perms.len()
            )));
        }
        for (i, f) in factors.iter().enumerate() {
            if f.k == 0 || f.b1 == 0 || f.b2 == 0 {
                return Err(Error::BlockMismatch(format!(
                    "factor {i} has an empty block shape {f:?}"
                )));
            }
            let want = f.n_in();
            let got = perms[i].len();
            if want != got {
                return Err(Error::BlockMismatch(format!(
                    "factor {i} ({} blocks of {}x{}) takes length {want} but the permutation before it has size {got}",
                    f.k, f.b1, f.b2
                )));
            }
        }
        let last = factors[factors.len() - 1];
        if perms[factors.len()].len() != last.n_out() {
            return Err(Error::BlockMismatch(format!(
                "the last factor outputs length {} but the output permutation has size {}",
                last.n_out(),
                perms[factors.len()].len()
            )));
        }
        Ok(Self {
            factors,
            perms,
            cache: KernelCache::default(),
        })
    }

    /// One block-diagonal factor with identity permutations.
    ///
    /// # Errors
    /// [`Error::BlockMismatch`] for an empty block shape.
    pub fn block_diag(shape: BlockShape) -> Result<Self> {
        Self::new(
            vec![shape],
            vec![Perm::identity(shape.n_in()), Perm::identity(shape.n_out())],
        )
    }

    /// Definition 3.1: `A = P_L (L P R) P_R` with `L` of shape `l`, `R` of shape `r`, as the
    /// chain with factors `[R, L]` and permutations `[P_R, P, P_L]`. The size rules are
    /// `b_L²·k_L = b_R¹·k_R = s`, `|P| = s`, `|P_L| = b_L¹·k_L`, `|P_R| = b_R²·k_R`.
    ///
    /// # Errors
    /// [`Error::BlockMismatch`] naming the sizes if a rule fails.
    pub fn gs(p_l: Perm, l: BlockShape, p: Perm, r: BlockShape, p_r: Perm) -> Result<Self> {
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
        let (m, n) = (l.n_out(), r.n_in());
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
        Self::new(vec![r, l], vec![p_r, p, p_l])
    }

    /// GSOFT's `Q = Pᵀ L P R` (§6.1, the official `BlockdiagButterflyMultiply`): `P = P_(k_L, s)`
    /// in the scatter reading ([`Perm::shuffle_scatter`]), `P_L = Pᵀ` (for rectangular `L` the
    /// gather map `σ_(k_L, m)`), `P_R = I`. Per vector:
    /// `y = gather(L·gather(R·x, σ_(b_L², s)), σ_(k_L, m))`. With square blocks,
    /// `gsoft(blocks.shape(), blocks.shape())` is the orthogonal GSOFT layer's layout.
    ///
    /// # Errors
    /// As [`ChainLayout::gs`], or if `k_L` does not divide `s`.
    pub fn gsoft(l: BlockShape, r: BlockShape) -> Result<Self> {
        if l.k == 0 || l.b1 == 0 || l.b2 == 0 {
            return Err(Error::BlockMismatch(format!(
                "GS factor L has an empty block shape: k={}, b1={}, b2={}",
                l.k, l.b1, l.b2
            )));
        }
        let p = Perm::shuffle_scatter(l.k, l.n_in())?;
        let p_l = Perm::shuffle_gather(l.k, l.n_out())?;
        Self::gs(p_l, l, p, r, Perm::identity(r.n_in()))
    }

    /// Generalized Monarch `M = P₁ L P₂ R` (Dao et al., 2022; digest §2.4): Definition 3.1 with
    /// the constraints `k_L = b_R¹` and `k_R = b_L²`, `P₂ = σ_(k_R, s)` (gathers entry `u` of every
    /// `R` block into `L` block `u`), `P₁ = σ_(k_L, m)` (interleaves the `L` outputs), `P_R = I`.
    /// With square blocks this forces `k_L·k_R = n` and `P₁ = P₂ᵀ`.
    ///
    /// # Errors
    /// [`Error::BlockMismatch`] naming `k_L, b_R¹, k_R, b_L²` if the constraints fail.
    pub fn monarch(l: BlockShape, r: BlockShape) -> Result<Self> {
        for (name, s) in [("L", l), ("R", r)] {
            if s.k == 0 || s.b1 == 0 || s.b2 == 0 {
                return Err(Error::BlockMismatch(format!(
                    "Monarch {name} has an empty block shape: k={}, b1={}, b2={}",
                    s.k, s.b1, s.b2
                )));
            }
        }
        if l.k != r.b1 || r.k != l.b2 {
            return Err(Error::BlockMismatch(format!(
                "Monarch needs k_L = b_R¹ and k_R = b_L², got k_L={}, b_R¹={}, k_R={}, b_L²={}",
                l.k, r.b1, r.k, l.b2
            )));
        }
        let p1 = Perm::shuffle_gather(l.k, l.n_out())?;
        let p2 = Perm::shuffle_gather(r.k, r.n_out())?;
        Self::gs(p1, l, p2, r, Perm::identity(r.n_in()))
    }

    /// The square Monarch layout (paper §3, App. C; Dao et al.'s `M = P L Pᵀ R`): `L` has the
    /// `r` blocks of `b × b` of `l`, `R` has `b` blocks of `r × r` (the constraint `k_L = b_R`,
    /// `k_R = b_L`, so `k_L·k_R = n`). Every block of `Pᵀ M` has rank 1.
    ///
    /// # Errors
    /// Never for a valid [`Blocks`] (kept as `Result` like the other constructors).
    pub fn monarch_square(l: Blocks) -> Result<Self> {
        Self::monarch(l.shape(), BlockShape::square(l.b(), l.r()))
    }

    /// The chain `B_m P ⋯ P B_2 P B_1` of digest §10 with the default shuffle between factors:
    /// before factor `i + 1` the permutation is `P_(k_{i+1}, s_i)` in the scatter reading
    /// ([`Perm::shuffle_scatter`]; `k_{i+1}` = blocks of the next factor, `s_i` = length between
    /// the factors); `P_1 = P_{m+1} = I`.
    ///
    /// # Errors
    /// [`Error::BlockMismatch`] if the sizes do not chain or `factors` is empty;
    /// [`Error::InvalidArgument`] if `k_{i+1}` does not divide `s_i`.
    pub fn gs_chain(factors: &[BlockShape]) -> Result<Self> {
        let Some(first) = factors.first() else {
            return Err(Error::BlockMismatch(
                "a GS chain needs at least one factor".into(),
            ));
        };
        let mut perms = vec![Perm::identity(first.n_in())];
        for (i, w) in factors.windows(2).enumerate() {
            let s = w[0].n_out();
            if s != w[1].n_in() {
                return Err(Error::BlockMismatch(format!(
                    "factor {i} outputs length {s} = {}·{} but factor {} takes {} = {}·{}",
                    w[0].k,
                    w[0].b1,
                    i + 1,
                    w[1].n_in(),
                    w[1].k,
                    w[1].b2
                )));
            }
            perms.push(Perm::shuffle_scatter(w[1].k, s)?);
        }
        perms.push(Perm::identity(factors[factors.len() - 1].n_out()));
        Self::new(factors.to_vec(), perms)
    }

    /// The square chain `(P^{m−1})ᵀ B_m P ⋯ B_2 P B_1` with `m` factors of `blocks` and
    /// `P = P_(r, n)` (scatter reading) between factors: [`ChainLayout::gs_chain`] closed by the
    /// fixed row reordering `(P^{m−1})ᵀ` (same density and block structure), so that identity
    /// blocks give the identity. `m = 2` is [`ChainLayout::gsoft`], `m = 1` block-diagonal.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `m = 0`.
    pub fn gs_chain_closed(blocks: Blocks, m: usize) -> Result<Self> {
        if m == 0 {
            return Err(Error::InvalidArgument(
                "a GS chain needs m >= 1 factors, got m=0".into(),
            ));
        }
        let n = blocks.n();
        let p = Perm::shuffle_scatter(blocks.r(), n)?;
        let mut perms = vec![Perm::identity(n)];
        perms.extend(std::iter::repeat_n(p.clone(), m - 1));
        let mut closing = Perm::identity(n);
        for _ in 1..m {
            closing = closing.compose(&p);
        }
        perms.push(closing.inverse());
        Self::new(vec![blocks.shape(); m], perms)
    }

    /// BOFT's butterfly `Q = F_{m−1} ⋯ F_0`, `F_i = P_i B_i P_iᵀ`, `B_i` with the `r` blocks of
    /// `b × b` of `blocks`, and PEFT's permutations
    /// `P_i = perm2mat(block_butterfly_perm(n, r/2^i, b/2))` ([`Perm::block_butterfly`], digest
    /// §2.5), composed once: perms `[P_0ᵀ, P_1ᵀP_0, …, P_{m−1}ᵀP_{m−2}, P_{m−1}]`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] from [`check_peft_butterfly`], naming the failed condition.
    pub fn peft_butterfly(blocks: Blocks, m: usize) -> Result<Self> {
        check_peft_butterfly(blocks, m)?;
        let (n, r, b) = (blocks.n(), blocks.r(), blocks.b());
        let p: Vec<Perm> = (0..m)
            .map(|i| {
                if m == 1 {
                    Ok(Perm::identity(n))
                } else {
                    Perm::block_butterfly(n, r >> i, b / 2)
                }
            })
            .collect::<Result<_>>()?;
        let mut perms = Vec::with_capacity(m + 1);
        perms.push(p[0].inverse());
        for i in 1..m {
            perms.push(p[i].inverse().compose(&p[i - 1]));
        }
        perms.push(p[m - 1].clone());
        Self::new(vec![blocks.shape(); m], perms)
    }

    /// A rank-`rank` product `U Vᵀ` (`U` is `n_out × rank`, `V` is `n_in × rank`) as the chain
    /// `[Vᵀ, U]` of two one-block factors with identity permutations.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if a size is zero.
    pub fn low_rank(n_out: usize, n_in: usize, rank: usize) -> Result<Self> {
        if n_out == 0 || n_in == 0 || rank == 0 {
            return Err(Error::InvalidArgument(format!(
                "low-rank needs positive sizes, got n_out={n_out}, n_in={n_in}, rank={rank}"
            )));
        }
        Self::new(
            vec![
                BlockShape::new(1, rank, n_in),
                BlockShape::new(1, n_out, rank),
            ],
            vec![
                Perm::identity(n_in),
                Perm::identity(rank),
                Perm::identity(n_out),
            ],
        )
    }

    /// A dense `n_out × n_in` matrix: one factor with one block.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if a size is zero.
    pub fn dense(n_out: usize, n_in: usize) -> Result<Self> {
        if n_out == 0 || n_in == 0 {
            return Err(Error::InvalidArgument(format!(
                "a dense operator needs positive sizes, got {n_out} x {n_in}"
            )));
        }
        Self::block_diag(BlockShape::new(1, n_out, n_in))
    }

    /// The layout of `Aᵀ = P_1ᵀ B_1ᵀ P_2ᵀ ⋯ B_mᵀ P_{m+1}ᵀ`: factors reversed and transposed,
    /// every permutation inverted and the order reversed.
    pub fn transposed(&self) -> Self {
        let factors = self
            .factors
            .iter()
            .rev()
            .map(BlockShape::transposed)
            .collect();
        let perms = self.perms.iter().rev().map(Perm::inverse).collect();
        Self::new(factors, perms).expect("the transpose of a valid chain is valid")
    }

    /// Number of block-diagonal factors `m`.
    pub fn m(&self) -> usize {
        self.factors.len()
    }

    /// The factor shapes, `B_1` first.
    pub fn factors(&self) -> &[BlockShape] {
        &self.factors
    }

    /// The permutations `P_1, …, P_{m+1}`.
    pub fn perms(&self) -> &[Perm] {
        &self.perms
    }

    /// The kernels' cache of data derived from this layout (execution plans).
    pub fn kernel_cache(&self) -> &KernelCache {
        &self.cache
    }

    /// Input length `n` (columns of A).
    pub fn n_in(&self) -> usize {
        self.factors[0].n_in()
    }

    /// Output length (rows of A).
    pub fn n_out(&self) -> usize {
        self.factors[self.m() - 1].n_out()
    }

    /// Entries of all blocks, `Σ k_i·b_i¹·b_i²`.
    pub fn param_count(&self) -> usize {
        self.factors.iter().map(BlockShape::numel).sum()
    }

    /// Multiply-adds of one matrix-vector product, `Σ k_i·b_i¹·b_i²` (permutations are free).
    pub fn macs_per_vector(&self) -> usize {
        self.param_count()
    }

    /// Checks that `blocks` has one `(k, b1, b2)` tensor per factor.
    ///
    /// # Errors
    /// [`Error::BlockMismatch`] naming the first factor whose tensor has the wrong shape.
    pub fn check_blocks<T: Real>(&self, blocks: &[Tensor<T>]) -> Result<()> {
        if blocks.len() != self.m() {
            return Err(Error::BlockMismatch(format!(
                "{} block tensors for a chain of {} factors",
                blocks.len(),
                self.m()
            )));
        }
        for (i, (b, f)) in blocks.iter().zip(&self.factors).enumerate() {
            if b.shape() != f.tensor_shape() {
                return Err(Error::BlockMismatch(format!(
                    "factor {i} needs blocks of shape {:?}, got {:?}",
                    f.tensor_shape(),
                    b.shape()
                )));
            }
        }
        Ok(())
    }
}

/// PEFT's validity rule for a BOFT butterfly with `m` factors of `blocks` (`r` blocks of `b`),
/// the one rule every BOFT entry point of the crate applies (PEFT's `BOFTLayer.update_layer`):
/// `m ≥ 1`; and for `m ≥ 2` (a real butterfly, not OFT) an even block size `b` (the permutations
/// move half-blocks of `b/2`) and `2^{m−1} | r` (factor `i` regroups the blocks in `r/2^i` groups).
///
/// # Errors
/// [`Error::InvalidArgument`] naming the condition that failed and `n`, `r`, `b`, `m`.
pub fn check_peft_butterfly(blocks: Blocks, m: usize) -> Result<()> {
    let (n, r, b) = (blocks.n(), blocks.r(), blocks.b());
    if m == 0 {
        return Err(Error::InvalidArgument(format!(
            "BOFT needs m >= 1 butterfly factors, got m=0 (n={n}, r={r}, b={b})"
        )));
    }
    if m >= 2 && !b.is_multiple_of(2) {
        return Err(Error::InvalidArgument(format!(
            "BOFT with m={m} >= 2 factors needs an even block size, got b={b} (n={n}, r={r})"
        )));
    }
    if m >= 2 && (m > usize::BITS as usize || !r.is_multiple_of(1usize << (m - 1))) {
        return Err(Error::InvalidArgument(format!(
            "BOFT with m={m} factors needs 2^(m-1) to divide the block count, but r={r} is not a \
             multiple of 2^{} (n={n}, b={b})",
            m - 1
        )));
    }
    Ok(())
}

/// The largest `m` that [`check_peft_butterfly`] accepts for `blocks`: 1 for an odd block size,
/// else `1 + v₂(r)` (`v₂` = the exponent of 2 in `r`).
pub fn peft_butterfly_max_factors(blocks: Blocks) -> usize {
    if !blocks.b().is_multiple_of(2) {
        1
    } else {
        1 + blocks.r().trailing_zeros() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_rules_are_checked_with_named_sizes() {
        let id = |n| Perm::identity(n);
        // B_1: 4 blocks of 2x3 maps 12 -> 8; B_2 must take 8.
        let ok = ChainLayout::new(
            vec![BlockShape::new(4, 2, 3), BlockShape::new(2, 5, 4)],
            vec![id(12), id(8), id(10)],
        )
        .unwrap();
        assert_eq!((ok.n_in(), ok.n_out(), ok.param_count()), (12, 10, 24 + 40));
        let err = ChainLayout::new(
            vec![BlockShape::new(4, 2, 3), BlockShape::new(3, 5, 3)],
            vec![id(12), id(8), id(15)],
        )
        .unwrap_err();
        assert!(err.to_string().contains("factor 1"), "{err}");
        assert!(ChainLayout::new(vec![BlockShape::new(4, 2, 3)], vec![id(12)]).is_err());
        assert!(ChainLayout::new(vec![BlockShape::new(0, 2, 3)], vec![id(0), id(0)]).is_err());
    }

    #[test]
    fn transposed_reverses_and_inverts() {
        let l = ChainLayout::gsoft(BlockShape::new(3, 2, 4), BlockShape::new(4, 3, 5)).unwrap();
        let t = l.transposed();
        assert_eq!((t.n_in(), t.n_out()), (l.n_out(), l.n_in()));
        assert_eq!(
            t.factors(),
            &[BlockShape::new(3, 4, 2), BlockShape::new(4, 5, 3)]
        );
        assert_eq!(t.perms()[0], l.perms()[2].inverse());
        assert_eq!(t.transposed(), l);
    }

    /// The rule of PEFT's `update_layer`, condition by condition, at sizes where only that
    /// condition fails.
    #[test]
    fn peft_rule_names_the_failed_condition() {
        let at = |n, r| Blocks::count(n, r).unwrap();
        assert!(check_peft_butterfly(at(96, 24), 4).is_ok()); // 2^3 | 24
        let e = check_peft_butterfly(at(96, 24), 5).unwrap_err().to_string();
        assert!(e.contains("r=24 is not a multiple of 2^4"), "{e}");
        let e = check_peft_butterfly(at(24, 8), 2).unwrap_err().to_string(); // b = 3
        assert!(e.contains("even block size, got b=3"), "{e}");
        assert!(
            check_peft_butterfly(at(24, 8), 1).is_ok(),
            "OFT allows odd blocks"
        );
        assert!(check_peft_butterfly(at(24, 8), 0).is_err());
        assert_eq!(peft_butterfly_max_factors(at(96, 24)), 4);
        assert_eq!(peft_butterfly_max_factors(at(24, 8)), 1);
        assert_eq!(peft_butterfly_max_factors(at(1024, 32)), 6);
        for (n, r) in [(96, 24), (1024, 32), (64, 16), (48, 12)] {
            let bl = at(n, r);
            for m in 1..=8 {
                assert_eq!(
                    check_peft_butterfly(bl, m).is_ok(),
                    m <= peft_butterfly_max_factors(bl),
                    "n={n} r={r} m={m}"
                );
                assert_eq!(
                    ChainLayout::peft_butterfly(bl, m).is_ok(),
                    check_peft_butterfly(bl, m).is_ok()
                );
            }
        }
    }
}
