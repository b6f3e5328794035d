//! Gauss–Jordan inversion without pivoting of many small blocks at once, one block per SIMD
//! lane.
//!
//! [`invert_unpivoted_in_place`] inverts one `b × b` block with vector loops over its rows; for
//! `b = 32` each row step is two vector multiply-adds wrapped in scalar work (the row's
//! multiplier, a zero test, a branch), far below the machine's multiply-add rate. Here the
//! blocks are **interleaved** in groups of one 512-bit register (16 blocks in `f32`, 8 in
//! `f64`): element `(i, j)` of the group's blocks is one vector, and every scalar operation of
//! the algorithm becomes one vector operation over the group, with the per-block "skip a row
//! whose multiplier is zero" test as a lane mask. Pivots are taken two at a time as in
//! `small_inv` (one pass over the other rows per pair).
//!
//! The arithmetic per block is exactly that of [`invert_unpivoted_in_place`] (the same pivot
//! order, the same fused multiply-adds, divisions and products, and the same rows left
//! untouched), so the results are **bitwise the same** (tested), and the exactness argument of
//! `small_inv` (every pivot of `I − K` is `≥ 1`) carries over unchanged. A last partial group is
//! padded with identity blocks. Without AVX-512F (checked at run time) or for fewer than half a
//! group of blocks, the blocks are inverted one by one.

use crate::orthogonal::small_inv::invert_unpivoted_in_place;
use crate::real::Real;
use std::any::TypeId;

/// Inverts every row-major `b × b` block of `a` (length `k·b²`) in place, with bitwise the
/// result of [`invert_unpivoted_in_place`] on each block; `scratch` is reused across calls (it
/// holds one interleaved group, `b²` vectors).
///
/// Only for matrices that are safe without pivoting, such as `I − K` with `K` skew-symmetric.
///
/// # Panics
/// If `a.len()` is not a multiple of `b²`.
pub fn invert_unpivoted_blocks<T: Real>(a: &mut [T], b: usize, scratch: &mut Vec<T>) {
    let bb = b * b;
    if bb == 0 {
        return;
    }
    assert!(
        a.len().is_multiple_of(bb),
        "invert_unpivoted_blocks: length {} is not a multiple of {b}×{b}",
        a.len()
    );
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        let lanes = 64 / std::mem::size_of::<T>();
        if a.len() / bb >= lanes / 2 {
            // SAFETY: AVX-512F is available (checked above); `as_same` only reinterprets a slice
            // of `T` as the same type (`TypeId` equality).
            unsafe {
                if let (Some(a), Some(s)) = (as_same::<T, f32>(a), as_same_vec::<T, f32>(scratch)) {
                    return avx512::invert(a, b, s);
                }
                if let (Some(a), Some(s)) = (as_same::<T, f64>(a), as_same_vec::<T, f64>(scratch)) {
                    return avx512::invert(a, b, s);
                }
            }
        }
    }
    for blk in a.chunks_exact_mut(bb) {
        invert_unpivoted_in_place(blk, b);
    }
}

/// `a` as a slice of `U` if `T` is `U`.
fn as_same<T: 'static, U: 'static>(a: &mut [T]) -> Option<&mut [U]> {
    // SAFETY: `T` and `U` are the same type, so the slice is a valid `[U]`.
    (TypeId::of::<T>() == TypeId::of::<U>()).then(|| unsafe { &mut *(a as *mut [T] as *mut [U]) })
}

/// `v` as a `Vec<U>` if `T` is `U`.
fn as_same_vec<T: 'static, U: 'static>(v: &mut Vec<T>) -> Option<&mut Vec<U>> {
    // SAFETY: `T` and `U` are the same type, so this is the same `Vec`.
    (TypeId::of::<T>() == TypeId::of::<U>()).then(|| unsafe { &mut *(v as *mut Vec<T>).cast() })
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use crate::kernels::transpose::transpose;
    use crate::real::Real;
    use std::arch::x86_64::*;

    /// A scalar type with its 512-bit vector and the operations the kernel needs; lanes are
    /// selected by a bit mask (`1` = the lane's multiplier is not zero).
    pub(super) trait Zmm: Real {
        type V: Copy;
        /// Lanes per vector.
        const L: usize;
        unsafe fn ld(p: *const Self) -> Self::V;
        unsafe fn st(p: *mut Self, v: Self::V);
        unsafe fn vone() -> Self::V;
        unsafe fn vmul(a: Self::V, b: Self::V) -> Self::V;
        unsafe fn vdiv(a: Self::V, b: Self::V) -> Self::V;
        unsafe fn vneg(a: Self::V) -> Self::V;
        /// Lanes of `a` that are not zero (NaN counts as not zero, as `!=` does).
        unsafe fn nz(a: Self::V) -> u16;
        /// `a·b + c` (one rounding) in the lanes of `k`, `c` elsewhere.
        unsafe fn fma_k(a: Self::V, b: Self::V, c: Self::V, k: u16) -> Self::V;
        /// `a` in the lanes of `k`, `b` elsewhere.
        unsafe fn sel(k: u16, a: Self::V, b: Self::V) -> Self::V;
    }

    impl Zmm for f32 {
        type V = __m512;
        const L: usize = 16;
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn ld(p: *const f32) -> __m512 {
            unsafe { _mm512_loadu_ps(p) }
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn st(p: *mut f32, v: __m512) {
            unsafe { _mm512_storeu_ps(p, v) }
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn vone() -> __m512 {
            _mm512_set1_ps(1.0)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn vmul(a: __m512, b: __m512) -> __m512 {
            _mm512_mul_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn vdiv(a: __m512, b: __m512) -> __m512 {
            _mm512_div_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn vneg(a: __m512) -> __m512 {
            _mm512_castsi512_ps(_mm512_xor_si512(
                _mm512_castps_si512(a),
                _mm512_set1_epi32(i32::MIN),
            ))
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn nz(a: __m512) -> u16 {
            _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(a, _mm512_setzero_ps())
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn fma_k(a: __m512, b: __m512, c: __m512, k: u16) -> __m512 {
            _mm512_mask3_fmadd_ps(a, b, c, k)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn sel(k: u16, a: __m512, b: __m512) -> __m512 {
            _mm512_mask_blend_ps(k, b, a)
        }
    }

    impl Zmm for f64 {
        type V = __m512d;
        const L: usize = 8;
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn ld(p: *const f64) -> __m512d {
            unsafe { _mm512_loadu_pd(p) }
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn st(p: *mut f64, v: __m512d) {
            unsafe { _mm512_storeu_pd(p, v) }
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn vone() -> __m512d {
            _mm512_set1_pd(1.0)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn vmul(a: __m512d, b: __m512d) -> __m512d {
            _mm512_mul_pd(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn vdiv(a: __m512d, b: __m512d) -> __m512d {
            _mm512_div_pd(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn vneg(a: __m512d) -> __m512d {
            _mm512_castsi512_pd(_mm512_xor_si512(
                _mm512_castpd_si512(a),
                _mm512_set1_epi64(i64::MIN),
            ))
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn nz(a: __m512d) -> u16 {
            _mm512_cmp_pd_mask::<_CMP_NEQ_UQ>(a, _mm512_setzero_pd()) as u16
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn fma_k(a: __m512d, b: __m512d, c: __m512d, k: u16) -> __m512d {
            _mm512_mask3_fmadd_pd(a, b, c, k as u8)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn sel(k: u16, a: __m512d, b: __m512d) -> __m512d {
            _mm512_mask_blend_pd(k as u8, b, a)
        }
    }

    /// Inverts the blocks of `a` group by group (see the module docs).
    ///
    /// # Safety
    /// The CPU must support AVX-512F; `a.len()` must be a multiple of `b²`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn invert<Z: Zmm>(a: &mut [Z], b: usize, scratch: &mut Vec<Z>) {
        let bb = b * b;
        scratch.resize(bb * Z::L, Z::from_f64(0.0));
        for group in a.chunks_mut(Z::L * bb) {
            interleave(scratch, group, b);
            // SAFETY: `scratch` holds `b²` vectors of `Z::L` scalars; AVX-512F is available.
            unsafe { group_gj::<Z>(scratch.as_mut_ptr(), b) };
            deinterleave(group, scratch, bb);
        }
    }

    /// `g[e·L + l]` = element `e` of block `l` of `group` (a tiled SIMD transposition),
    /// identity blocks in missing lanes.
    fn interleave<Z: Zmm>(g: &mut [Z], group: &[Z], b: usize) {
        let bb = b * b;
        let blocks = group.len() / bb;
        transpose(g, Z::L, group, bb, bb, blocks);
        if blocks < Z::L {
            for (e, lane) in g.chunks_exact_mut(Z::L).enumerate() {
                let id = Z::from_f64(if e % (b + 1) == 0 { 1.0 } else { 0.0 });
                lane[blocks..].fill(id);
            }
        }
    }

    /// Writes the lanes of `g` back into the blocks of `group` (the inverse transposition).
    fn deinterleave<Z: Zmm>(group: &mut [Z], g: &[Z], bb: usize) {
        let blocks = group.len() / bb;
        transpose(group, bb, g, Z::L, blocks, bb);
    }

    /// Gauss–Jordan on an interleaved group at `g` (`b²` vectors, element `(i, j)` at
    /// `g + (i·b + j)·L`): pivots two at a time, then a last single pivot if `b` is odd
    /// (`small_inv::gj`).
    #[target_feature(enable = "avx512f")]
    unsafe fn group_gj<Z: Zmm>(g: *mut Z, b: usize) {
        // SAFETY (all calls): rows `0..b` of `b` vectors each lie inside the group.
        let row = |i: usize| unsafe { g.add(i * b * Z::L) };
        let mut p = 0;
        while p + 2 <= b {
            unsafe { pair_step::<Z>(row(p), row(p + 1), &row, b, p) };
            p += 2;
        }
        if p < b {
            let d = unsafe { pivot_row::<Z>(row(p), b, p) };
            for i in (0..b).filter(|&i| i != p) {
                unsafe { eliminate::<Z>(row(i), row(p), b, p, d) };
            }
        }
    }

    /// Element `j` of the row at `r`.
    #[inline(always)]
    unsafe fn at<Z: Zmm>(r: *mut Z, j: usize) -> *mut Z {
        unsafe { r.add(j * Z::L) }
    }

    /// `d = 1/r[p]`, `r ← d·r`, `r[p] ← d`; returns `d` (`small_inv::pivot_row`).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn pivot_row<Z: Zmm>(r: *mut Z, b: usize, p: usize) -> Z::V {
        unsafe {
            let d = Z::vdiv(Z::vone(), Z::ld(at(r, p)));
            for j in 0..b {
                Z::st(at(r, j), Z::vmul(Z::ld(at(r, j)), d));
            }
            Z::st(at(r, p), d);
            d
        }
    }

    /// `x ← fma(−f, prow, x)`, `x[p] ← −f·d` in the lanes where `f = x[p] ≠ 0`
    /// (`small_inv::eliminate`).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn eliminate<Z: Zmm>(x: *mut Z, prow: *mut Z, b: usize, p: usize, d: Z::V) {
        unsafe {
            let f = Z::ld(at(x, p));
            let nf = Z::vneg(f);
            let k = Z::nz(nf);
            if k == 0 {
                return;
            }
            for j in 0..b {
                let v = Z::fma_k(nf, Z::ld(at(prow, j)), Z::ld(at(x, j)), k);
                Z::st(at(x, j), v);
            }
            Z::st(at(x, p), Z::sel(k, Z::vmul(nf, d), f));
        }
    }

    /// The steps at pivots `p` and `q = p + 1` with one pass over every other row
    /// (`small_inv::gj_pair`, lane by lane; see there for the formulas).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn pair_step<Z: Zmm>(
        prow: *mut Z,
        qrow: *mut Z,
        row: &dyn Fn(usize) -> *mut Z,
        b: usize,
        p: usize,
    ) {
        let q = p + 1;
        unsafe {
            let d1 = pivot_row::<Z>(prow, b, p);
            eliminate::<Z>(qrow, prow, b, p, d1);
            let d2 = pivot_row::<Z>(qrow, b, q);
            let (p1q, q2p) = (Z::ld(at(prow, q)), Z::ld(at(qrow, p)));
            for i in (0..b).filter(|&i| i != p && i != q) {
                let x = row(i);
                let (xp, xq) = (Z::ld(at(x, p)), Z::ld(at(x, q)));
                let nf1 = Z::vneg(xp);
                let k1 = Z::nz(nf1);
                let f2 = Z::fma_k(nf1, p1q, xq, k1);
                let nf2 = Z::vneg(f2);
                let k2 = Z::nz(nf2);
                if k1 | k2 == 0 {
                    continue;
                }
                for j in 0..b {
                    let v = Z::fma_k(nf1, Z::ld(at(prow, j)), Z::ld(at(x, j)), k1);
                    Z::st(at(x, j), Z::fma_k(nf2, Z::ld(at(qrow, j)), v, k2));
                }
                let after_p = Z::sel(k1, Z::vmul(nf1, d1), xp);
                Z::st(at(x, p), Z::fma_k(nf2, q2p, after_p, k2));
                Z::st(at(x, q), Z::sel(k2, Z::vmul(nf2, d2), f2));
            }
            eliminate::<Z>(prow, qrow, b, q, d2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;
    use rand::{SeedableRng, rngs::StdRng};

    /// `I − K` for a random skew `K` of scale `s`, row-major.
    fn i_minus_skew(b: usize, s: f64, r: &mut StdRng) -> Vec<f64> {
        let t = Tensor::<f64>::randn(&[b * b], s, r);
        let mut a = vec![0.0; b * b];
        for i in 0..b {
            a[i * b + i] = 1.0;
            for j in i + 1..b {
                let v = t.data()[i * b + j];
                a[i * b + j] = -v;
                a[j * b + i] = v;
            }
        }
        a
    }

    fn bits<T: Real>(v: &[T]) -> Vec<u64> {
        v.iter().map(|&x| Real::to_f64(x).to_bits()).collect()
    }

    /// Runs the batch and the block-by-block inversion on `a` and compares the bits.
    fn same_as_one_by_one<T: Real>(a: &[T], b: usize, what: &str) {
        let mut want = a.to_vec();
        want.chunks_exact_mut(b * b)
            .for_each(|blk| invert_unpivoted_in_place(blk, b));
        let mut got = a.to_vec();
        invert_unpivoted_blocks(&mut got, b, &mut Vec::new());
        assert_eq!(bits(&got), bits(&want), "{what}");
    }

    #[test]
    fn batch_equals_block_by_block_bitwise() {
        let r = &mut StdRng::seed_from_u64(5);
        // full groups, partial groups, odd sizes, one-element blocks, f32 and f64
        for (k, b) in [
            (16, 32),
            (37, 32),
            (20, 5),
            (9, 16),
            (33, 1),
            (17, 3),
            (8, 7),
        ] {
            let mut a: Vec<f64> = (0..k).flat_map(|_| i_minus_skew(b, 0.3, r)).collect();
            // sparse blocks: zero multipliers in some lanes only, and −0.0 entries
            for blk in a.chunks_exact_mut(b * b).step_by(3) {
                for (e, v) in blk.iter_mut().enumerate() {
                    if e % (b + 1) != 0 && e % 2 == 0 {
                        *v = if e % 4 == 0 { -0.0 } else { 0.0 };
                    }
                }
            }
            same_as_one_by_one(&a, b, &format!("f64 k={k} b={b}"));
            let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
            same_as_one_by_one(&a32, b, &format!("f32 k={k} b={b}"));
        }
    }

    #[test]
    fn identity_and_zero_parameter_blocks_stay_exact() {
        let b = 8;
        // I − K with K = 0 written as −0.0 off the diagonal, as `fill_skew` does for θ = 0
        let blk: Vec<f32> = (0..b * b)
            .map(|e| if e % (b + 1) == 0 { 1.0 } else { -0.0 })
            .collect();
        let mut a: Vec<f32> = (0..35).flat_map(|_| blk.clone()).collect();
        let want = a.clone();
        invert_unpivoted_blocks(&mut a, b, &mut Vec::new());
        assert_eq!(bits(&a), bits(&want));
    }

    #[test]
    #[should_panic(expected = "is not a multiple of 3×3")]
    fn wrong_length_panics() {
        invert_unpivoted_blocks(&mut [0.0f64; 10], 3, &mut Vec::new());
    }
}
