//! The weight gradients of a chain's backward pass, `dB_i[j] = dZ_{i,j} · U_{i,j}ᵀ` summed over
//! the whole batch: one faer product per (factor, block, row tile), in parallel over those
//! tasks. Factors with fewer than [`MIN_GRAD_TASKS`] large blocks (Dense, LowRank: one block)
//! cut each block's gradient into a fixed number of row tiles. Every output entry is computed by
//! exactly one task, with a tiling that depends only on the layout and the batch, so the result
//! does not depend on the thread count.
//!
//! f32 square blocks of 8 or 16 (GSOFT's and BOFT's small blocks) skip faer: a product of a
//! `b × batch` and a `batch × b` matrix is too thin for its microkernels (at b = 8 it ran at about
//! 8 GFLOP/s), so [`outer_sums_f32`] accumulates the `batch` outer products in vector registers,
//! each entry one chain of fused multiply-adds in increasing sample order (the same bits on every
//! instruction-set level, and independent of the thread count like the rest).

use crate::kernels::cpu::Isa;
use crate::kernels::layout::ChainLayout;
use crate::kernels::pool::PoolVec;
use crate::kernels::run::{saved_stride, strided_view};
use crate::real::{Real, RealSlice, RealSliceMut};
use crate::tensor::Tensor;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, Par};
use rayon::prelude::*;

/// A factor's output gradient read in place from the backward's input rows: block `j`, feature
/// `v`, sample `s` at `src[base[j·b + v] + s·ss]`, with `base` affine in `v` (step `rs[j]`).
pub(crate) struct InPlace<'a, T> {
    pub src: &'a [T],
    pub base: &'a [usize],
    pub rs: &'a [isize],
    pub ss: usize,
}

/// Minimum number of weight-gradient tasks per factor: a factor with fewer blocks has each
/// block's gradient cut into row tiles (a layout-only choice, so results stay deterministic).
pub(crate) const MIN_GRAD_TASKS: usize = 8;

/// Rows per tile of a `b1 × b2` gradient block of a factor with `k` blocks: all `b1` rows, or
/// (few large blocks) `b1 / ceil(MIN_GRAD_TASKS / k)` rounded up to a multiple of 8, at least 16.
fn grad_tile_rows(k: usize, b1: usize, b2: usize, batch: usize) -> usize {
    let pieces = MIN_GRAD_TASKS.div_ceil(k);
    if pieces == 1 || b1 * b2 * batch < 1 << 18 {
        return b1;
    }
    b1.div_ceil(pieces).next_multiple_of(8).max(16).min(b1)
}

/// `dB_i[j] = dZ_{i,j} · U_{i,j}ᵀ` over the whole batch, one faer product per (factor, block,
/// row tile), in parallel over those tasks.
pub(crate) fn weight_grads<T: Real>(
    layout: &ChainLayout,
    (inputs, batch): (&[PoolVec<T>], usize),
    (dz, first): (&[PoolVec<T>], Option<InPlace<'_, T>>),
    x_read: Option<InPlace<'_, T>>,
    dbs: &mut [Tensor<T>],
    par: Par,
) {
    let m = layout.m();
    if batch == 0 {
        dbs.iter_mut().for_each(|d| d.data_mut().fill(T::zero()));
        return;
    }
    let mut tasks = Vec::new();
    for (i, db) in dbs.iter_mut().enumerate() {
        let f = layout.factors()[i];
        let rows = grad_tile_rows(f.k, f.b1, f.b2, batch);
        for (j, dst) in db.data_mut().chunks_mut(f.b1 * f.b2).enumerate() {
            for (t, tile) in dst.chunks_mut(rows * f.b2).enumerate() {
                tasks.push((i, j, t * rows, tile));
            }
        }
    }
    let go = |(i, j, r0, dst): (usize, usize, usize, &mut [T])| {
        let f = layout.factors()[i];
        let (b1, b2) = (f.b1, f.b2);
        let rows = dst.len() / b2;
        let (o1, o2) = (j * saved_stride(b1, batch), j * saved_stride(b2, batch));
        // Each operand as (slice, start, feature stride, sample stride).
        let z: Strided<'_, T> = match (&first, dz[m - 1 - i].is_empty()) {
            // dZ of the last factor read in place from dY (rows of length ss).
            (Some(f), true) => (f.src, f.base[j * b1], f.rs[j], f.ss),
            _ => (&dz[m - 1 - i][o1..o1 + b1 * batch], 0, 1, b1),
        };
        let u: Strided<'_, T> = match (&x_read, i) {
            // The first factor's input read in place from X (rows of length ss).
            (Some(f), 0) => (f.src, f.base[j * b2], f.rs[j], f.ss),
            _ => (&inputs[i][o2..o2 + b2 * batch], 0, 1, b2),
        };
        if rows == b1
            && b1 == b2
            && matches!(b1, 8 | 16)
            && let (RealSliceMut::F32(d), RealSlice::F32(zs), RealSlice::F32(us)) =
                (T::view_mut(dst), T::view(z.0), T::view(u.0))
        {
            outer_sums_f32(d, (zs, z.1, z.2, z.3), (us, u.1, u.2, u.3), batch);
            return;
        }
        let acc = MatMut::from_row_major_slice_mut(dst, rows, b2);
        let zm = strided_view(z.0, z.1, b1, batch, z.2, z.3);
        let um = strided_view(u.0, u.1, b2, batch, u.2, u.3);
        let zt = zm.subrows(r0, rows);
        matmul(acc, Accum::Replace, zt, um.transpose(), T::one(), Par::Seq);
    };
    if matches!(par, Par::Seq) || tasks.len() == 1 {
        tasks.into_iter().for_each(go);
    } else {
        tasks.into_par_iter().for_each(go);
    }
}

/// A `b × batch` operand in a slice: `(slice, start, feature stride, sample stride)`, entry
/// `(v, s)` at `start + v·rs + s·ss`.
type Strided<'a, T> = (&'a [T], usize, isize, usize);

/// `acc = Σ_s z[:, s] · u[:, s]ᵀ` (row-major `b × b`, `b ∈ {8, 16}`) for two `b × batch` operands
/// given as [`Strided`]: entry `(r, c)` is the chain
/// `fma(z_{r,n−1}, u_{c,n−1}, … fma(z_{r,0}, u_{c,0}, 0))` on every instruction-set level
/// ([`Isa::current`]).
///
/// # Panics
/// If `b` is not 8 or 16, `acc` does not hold `b²` values, or an operand reaches outside its
/// slice.
pub(crate) fn outer_sums_f32(
    acc: &mut [f32],
    z: Strided<'_, f32>,
    u: Strided<'_, f32>,
    batch: usize,
) {
    // SAFETY: `Isa::current` never names a level the CPU lacks.
    unsafe { outer_sums_f32_with(Isa::current(), acc, z, u, batch) }
}

/// [`outer_sums_f32`] on the instruction-set level `isa` (the same bits on every level).
///
/// # Safety
/// The CPU must support `isa` (every level of [`Isa::available`] does).
///
/// # Panics
/// As [`outer_sums_f32`].
pub(crate) unsafe fn outer_sums_f32_with(
    isa: Isa,
    acc: &mut [f32],
    z: Strided<'_, f32>,
    u: Strided<'_, f32>,
    batch: usize,
) {
    let b = match acc.len() {
        64 => 8,
        256 => 16,
        l => panic!("outer_sums_f32: {l} outputs, expected 64 (b = 8) or 256 (b = 16)"),
    };
    for (name, (src, start, rs, ss)) in [("z", z), ("u", u)] {
        // The extreme offsets of the affine map are at the corners.
        let last = |v: usize, s: usize| start as isize + v as isize * rs + (s * ss) as isize;
        let corners = [last(0, 0), last(b - 1, 0), last(0, batch.max(1) - 1), last(b - 1, batch.max(1) - 1)];
        assert!(
            corners.iter().all(|&o| o >= 0 && (o as usize) < src.len()),
            "outer_sums_f32: operand {name} (start {start}, strides {rs}, {ss}) leaves its {} values",
            src.len()
        );
    }
    if batch == 0 {
        acc.fill(0.0);
        return;
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller guarantees AVX-512F and FMA, which include AVX2 and FMA; the
        // operands were checked to lie in their slices.
        Isa::Avx512 => unsafe { simd::outer_f32_avx512(acc, z, u, b, batch) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller guarantees AVX2 and FMA; the operands were checked.
        Isa::Avx2 => unsafe { simd::outer_f32_avx2(acc, z, u, b, batch) },
        _ => outer_scalar(acc, z, u, b, batch),
    }
}

/// The portable loops of [`outer_sums_f32`]: the same fused multiply-add chains, one entry at a
/// time.
fn outer_scalar(acc: &mut [f32], z: Strided<'_, f32>, u: Strided<'_, f32>, b: usize, n: usize) {
    let at = |(src, start, rs, ss): Strided<'_, f32>, v: usize, s: usize| {
        src[(start as isize + v as isize * rs) as usize + s * ss]
    };
    for r in 0..b {
        for c in 0..b {
            let mut a = 0.0f32;
            for s in 0..n {
                a = at(z, r, s).mul_add(at(u, c, s), a);
            }
            acc[r * b + c] = a;
        }
    }
}

/// [`outer_sums_f32`] with 256-bit vectors: for each group of 8 columns, one accumulator per row,
/// updated per sample by `fma(broadcast(z[r, s]), u[c..c+8, s], acc_r)`: lane `c` computes exactly
/// the scalar chain of [`outer_scalar`].
#[cfg(target_arch = "x86_64")]
mod simd {
    use super::Strided;
    use std::arch::x86_64::*;

    /// Compiled with AVX-512F (32 vector registers: the 16 accumulators of b = 16 stay in them).
    ///
    /// # Safety
    /// AVX-512F and FMA must be available; every entry of `z` and `u` (`b × n`) must lie in its
    /// slice.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn outer_f32_avx512(
        acc: &mut [f32],
        z: Strided<'_, f32>,
        u: Strided<'_, f32>,
        b: usize,
        n: usize,
    ) {
        // SAFETY: forwarded from the caller; AVX2 and FMA are enabled here.
        unsafe {
            if b == 8 {
                outer_f32::<8>(acc, z, u, n)
            } else {
                outer_f32::<16>(acc, z, u, n)
            }
        }
    }

    /// Compiled with AVX2 and FMA.
    ///
    /// # Safety
    /// AVX2 and FMA must be available; every entry of `z` and `u` must lie in its slice.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn outer_f32_avx2(
        acc: &mut [f32],
        z: Strided<'_, f32>,
        u: Strided<'_, f32>,
        b: usize,
        n: usize,
    ) {
        // SAFETY: forwarded from the caller; AVX2 and FMA are enabled here.
        unsafe {
            if b == 8 {
                outer_f32::<8>(acc, z, u, n)
            } else {
                outer_f32::<16>(acc, z, u, n)
            }
        }
    }

    /// The loops, for `B = 8` or `B = 16` (two groups of 8 columns), the block size a constant
    /// so that the `B` accumulators stay in registers.
    ///
    /// # Safety
    /// Inlined only into functions compiled with AVX2 and FMA; every entry
    /// `start + v·rs + s·ss` (`v < B`, `s < n`) of `z` and `u` lies in its slice; `acc` holds
    /// `B²` values.
    #[inline(always)]
    unsafe fn outer_f32<const B: usize>(
        acc: &mut [f32],
        (zs, z0, zr, zss): Strided<'_, f32>,
        (us, u0, ur, uss): Strided<'_, f32>,
        n: usize,
    ) {
        let b = B;
        let (zp, up) = (zs.as_ptr(), us.as_ptr());
        let mut ubuf = [0.0f32; 8];
        for g in 0..B / 8 {
            // SAFETY: AVX is enabled in every function this is inlined into.
            let mut a = [unsafe { _mm256_setzero_ps() }; B];
            for s in 0..n {
                let ucol = u0 as isize + (8 * g) as isize * ur + (s * uss) as isize;
                // SAFETY: entries (8g + c, s), c < 8, lie in `us` (caller); with feature stride 1
                // they are 8 consecutive values, otherwise they are copied to `ubuf` first.
                let uv = unsafe {
                    if ur == 1 {
                        _mm256_loadu_ps(up.offset(ucol))
                    } else {
                        for (c, v) in ubuf.iter_mut().enumerate() {
                            *v = *up.offset(ucol + c as isize * ur);
                        }
                        _mm256_loadu_ps(ubuf.as_ptr())
                    }
                };
                let zcol = z0 as isize + (s * zss) as isize;
                for (r, ar) in a.iter_mut().enumerate() {
                    // SAFETY: entry (r, s), r < b, lies in `zs` (caller); AVX2 and FMA are
                    // enabled in every function this is inlined into.
                    unsafe {
                        let zv = _mm256_set1_ps(*zp.offset(zcol + r as isize * zr));
                        *ar = _mm256_fmadd_ps(zv, uv, *ar);
                    }
                }
            }
            for (r, ar) in a.iter().enumerate() {
                let out = &mut acc[r * b + 8 * g..r * b + 8 * g + 8];
                // SAFETY: `out` holds 8 values; AVX is enabled (see above).
                unsafe { _mm256_storeu_ps(out.as_mut_ptr(), *ar) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    /// Entry `(v, s)` of a [`Strided`] operand.
    fn at(o: Strided<'_, f32>, v: usize, s: usize) -> f32 {
        o.0[(o.1 as isize + v as isize * o.2) as usize + s * o.3]
    }

    #[test]
    fn outer_sums_match_the_naive_chain_on_every_level() {
        let mut rng = StdRng::seed_from_u64(7);
        for b in [8, 16] {
            for n in [0, 1, 7, 64] {
                let len = 3 * b * n.max(1) + 2 * b;
                let zd = Tensor::<f32>::randn(&[len], 1.0, &mut rng);
                let ud = Tensor::<f32>::randn(&[len], 1.0, &mut rng);
                let (z, u) = (zd.data(), ud.data());
                // Contiguous columns, reversed features (in-place reads of a permuted dY), and
                // features 2 apart inside longer rows.
                let layouts: [(Strided<'_, f32>, Strided<'_, f32>); 3] = [
                    ((z, 0, 1, b), (u, 0, 1, b)),
                    ((z, b - 1, -1, b), (u, b + 1, -1, b)),
                    ((z, 1, 2, 3 * b), (u, 0, 2, 3 * b)),
                ];
                for (zo, uo) in layouts {
                    // The naive chain, written independently of the kernels.
                    let mut want = vec![0.0f32; b * b];
                    for r in 0..b {
                        for c in 0..b {
                            let mut a = 0.0f32;
                            for s in 0..n {
                                a = at(zo, r, s).mul_add(at(uo, c, s), a);
                            }
                            want[r * b + c] = a;
                        }
                    }
                    // And faer's product, to a tolerance (another summation order).
                    let mut dense = faer::Mat::<f32>::zeros(b, b);
                    if n > 0 {
                        let zm = crate::kernels::run::strided_view(zo.0, zo.1, b, n, zo.2, zo.3);
                        let um = crate::kernels::run::strided_view(uo.0, uo.1, b, n, uo.2, uo.3);
                        matmul(dense.as_mut(), Accum::Replace, zm, um.transpose(), 1.0, Par::Seq);
                    }
                    for isa in Isa::available() {
                        let mut got = vec![f32::NAN; b * b];
                        // SAFETY: `Isa::available` lists only levels this CPU has.
                        unsafe { outer_sums_f32_with(isa, &mut got, zo, uo, n) };
                        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&got), bits(&want), "{isa:?} b={b} n={n} {:?}", zo.2);
                        for r in 0..b {
                            for c in 0..b {
                                let (g, d) = (got[r * b + c], dense[(r, c)]);
                                let tol = 1e-5 * (n as f32 + 1.0) * (1.0 + d.abs());
                                assert!((g - d).abs() <= tol, "{isa:?} b={b}: {g} vs faer {d}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "outer_sums_f32: 9 outputs")]
    fn outer_sums_reject_other_block_sizes() {
        let z = vec![0.0f32; 3 * 5];
        outer_sums_f32(&mut [0.0; 9], (&z, 0, 1, 3), (&z, 0, 1, 3), 5);
    }

    #[test]
    #[should_panic(expected = "operand u")]
    fn outer_sums_reject_operands_outside_their_slice() {
        let z = vec![0.0f32; 8 * 4];
        // u reversed from start 6: feature 7 would be at offset -1.
        outer_sums_f32(&mut [0.0; 64], (&z, 0, 1, 8), (&z, 6, -1, 8), 4);
    }
}
