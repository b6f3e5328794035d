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
use crate::orthogonal::map::orthogonality_error;
use crate::real::Real;
use crate::structured::project::prop1_slots;
use crate::structured::{Gs, LinearOp};
use crate::tensor::Tensor;
use faer::Mat;

/// Theorem 1, constructive: given an **orthogonal** `A = P_L (L P R) P_R` with square blocks
/// (its factors may be any invertible, non-orthogonal blocks), returns the same matrix on the
/// same layout with every block of `L'` and `R'` orthogonal, `P_L (L' P R') P_R = A` (QR-based
/// skeleton per block, then repacking; see the module docs).
///
/// # Errors
/// [`Error::BlockMismatch`] if the blocks are not square; [`Error::Numerical`] if a recovered
/// block deviates from orthogonality by more than `√ε` (the input product was not orthogonal,
/// so Theorem 1 does not apply).
pub fn orthogonal_representation<T: Real>(a: &Gs<T>) -> Result<Gs<T>> {
    let layout = a.layout();
    let slots = prop1_slots(layout)?;
    let (rs, ls) = (layout.factors()[0], layout.factors()[1]);
    if rs.b1 != rs.b2 || ls.b1 != ls.b2 {
        return Err(Error::BlockMismatch(format!(
            "Theorem 1 needs square blocks, got R blocks {}x{} and L blocks {}x{}",
            rs.b1, rs.b2, ls.b1, ls.b2
        )));
    }
    let (b_r, b_l) = (rs.b1, ls.b1);
    let pi = layout.perms()[1].as_slice();
    let (r_old, l_old) = (a.r().data(), a.l().data());
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
        let err = orthogonality_error(t).to_f64();
        if err > tol || err.is_nan() {
            return Err(Error::Numerical(format!(
                "recovered {name} blocks deviate from orthogonality by {err:.3e} > {tol:.3e}: \
                 the input product is not orthogonal"
            )));
        }
    }
    Gs::from_layout(layout.clone(), l_new, r_new)
}
