//! Small dense kernels for the Cayley map: in-place Gauss–Jordan inversion without pivoting and
//! row-major matrix products, for `b × b` blocks stored contiguously in row-major order.
//!
//! **Why no pivoting is safe for `M = I − K`.** With `K` skew-symmetric, `xᵀ M x = |x|²`: the
//! symmetric part of `M` is `I`. Write a matrix with positive definite symmetric part as
//! `M = S − K` (`S` symmetric, `S ⪰ I`, `K` skew, `K_ii = 0`) and eliminate its first row:
//! the pivot is `m_11 = s_11 ≥ 1`, and the Schur complement is
//!
//! ```text
//! M' = S₂₂ − K₂₂ − (s + kᵀ)(sᵀ − k)/s_11,   sym(M') = (S₂₂ − s sᵀ/s_11) + kᵀk/s_11 ⪰ I,
//! ```
//!
//! because the Schur complement of `S ⪰ I` is `⪰ I` (Schur complements are monotone) and `kᵀk ⪰ 0`.
//! By induction every pivot of Gaussian elimination without pivoting is `≥ 1`: no division by a
//! small number ever happens, and the growth of `|L||U|` is bounded in terms of `‖S‖` and
//! `‖KᵀS⁻¹K‖` (Golub & Van Loan, "Unsymmetric positive definite linear systems", Linear Algebra
//! Appl. 28, 1979). The tests compare the result with faer's partial-pivot LU.
//!
//! **Determinism.** The kernels are plain loops in a fixed order; every multiply-add is an IEEE
//! fused multiply-add (`mul_add`, one rounding), so the result is the same whether it runs as a
//! hardware FMA (x86-64 copies compiled with AVX2 + FMA or AVX-512F + FMA, chosen at run time) or
//! in software. Every block is independent, so results do not depend on the number of threads.
//! The x86-64 level is [`Isa::current`]; every level this CPU has is tested against the others
//! bit for bit.

use crate::kernels::cpu::Isa;
use crate::real::{Real, RealSlice, RealSliceMut};

/// Replaces the row-major `b × b` matrix `a` by its inverse, by Gauss–Jordan elimination without
/// pivoting: for every pivot `p`, `d = 1/a_pp`, row `p` is scaled by `d` (with `a_pp ← d`), and
/// every other row `i` gets `row_i −= a_ip · row_p` (with `a_ip ← −a_ip·d`). Rows with `a_ip = 0`
/// are left untouched, so the identity is inverted exactly (no arithmetic at all).
///
/// Costs `b³` multiply-adds and no allocation. Only for matrices whose pivots are safe without
/// pivoting, such as `I − K` with `K` skew-symmetric (symmetric part positive definite; module
/// docs); a zero pivot gives infinities/NaN, never a panic.
///
/// # Panics
/// If `a.len() != b·b`.
pub fn invert_unpivoted_in_place<T: Real>(a: &mut [T], b: usize) {
    assert_eq!(
        a.len(),
        b * b,
        "invert_unpivoted_in_place: slice of length {} is not {b}×{b}",
        a.len()
    );
    // SAFETY: `Isa::current` never names a level the CPU lacks.
    unsafe { invert_unpivoted_with(Isa::current(), a, b) }
}

/// [`invert_unpivoted_in_place`] compiled for the instruction set `isa` (the same bits on every
/// level).
///
/// # Safety
/// The CPU must support `isa` (every level of [`Isa::available`] does).
pub(crate) unsafe fn invert_unpivoted_with<T: Real>(isa: Isa, a: &mut [T], b: usize) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller guarantees AVX-512F and FMA.
        Isa::Avx512 => unsafe { gj_avx512(a, b) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller guarantees AVX2 and FMA.
        Isa::Avx2 => unsafe { gj_avx2(a, b) },
        _ => gj(a, b),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn gj_avx512<T: Real>(a: &mut [T], b: usize) {
    gj(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn gj_avx2<T: Real>(a: &mut [T], b: usize) {
    gj(a, b)
}

/// `a·b + c` with one rounding (IEEE fused multiply-add): the same bits whether the CPU has an
/// FMA instruction or not (then the C library computes it), so every dispatch path agrees.
#[inline(always)]
fn fma<T: Real>(a: T, b: T, c: T) -> T {
    num_traits::Float::mul_add(a, b, c)
}

/// The Gauss–Jordan loops of [`invert_unpivoted_in_place`]: pivots are taken two at a time
/// ([`gj_pair`], one pass over every other row per pair), then a last single pivot when `b` is
/// odd. Every inner loop runs over a contiguous row, which the compiler vectorises.
#[inline(always)]
fn gj<T: Real>(a: &mut [T], b: usize) {
    let mut p = 0;
    while p + 2 <= b {
        gj_pair(a, b, p);
        p += 2;
    }
    if p < b {
        gj_single(a, b, p);
    }
}

/// One Gauss–Jordan step at pivot `p`: `d = 1/a_pp`, `row_p ← d·row_p` with `a_pp ← d`, and for
/// every other row with `f = a_ip ≠ 0`: `row_i ← row_i − f·row_p`, `a_ip ← −f·d`.
#[inline(always)]
fn gj_single<T: Real>(a: &mut [T], b: usize, p: usize) {
    let (top, rest) = a.split_at_mut(p * b);
    let (prow, bottom) = rest.split_at_mut(b);
    let d = pivot_row(prow, p);
    for row in top.chunks_exact_mut(b).chain(bottom.chunks_exact_mut(b)) {
        eliminate(row, prow, p, d);
    }
}

/// Scales the pivot row `prow` by `d = 1/prow[p]` and sets `prow[p] = d`; returns `d`.
#[inline(always)]
fn pivot_row<T: Real>(prow: &mut [T], p: usize) -> T {
    let d = T::one() / prow[p];
    for x in prow.iter_mut() {
        *x *= d;
    }
    // Written after the vector loop: a narrow store followed by a wide load of the same row
    // stalls store forwarding.
    prow[p] = d;
    d
}

/// `row ← row − f·prow`, `row[p] ← −f·d` with `f = row[p]`, unless `f = 0`.
#[inline(always)]
fn eliminate<T: Real>(row: &mut [T], prow: &[T], p: usize, d: T) {
    let f = row[p];
    if f != T::zero() {
        axpy(row, prow, -f);
        row[p] = -f * d;
    }
}

/// The two Gauss–Jordan steps at pivots `p` and `q = p + 1`, with exactly the arithmetic of two
/// [`gj_single`] steps but one pass over every other row: with `P₁` the pivot row `p` after step
/// `p` and `Q₂` the pivot row `q` after both steps, a row `x` with `f₁ = x_p` and
/// `f₂ = x_q − f₁·P₁_q` becomes `(x − f₁·P₁) − f₂·Q₂`, then `x_p = −f₁·d₁ − f₂·Q₂_p` and
/// `x_q = −f₂·d₂`. Row `p` itself gets step `q` last (no other row needs it).
#[inline(always)]
fn gj_pair<T: Real>(a: &mut [T], b: usize, p: usize) {
    let q = p + 1;
    let (top, rest) = a.split_at_mut(p * b);
    let (pq, bottom) = rest.split_at_mut(2 * b);
    let (prow, qrow) = pq.split_at_mut(b);
    let d1 = pivot_row(prow, p);
    eliminate(qrow, prow, p, d1);
    let d2 = pivot_row(qrow, q);
    let (p1, q2): (&[T], &[T]) = (prow, qrow);
    for x in top.chunks_exact_mut(b).chain(bottom.chunks_exact_mut(b)) {
        let f1 = x[p];
        let f2 = if f1 != T::zero() {
            fma(-f1, p1[q], x[q])
        } else {
            x[q]
        };
        match (f1 != T::zero(), f2 != T::zero()) {
            (false, false) => {}
            (true, false) => {
                axpy(x, p1, -f1);
                x[p] = -f1 * d1;
            }
            (false, true) => {
                axpy(x, q2, -f2);
                x[q] = -f2 * d2;
            }
            (true, true) => {
                axpy2(x, p1, -f1, q2, -f2);
                x[p] = fma(-f2, q2[p], -f1 * d1);
                x[q] = -f2 * d2;
            }
        }
    }
    eliminate(prow, qrow, q, d2);
}

/// `x ← fma(g, z, fma(f, y, x))` elementwise, in the fixed-width chunks of [`axpy`] (the same
/// numbers as two [`axpy`] passes).
#[inline(always)]
fn axpy2<T: Real>(x: &mut [T], y: &[T], f: T, z: &[T], g: T) {
    let mut xc = x.chunks_exact_mut(W);
    let mut yc = y.chunks_exact(W);
    let mut zc = z.chunks_exact(W);
    for ((xs, ys), zs) in (&mut xc).zip(&mut yc).zip(&mut zc) {
        let mut t = [T::zero(); W];
        for i in 0..W {
            t[i] = fma(g, zs[i], fma(f, ys[i], xs[i]));
        }
        xs.copy_from_slice(&t);
    }
    let rest = xc.into_remainder().iter_mut().zip(yc.remainder());
    for ((x, &y), &z) in rest.zip(zc.remainder()) {
        *x = fma(g, z, fma(f, y, *x));
    }
}

/// `x ← fma(f, y, x) = f·y + x` elementwise (`x.len() == y.len()`), in fixed-width chunks so
/// that the compiler emits full-width vector code even for short rows (its default unrolling
/// needs 64+ elements).
/// `x − f·y` is computed as `fma(−f, y, x)`, the same number as `x − f·y` rounded once.
#[inline(always)]
fn axpy<T: Real>(x: &mut [T], y: &[T], f: T) {
    let mut xc = x.chunks_exact_mut(W);
    let mut yc = y.chunks_exact(W);
    for (xs, ys) in (&mut xc).zip(&mut yc) {
        // All loads before all stores: lets the compiler use whole vector registers.
        let mut t = [T::zero(); W];
        for i in 0..W {
            t[i] = fma(f, ys[i], xs[i]);
        }
        xs.copy_from_slice(&t);
    }
    for (x, &y) in xc.into_remainder().iter_mut().zip(yc.remainder()) {
        *x = fma(f, y, *x);
    }
}

/// Row-major products for one block: `c = a · b` with `a` `(m, l)`, `b` `(l, n)` and `c` `(m, n)`
/// (all row-major, `c` overwritten), or `c = aᵀ · b` with `a` `(l, m)` when `transpose_a`.
///
/// Axpy form `c_i,: = Σ_r a_ir · b_r,:` over contiguous rows of `b`, with the same run-time
/// dispatch as [`invert_unpivoted_in_place`] (plus explicit 4 × 32 register tiles for `f32`
/// under AVX-512); every entry is one chain of fused multiply-adds in increasing `r`, so all
/// paths give the same bits.
///
/// # Panics
/// If a slice length does not match the sizes.
pub(crate) fn matmul_rm<T: Real>(
    c: &mut [T],
    a: &[T],
    b: &[T],
    (m, l, n): (usize, usize, usize),
    transpose_a: bool,
) {
    assert!(
        c.len() == m * n && a.len() == m * l && b.len() == l * n,
        "matmul_rm: lengths c {}, a {}, b {} do not fit (m, l, n) = ({m}, {l}, {n})",
        c.len(),
        a.len(),
        b.len()
    );
    // SAFETY: `Isa::current` never names a level the CPU lacks.
    unsafe { matmul_rm_with(Isa::current(), c, a, b, (m, l, n), transpose_a) }
}

/// [`matmul_rm`] (lengths already checked) compiled for the instruction set `isa` (the same bits
/// on every level).
///
/// # Safety
/// The CPU must support `isa`, and the lengths must fit `(m, l, n)` as [`matmul_rm`] checks.
pub(crate) unsafe fn matmul_rm_with<T: Real>(
    isa: Isa,
    c: &mut [T],
    a: &[T],
    b: &[T],
    s: (usize, usize, usize),
    ta: bool,
) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller guarantees AVX-512F and FMA and the lengths.
        Isa::Avx512 => unsafe { mm_avx512(c, a, b, s, ta) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller guarantees AVX2 and FMA.
        Isa::Avx2 => unsafe { mm_avx2(c, a, b, s, ta) },
        _ => mm(c, a, b, s, ta),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn mm_avx512<T: Real>(c: &mut [T], a: &[T], b: &[T], s: (usize, usize, usize), ta: bool) {
    let j0 = match (T::view_mut(c), T::view(a), T::view(b)) {
        (RealSliceMut::F32(cf), RealSlice::F32(af), RealSlice::F32(bf)) => {
            // SAFETY: this function runs with AVX-512F (its target feature); the lengths were
            // checked by `matmul_rm`.
            unsafe { wide::mm_f32(cf, af, bf, s, ta) }
        }
        _ => 0,
    };
    mm_from(c, a, b, s, ta, j0)
}

/// f32 under AVX-512: register tiles of 4 rows × 32 columns (8 accumulators of 16 lanes, so the
/// four-cycle latency of a fused multiply-add is hidden twice over), with exactly the
/// arithmetic of [`mm_tile`]: every entry is the same chain of fused multiply-adds in
/// increasing `r`, so the results are bitwise those of the generic loops.
#[cfg(target_arch = "x86_64")]
mod wide {
    use std::arch::x86_64::*;

    /// The 32-column tiles of `c = op(a) · b` from column 0 on; returns the first column left.
    ///
    /// # Safety
    /// AVX-512F must be available; `c`, `a`, `b` must have lengths `m·n`, `m·l`, `l·n`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn mm_f32(
        c: &mut [f32],
        a: &[f32],
        b: &[f32],
        (m, l, n): (usize, usize, usize),
        ta: bool,
    ) -> usize {
        let mut j0 = 0;
        while j0 + 32 <= n {
            let mut i0 = 0;
            while i0 + 4 <= m {
                // SAFETY: rows i0..i0+4 and columns j0..j0+32 are inside the matrices.
                unsafe { tile::<4>(c, a, b, (m, l, n), ta, (i0, j0)) };
                i0 += 4;
            }
            while i0 < m {
                // SAFETY: as above, one row.
                unsafe { tile::<1>(c, a, b, (m, l, n), ta, (i0, j0)) };
                i0 += 1;
            }
            j0 += 32;
        }
        j0
    }

    /// One `R × 32` tile of `c` at `(i0, j0)`.
    ///
    /// # Safety
    /// AVX-512F must be available; the tile must lie inside `c` and the lengths be as in
    /// [`mm_f32`].
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn tile<const R: usize>(
        c: &mut [f32],
        a: &[f32],
        b: &[f32],
        (m, l, n): (usize, usize, usize),
        ta: bool,
        (i0, j0): (usize, usize),
    ) {
        let (ap, bp) = (a.as_ptr(), b.as_ptr());
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        for r in 0..l {
            // SAFETY: r < l and j0 + 32 ≤ n, so both 16-lane loads are inside `b`; every `a`
            // index is below m·l since i0 + ii < m.
            unsafe {
                let b0 = _mm512_loadu_ps(bp.add(r * n + j0));
                let b1 = _mm512_loadu_ps(bp.add(r * n + j0 + 16));
                for (ii, acc_i) in acc.iter_mut().enumerate() {
                    let at = if ta {
                        r * m + i0 + ii
                    } else {
                        (i0 + ii) * l + r
                    };
                    let f = _mm512_set1_ps(*ap.add(at));
                    acc_i[0] = _mm512_fmadd_ps(f, b0, acc_i[0]);
                    acc_i[1] = _mm512_fmadd_ps(f, b1, acc_i[1]);
                }
            }
        }
        for (ii, acc_i) in acc.iter().enumerate() {
            let row = &mut c[(i0 + ii) * n + j0..(i0 + ii) * n + j0 + 32];
            // SAFETY: the row slice holds 32 elements.
            unsafe {
                _mm512_storeu_ps(row.as_mut_ptr(), acc_i[0]);
                _mm512_storeu_ps(row.as_mut_ptr().add(16), acc_i[1]);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn mm_avx2<T: Real>(c: &mut [T], a: &[T], b: &[T], s: (usize, usize, usize), ta: bool) {
    mm(c, a, b, s, ta)
}

/// The loops of [`matmul_rm`]: `R = 4` rows by `W = 16` columns of `c` at a time, accumulated
/// in registers over `r = 0, 1, …, l−1` (each entry is `fma(a_i,l−1, b_l−1,j, … fma(a_i0, b_0j, 0))`),
/// then leftover rows one at a time and leftover columns by scalar loops in the same order.
#[inline(always)]
fn mm<T: Real>(c: &mut [T], a: &[T], b: &[T], s: (usize, usize, usize), ta: bool) {
    mm_from(c, a, b, s, ta, 0)
}

/// [`mm`] for the columns from `j0` on (the columns before are already done).
#[inline(always)]
fn mm_from<T: Real>(
    c: &mut [T],
    a: &[T],
    b: &[T],
    (m, l, n): (usize, usize, usize),
    ta: bool,
    mut j0: usize,
) {
    while j0 + W <= n {
        let mut i0 = 0;
        while i0 + 4 <= m {
            mm_tile::<T, 4>(c, a, b, (m, l, n), ta, i0, j0);
            i0 += 4;
        }
        while i0 < m {
            mm_tile::<T, 1>(c, a, b, (m, l, n), ta, i0, j0);
            i0 += 1;
        }
        j0 += W;
    }
    for i in 0..m {
        for j in j0..n {
            let mut s = T::zero();
            for r in 0..l {
                s = fma(a_at(a, (m, l), ta, i, r), b[r * n + j], s);
            }
            c[i * n + j] = s;
        }
    }
}

/// Chunk width of the vector loops ([`axpy`]) and column width of a register tile of [`mm`].
const W: usize = 16;

/// `A[i, r]` of the row-major `(m, l)` matrix `A` stored as `a` (or as its transpose when `ta`).
#[inline(always)]
fn a_at<T: Real>(a: &[T], (m, l): (usize, usize), ta: bool, i: usize, r: usize) -> T {
    if ta { a[r * m + i] } else { a[i * l + r] }
}

/// One `R × W` tile of `c` at `(i0, j0)` of [`mm`].
#[inline(always)]
fn mm_tile<T: Real, const R: usize>(
    c: &mut [T],
    a: &[T],
    b: &[T],
    (m, l, n): (usize, usize, usize),
    ta: bool,
    i0: usize,
    j0: usize,
) {
    let mut acc = [[T::zero(); W]; R];
    for r in 0..l {
        let brow: &[T; W] = b[r * n + j0..r * n + j0 + W].try_into().unwrap();
        for (ii, acc_i) in acc.iter_mut().enumerate() {
            let f = a_at(a, (m, l), ta, i0 + ii, r);
            for w in 0..W {
                acc_i[w] = fma(f, brow[w], acc_i[w]);
            }
        }
    }
    for (ii, acc_i) in acc.iter().enumerate() {
        let start = (i0 + ii) * n + j0;
        c[start..start + W].copy_from_slice(acc_i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;
    use rand::{SeedableRng, rngs::StdRng};

    fn randn<T: Real>(shape: &[usize], seed: u64) -> Tensor<T> {
        Tensor::<f64>::randn(shape, 1.0, &mut StdRng::seed_from_u64(seed)).cast()
    }

    /// Every level inverts I exactly (no arithmetic on rows with a zero multiplier) and a
    /// hand-worked 2 × 2 matrix: [[1, −t], [t, 1]]⁻¹ = [[1, t], [−t, 1]]/(1 + t²); with t = 1/2
    /// every step is exact in binary: 1/(1 + 1/4) = 4/5.
    #[test]
    fn unpivoted_inverse_identity_and_hand_worked_on_every_level() {
        for isa in Isa::available() {
            for b in [1usize, 2, 5, 17, 32] {
                let mut a = Tensor::<f64>::eye(b).into_vec();
                let want = a.clone();
                // SAFETY: `Isa::available` lists only levels this CPU has.
                unsafe { invert_unpivoted_with(isa, &mut a, b) };
                assert!(a == want, "{isa:?}: I⁻¹ != I bitwise for b={b}");
                assert!(
                    a.iter().all(|x| x.is_sign_positive()),
                    "{isa:?}: −0.0, b={b}"
                );
            }
            let mut a = vec![1.0f64, -0.5, 0.5, 1.0];
            // SAFETY: as above.
            unsafe { invert_unpivoted_with(isa, &mut a, 2) };
            // Row 0 scaled by 1; row 1 −= 0.5·row 0 → [0, 1.25]; then row 1 /= 1.25,
            // row 0 += 0.5·row 1.
            assert_eq!(a, [0.8, 0.4, -0.4, 0.8], "{isa:?}");
        }
    }

    /// The inverse of a random `I − K` is the same bits on every level (fused multiply-adds
    /// everywhere), for sizes around the pair and chunk widths.
    #[test]
    fn unpivoted_inverse_is_the_same_bits_on_every_level() {
        for b in [3usize, 16, 17, 33] {
            let k = randn::<f64>(&[b, b], b as u64);
            let mut a = vec![0.0f64; b * b];
            for i in 0..b {
                a[i * b + i] = 1.0;
                for j in i + 1..b {
                    a[i * b + j] = -k.data()[i * b + j];
                    a[j * b + i] = k.data()[i * b + j];
                }
            }
            let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
            let mut want = a.clone();
            let mut want32 = a32.clone();
            // SAFETY: the portable level runs everywhere.
            unsafe {
                invert_unpivoted_with(Isa::Scalar, &mut want, b);
                invert_unpivoted_with(Isa::Scalar, &mut want32, b);
            }
            for isa in Isa::available() {
                let (mut got, mut got32) = (a.clone(), a32.clone());
                // SAFETY: `Isa::available` lists only levels this CPU has.
                unsafe {
                    invert_unpivoted_with(isa, &mut got, b);
                    invert_unpivoted_with(isa, &mut got32, b);
                }
                assert!(
                    got.iter()
                        .zip(&want)
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{isa:?} f64 b={b}"
                );
                assert!(
                    got32
                        .iter()
                        .zip(&want32)
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{isa:?} f32 b={b}"
                );
            }
        }
    }

    /// Row-major products against the naive triple loop, with sizes that exercise the 4 × 16
    /// register tiles, leftover rows and leftover columns, with and without the transposed left
    /// factor.
    #[test]
    fn matmul_rm_matches_naive() {
        for (m, l, n) in [
            (1usize, 1usize, 1usize),
            (4, 3, 16),
            (7, 5, 33),
            (33, 20, 18),
            (2, 0, 3),
        ] {
            let a = randn::<f64>(&[m, l], 40 + m as u64);
            let bm = randn::<f64>(&[l, n], 50 + n as u64);
            let at = a.transpose();
            for ta in [false, true] {
                let mut c = vec![f64::NAN; m * n];
                let lhs = if ta { at.data() } else { a.data() };
                matmul_rm(&mut c, lhs, bm.data(), (m, l, n), ta);
                for i in 0..m {
                    for j in 0..n {
                        let s: f64 = (0..l)
                            .map(|r| a.data()[i * l + r] * bm.data()[r * n + j])
                            .sum();
                        let err = (c[i * n + j] - s).abs();
                        assert!(err <= 1e-13, "({m},{l},{n}) ta={ta} [{i},{j}]: {err:e}");
                    }
                }
            }
        }
    }

    /// Every entry of a product is one chain of fused multiply-adds in increasing `r` from 0, on
    /// every level this CPU has (the f32 AVX-512 tiles of 4 × 32, the generic 4 × 16 tiles,
    /// leftover rows and columns): bitwise equal to that chain written out here, in f32 and f64.
    #[test]
    fn matmul_rm_is_the_fused_chain_bit_for_bit_on_every_level() {
        fn check<T: Real>(isa: Isa) {
            for (m, l, n) in [
                (4usize, 32usize, 32usize),
                (7, 5, 70),
                (9, 33, 48),
                (3, 2, 31),
            ] {
                let a = randn::<T>(&[m, l], 60 + m as u64);
                let bm = randn::<T>(&[l, n], 70 + n as u64);
                let at = a.transpose();
                for ta in [false, true] {
                    let mut c = vec![T::zero(); m * n];
                    let lhs = if ta { at.data() } else { a.data() };
                    // SAFETY: `Isa::available` lists only levels this CPU has; the lengths fit.
                    unsafe { matmul_rm_with(isa, &mut c, lhs, bm.data(), (m, l, n), ta) };
                    for i in 0..m {
                        for j in 0..n {
                            let mut acc = T::zero();
                            for r in 0..l {
                                let x = a.data()[i * l + r];
                                acc = num_traits::Float::mul_add(x, bm.data()[r * n + j], acc);
                            }
                            assert!(
                                c[i * n + j].to_f64().to_bits() == acc.to_f64().to_bits(),
                                "{isa:?} ({m},{l},{n}) ta={ta} [{i},{j}]: {:?} vs {:?}",
                                c[i * n + j].to_f64(),
                                acc.to_f64()
                            );
                        }
                    }
                }
            }
        }
        for isa in Isa::available() {
            check::<f32>(isa);
            check::<f64>(isa);
        }
    }
}
