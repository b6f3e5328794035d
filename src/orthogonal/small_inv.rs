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
//! **Determinism.** The kernels are plain loops (no fused multiply-add, no reassociation); on
//! x86-64 they are compiled a second time with AVX2 / AVX-512 enabled and chosen at run time, which
//! changes only the speed, never a bit of the result. Every block is independent, so results do not
//! depend on the number of threads.

use crate::real::Real;

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
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { gj_avx512(a, b) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { gj_avx2(a, b) };
        }
    }
    gj(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn gj_avx512<T: Real>(a: &mut [T], b: usize) {
    gj(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn gj_avx2<T: Real>(a: &mut [T], b: usize) {
    gj(a, b)
}

/// The Gauss–Jordan loops of [`invert_unpivoted_in_place`]; every inner loop runs over a
/// contiguous row (`x −= f·y`), which the compiler vectorises.
#[inline(always)]
fn gj<T: Real>(a: &mut [T], b: usize) {
    for p in 0..b {
        let (top, rest) = a.split_at_mut(p * b);
        let (prow, bottom) = rest.split_at_mut(b);
        let d = T::one() / prow[p];
        for x in prow.iter_mut() {
            *x = *x * d;
        }
        // Written after the vector loop: a narrow store followed by a wide load of the same row
        // stalls store forwarding.
        prow[p] = d;
        let prow: &[T] = prow;
        for row in top.chunks_exact_mut(b).chain(bottom.chunks_exact_mut(b)) {
            let f = row[p];
            if f != T::zero() {
                axpy(row, prow, -f);
                row[p] = -f * d;
            }
        }
    }
}

/// `x += f·y` elementwise (`x.len() == y.len()`), in fixed-width chunks so that the compiler
/// emits full-width vector code even for short rows (its default unrolling needs 64+ elements).
/// `x − f·y` is computed as `x + (−f)·y`, which is the same number in IEEE arithmetic.
#[inline(always)]
fn axpy<T: Real>(x: &mut [T], y: &[T], f: T) {
    const W: usize = 16;
    let mut xc = x.chunks_exact_mut(W);
    let mut yc = y.chunks_exact(W);
    for (xs, ys) in (&mut xc).zip(&mut yc) {
        // All loads before all stores: lets the compiler use whole vector registers.
        let mut t = [T::zero(); W];
        for i in 0..W {
            t[i] = xs[i] + f * ys[i];
        }
        xs.copy_from_slice(&t);
    }
    for (x, &y) in xc.into_remainder().iter_mut().zip(yc.remainder()) {
        *x = *x + f * y;
    }
}

/// Row-major products for one block: `c = a · b` with `a` `(m, l)`, `b` `(l, n)` and `c` `(m, n)`
/// (all row-major, `c` overwritten), or `c = aᵀ · b` with `a` `(l, m)` when `transpose_a`.
///
/// Axpy form `c_i,: = Σ_r a_ir · b_r,:` over contiguous rows of `b`, with the same run-time
/// dispatch as [`invert_unpivoted_in_place`]; sums are accumulated in increasing `r`.
///
/// # Panics
/// If a slice length does not match the sizes.
pub fn matmul_rm<T: Real>(
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
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { mm_avx512(c, a, b, (m, l, n), transpose_a) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { mm_avx2(c, a, b, (m, l, n), transpose_a) };
        }
    }
    mm(c, a, b, (m, l, n), transpose_a)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn mm_avx512<T: Real>(c: &mut [T], a: &[T], b: &[T], s: (usize, usize, usize), ta: bool) {
    mm(c, a, b, s, ta)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn mm_avx2<T: Real>(c: &mut [T], a: &[T], b: &[T], s: (usize, usize, usize), ta: bool) {
    mm(c, a, b, s, ta)
}

/// The loops of [`matmul_rm`]: `R = 4` rows by `W = 16` columns of `c` at a time, accumulated
/// in registers over `r = 0, 1, …, l−1` (each entry is `((0 + a_i0 b_0j) + a_i1 b_1j) + …`),
/// then leftover rows one at a time and leftover columns by scalar loops in the same order.
#[inline(always)]
fn mm<T: Real>(c: &mut [T], a: &[T], b: &[T], (m, l, n): (usize, usize, usize), ta: bool) {
    let mut j0 = 0;
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
                s = s + a_at(a, (m, l), ta, i, r) * b[r * n + j];
            }
            c[i * n + j] = s;
        }
    }
}

/// Column width of a register tile of [`mm`].
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
                acc_i[w] = acc_i[w] + f * brow[w];
            }
        }
    }
    for (ii, acc_i) in acc.iter().enumerate() {
        let start = (i0 + ii) * n + j0;
        c[start..start + W].copy_from_slice(acc_i);
    }
}
