//! Gauss–Jordan inversion without pivoting of many small blocks at once, one block per SIMD
//! lane.
//!
//! [`invert_unpivoted_in_place`] inverts one `b × b` block with vector loops over its rows; for
//! `b = 32` each row step is two vector multiply-adds wrapped in scalar work (the row's
//! multiplier, a zero test, a branch), far below the machine's multiply-add rate. Here the
//! blocks are **interleaved** in groups of one vector register (AVX-512: 16 blocks in `f32`, 8
//! in `f64`; AVX2: 8 and 4): element `(i, j)` of the group's blocks is one vector, and every
//! scalar operation of the algorithm becomes one vector operation over the group, with the
//! per-block "skip a row whose multiplier is zero" test as a lane mask. Several pivots share one
//! pass over the other rows (4 with AVX-512, 2 with AVX2, as `small_inv` pairs them), which
//! divides the traffic through the group's `b²` vectors.
//!
//! The arithmetic per block is exactly that of [`invert_unpivoted_in_place`] (the same pivot
//! order, the same fused multiply-adds, divisions and products, and the same rows left
//! untouched), so the results are **bitwise the same** (tested on every path this CPU has), and
//! the exactness argument of `small_inv` (every pivot of `I − K` is `≥ 1`) carries over
//! unchanged. A last partial group is padded with identity blocks. Without AVX-512F or AVX2 +
//! FMA (checked at run time), or for fewer than half a group of blocks, the blocks are inverted
//! one by one.

use crate::kernels::cpu::Isa;
use crate::kernels::small_inv::invert_unpivoted_in_place;
use crate::real::{Real, RealSliceMut, RealVecMut};

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
    let isa = Isa::current();
    let path = if a.len() / bb >= lanes::<T>(isa) / 2 {
        isa
    } else {
        Isa::Scalar
    };
    // SAFETY: `Isa::current` never names a level the CPU lacks; `Scalar` runs anywhere.
    unsafe { invert_with(path, a, b, scratch) }
}

/// Blocks per interleaved group for scalars of type `T` on `isa` (one block per vector lane:
/// 512-bit vectors hold 16 `f32` or 8 `f64`, 256-bit ones 8 or 4); 1 for [`Isa::Scalar`].
fn lanes<T>(isa: Isa) -> usize {
    let bytes = match isa {
        Isa::Avx512 => 64,
        Isa::Avx2 => 32,
        Isa::Scalar => return 1,
    };
    bytes / std::mem::size_of::<T>()
}

/// Runs the interleaved kernel of `isa` on `a` (groups padded with identity blocks), or the
/// one-block kernel block by block for [`Isa::Scalar`].
///
/// # Safety
/// The CPU must support `isa`.
unsafe fn invert_with<T: Real>(isa: Isa, a: &mut [T], b: usize, scratch: &mut Vec<T>) {
    #[cfg(target_arch = "x86_64")]
    {
        use simd::{Y4, Y8, Z8, Z16};
        match (isa, T::view_mut(a), T::view_vec_mut(scratch)) {
            // SAFETY (this arm and the next three): the caller guarantees the instruction set;
            // the length was checked by `invert_unpivoted_blocks`.
            (Isa::Avx512, RealSliceMut::F32(a), RealVecMut::F32(s)) => {
                // SAFETY: as above.
                return unsafe { simd::k512::invert::<Z16>(a, b, s) };
            }
            (Isa::Avx512, RealSliceMut::F64(a), RealVecMut::F64(s)) => {
                // SAFETY: as above.
                return unsafe { simd::k512::invert::<Z8>(a, b, s) };
            }
            (Isa::Avx2, RealSliceMut::F32(a), RealVecMut::F32(s)) => {
                // SAFETY: as above.
                return unsafe { simd::k256::invert::<Y8>(a, b, s) };
            }
            (Isa::Avx2, RealSliceMut::F64(a), RealVecMut::F64(s)) => {
                // SAFETY: as above.
                return unsafe { simd::k256::invert::<Y4>(a, b, s) };
            }
            _ => {}
        }
    }
    let _ = (isa, &scratch);
    for blk in a.chunks_exact_mut(b * b) {
        invert_unpivoted_in_place(blk, b);
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use crate::kernels::transpose::transpose;
    use crate::real::Real;
    use std::arch::x86_64::*;

    /// A vector of `L` lanes of `T` with the operations the kernel needs, and its lane mask `M`
    /// (set = the lane's multiplier is not zero).
    pub(super) trait Lanes {
        type T: Real;
        type V: Copy;
        type M: Copy;
        /// Lanes per vector.
        const L: usize;
        unsafe fn ld(p: *const Self::T) -> Self::V;
        unsafe fn st(p: *mut Self::T, v: Self::V);
        unsafe fn one() -> Self::V;
        unsafe fn mul(a: Self::V, b: Self::V) -> Self::V;
        unsafe fn div(a: Self::V, b: Self::V) -> Self::V;
        unsafe fn neg(a: Self::V) -> Self::V;
        /// Lanes of `a` that are not zero (NaN counts as not zero, as `!=` does).
        unsafe fn nz(a: Self::V) -> Self::M;
        /// Whether no lane is set.
        unsafe fn none(m: Self::M) -> bool;
        unsafe fn or(a: Self::M, b: Self::M) -> Self::M;
        /// `a·b + c` (one rounding) in the lanes of `m`, `c` elsewhere.
        unsafe fn fma_m(a: Self::V, b: Self::V, c: Self::V, m: Self::M) -> Self::V;
        /// `a` in the lanes of `m`, `b` elsewhere.
        unsafe fn sel(m: Self::M, a: Self::V, b: Self::V) -> Self::V;
    }

    /// 16 × f32 in a 512-bit register (AVX-512F), bit masks.
    pub(super) struct Z16;
    /// 8 × f64 in a 512-bit register (AVX-512F), bit masks.
    pub(super) struct Z8;
    /// 8 × f32 in a 256-bit register (AVX2 + FMA), vector masks.
    pub(super) struct Y8;
    /// 4 × f64 in a 256-bit register (AVX2 + FMA), vector masks.
    pub(super) struct Y4;

    /// Implements [`Lanes`] for a marker type from its intrinsics.
    macro_rules! lanes {
        ($ty:ident, $t:ty, $v:ty, $m:ty, $l:expr, $feat:literal, {
            ld: $ld:expr, st: $st:expr, one: $one:expr, mul: $mul:expr, div: $div:expr,
            neg: $neg:expr, nz: $nz:expr, none: $none:expr, or: $or:expr, fma_m: $fma:expr,
            sel: $sel:expr $(,)?
        }) => {
            impl Lanes for $ty {
                type T = $t;
                type V = $v;
                type M = $m;
                const L: usize = $l;
                #[inline]
                #[target_feature(enable = $feat)]
                unsafe fn ld(p: *const $t) -> $v {
                    // SAFETY: the caller guarantees the instruction set and `L` readable lanes.
                    unsafe { $ld(p) }
                }
                #[inline]
                #[target_feature(enable = $feat)]
                unsafe fn st(p: *mut $t, v: $v) {
                    // SAFETY: the caller guarantees the instruction set and `L` writable lanes.
                    unsafe { $st(p, v) }
                }
                #[inline]
                #[target_feature(enable = $feat)]
                unsafe fn one() -> $v {
                    $one
                }
                #[inline]
                #[target_feature(enable = $feat)]
                unsafe fn mul(a: $v, b: $v) -> $v {
                    $mul(a, b)
                }
                #[inline]
                #[target_feature(enable = $feat)]
                unsafe fn div(a: $v, b: $v) -> $v {
                    $div(a, b)
                }
                #[inline]
                #[target_feature(enable = $feat)]
                unsafe fn neg(a: $v) -> $v {
                    $neg(a)
                }
                #[inline]
                #[target_feature(enable = $feat)]
                unsafe fn nz(a: $v) -> $m {
                    $nz(a)
                }
                #[inline]
                #[target_feature(enable = $feat)]
                unsafe fn none(m: $m) -> bool {
                    $none(m)
                }
                #[inline]
                #[target_feature(enable = $feat)]
                unsafe fn or(a: $m, b: $m) -> $m {
                    $or(a, b)
                }
                #[inline]
                #[target_feature(enable = $feat)]
                unsafe fn fma_m(a: $v, b: $v, c: $v, m: $m) -> $v {
                    $fma(a, b, c, m)
                }
                #[inline]
                #[target_feature(enable = $feat)]
                unsafe fn sel(m: $m, a: $v, b: $v) -> $v {
                    $sel(m, a, b)
                }
            }
        };
    }

    lanes!(Z16, f32, __m512, u16, 16, "avx512f", {
        ld: _mm512_loadu_ps,
        st: _mm512_storeu_ps,
        one: _mm512_set1_ps(1.0),
        mul: _mm512_mul_ps,
        div: _mm512_div_ps,
        neg: |a| _mm512_castsi512_ps(_mm512_xor_si512(
            _mm512_castps_si512(a),
            _mm512_set1_epi32(i32::MIN),
        )),
        nz: |a| _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(a, _mm512_setzero_ps()),
        none: |m: u16| m == 0,
        or: |a: u16, b: u16| a | b,
        fma_m: |a, b, c, m| _mm512_mask3_fmadd_ps(a, b, c, m),
        sel: |m, a, b| _mm512_mask_blend_ps(m, b, a),
    });

    lanes!(Z8, f64, __m512d, u8, 8, "avx512f", {
        ld: _mm512_loadu_pd,
        st: _mm512_storeu_pd,
        one: _mm512_set1_pd(1.0),
        mul: _mm512_mul_pd,
        div: _mm512_div_pd,
        neg: |a| _mm512_castsi512_pd(_mm512_xor_si512(
            _mm512_castpd_si512(a),
            _mm512_set1_epi64(i64::MIN),
        )),
        nz: |a| _mm512_cmp_pd_mask::<_CMP_NEQ_UQ>(a, _mm512_setzero_pd()),
        none: |m: u8| m == 0,
        or: |a: u8, b: u8| a | b,
        fma_m: |a, b, c, m| _mm512_mask3_fmadd_pd(a, b, c, m),
        sel: |m, a, b| _mm512_mask_blend_pd(m, b, a),
    });

    lanes!(Y8, f32, __m256, __m256, 8, "avx2,fma", {
        ld: _mm256_loadu_ps,
        st: _mm256_storeu_ps,
        one: _mm256_set1_ps(1.0),
        mul: _mm256_mul_ps,
        div: _mm256_div_ps,
        neg: |a| _mm256_xor_ps(a, _mm256_set1_ps(-0.0)),
        nz: |a| _mm256_cmp_ps::<_CMP_NEQ_UQ>(a, _mm256_setzero_ps()),
        none: |m| _mm256_movemask_ps(m) == 0,
        or: _mm256_or_ps,
        fma_m: |a, b, c, m| _mm256_blendv_ps(c, _mm256_fmadd_ps(a, b, c), m),
        sel: |m, a, b| _mm256_blendv_ps(b, a, m),
    });

    lanes!(Y4, f64, __m256d, __m256d, 4, "avx2,fma", {
        ld: _mm256_loadu_pd,
        st: _mm256_storeu_pd,
        one: _mm256_set1_pd(1.0),
        mul: _mm256_mul_pd,
        div: _mm256_div_pd,
        neg: |a| _mm256_xor_pd(a, _mm256_set1_pd(-0.0)),
        nz: |a| _mm256_cmp_pd::<_CMP_NEQ_UQ>(a, _mm256_setzero_pd()),
        none: |m| _mm256_movemask_pd(m) == 0,
        or: _mm256_or_pd,
        fma_m: |a, b, c, m| _mm256_blendv_pd(c, _mm256_fmadd_pd(a, b, c), m),
        sel: |m, a, b| _mm256_blendv_pd(b, a, m),
    });

    /// `g[e·L + l]` = element `e` of block `l` of `group` (a tiled SIMD transposition),
    /// identity blocks in missing lanes.
    fn interleave<T: Real>(g: &mut [T], group: &[T], b: usize, lanes: usize) {
        let bb = b * b;
        let blocks = group.len() / bb;
        transpose(g, lanes, group, bb, bb, blocks);
        if blocks < lanes {
            for (e, lane) in g.chunks_exact_mut(lanes).enumerate() {
                let id = T::from_f64(if e % (b + 1) == 0 { 1.0 } else { 0.0 });
                lane[blocks..].fill(id);
            }
        }
    }

    /// Writes the lanes of `g` back into the blocks of `group` (the inverse transposition).
    fn deinterleave<T: Real>(group: &mut [T], g: &[T], bb: usize, lanes: usize) {
        let blocks = group.len() / bb;
        transpose(group, bb, g, lanes, blocks, bb);
    }

    /// The Gauss–Jordan kernels for one instruction set: the same code, compiled with the
    /// target features of the lane types it is used with.
    macro_rules! kernels {
        ($name:ident, $feat:literal, $panel:expr) => {
            pub(super) mod $name {
                use super::*;

                /// Inverts the blocks of `a` group by group (see the module docs).
                ///
                /// # Safety
                /// The CPU must support the instruction set; `a.len()` must be a multiple of `b²`.
                #[target_feature(enable = $feat)]
                pub(in super::super) unsafe fn invert<S: Lanes>(
                    a: &mut [S::T],
                    b: usize,
                    scratch: &mut Vec<S::T>,
                ) {
                    let bb = b * b;
                    scratch.resize(bb * S::L, S::T::from_f64(0.0));
                    for group in a.chunks_mut(S::L * bb) {
                        interleave(scratch, group, b, S::L);
                        // SAFETY: `scratch` holds `b²` vectors of `S::L` scalars.
                        unsafe { group_gj::<S>(scratch.as_mut_ptr(), b) };
                        deinterleave(group, scratch, bb, S::L);
                    }
                }

                /// Gauss–Jordan on an interleaved group at `g` (`b²` vectors, element `(i, j)` at
                /// `g + (i·b + j)·L`): pivots two at a time, then a last single pivot if `b` is
                /// odd (`small_inv::gj`).
                #[target_feature(enable = $feat)]
                unsafe fn group_gj<S: Lanes>(g: *mut S::T, b: usize) {
                    // SAFETY: `row` is only called with `i < b`, and rows `0..b` of `b` vectors
                    // of `L` lanes each lie inside the group of `b²` vectors at `g`.
                    let row = |i: usize| unsafe { g.add(i * b * S::L) };
                    let mut p = 0;
                    while p + $panel <= b {
                        // SAFETY: pivots `p..p + panel` are rows of the group; the caller
                        // guarantees the instruction set.
                        unsafe { panel_step::<S, { $panel }>(&row, b, p) };
                        p += $panel;
                    }
                    while p + 2 <= b {
                        // SAFETY: as above, for pivots `p, p + 1`.
                        unsafe { panel_step::<S, 2>(&row, b, p) };
                        p += 2;
                    }
                    if p < b {
                        // SAFETY: row `p < b` of the group.
                        let d = unsafe { pivot_row::<S>(row(p), b, p) };
                        for i in (0..b).filter(|&i| i != p) {
                            // SAFETY: rows `i ≠ p`, both `< b`, are distinct rows of the group.
                            unsafe { eliminate::<S>(row(i), row(p), b, p, d) };
                        }
                    }
                }

                /// Element `j` of the row at `r`.
                #[inline(always)]
                unsafe fn at<S: Lanes>(r: *mut S::T, j: usize) -> *mut S::T {
                    // SAFETY: the caller passes a row of `b` vectors and `j < b`.
                    unsafe { r.add(j * S::L) }
                }

                /// `d = 1/r[p]`, `r ← d·r`, `r[p] ← d`; returns `d` (`small_inv::pivot_row`).
                #[inline]
                #[target_feature(enable = $feat)]
                unsafe fn pivot_row<S: Lanes>(r: *mut S::T, b: usize, p: usize) -> S::V {
                    // SAFETY: `r` is a row of `b` vectors and `p, j < b`; the caller guarantees
                    // the instruction set.
                    unsafe {
                        let d = S::div(S::one(), S::ld(at::<S>(r, p)));
                        for j in 0..b {
                            S::st(at::<S>(r, j), S::mul(S::ld(at::<S>(r, j)), d));
                        }
                        S::st(at::<S>(r, p), d);
                        d
                    }
                }

                /// `x ← fma(−f, prow, x)`, `x[p] ← −f·d` in the lanes where `f = x[p] ≠ 0`
                /// (`small_inv::eliminate`).
                #[inline]
                #[target_feature(enable = $feat)]
                unsafe fn eliminate<S: Lanes>(
                    x: *mut S::T,
                    prow: *mut S::T,
                    b: usize,
                    p: usize,
                    d: S::V,
                ) {
                    // SAFETY: `x` and `prow` are distinct rows of `b` vectors and `p, j < b`; the
                    // caller guarantees the instruction set.
                    unsafe {
                        let f = S::ld(at::<S>(x, p));
                        let nf = S::neg(f);
                        let m = S::nz(nf);
                        if S::none(m) {
                            return;
                        }
                        for j in 0..b {
                            let y = S::ld(at::<S>(prow, j));
                            let v = S::fma_m(nf, y, S::ld(at::<S>(x, j)), m);
                            S::st(at::<S>(x, j), v);
                        }
                        S::st(at::<S>(x, p), S::sel(m, S::mul(nf, d), f));
                    }
                }

                /// The steps at the `P` pivots `p, …, p + P − 1` with one pass over every other
                /// row (`small_inv::gj_pair` for `P = 2`, lane by lane), with exactly the
                /// arithmetic of `P` single steps:
                /// 1. each panel row `r_k` gets steps `p, …, p + k − 1` and its own pivot scaling
                ///    (it is then the pivot row `R_k` of step `p + k`);
                /// 2. every other row `x`: its multipliers `f_k` (column `p + k` after the
                ///    earlier steps, a chain of `k` multiply-adds), then `x ← x − Σ_k f_k·R_k` in
                ///    step order per element, then the pivot columns
                ///    `x_{p+k} = −f_k·d_k − Σ_{m>k} f_m·R_m[p + k]`; a term whose multiplier is
                ///    zero is skipped in that lane;
                /// 3. the earlier panel rows get the later steps, `r_0` first, so every `R_k`
                ///    they read is still the pivot row of its step.
                #[inline]
                #[target_feature(enable = $feat)]
                unsafe fn panel_step<S: Lanes, const P: usize>(
                    row: &dyn Fn(usize) -> *mut S::T,
                    b: usize,
                    p: usize,
                ) {
                    // SAFETY: `row(i)` is a row of the group for every `i < b`, the panel rows
                    // `p..p + P` and the other rows are distinct, and the caller guarantees the
                    // instruction set.
                    unsafe {
                        let r: [*mut S::T; P] = std::array::from_fn(|k| row(p + k));
                        let mut d = [S::one(); P];
                        for k in 0..P {
                            for m in 0..k {
                                eliminate::<S>(r[k], r[m], b, p + m, d[m]);
                            }
                            d[k] = pivot_row::<S>(r[k], b, p + k);
                        }
                        for i in (0..b).filter(|i| !(p..p + P).contains(i)) {
                            let x = row(i);
                            let mut cur: [S::V; P] =
                                std::array::from_fn(|k| S::ld(at::<S>(x, p + k)));
                            let mut nf = cur;
                            let mut m = [S::nz(cur[0]); P];
                            let mut any = S::nz(S::one());
                            for k in 0..P {
                                nf[k] = S::neg(cur[k]);
                                m[k] = S::nz(nf[k]);
                                any = if k == 0 { m[0] } else { S::or(any, m[k]) };
                                for kk in k + 1..P {
                                    let y = S::ld(at::<S>(r[k], p + kk));
                                    cur[kk] = S::fma_m(nf[k], y, cur[kk], m[k]);
                                }
                            }
                            if S::none(any) {
                                continue;
                            }
                            for j in 0..b {
                                let mut v = S::ld(at::<S>(x, j));
                                for k in 0..P {
                                    v = S::fma_m(nf[k], S::ld(at::<S>(r[k], j)), v, m[k]);
                                }
                                S::st(at::<S>(x, j), v);
                            }
                            for k in 0..P {
                                // cur[k] = f_k: column p + k after the earlier steps
                                let mut v = S::sel(m[k], S::mul(nf[k], d[k]), cur[k]);
                                for mm in k + 1..P {
                                    let y = S::ld(at::<S>(r[mm], p + k));
                                    v = S::fma_m(nf[mm], y, v, m[mm]);
                                }
                                S::st(at::<S>(x, p + k), v);
                            }
                        }
                        for mrow in 0..P {
                            for k in mrow + 1..P {
                                eliminate::<S>(r[mrow], r[k], b, p + k, d[k]);
                            }
                        }
                    }
                }
            }
        };
    }

    // The last argument: pivots per pass over the group's rows (a pass loads and stores every
    // row once, so more pivots per pass mean less traffic through the group's `b²·L` scalars,
    // as long as the pass's multipliers and masks stay in registers).
    kernels!(k512, "avx512f", 4);
    kernels!(k256, "avx2,fma", 2);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::small_inv::invert_unpivoted_with;
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

    /// The instruction sets this CPU can run (each is tested, not only the one in use).
    fn every_path() -> Vec<Isa> {
        Isa::available()
    }

    /// `invert_with(path)` against the portable one-block kernel, bit for bit.
    fn same_path<T: Real>(path: Isa, a: &[T], b: usize, what: &str) {
        let mut want = a.to_vec();
        for blk in want.chunks_exact_mut(b * b) {
            // SAFETY: the portable level runs on every CPU.
            unsafe { invert_unpivoted_with(Isa::Scalar, blk, b) };
        }
        let mut got = a.to_vec();
        // SAFETY: `every_path` lists only instruction sets this CPU has.
        unsafe { invert_with(path, &mut got, b, &mut Vec::new()) };
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
            for path in every_path() {
                same_path(path, &a, b, &format!("{path:?} f64 k={k} b={b}"));
                same_path(path, &a32, b, &format!("{path:?} f32 k={k} b={b}"));
            }
        }
    }

    /// `I − K` with `K` entries in {−1, 0, 1}: small integers, so eliminations cancel exactly
    /// and multipliers become zero part-way through (the lanes where a later pivot column was
    /// zeroed by an earlier step), which random reals almost never do.
    #[test]
    fn exact_cancellations_match_block_by_block() {
        let r = &mut StdRng::seed_from_u64(9);
        for (k, b) in [(16, 8), (19, 12), (8, 6)] {
            let t = Tensor::<f64>::randn(&[k * b * b], 1.0, r);
            let mut a = vec![0.0f64; k * b * b];
            for (blk, tb) in a.chunks_exact_mut(b * b).zip(t.data().chunks_exact(b * b)) {
                for i in 0..b {
                    blk[i * b + i] = 1.0;
                    for j in i + 1..b {
                        let v = tb[i * b + j].round().clamp(-1.0, 1.0);
                        blk[i * b + j] = -v;
                        blk[j * b + i] = v;
                    }
                }
            }
            same_as_one_by_one(&a, b, &format!("integer f64 k={k} b={b}"));
            let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
            same_as_one_by_one(&a32, b, &format!("integer f32 k={k} b={b}"));
            for path in every_path() {
                same_path(path, &a, b, &format!("{path:?} integer f64 k={k} b={b}"));
                same_path(path, &a32, b, &format!("{path:?} integer f32 k={k} b={b}"));
            }
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
