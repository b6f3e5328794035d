//! [`Pattern`]: the structural (symbolic) nonzero pattern of a product of permutations and
//! block-diagonal factors, and the Theorem 2 tools built on it.
//!
//! A pattern is computed from the structure alone, never by testing floating-point values for
//! zero: entry `(i, j)` is *structurally nonzero* when some path through the factor graph links
//! input `j` to output `i` (the "information transmission" picture of the Theorem 2 proof,
//! paper, App. D). With generic (e.g. random) blocks the structural pattern equals the true nonzero
//! pattern. Rows are stored as bitsets of `u64` words.
//!
//! Products are propagated factor by factor: left-multiplying by a permutation `P` (gather map σ)
//! moves rows, `row_i(P M) = row_{σ(i)}(M)`; left-multiplying by a block-diagonal factor with
//! full `b1 × b2` blocks gives `row_{j·b1+u}(B M) = OR_{t<b2} row_{j·b2+t}(M)`. A factor thus
//! costs `O(n · n_in / 64)` word operations, so chains at `n = 4096` take milliseconds.
//!
//! **Theorem 2** (paper §5.2): with `r = n/b` blocks of `b × b` per factor and `P_(k,n)` between
//! factors, `m = 1 + ⌈log_b r⌉` factors give a dense product, and for every `m` below that and
//! every choice of permutations each row has at most `b^m < n` nonzeros. [`support_growth_gs`],
//! [`min_factors_gs`] and [`gs_formula`] check it; [`support_growth_boft`], [`min_factors_boft`]
//! and [`boft_formula`] do the same for BOFT's block butterfly (`1 + ⌈log₂ r⌉`).
//!
//! ```
//! use gslab::Blocks;
//! use gslab::structured::pattern::*;
//! // The paper's example: n = 1024, b = 32 (r = 32): GS is dense with 2 factors, BOFT with 6.
//! let blocks = Blocks::size(1024, 32)?;
//! assert_eq!(gs_formula(blocks)?, 2);
//! assert_eq!(min_factors_gs(blocks, 4, GsShuffle::default())?, Some(2));
//! assert_eq!(boft_formula(blocks)?, 6);
//! assert_eq!(min_factors_boft(blocks, 8)?, Some(6));
//! // One GS factor: every row of the 1024 x 1024 pattern has b = 32 nonzeros.
//! let steps = support_growth_gs(blocks, 1, GsShuffle::default())?;
//! assert_eq!(steps[0].row_range(), (32, 32));
//! // n = 96 with blocks of 4: r = 24 is not a power of 2, so BOFT cannot build 1 + ⌈log₂ 24⌉ = 6
//! // factors (PEFT needs 2⁵ | r) and the formula says so instead of returning 6.
//! assert!(boft_formula(Blocks::size(96, 4)?).is_err());
//! # Ok::<(), gslab::Error>(())
//! ```

use crate::blocks::{BlockShape, Blocks};
use crate::error::{Error, Result};
use crate::kernels::layout::{ChainLayout, check_peft_butterfly, peft_butterfly_max_factors};
use crate::perm::Perm;

/// A boolean `n_out × n_in` sparsity pattern stored as bitset rows (`u64` words, bit `j % 64` of
/// word `j / 64` is column `j`). Bits past `n_in` in the last word are always zero.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pattern {
    n_out: usize,
    n_in: usize,
    words: usize,
    bits: Vec<u64>,
}

/// Words per bitset row of `n` columns.
fn words_for(n: usize) -> usize {
    n.div_ceil(64)
}

impl Pattern {
    /// The all-zero `n_out × n_in` pattern.
    pub fn zeros(n_out: usize, n_in: usize) -> Self {
        let words = words_for(n_in);
        Self {
            n_out,
            n_in,
            words,
            bits: vec![0; n_out * words],
        }
    }

    /// The `n × n` identity pattern.
    pub fn identity(n: usize) -> Self {
        let mut p = Self::zeros(n, n);
        for i in 0..n {
            p.set(i, i);
        }
        p
    }

    /// The pattern of a permutation matrix in the gather convention: `P[i, σ(i)] = 1`.
    pub fn of_perm(perm: &Perm) -> Self {
        let n = perm.len();
        let mut p = Self::zeros(n, n);
        for (i, &s) in perm.as_slice().iter().enumerate() {
            p.set(i, s);
        }
        p
    }

    /// The pattern of a block-diagonal factor with full blocks: `k` blocks of `b1 × b2`, entry
    /// `(j·b1 + u, j·b2 + t)` set for all `j < k`, `u < b1`, `t < b2`.
    pub fn of_block_diag(shape: BlockShape) -> Self {
        let mut p = Self::zeros(shape.n_out(), shape.n_in());
        for j in 0..shape.k {
            for u in 0..shape.b1 {
                for t in 0..shape.b2 {
                    p.set(j * shape.b1 + u, j * shape.b2 + t);
                }
            }
        }
        p
    }

    /// The structural pattern of the whole chain `A = P_{m+1} B_m P_m ⋯ B_1 P_1` (Definition
    /// 5.1) with full blocks, propagated factor by factor from `P_1`.
    pub fn of_layout(layout: &ChainLayout) -> Self {
        let mut p = Self::of_perm(&layout.perms()[0]);
        for (i, f) in layout.factors().iter().enumerate() {
            p = p.left_block_diag(*f);
            p = p.left_perm(&layout.perms()[i + 1]);
        }
        p
    }

    /// Number of rows.
    pub fn n_out(&self) -> usize {
        self.n_out
    }

    /// Number of columns.
    pub fn n_in(&self) -> usize {
        self.n_in
    }

    /// The bitset words of row `i`.
    ///
    /// # Panics
    /// If `i >= n_out`.
    pub fn row_words(&self, i: usize) -> &[u64] {
        &self.bits[i * self.words..(i + 1) * self.words]
    }

    /// Entry `(i, j)`.
    ///
    /// # Panics
    /// If `(i, j)` is out of range.
    pub fn get(&self, i: usize, j: usize) -> bool {
        assert!(
            i < self.n_out && j < self.n_in,
            "Pattern::get: ({i}, {j}) out of range for {}x{}",
            self.n_out,
            self.n_in
        );
        self.bits[i * self.words + j / 64] >> (j % 64) & 1 == 1
    }

    /// Sets entry `(i, j)`.
    ///
    /// # Panics
    /// If `(i, j)` is out of range.
    pub fn set(&mut self, i: usize, j: usize) {
        assert!(
            i < self.n_out && j < self.n_in,
            "Pattern::set: ({i}, {j}) out of range for {}x{}",
            self.n_out,
            self.n_in
        );
        self.bits[i * self.words + j / 64] |= 1 << (j % 64);
    }

    /// `P · self` for a permutation with gather map σ: `row_i(P M) = row_{σ(i)}(M)`.
    ///
    /// # Panics
    /// If `|P| != n_out`.
    pub fn left_perm(&self, perm: &Perm) -> Self {
        assert!(
            perm.len() == self.n_out,
            "Pattern::left_perm: permutation of {} for a pattern with {} rows",
            perm.len(),
            self.n_out
        );
        let mut out = Self::zeros(self.n_out, self.n_in);
        for (i, &s) in perm.as_slice().iter().enumerate() {
            out.row_mut(i).copy_from_slice(self.row_words(s));
        }
        out
    }

    /// `B · self` for a block-diagonal factor with full blocks:
    /// `row_{j·b1+u}(B M) = OR_{t<b2} row_{j·b2+t}(M)`.
    ///
    /// # Panics
    /// If `n_in(B) = k·b2 != n_out`.
    pub fn left_block_diag(&self, shape: BlockShape) -> Self {
        assert!(
            shape.n_in() == self.n_out,
            "Pattern::left_block_diag: factor {shape:?} takes {} rows, pattern has {}",
            shape.n_in(),
            self.n_out
        );
        let mut out = Self::zeros(shape.n_out(), self.n_in);
        let mut acc = vec![0u64; self.words];
        for j in 0..shape.k {
            acc.fill(0);
            for t in 0..shape.b2 {
                for (a, &w) in acc.iter_mut().zip(self.row_words(j * shape.b2 + t)) {
                    *a |= w;
                }
            }
            for u in 0..shape.b1 {
                out.row_mut(j * shape.b1 + u).copy_from_slice(&acc);
            }
        }
        out
    }

    /// The boolean product `self · other`: `(A B)[i, j] = OR_l A[i, l] ∧ B[l, j]`, computed as
    /// `row_i(A B) = OR_{l ∈ row_i(A)} row_l(B)`.
    ///
    /// # Panics
    /// If `self.n_in != other.n_out`.
    pub fn product(&self, other: &Self) -> Self {
        assert!(
            self.n_in == other.n_out,
            "Pattern::product: {}x{} times {}x{}",
            self.n_out,
            self.n_in,
            other.n_out,
            other.n_in
        );
        let mut out = Self::zeros(self.n_out, other.n_in);
        let mut acc = vec![0u64; other.words];
        for i in 0..self.n_out {
            acc.fill(0);
            for l in self.row_indices(i) {
                for (a, &w) in acc.iter_mut().zip(other.row_words(l)) {
                    *a |= w;
                }
            }
            out.row_mut(i).copy_from_slice(&acc);
        }
        out
    }

    /// The transposed pattern.
    pub fn transpose(&self) -> Self {
        let mut out = Self::zeros(self.n_in, self.n_out);
        for i in 0..self.n_out {
            for j in self.row_indices(i) {
                out.set(j, i);
            }
        }
        out
    }

    /// The column indices set in row `i`, increasing.
    ///
    /// # Panics
    /// If `i >= n_out`.
    pub fn row_indices(&self, i: usize) -> Vec<usize> {
        let mut idx = Vec::new();
        for (wi, &w) in self.row_words(i).iter().enumerate() {
            let mut w = w;
            while w != 0 {
                idx.push(wi * 64 + w.trailing_zeros() as usize);
                w &= w - 1;
            }
        }
        idx
    }

    /// Number of set entries.
    pub fn nnz(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// `nnz / (n_out · n_in)`, in `[0, 1]`.
    pub fn density(&self) -> f64 {
        self.nnz() as f64 / (self.n_out as f64 * self.n_in as f64)
    }

    /// Nonzeros of each row.
    pub fn row_counts(&self) -> Vec<usize> {
        (0..self.n_out)
            .map(|i| {
                self.row_words(i)
                    .iter()
                    .map(|w| w.count_ones() as usize)
                    .sum()
            })
            .collect()
    }

    /// Nonzeros of each column.
    pub fn col_counts(&self) -> Vec<usize> {
        let mut counts = vec![0usize; self.words * 64];
        for row in self.bits.chunks(self.words.max(1)) {
            for (wi, &w) in row.iter().enumerate() {
                let cnt = &mut counts[wi * 64..wi * 64 + 64];
                if w.count_ones() > 16 {
                    // Dense word: a branch-free pass the compiler vectorizes.
                    for (bit, c) in cnt.iter_mut().enumerate() {
                        *c += ((w >> bit) & 1) as usize;
                    }
                } else {
                    let mut w = w;
                    while w != 0 {
                        cnt[w.trailing_zeros() as usize] += 1;
                        w &= w - 1;
                    }
                }
            }
        }
        counts.truncate(self.n_in);
        counts
    }

    /// True when every entry is set ("dense" in the paper's sense: no zero entries).
    pub fn is_dense(&self) -> bool {
        self.nnz() == self.n_out * self.n_in
    }

    fn row_mut(&mut self, i: usize) -> &mut [u64] {
        &mut self.bits[i * self.words..(i + 1) * self.words]
    }
}

/// Which reading of `P_(k,n)` ([`Perm::shuffle_gather`] or [`Perm::shuffle_scatter`]) and which
/// `k` (block size `b` or block count `r`) a GS chain uses between its factors (digest §2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GsShuffle {
    /// `true`: scatter reading `(P x)[σ_(k,n)(i)] = x[i]` (official code); `false`: gather.
    pub scatter: bool,
    /// `true`: `k = r` (number of blocks, the Theorem 2 proof); `false`: `k = b`.
    pub k_is_r: bool,
}

impl GsShuffle {
    /// The four variants: (gather, k=b), (gather, k=r), (scatter, k=b), (scatter, k=r).
    pub const ALL: [GsShuffle; 4] = [
        GsShuffle {
            scatter: false,
            k_is_r: false,
        },
        GsShuffle {
            scatter: false,
            k_is_r: true,
        },
        GsShuffle {
            scatter: true,
            k_is_r: false,
        },
        GsShuffle {
            scatter: true,
            k_is_r: true,
        },
    ];

    /// `P_(k,n)` for the `r` blocks of size `b` of `blocks` (`n = b·r`) in this reading.
    ///
    /// # Errors
    /// Never for a valid [`Blocks`] (kept as `Result` like the permutation constructors).
    pub fn perm(&self, blocks: Blocks) -> Result<Perm> {
        let k = if self.k_is_r { blocks.r() } else { blocks.b() };
        if self.scatter {
            Perm::shuffle_scatter(k, blocks.n())
        } else {
            Perm::shuffle_gather(k, blocks.n())
        }
    }
}

impl Default for GsShuffle {
    /// The paper's choice `P = P_(r,n)` in the official code's scatter reading.
    fn default() -> Self {
        Self {
            scatter: true,
            k_is_r: true,
        }
    }
}

/// The GS chain `B_m P ⋯ B_2 P B_1` of Theorem 2: `m` factors with the `r` blocks of `b × b` of
/// `blocks`, `P = P_(k,n)` (reading chosen by `shuffle`) between factors, `P_1 = P_{m+1} = I` (the
/// outer permutations do not change density). With the default shuffle this is
/// [`ChainLayout::gs_chain`] of `m` square factors.
///
/// # Errors
/// If `m = 0`.
pub fn gs_chain_layout(blocks: Blocks, m: usize, shuffle: GsShuffle) -> Result<ChainLayout> {
    let n = blocks.n();
    let p = shuffle.perm(blocks)?;
    let mut perms = vec![Perm::identity(n)];
    perms.extend((1..m).map(|_| p.clone()));
    perms.push(Perm::identity(n));
    ChainLayout::new(vec![blocks.shape(); m], perms)
}

/// Support of the product of the first `m` factors of a chain (Theorem 2 bookkeeping).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrowthStep {
    /// Number of factors multiplied so far.
    pub m: usize,
    /// Nonzeros of each row of `B_m P_m ⋯ B_1 P_1`.
    pub row_counts: Vec<usize>,
    /// Nonzeros of each column.
    pub col_counts: Vec<usize>,
    /// Total nonzeros.
    pub nnz: usize,
    /// True when no entry is zero.
    pub dense: bool,
}

impl GrowthStep {
    fn of(m: usize, p: &Pattern) -> Self {
        let nnz = p.nnz();
        Self {
            m,
            row_counts: p.row_counts(),
            col_counts: p.col_counts(),
            nnz,
            dense: nnz == p.n_out() * p.n_in(),
        }
    }

    /// `(min, max)` of the row counts.
    pub fn row_range(&self) -> (usize, usize) {
        min_max(&self.row_counts)
    }

    /// `(min, max)` of the column counts.
    pub fn col_range(&self) -> (usize, usize) {
        min_max(&self.col_counts)
    }
}

fn min_max(v: &[usize]) -> (usize, usize) {
    let lo = v.iter().copied().min().unwrap_or(0);
    let hi = v.iter().copied().max().unwrap_or(0);
    (lo, hi)
}

/// The support after each factor of a chain: step `m` describes `B_m P_m ⋯ B_1 P_1` (the output
/// permutation `P_{m+1}` only moves rows, so counts and density are those of the full chain
/// up to a row reordering). Only `max_m` steps are computed if the chain is longer.
pub fn support_growth(layout: &ChainLayout, max_m: usize) -> Vec<GrowthStep> {
    let mut p = Pattern::of_perm(&layout.perms()[0]);
    let mut steps = Vec::new();
    for (i, f) in layout.factors().iter().enumerate().take(max_m) {
        if i > 0 {
            p = p.left_perm(&layout.perms()[i]);
        }
        p = p.left_block_diag(*f);
        steps.push(GrowthStep::of(i + 1, &p));
    }
    steps
}

/// [`support_growth`] of the Theorem 2 GS chain ([`gs_chain_layout`]) with `max_m` factors.
/// With `P_(r,n)` each row and column has exactly `min(n, b^m)` nonzeros (digest T2).
///
/// # Errors
/// If `max_m = 0`.
pub fn support_growth_gs(
    blocks: Blocks,
    max_m: usize,
    shuffle: GsShuffle,
) -> Result<Vec<GrowthStep>> {
    Ok(support_growth(
        &gs_chain_layout(blocks, max_m, shuffle)?,
        max_m,
    ))
}

/// [`support_growth`] of the PEFT BOFT chain ([`ChainLayout::peft_butterfly`]) with as many
/// factors as PEFT's rule allows, at most `max_m` ([`peft_butterfly_max_factors`]). Rows have
/// `b·2^{m−1}` nonzeros (digest T3).
///
/// # Errors
/// If `max_m = 0`.
pub fn support_growth_boft(blocks: Blocks, max_m: usize) -> Result<Vec<GrowthStep>> {
    if max_m == 0 {
        return Err(Error::InvalidArgument("max_m must be at least 1".into()));
    }
    let m = max_m.min(peft_butterfly_max_factors(blocks));
    Ok(support_growth(&ChainLayout::peft_butterfly(blocks, m)?, m))
}

/// Smallest `m ≤ max_m` for which the Theorem 2 GS chain is dense, or `None`.
///
/// # Errors
/// As [`support_growth_gs`].
pub fn min_factors_gs(blocks: Blocks, max_m: usize, shuffle: GsShuffle) -> Result<Option<usize>> {
    Ok(first_dense(&support_growth_gs(blocks, max_m, shuffle)?))
}

/// Smallest `m ≤ max_m` for which the PEFT BOFT chain is dense, or `None` (also when PEFT's
/// limit [`peft_butterfly_max_factors`] is reached without density, e.g. `r = 96`).
///
/// # Errors
/// As [`support_growth_boft`].
pub fn min_factors_boft(blocks: Blocks, max_m: usize) -> Result<Option<usize>> {
    Ok(first_dense(&support_growth_boft(blocks, max_m)?))
}

fn first_dense(steps: &[GrowthStep]) -> Option<usize> {
    steps.iter().find(|s| s.dense).map(|s| s.m)
}

/// `⌈log_base(x)⌉` in exact integer arithmetic: the smallest `t ≥ 0` with `base^t ≥ x`.
///
/// # Errors
/// If `base < 2` or `x = 0`.
pub fn ceil_log(base: usize, x: usize) -> Result<usize> {
    if base < 2 || x == 0 {
        return Err(Error::InvalidArgument(format!(
            "ceil_log needs base >= 2 and x >= 1, got base={base}, x={x}"
        )));
    }
    let (mut t, mut p) = (0usize, 1usize);
    while p < x {
        p = p.saturating_mul(base);
        t += 1;
    }
    Ok(t)
}

/// Theorem 2's factor count for GS: `1 + ⌈log_b r⌉`, in integer arithmetic.
///
/// # Errors
/// If `b < 2`.
pub fn gs_formula(blocks: Blocks) -> Result<usize> {
    Ok(1 + ceil_log(blocks.b(), blocks.r())?)
}

/// BOFT's factor count for density, `1 + ⌈log₂ r⌉` (Liu et al.; digest §1), if PEFT's rule can
/// build that many factors.
///
/// # Errors
/// [`Error::InvalidArgument`] from [`check_peft_butterfly`] when the count is not buildable
/// (`r` is not a power of 2 or `b` is odd, e.g. `n = 96`, `b = 4`: `r = 24` needs 6 factors,
/// but `2⁵ ∤ 24`), naming the failed condition.
pub fn boft_formula(blocks: Blocks) -> Result<usize> {
    let m = 1 + ceil_log(2, blocks.r())?;
    check_peft_butterfly(blocks, m)?;
    Ok(m)
}
