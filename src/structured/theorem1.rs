//! Theorem 1 made constructive (paper §4): every orthogonal `A ∈ GS(P_L, P, P_R)` with square
//! blocks has a representation `A = P_L (L P R) P_R` in which every block of `L` and `R` is
//! orthogonal.
//!
//! The recipe follows the proof (digest §3.3). `P_L` and `P_R` are orthogonal, so it is enough to
//! treat `M = L P R = P_Lᵀ A P_Rᵀ`; the same permutations are kept. By Proposition 1
//! ([`crate::structured::project`]), block `M_{k1,k2} = L_S R_S` where `L_S` (`b × |S|`) holds the
//! columns of `L_{k1}` at the slots `S` and `R_S` (`|S| × b`) the matching rows of `R_{k2}`.
//! 1. Thin QR, `L_S = Q T` with `QᵀQ = I`; then `M_{k1,k2} = U Vᵀ` with `U = Q`, `Vᵀ = T R_S`.
//! 2. Orthogonality of block-column `k2` of `M` gives `Σ_{k1} V Vᵀ = I`, so the `b` rows `Vᵀ`
//!    of all blocks in the column, put back at the rows of `R_{k2}` the slots dictate, form an
//!    orthogonal matrix: the new `R_{k2}`.
//! 3. The same on block-rows (with `VᵀV = I` from step 2) makes the new `L_{k1}`, whose columns
//!    are the `U` columns at the slots, orthogonal.
//!
//! The result reproduces `M` exactly (up to rounding), hence `A`.

use crate::error::{Error, Result};
use crate::kernels::layout::ChainLayout;
use crate::real::Real;
use crate::structured::project::prop1_slots;
use crate::tensor::Tensor;
use faer::Mat;

/// Largest deviation from orthogonality over the square blocks of a `(k, b, b)` tensor:
/// `max_j ‖B_jᵀ B_j − I‖_max`.
///
/// # Panics
/// If the tensor is not 3-D with square blocks.
pub fn block_orthogonality_error<T: Real>(blocks: &Tensor<T>) -> f64 {
    let [k, b, b2] = blocks.shape()[..] else {
        panic!(
            "block_orthogonality_error: expected a (k, b, b) tensor, got {:?}",
            blocks.shape()
        )
    };
    assert!(
        b == b2,
        "block_orthogonality_error: blocks of {b}x{b2} are not square"
    );
    let d = blocks.data();
    let mut worst = 0.0f64;
    for j in 0..k {
        let blk = &d[j * b * b..(j + 1) * b * b];
        for p in 0..b {
            for q in 0..b {
                let dot: f64 = (0..b)
                    .map(|x| blk[x * b + p].to_f64() * blk[x * b + q].to_f64())
                    .sum();
                let target = if p == q { 1.0 } else { 0.0 };
                worst = worst.max((dot - target).abs());
            }
        }
    }
    worst
}

/// Theorem 1, constructive: given the blocks `[R, L]` of an **orthogonal** `A` on a 2-factor
/// GS(P_L, P, P_R) layout with square blocks (factors may be any invertible, non-orthogonal
/// blocks), returns new blocks `[R', L']` on the same layout with every block orthogonal and
/// `P_L (L' P R') P_R = A` (QR-based skeleton per block, then repacking; see the module docs).
///
/// # Errors
/// [`Error::BlockMismatch`] if the layout is not 2 factors of square blocks or the blocks do
/// not match it; [`Error::Numerical`] if a recovered block deviates from orthogonality by more
/// than `√ε` (the input product was not orthogonal, so Theorem 1 does not apply).
pub fn orthogonal_representation<T: Real>(
    layout: &ChainLayout,
    blocks: &[Tensor<T>],
) -> Result<Vec<Tensor<T>>> {
    let slots = prop1_slots(layout)?;
    layout.check_blocks(blocks)?;
    let (rs, ls) = (layout.factors()[0], layout.factors()[1]);
    if rs.b1 != rs.b2 || ls.b1 != ls.b2 {
        return Err(Error::BlockMismatch(format!(
            "Theorem 1 needs square blocks, got R blocks {}x{} and L blocks {}x{}",
            rs.b1, rs.b2, ls.b1, ls.b2
        )));
    }
    let (b_r, b_l) = (rs.b1, ls.b1);
    let pi = layout.perms()[1].as_slice();
    let (r_old, l_old) = (blocks[0].data(), blocks[1].data());
    let mut r_new = Tensor::<T>::zeros(&rs.tensor_shape());
    let mut l_new = Tensor::<T>::zeros(&ls.tensor_shape());
    for (k1, row) in slots.iter().enumerate() {
        for (k2, s) in row.iter().enumerate() {
            if s.is_empty() {
                continue;
            }
            let q = s.len();
            let l_s = Mat::<T>::from_fn(b_l, q, |x, t| l_old[(k1 * b_l + x) * b_l + s[t] % b_l]);
            let r_s =
                Mat::<T>::from_fn(q, b_r, |t, c| r_old[(k2 * b_r + pi[s[t]] % b_r) * b_r + c]);
            let qr = l_s.qr();
            let u = qr.compute_thin_Q();
            let vt = qr.thin_R() * &r_s;
            let ld = l_new.data_mut();
            for (t, &i) in s.iter().enumerate() {
                for x in 0..b_l {
                    ld[(k1 * b_l + x) * b_l + i % b_l] = u[(x, t)];
                }
            }
            let rd = r_new.data_mut();
            for (t, &i) in s.iter().enumerate() {
                for c in 0..b_r {
                    rd[(k2 * b_r + pi[i] % b_r) * b_r + c] = vt[(t, c)];
                }
            }
        }
    }
    let tol = T::EPS.to_f64().sqrt();
    for (name, t) in [("R", &r_new), ("L", &l_new)] {
        let err = block_orthogonality_error(t);
        if err > tol || err.is_nan() {
            return Err(Error::Numerical(format!(
                "recovered {name} blocks deviate from orthogonality by {err:.3e} > {tol:.3e}: \
                 the input product is not orthogonal"
            )));
        }
    }
    Ok(vec![r_new, l_new])
}
