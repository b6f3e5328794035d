//! Register-tiled products of one small block with gathered samples:
//! `dst[s·ds + r] = Σ_k W[r][k] · src[s·ss + idx[k]]` for `r < b_out`, `s < c`.
//!
//! This is a GEMM microkernel whose right-hand side is read through an index map: each sample's
//! `k`-th input is a scalar broadcast from `src[s·ss + idx[k]]`, and a broadcast costs the same
//! from any address. A permutation in front of a block product (a GS shuffle, a butterfly's
//! half-block pairing, a random permutation) is therefore read in place, with no gathered copy,
//! and the rows of a `[batch][features]` matrix are read without a transposition.
//!
//! `W` is column-major (`b_out × b_in`, column `k` at `w[k·b_out..]`); the output rows of one
//! sample are contiguous, so they are written with full vector stores. Tiles of 16 rows × 6
//! samples (f32; 8 rows × 6 samples in f64) keep 12 vector accumulators in registers. Each output
//! sums its `b_in` terms in the order `k = 0, 1, …` with fused multiply-adds, whatever the tile:
//! results do not depend on how a batch is cut into chunks or threads.
//!
//! The SIMD path needs AVX2 and FMA (detected at run time), `b_out` a multiple of 8 (f32) or
//! 4 (f64) and both block sides at most [`MAX_SIDE`]; [`blocks_apply`] returns `false` otherwise
//! (and everywhere when the environment variable `GSLAB_KERNEL=faer` is set) and the caller
//! uses faer.

use crate::real::Real;
use std::any::TypeId;

/// Largest block side the microkernel takes: one block's `W` (at most 64 KiB in f32) stays in
/// L1/L2 while it is applied to a chunk; larger blocks (Dense, LowRank) go to faer's cache-blocked
/// GEMM.
pub const MAX_SIDE: usize = 128;

/// False when the environment variable `GSLAB_KERNEL` is `faer` (read once): every block
/// product then goes through faer, to measure what the microkernel changes.
fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("GSLAB_KERNEL").map_or(true, |v| v != "faer"))
}

/// Samples per register tile.
const NS: usize = 6;

/// Whether [`blocks_apply`] has a SIMD path for `T` and a block of `bo × bi`.
pub fn available<T: 'static>(bo: usize, bi: usize) -> bool {
    let lanes = match lanes::<T>() {
        Some(l) => l,
        None => return false,
    };
    enabled()
        && bo % lanes == 0
        && bo <= MAX_SIDE
        && (1..=MAX_SIDE).contains(&bi)
        && simd::has_avx2_fma()
}

/// SIMD lanes of one 256-bit vector for `T` (8 for f32, 4 for f64), `None` for other types.
fn lanes<T: 'static>() -> Option<usize> {
    let t = TypeId::of::<T>();
    if t == TypeId::of::<f32>() {
        Some(8)
    } else if t == TypeId::of::<f64>() {
        Some(4)
    } else {
        None
    }
}

/// The input of a step's blocks: element `f` of block `j` and sample `s` is
/// `data[s·ss + idx[j·b_in + f]]`.
#[derive(Clone, Copy)]
pub struct Gathered<'a, T> {
    /// The source (a chunk of rows, a panel, or saved blocks).
    pub data: &'a [T],
    /// Distance between consecutive samples.
    pub ss: usize,
    /// Offset of each input within a sample: `b_in` per block, blocks one after the other.
    pub idx: &'a [usize],
}

/// For every block `j < k = dst_off.len()`, row `r < bo` and sample `s < c`:
/// `dst[dst_off[j] + s·ds + r] = Σ_f w[j·bo·bi + f·bo + r] · src.data[s·ss + src.idx[j·bi + f]]`
/// (block `j` of `w` column-major `bo × bi`, `bi = src.idx.len() / k`).
///
/// Samples run in tiles of 6 in the outer loop and blocks inside it, so the inputs a tile
/// gathers (one cache line serves several blocks of a shuffle) stay in L1 while every block
/// uses them. Returns `false`, touching nothing, when [`available`] is false (after the checks
/// below); the caller then computes the products another way. Nothing to do (`k = 0` or
/// `c = 0`) returns `true`.
///
/// # Panics
/// If `w` or `src.idx` do not hold `k` blocks, if a block's output rows would leave `dst` or
/// overlap the next sample's (`ds < bo`), or if an index reaches past `src.data`.
pub fn blocks_apply<T: Real>(
    w: &[T],
    bo: usize,
    src: Gathered<'_, T>,
    dst: &mut [T],
    (dst_off, ds): (&[usize], usize),
    c: usize,
) -> bool {
    let k = dst_off.len();
    let bi = src.idx.len().checked_div(k).unwrap_or(0);
    if k == 0 || c == 0 {
        return true;
    }
    assert!(
        src.idx.len() == k * bi && w.len() == k * bo * bi,
        "blocks_apply: {} weights and {} inputs are not {k} blocks of {bo}×{bi}",
        w.len(),
        src.idx.len()
    );
    let last_off = dst_off.iter().copied().max().unwrap_or(0);
    assert!(
        ds >= bo && last_off + (c - 1) * ds + bo <= dst.len(),
        "blocks_apply: {c} samples of {bo} rows at stride {ds} from offset {last_off} do not \
         fit {} outputs",
        dst.len()
    );
    let max_idx = src.idx.iter().copied().max().unwrap_or(0);
    assert!(
        (c - 1) * src.ss + max_idx < src.data.len(),
        "blocks_apply: input offset {} outside a source of {}",
        (c - 1) * src.ss + max_idx,
        src.data.len()
    );
    if !available::<T>(bo, bi) {
        return false;
    }
    let tiles = Tiles { bo, bi, ds, c };
    // SAFETY: AVX2 and FMA are present and T is f32 or f64 (`available`); every read
    // `s·ss + idx[i]` (s < c) is at most `(c−1)·ss + max_idx`, inside `src.data`; every write
    // `dst_off[j] + s·ds + r` (r < bo) is inside `dst`; `w` holds `k·bo·bi` scalars (all
    // checked above).
    unsafe {
        if TypeId::of::<T>() == TypeId::of::<f32>() {
            simd::apply_f32(
                w.as_ptr().cast(),
                src.cast(),
                dst.as_mut_ptr().cast(),
                dst_off,
                tiles,
            );
        } else {
            simd::apply_f64(
                w.as_ptr().cast(),
                src.cast(),
                dst.as_mut_ptr().cast(),
                dst_off,
                tiles,
            );
        }
    }
    true
}

/// Shape of one [`blocks_apply`] call.
#[derive(Clone, Copy)]
struct Tiles {
    bo: usize,
    bi: usize,
    ds: usize,
    c: usize,
}

/// A raw view of a [`Gathered`] input for the SIMD kernels.
#[derive(Clone, Copy)]
struct RawSrc<U> {
    data: *const U,
    ss: usize,
    idx: *const usize,
}

impl<T> Gathered<'_, T> {
    /// The same input as raw pointers to `U` (the caller checks that `U` is `T`).
    fn cast<U>(self) -> RawSrc<U> {
        RawSrc {
            data: self.data.as_ptr().cast(),
            ss: self.ss,
            idx: self.idx.as_ptr(),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    //! AVX2 + FMA microkernels, one per scalar type, generated by one macro.
    use super::{NS, RawSrc, Tiles};
    use std::arch::x86_64::*;

    /// Whether the CPU has AVX2 and FMA (detected once by std, then a cached load).
    pub(super) fn has_avx2_fma() -> bool {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }

    macro_rules! kernels {
        ($apply:ident, $tile:ident, $t:ty, $v:ty, $lanes:expr,
         $zero:ident, $load:ident, $store:ident, $fma:ident, $set1:ident) => {
            /// One tile: `RV` vectors of rows starting at `w`/`dst[s]` for `N` samples, inputs
            /// `src.data[base[s] + idx[f]]`, `f < bi`.
            ///
            /// # Safety
            /// AVX2 and FMA must be available; `w + f·bo + v·lanes` (f < bi, v < RV) must be
            /// readable vectors, `src.data + base[s] + idx[f]` readable scalars and `dst[s] +
            /// v·lanes` writable vectors.
            #[inline]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn $tile<const N: usize, const RV: usize>(
                w: *const $t,
                (bo, bi): (usize, usize),
                (data, idx): (*const $t, *const usize),
                base: [usize; N],
                dst: [*mut $t; N],
            ) {
                // SAFETY: forwarded from the caller.
                unsafe {
                    let mut acc = [[$zero(); RV]; N];
                    for f in 0..bi {
                        let wf = w.add(f * bo);
                        let mut wv = [$zero(); RV];
                        for (v, x) in wv.iter_mut().enumerate() {
                            *x = $load(wf.add(v * $lanes));
                        }
                        let col = data.add(*idx.add(f));
                        for s in 0..N {
                            let u = $set1(*col.add(base[s]));
                            for v in 0..RV {
                                acc[s][v] = $fma(wv[v], u, acc[s][v]);
                            }
                        }
                    }
                    for s in 0..N {
                        for v in 0..RV {
                            $store(dst[s].add(v * $lanes), acc[s][v]);
                        }
                    }
                }
            }

            /// Every tile of every block (see [`super::blocks_apply`]).
            ///
            /// # Safety
            /// As [`super::blocks_apply`] checks: AVX2 + FMA, `bo` a multiple of the lanes, all
            /// reads and writes in bounds.
            #[target_feature(enable = "avx2,fma")]
            pub(super) unsafe fn $apply(
                w: *const $t,
                src: RawSrc<$t>,
                dst: *mut $t,
                dst_off: &[usize],
                t: Tiles,
            ) {
                let Tiles { bo, bi, ds, c } = t;
                let rv2 = bo % (2 * $lanes) == 0;
                let rows = if rv2 { 2 * $lanes } else { $lanes };
                let mut s0 = 0;
                while s0 < c {
                    let n = NS.min(c - s0);
                    let b = s0 * src.ss;
                    for (j, &off) in dst_off.iter().enumerate() {
                        // SAFETY: block j's weights, inputs and the rows of samples s0..s0+n are
                        // inside the ranges the caller checked.
                        unsafe {
                            let wj = w.add(j * bo * bi);
                            let ij = (src.data, src.idx.add(j * bi));
                            let d = dst.add(off + s0 * ds);
                            let mut r0 = 0;
                            while r0 < bo {
                                macro_rules! go {
                                    ($n:literal) => {{
                                        let base: [usize; $n] =
                                            std::array::from_fn(|s| b + s * src.ss);
                                        let dst: [*mut $t; $n] =
                                            std::array::from_fn(|s| d.add(s * ds + r0));
                                        if rv2 {
                                            $tile::<$n, 2>(wj.add(r0), (bo, bi), ij, base, dst)
                                        } else {
                                            $tile::<$n, 1>(wj.add(r0), (bo, bi), ij, base, dst)
                                        }
                                    }};
                                }
                                match n {
                                    6 => go!(6),
                                    5 => go!(5),
                                    4 => go!(4),
                                    3 => go!(3),
                                    2 => go!(2),
                                    _ => go!(1),
                                }
                                r0 += rows;
                            }
                        }
                    }
                    s0 += n;
                }
            }
        };
    }

    kernels!(
        apply_f32,
        tile_f32,
        f32,
        __m256,
        8,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm256_fmadd_ps,
        _mm256_set1_ps
    );
    kernels!(
        apply_f64,
        tile_f64,
        f64,
        __m256d,
        4,
        _mm256_setzero_pd,
        _mm256_loadu_pd,
        _mm256_storeu_pd,
        _mm256_fmadd_pd,
        _mm256_set1_pd
    );
}

#[cfg(not(target_arch = "x86_64"))]
mod simd {
    //! No SIMD kernels off x86-64: [`super::available`] is false and these are never called.
    use super::{RawSrc, Tiles};

    pub(super) fn has_avx2_fma() -> bool {
        false
    }

    pub(super) unsafe fn apply_f32(
        _: *const f32,
        _: RawSrc<f32>,
        _: *mut f32,
        _: &[usize],
        _: Tiles,
    ) {
        unreachable!("no SIMD microkernel on this architecture")
    }

    pub(super) unsafe fn apply_f64(
        _: *const f64,
        _: RawSrc<f64>,
        _: *mut f64,
        _: &[usize],
        _: Tiles,
    ) {
        unreachable!("no SIMD microkernel on this architecture")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perm::Perm;
    use crate::tensor::Tensor;
    use rand::{SeedableRng, rngs::StdRng};

    /// The same sums in the same order, one scalar at a time (`mul_add` is the fused operation).
    fn naive<T: Real>(
        w: &[T],
        bo: usize,
        src: Gathered<'_, T>,
        dst: &mut [T],
        off: &[usize],
        ds: usize,
        c: usize,
    ) {
        let bi = src.idx.len() / off.len();
        for (j, &o) in off.iter().enumerate() {
            for s in 0..c {
                for r in 0..bo {
                    let mut acc = T::zero();
                    for f in 0..bi {
                        let u = src.data[s * src.ss + src.idx[j * bi + f]];
                        acc = w[j * bo * bi + f * bo + r].mul_add(u, acc);
                    }
                    dst[o + s * ds + r] = acc;
                }
            }
        }
    }

    /// `k` blocks of `bo × bi` on `c` samples, inputs through a random injective map, outputs
    /// interleaved with NaN padding that must survive.
    fn check<T: Real>(k: usize, bo: usize, bi: usize, c: usize, rng: &mut StdRng) {
        let w = Tensor::<T>::randn(&[k * bo * bi], 1.0, rng).data().to_vec();
        let ss = k * bi + 5;
        let data = Tensor::<T>::randn(&[c * ss + 3], 1.0, rng).data().to_vec();
        let slots = Perm::random(ss, rng).as_slice().to_vec();
        let src = Gathered {
            data: &data,
            ss,
            idx: &slots[..k * bi],
        };
        // Block j's rows of sample s at j·(bo + 1) + s·ds: blocks interleaved within a sample.
        let ds = k * (bo + 1) + 2;
        let off: Vec<usize> = (0..k).map(|j| j * (bo + 1)).collect();
        let mut got = vec![T::nan(); c * ds];
        let mut want = vec![T::nan(); c * ds];
        assert!(blocks_apply(&w, bo, src, &mut got, (&off, ds), c));
        naive(&w, bo, src, &mut want, &off, ds, c);
        for (i, (g, e)) in got.iter().zip(&want).enumerate() {
            assert!(
                g == e || (g.is_nan() && e.is_nan()),
                "k {k} bo {bo} bi {bi} c {c}: entry {i} is {g}, expected {e}"
            );
        }
        assert!(
            got.iter().filter(|v| v.is_nan()).count() == c * ds - k * bo * c,
            "k {k} bo {bo} bi {bi} c {c}: only output rows are written"
        );
    }

    #[test]
    fn tiles_match_the_fused_naive_sum_bit_for_bit() {
        if !available::<f32>(8, 8) {
            eprintln!("no AVX2 + FMA (or GSLAB_KERNEL=faer): the microkernel is not used here");
            return;
        }
        let mut rng = StdRng::seed_from_u64(7);
        for (bo, bi) in [
            (32, 32),
            (16, 16),
            (8, 24),
            (64, 64),
            (24, 3),
            (128, 128),
            (40, 1),
        ] {
            for c in [1, 5, 6, 7, 13, 32] {
                for k in [1, 3] {
                    check::<f32>(k, bo, bi, c, &mut rng);
                    check::<f64>(k, bo, bi, c, &mut rng);
                }
            }
        }
        check::<f64>(2, 4, 9, 11, &mut rng);
        check::<f64>(2, 12, 9, 11, &mut rng);
    }

    #[test]
    fn unsupported_shapes_and_types_decline() {
        let w = vec![0.0f32; 6 * 4];
        let data = vec![0.0f32; 16];
        let src = Gathered {
            data: &data,
            ss: 4,
            idx: &[0, 1, 2, 3],
        };
        let mut dst = vec![1.0f32; 24];
        assert!(
            !blocks_apply(&w, 6, src, &mut dst, (&[0], 6), 4),
            "6 rows are not a multiple of 8"
        );
        assert!(
            dst.iter().all(|&v| v == 1.0),
            "a declined call writes nothing"
        );
        assert!(!available::<f32>(8, 0));
        assert!(!available::<f32>(8, MAX_SIDE + 1));
        assert!(!available::<f32>(2 * MAX_SIDE, 8));
        assert!(!available::<i32>(8, 8));
    }

    #[test]
    #[should_panic(expected = "outside a source")]
    fn an_index_past_the_source_panics() {
        let w = vec![0.0f32; 8 * 2];
        let data = vec![0.0f32; 10];
        let src = Gathered {
            data: &data,
            ss: 4,
            idx: &[0, 7],
        };
        let mut dst = vec![0.0f32; 16];
        blocks_apply(&w, 8, src, &mut dst, (&[0], 8), 2);
    }

    #[test]
    #[should_panic(expected = "do not fit")]
    fn outputs_past_the_destination_panic() {
        let w = vec![0.0f32; 2 * 8 * 2];
        let data = vec![0.0f32; 16];
        let src = Gathered {
            data: &data,
            ss: 4,
            idx: &[0, 1, 2, 3],
        };
        let mut dst = vec![0.0f32; 24];
        blocks_apply(&w, 8, src, &mut dst, (&[0, 9], 8), 2);
    }
}
