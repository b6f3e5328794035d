//! Proposition 1 (block low-rank structure of GS(I, P, I)) and Algorithm 1 (projection of a
//! dense matrix onto a GS class by per-block truncated SVD), paper §3.
//!
//! A GS(P_L, P, P_R) matrix `A = P_L (L P R) P_R` (Definition 3.1) is the 2-factor
//! [`ChainLayout`] with factors `[R, L]` and permutations `[P_R, P, P_L]` (build it with
//! [`ChainLayout::gs`]). `R` has `k_R` blocks of `b_R¹ × b_R²`, `L` has `k_L` blocks of `b_L¹ × b_L²`,
//! and `s = k_R·b_R¹ = k_L·b_L²`.
//!
//! **Proposition 1 in our gather convention.** `P` stores the gather map π, `(P x)[i] = x[π(i)]`,
//! so `P[i, π(i)] = 1`; the paper's σ (nonzero of P at `(σ(j), j)`) is `σ = π⁻¹`. Slot `i` of the
//! intermediate vector (`0 ≤ i < s`) links column `i mod b_L²` of `L_{⌊i/b_L²⌋}` (the paper's
//! `u_i`) with row `π(i) mod b_R¹` of `R_{⌊π(i)/b_R¹⌋}` (the paper's `v_{π(i)}ᵀ`), and
//!
//! ```text
//! M = P_Lᵀ A P_Rᵀ = L P R,   M_{k1,k2} = Σ_{i : ⌊i/b_L²⌋ = k1, ⌊π(i)/b_R¹⌋ = k2}  u_i v_{π(i)}ᵀ
//! ```
//!
//! (the block-*size* reading of the paper's formula, digest §3.1 typo caution). Block
//! `M_{k1,k2}` (of size `b_L¹ × b_R²`) therefore has rank at most the number of such slots,
//! [`block_rank_profile`]; each slot is used by exactly one block, so the blocks are
//! independent and the Frobenius projection decouples into per-block Eckart–Young problems
//! ([`Gs::project`](crate::structured::Gs::project), Algorithm 1 with `U[:, :r]`).
//!
//! **Monarch** (Dao et al., 2022) with square blocks is the special case `k_L·k_R = n`,
//! `b_L = k_R`, `b_R = k_L`, where every block has exactly one slot (rank 1):
//!
//! ```
//! use gslab::{Blocks, Tensor};
//! use gslab::structured::{ChainLayout, Gs, LinearOp, project::block_rank_profile};
//! // n = 16: L has 4 blocks of 4x4, R has 4 blocks of 4x4 (k_L·k_R = n).
//! let layout = ChainLayout::monarch_square(Blocks::count(16, 4)?)?;
//! assert!(block_rank_profile(&layout)?.iter().flatten().all(|&c| c == 1));
//! let a = Tensor::<f64>::from_fn(&[16, 16], |i| ((i * 7919) % 13) as f64 - 6.0);
//! let p = Gs::project(&a, &layout)?; // the nearest Monarch matrix: rank-1 blocks
//! assert_eq!(p.gs.to_dense().shape(), &[16, 16]);
//! assert_eq!(p.ranks, vec![vec![1; 4]; 4]);
//! # Ok::<(), gslab::Error>(())
//! ```

use crate::blocks::BlockShape;
use crate::error::{Error, Result};
use crate::kernels::layout::ChainLayout;
use crate::perm::Perm;
use crate::real::Real;
use crate::tensor::Tensor;
use faer::Mat;

/// The block shapes `(R, L)` of a 2-factor GS layout.
fn gs_shapes(layout: &ChainLayout) -> Result<(BlockShape, BlockShape)> {
    if layout.m() != 2 {
        return Err(Error::BlockMismatch(format!(
            "a GS(P_L, P, P_R) layout has 2 factors [R, L], got {}",
            layout.m()
        )));
    }
    Ok((layout.factors()[0], layout.factors()[1]))
}

/// Proposition 1's slots: `slots[k1][k2]` lists, increasing, the intermediate indices `i` with
/// `⌊i/b_L²⌋ = k1` and `⌊π(i)/b_R¹⌋ = k2` (π the gather map of the middle permutation `P`).
/// Slot `i` pairs column `i mod b_L²` of `L_{k1}` with row `π(i) mod b_R¹` of `R_{k2}`.
///
/// # Errors
/// If the layout does not have exactly 2 factors.
pub fn prop1_slots(layout: &ChainLayout) -> Result<Vec<Vec<Vec<usize>>>> {
    let (rs, ls) = gs_shapes(layout)?;
    let mut slots = vec![vec![Vec::new(); rs.k]; ls.k];
    for (i, &src) in layout.perms()[1].as_slice().iter().enumerate() {
        slots[i / ls.b2][src / rs.b1].push(i);
    }
    Ok(slots)
}

/// Proposition 1's block-rank bound: the `k_L × k_R` matrix of counts
/// `#{i : ⌊i/b_L²⌋ = k1, ⌊π(i)/b_R¹⌋ = k2}` (equivalently, in the paper's scatter notation
/// σ = π⁻¹, `#{j in R-block k2 : σ(j) in L-block k1}`). `rank(M_{k1,k2}) ≤ min(count, b_L¹,
/// b_R²)`, with equality for generic blocks; `M = P_Lᵀ A P_Rᵀ`.
///
/// # Errors
/// If the layout does not have exactly 2 factors.
pub fn block_rank_profile(layout: &ChainLayout) -> Result<Vec<Vec<usize>>> {
    Ok(prop1_slots(layout)?
        .iter()
        .map(|row| row.iter().map(Vec::len).collect())
        .collect())
}

/// `M = P_Lᵀ A P_Rᵀ` for gather maps π_L, π_R: `M[u, c] = A[π_L⁻¹(u), π_R(c)]`.
///
/// # Panics
/// If `a` is not `(|P_L|, |P_R|)`.
pub fn strip_outer<T: Real>(a: &Tensor<T>, p_l: &Perm, p_r: &Perm) -> Tensor<T> {
    let (n_out, n_in) = (p_l.len(), p_r.len());
    assert!(
        a.shape() == [n_out, n_in],
        "strip_outer: matrix of shape {:?} for permutations of sizes {n_out} and {n_in}",
        a.shape()
    );
    let l_inv = p_l.inverse();
    let pr = p_r.as_slice();
    Tensor::from_fn(&[n_out, n_in], |idx| {
        let (u, c) = (idx / n_in, idx % n_in);
        a.at2(l_inv.get(u), pr[c])
    })
}

/// Algorithm 1: the Frobenius-nearest member of GS(P_L, P, P_R) to a dense `a`
/// (`π(A) ∈ argmin_B ‖A − B‖_F`). For every block `(k1, k2)` of `M = P_Lᵀ A P_Rᵀ` with slots
/// `S` ([`prop1_slots`]): take the thin SVD `M_{k1,k2} = U Σ Vᵀ`, keep `r = min(|S|, b_L¹, b_R²)`
/// triplets, and put column `t` of `U[:, :r] Σ_r^{1/2}` into column `S[t] mod b_L²` of `L_{k1}`
/// and row `t` of `Σ_r^{1/2} V[:, :r]ᵀ` into row `π(S[t]) mod b_R¹` of `R_{k2}`; unused slots
/// stay zero. Rectangular blocks are allowed.
///
/// Returns the block tensors `(L, R)`; [`Gs::project`](crate::structured::Gs::project) wraps
/// them into a typed result.
///
/// # Errors
/// [`Error::BlockMismatch`] if the layout is not a 2-factor chain, [`Error::InvalidArgument`]
/// if `a` is not `(n_out, n_in)` of the layout, [`Error::Numerical`] if an SVD fails.
pub(crate) fn project_blocks<T: Real>(
    a: &Tensor<T>,
    layout: &ChainLayout,
) -> Result<(Tensor<T>, Tensor<T>)> {
    let (rs, ls) = gs_shapes(layout)?;
    let want = [layout.n_out(), layout.n_in()];
    if a.shape() != want {
        return Err(Error::InvalidArgument(format!(
            "project_gs: the layout needs a {want:?} matrix, got shape {:?}",
            a.shape()
        )));
    }
    let m = strip_outer(a, &layout.perms()[2], &layout.perms()[0]);
    let pi = layout.perms()[1].as_slice();
    let mut r_blocks = Tensor::<T>::zeros(&rs.tensor_shape());
    let mut l_blocks = Tensor::<T>::zeros(&ls.tensor_shape());
    for (k1, row) in prop1_slots(layout)?.iter().enumerate() {
        for (k2, slots) in row.iter().enumerate() {
            if slots.is_empty() {
                continue;
            }
            let blk = Mat::<T>::from_fn(ls.b1, rs.b2, |u, c| m.at2(k1 * ls.b1 + u, k2 * rs.b2 + c));
            let svd = blk.thin_svd().map_err(|e| {
                Error::Numerical(format!("SVD of block ({k1}, {k2}) failed: {e:?}"))
            })?;
            let (u, v, sv) = (svd.U(), svd.V(), svd.S().column_vector());
            for (t, &i) in slots.iter().enumerate().take(sv.nrows()) {
                let s = num_traits::Float::sqrt(sv[t]);
                let (col, rrow) = (i % ls.b2, pi[i] % rs.b1);
                let ld = l_blocks.data_mut();
                for x in 0..ls.b1 {
                    ld[(k1 * ls.b1 + x) * ls.b2 + col] = u[(x, t)] * s;
                }
                let rd = r_blocks.data_mut();
                for c in 0..rs.b2 {
                    rd[(k2 * rs.b1 + rrow) * rs.b2 + c] = s * v[(c, t)];
                }
            }
        }
    }
    Ok((l_blocks, r_blocks))
}
