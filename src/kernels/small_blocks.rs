//! Register kernels for f32 chains with square blocks of 8 or 16 (GSOFT's, OFT's and BOFT's small
//! blocks), where a faer product per block is too thin for its microkernels (measurements in
//! `papers/`):
//! - [`product_f32`]: a block product `Z = W · U` on `c` samples (`W` is `b × b`, `U` and `Z` are
//!   `b × c`), the chain kernels' forward and data-gradient steps;
//! - [`outer_sums_f32`]: a weight gradient `Σ_s z_s u_sᵀ` over the batch.
//!
//! Operands are slices with strides ([`Strided`]), so both read and write the chain's panels,
//! saved buffers and in-place row views directly. Every output entry is one chain of fused
//! multiply-adds in a fixed order (over the inner index for products, over the samples for the
//! sums), so the AVX-512, AVX2 and scalar paths ([`Isa`]) give the same bits, and the results do
//! not depend on the thread count.

use crate::kernels::cpu::Isa;

/// A `b × n` operand in a slice: `(slice, start, row stride, column stride)`, entry `(v, s)` at
/// `start + v·rs + s·cs` (for the chain kernels: feature `v` of sample `s`).
pub(crate) type Strided<'a, T> = (&'a [T], usize, isize, usize);

/// A writable `b × n` operand, as [`Strided`].
pub(crate) type StridedMut<'a, T> = (&'a mut [T], usize, isize, usize);

/// Whether these kernels handle blocks of `b1 × b2`: square, of size 8 or 16.
pub(crate) fn fits(b1: usize, b2: usize) -> bool {
    b1 == b2 && matches!(b1, 8 | 16)
}

/// Panics (naming the kernel and the operand) unless every entry `(v, s)`, `v < rows`,
/// `s < cols`, of `(len, start, rs, cs)` lies in `0..len` (the extremes of an affine map are at
/// the corners).
fn check_in(
    kernel: &str,
    name: &str,
    (len, start, rs, cs): (usize, usize, isize, usize),
    rows: usize,
    cols: usize,
) {
    if cols == 0 {
        return;
    }
    let at = |v: usize, s: usize| start as isize + v as isize * rs + (s * cs) as isize;
    let corners = [
        at(0, 0),
        at(rows - 1, 0),
        at(0, cols - 1),
        at(rows - 1, cols - 1),
    ];
    assert!(
        corners.iter().all(|&o| o >= 0 && (o as usize) < len),
        "{kernel}: operand {name} (start {start}, strides {rs}, {cs}) leaves its {len} values"
    );
}

/// The block size of a `b × b` block held in `len` values (64 or 256).
fn block_size(kernel: &str, len: usize) -> usize {
    match len {
        64 => 8,
        256 => 16,
        l => panic!("{kernel}: {l} block values, expected 64 (b = 8) or 256 (b = 16)"),
    }
}

/// `Z = W·U` for a column-major `b × b` block `w` (`b ∈ {8, 16}`: `w[k·b + r] = W[r][k]`) and
/// `b × c` operands: `Z[r, s] = fma(W[r][b−1], U[b−1, s], … fma(W[r][0], U[0, s], 0))`, on the
/// level of [`Isa::current`].
///
/// # Panics
/// If `w` does not hold 64 or 256 values, an operand reaches outside its slice, or two entries of
/// `z` alias (`|rs|·(b − 1) ≥ cs`).
pub(crate) fn product_f32(z: StridedMut<'_, f32>, w: &[f32], u: Strided<'_, f32>, c: usize) {
    // SAFETY: `Isa::current` never names a level the CPU lacks.
    unsafe { product_f32_with(Isa::current(), z, w, u, c) }
}

/// [`product_f32`] on the level `isa` (the same bits on every level).
///
/// # Safety
/// The CPU must support `isa` (every level of [`Isa::available`] does).
///
/// # Panics
/// As [`product_f32`].
pub(crate) unsafe fn product_f32_with(
    isa: Isa,
    z: StridedMut<'_, f32>,
    w: &[f32],
    u: Strided<'_, f32>,
    c: usize,
) {
    let b = block_size("product_f32", w.len());
    check_in("product_f32", "z", (z.0.len(), z.1, z.2, z.3), b, c);
    check_in("product_f32", "u", (u.0.len(), u.1, u.2, u.3), b, c);
    assert!(
        c <= 1 || (z.2 != 0 && z.2.unsigned_abs() * (b - 1) < z.3),
        "product_f32: output strides ({}, {}) would alias",
        z.2,
        z.3
    );
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller guarantees AVX-512F and FMA; the operands were checked.
        Isa::Avx512 => unsafe { simd::product_avx512(z, w, u, b, c) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller guarantees AVX2 and FMA; the operands were checked.
        Isa::Avx2 => unsafe { simd::product_avx2(z, w, u, b, c) },
        _ => product_scalar(z, w, u, b, c),
    }
}

/// The portable loops of [`product_f32`], one entry at a time.
fn product_scalar(
    (zs, z0, zr, zc): StridedMut<'_, f32>,
    w: &[f32],
    u: Strided<'_, f32>,
    b: usize,
    c: usize,
) {
    for s in 0..c {
        for r in 0..b {
            let mut a = 0.0f32;
            for k in 0..b {
                a = w[k * b + r].mul_add(at(u, k, s), a);
            }
            zs[(z0 as isize + r as isize * zr) as usize + s * zc] = a;
        }
    }
}

/// Entry `(v, s)` of a [`Strided`] operand.
fn at((src, start, rs, cs): Strided<'_, f32>, v: usize, s: usize) -> f32 {
    src[(start as isize + v as isize * rs) as usize + s * cs]
}

/// `acc = Σ_s z[:, s] · u[:, s]ᵀ` (row-major `b × b`, `b ∈ {8, 16}`) for two `b × n` operands:
/// entry `(r, c)` is `fma(z_{r,n−1}, u_{c,n−1}, … fma(z_{r,0}, u_{c,0}, 0))`, on the level of
/// [`Isa::current`].
///
/// # Panics
/// If `acc` does not hold 64 or 256 values or an operand reaches outside its slice.
pub(crate) fn outer_sums_f32(acc: &mut [f32], z: Strided<'_, f32>, u: Strided<'_, f32>, n: usize) {
    // SAFETY: `Isa::current` never names a level the CPU lacks.
    unsafe { outer_sums_f32_with(Isa::current(), acc, z, u, n) }
}

/// [`outer_sums_f32`] on the level `isa` (the same bits on every level).
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
    n: usize,
) {
    let b = block_size("outer_sums_f32", acc.len());
    check_in("outer_sums_f32", "z", (z.0.len(), z.1, z.2, z.3), b, n);
    check_in("outer_sums_f32", "u", (u.0.len(), u.1, u.2, u.3), b, n);
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller guarantees AVX-512F and FMA; the operands were checked.
        Isa::Avx512 => unsafe { simd::outer_avx512(acc, z, u, b, n) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller guarantees AVX2 and FMA; the operands were checked.
        Isa::Avx2 => unsafe { simd::outer_avx2(acc, z, u, b, n) },
        _ => outer_scalar(acc, z, u, b, n),
    }
}

/// The portable loops of [`outer_sums_f32`], one entry at a time.
fn outer_scalar(acc: &mut [f32], z: Strided<'_, f32>, u: Strided<'_, f32>, b: usize, n: usize) {
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

/// The vector paths: 256-bit vectors of 8 lanes; lane `i` of every operation computes exactly
/// one scalar fused multiply-add of the portable loops, in the same order. The block size is a
/// constant (`B = 8` or `16`) so the accumulators stay in registers; the AVX-512 build has 32 of
/// them (the products keep all of `W` there for `B = 8`).
#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{Strided, StridedMut};
    use std::arch::x86_64::*;

    /// # Safety
    /// AVX-512F and FMA must be available; the operands must satisfy [`super::product_f32`]'s
    /// checks.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn product_avx512(
        z: StridedMut<'_, f32>,
        w: &[f32],
        u: Strided<'_, f32>,
        b: usize,
        c: usize,
    ) {
        // SAFETY: forwarded from the caller; AVX2 and FMA are enabled here.
        unsafe {
            if b == 8 {
                product::<8>(z, w, u, c)
            } else {
                product::<16>(z, w, u, c)
            }
        }
    }

    /// # Safety
    /// AVX2 and FMA must be available; the operands must satisfy [`super::product_f32`]'s checks.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn product_avx2(
        z: StridedMut<'_, f32>,
        w: &[f32],
        u: Strided<'_, f32>,
        b: usize,
        c: usize,
    ) {
        // SAFETY: forwarded from the caller; AVX2 and FMA are enabled here.
        unsafe {
            if b == 8 {
                product::<8>(z, w, u, c)
            } else {
                product::<16>(z, w, u, c)
            }
        }
    }

    /// How many samples ahead [`outer`] prefetches its operands.
    const PREFETCH: usize = 32;

    /// Samples per group of [`product`]: independent accumulator chains that hide the latency
    /// of the fused multiply-add.
    const G: usize = 4;

    /// For each group of 8 output rows and each group of [`G`] samples:
    /// `acc_s = fma(W[rows, k], broadcast(U[k, s]), acc_s)` for `k = 0, 1, …, B−1`, then the
    /// accumulators are stored (through a buffer when the output rows are not consecutive).
    ///
    /// # Safety
    /// Inlined only into functions compiled with AVX2 and FMA; every entry `(v, s)`, `v < B`,
    /// `s < c`, of `z` and `u` lies in its slice, no two entries of `z` alias, `w` holds `B²`
    /// values.
    #[inline(always)]
    unsafe fn product<const B: usize>(
        (zs, z0, zr, zc): StridedMut<'_, f32>,
        w: &[f32],
        (us, u0, ur, uc): Strided<'_, f32>,
        c: usize,
    ) {
        let (zp, up, wp) = (zs.as_mut_ptr(), us.as_ptr(), w.as_ptr());
        let mut buf = [0.0f32; 8];
        for g in 0..B / 8 {
            // SAFETY: (the whole block) AVX2 and FMA are enabled in every function this is inlined
            // into; `w` holds B² values, so column k, rows 8g..8g+8 are in it; the entries of
            // `u` and `z` read and written are (v, s) with v < B, s < c, inside their slices
            // (caller); the output entries of different (v, s) are distinct (no aliasing).
            unsafe {
                let mut wcol = [_mm256_setzero_ps(); B];
                for (k, wk) in wcol.iter_mut().enumerate() {
                    *wk = _mm256_loadu_ps(wp.add(k * B + 8 * g));
                }
                let zrow = z0 as isize + (8 * g) as isize * zr;
                let mut s = 0;
                while s + G <= c {
                    let mut acc = [_mm256_setzero_ps(); G];
                    for (k, wk) in wcol.iter().enumerate() {
                        let uk = up.offset(u0 as isize + k as isize * ur);
                        for (i, a) in acc.iter_mut().enumerate() {
                            let x = _mm256_set1_ps(*uk.add((s + i) * uc));
                            *a = _mm256_fmadd_ps(*wk, x, *a);
                        }
                    }
                    for (i, a) in acc.iter().enumerate() {
                        store8(zp.offset(zrow + ((s + i) * zc) as isize), zr, *a, &mut buf);
                    }
                    s += G;
                }
                while s < c {
                    let mut a = _mm256_setzero_ps();
                    for (k, wk) in wcol.iter().enumerate() {
                        let x = _mm256_set1_ps(
                            *up.offset(u0 as isize + k as isize * ur + (s * uc) as isize),
                        );
                        a = _mm256_fmadd_ps(*wk, x, a);
                    }
                    store8(zp.offset(zrow + (s * zc) as isize), zr, a, &mut buf);
                    s += 1;
                }
            }
        }
    }

    /// Stores the 8 lanes of `v` at `p, p + rs, …, p + 7·rs` (one vector store when `rs = 1`,
    /// else through `buf`).
    ///
    /// # Safety
    /// Inlined only into functions compiled with AVX; the 8 addresses are valid for writes.
    #[inline(always)]
    unsafe fn store8(p: *mut f32, rs: isize, v: __m256, buf: &mut [f32; 8]) {
        // SAFETY: the caller guarantees AVX and the addresses.
        unsafe {
            if rs == 1 {
                _mm256_storeu_ps(p, v);
            } else {
                _mm256_storeu_ps(buf.as_mut_ptr(), v);
                for (i, &x) in buf.iter().enumerate() {
                    *p.offset(i as isize * rs) = x;
                }
            }
        }
    }

    /// # Safety
    /// AVX-512F and FMA must be available; the operands must satisfy
    /// [`super::outer_sums_f32`]'s checks.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn outer_avx512(
        acc: &mut [f32],
        z: Strided<'_, f32>,
        u: Strided<'_, f32>,
        b: usize,
        n: usize,
    ) {
        // SAFETY: forwarded from the caller; AVX2 and FMA are enabled here.
        unsafe {
            if b == 8 {
                outer::<8>(acc, z, u, n)
            } else {
                outer::<16>(acc, z, u, n)
            }
        }
    }

    /// # Safety
    /// AVX2 and FMA must be available; the operands must satisfy [`super::outer_sums_f32`]'s
    /// checks.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn outer_avx2(
        acc: &mut [f32],
        z: Strided<'_, f32>,
        u: Strided<'_, f32>,
        b: usize,
        n: usize,
    ) {
        // SAFETY: forwarded from the caller; AVX2 and FMA are enabled here.
        unsafe {
            if b == 8 {
                outer::<8>(acc, z, u, n)
            } else {
                outer::<16>(acc, z, u, n)
            }
        }
    }

    /// For each group of 8 columns, one accumulator per row, updated per sample by
    /// `fma(broadcast(z[r, s]), u[cols, s], acc_r)`.
    ///
    /// # Safety
    /// Inlined only into functions compiled with AVX2 and FMA; every entry `(v, s)`, `v < B`,
    /// `s < n`, of `z` and `u` lies in its slice; `acc` holds `B²` values.
    #[inline(always)]
    unsafe fn outer<const B: usize>(
        acc: &mut [f32],
        (zs, z0, zr, zc): Strided<'_, f32>,
        (us, u0, ur, uc): Strided<'_, f32>,
        n: usize,
    ) {
        let (zp, up) = (zs.as_ptr(), us.as_ptr());
        let mut ubuf = [0.0f32; 8];
        for g in 0..B / 8 {
            // SAFETY: (the whole block) AVX2 and FMA are enabled in every function this is inlined
            // into; the entries (v, s) read are inside their slices (caller); `acc` holds B²
            // values, so row r, columns 8g..8g+8 are in it.
            unsafe {
                let mut a = [_mm256_setzero_ps(); B];
                for s in 0..n {
                    // Operands read in place from the rows of X or dY are one cache line per
                    // sample, `cs` apart: fetch a few samples ahead (a prefetch never faults,
                    // and the address is only formed, never dereferenced).
                    let ahead = ((s + PREFETCH) * zc) as isize;
                    _mm_prefetch::<_MM_HINT_T0>(zp.wrapping_offset(z0 as isize + ahead).cast());
                    let ahead = ((s + PREFETCH) * uc) as isize;
                    _mm_prefetch::<_MM_HINT_T0>(up.wrapping_offset(u0 as isize + ahead).cast());
                    let ucol = u0 as isize + (8 * g) as isize * ur + (s * uc) as isize;
                    let uv = if ur == 1 {
                        _mm256_loadu_ps(up.offset(ucol))
                    } else {
                        for (i, v) in ubuf.iter_mut().enumerate() {
                            *v = *up.offset(ucol + i as isize * ur);
                        }
                        _mm256_loadu_ps(ubuf.as_ptr())
                    };
                    let zcol = z0 as isize + (s * zc) as isize;
                    for (r, ar) in a.iter_mut().enumerate() {
                        let zv = _mm256_set1_ps(*zp.offset(zcol + r as isize * zr));
                        *ar = _mm256_fmadd_ps(zv, uv, *ar);
                    }
                }
                for (r, ar) in a.iter().enumerate() {
                    _mm256_storeu_ps(acc.as_mut_ptr().add(r * B + 8 * g), *ar);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;
    use faer::linalg::matmul::matmul;
    use faer::{Accum, MatRef, Par};
    use rand::{SeedableRng, rngs::StdRng};

    /// A faer view of a [`Strided`] operand with `rows × cols` entries (for the tolerance check).
    fn view<'a>(o: Strided<'a, f32>, rows: usize, cols: usize) -> MatRef<'a, f32> {
        crate::kernels::run::strided_view(o.0, o.1, rows, cols, o.2, o.3)
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Contiguous columns, reversed rows (in-place reads of a permuted matrix) and rows 2 apart
    /// inside longer columns, for a `b × n` operand in a slice of `3·b·max(n, 1) + 2·b` values.
    fn layouts(b: usize) -> [(usize, isize, usize); 3] {
        [(0, 1, b), (b - 1, -1, b), (1, 2, 3 * b)]
    }

    #[test]
    fn outer_sums_match_the_naive_chain_on_every_level() {
        let mut rng = StdRng::seed_from_u64(7);
        for b in [8, 16] {
            for n in [0, 1, 7, 64] {
                let len = 3 * b * n.max(1) + 2 * b;
                let zd = Tensor::<f32>::randn(&[len], 1.0, &mut rng);
                let ud = Tensor::<f32>::randn(&[len], 1.0, &mut rng);
                for (lz, lu) in layouts(b).into_iter().zip(layouts(b).into_iter().rev()) {
                    let zo: Strided<'_, f32> = (zd.data(), lz.0, lz.1, lz.2);
                    let uo: Strided<'_, f32> = (ud.data(), lu.0, lu.1, lu.2);
                    // The naive chain, by index.
                    let mut want = vec![0.0f32; b * b];
                    for r in 0..b {
                        for c in 0..b {
                            let mut a = 0.0f32;
                            for s in 0..n {
                                let (x, y) = (
                                    zd.data()
                                        [(lz.0 as isize + r as isize * lz.1) as usize + s * lz.2],
                                    ud.data()
                                        [(lu.0 as isize + c as isize * lu.1) as usize + s * lu.2],
                                );
                                a = x.mul_add(y, a);
                            }
                            want[r * b + c] = a;
                        }
                    }
                    let mut dense = faer::Mat::<f32>::zeros(b, b);
                    if n > 0 {
                        let (zm, um) = (view(zo, b, n), view(uo, b, n));
                        matmul(
                            dense.as_mut(),
                            Accum::Replace,
                            zm,
                            um.transpose(),
                            1.0,
                            Par::Seq,
                        );
                    }
                    for isa in Isa::available() {
                        let mut got = vec![f32::NAN; b * b];
                        // SAFETY: `Isa::available` lists only levels this CPU has.
                        unsafe { outer_sums_f32_with(isa, &mut got, zo, uo, n) };
                        assert_eq!(bits(&got), bits(&want), "{isa:?} b={b} n={n} {lz:?}");
                        for r in 0..b {
                            let d = dense[(r, 0)];
                            let tol = 1e-5 * (n as f32 + 1.0) * (1.0 + d.abs());
                            assert!((got[r * b] - d).abs() <= tol, "{isa:?}: vs faer");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn products_match_the_naive_chain_on_every_level() {
        let mut rng = StdRng::seed_from_u64(8);
        for b in [8, 16] {
            for c in [0, 1, 3, 4, 9, 32] {
                let len = 3 * b * c.max(1) + 2 * b;
                let w = Tensor::<f32>::randn(&[b * b], 1.0, &mut rng);
                let ud = Tensor::<f32>::randn(&[len], 1.0, &mut rng);
                for (lz, lu) in layouts(b).into_iter().zip(layouts(b).into_iter().rev()) {
                    let uo: Strided<'_, f32> = (ud.data(), lu.0, lu.1, lu.2);
                    let mut want = vec![f32::NAN; len];
                    for s in 0..c {
                        for r in 0..b {
                            let mut a = 0.0f32;
                            for k in 0..b {
                                let x = ud.data()
                                    [(lu.0 as isize + k as isize * lu.1) as usize + s * lu.2];
                                a = w.data()[k * b + r].mul_add(x, a);
                            }
                            want[(lz.0 as isize + r as isize * lz.1) as usize + s * lz.2] = a;
                        }
                    }
                    let mut dense = faer::Mat::<f32>::zeros(b, c);
                    if c > 0 {
                        let wm = MatRef::from_column_major_slice(w.data(), b, b);
                        matmul(
                            dense.as_mut(),
                            Accum::Replace,
                            wm,
                            view(uo, b, c),
                            1.0,
                            Par::Seq,
                        );
                    }
                    for isa in Isa::available() {
                        // Untouched entries stay NaN, as in `want`.
                        let mut got = vec![f32::NAN; len];
                        // SAFETY: `Isa::available` lists only levels this CPU has.
                        unsafe {
                            product_f32_with(isa, (&mut got, lz.0, lz.1, lz.2), w.data(), uo, c)
                        };
                        assert_eq!(bits(&got), bits(&want), "{isa:?} b={b} c={c} {lz:?}");
                        for s in 0..c {
                            let (g, d) = (got[lz.0 + s * lz.2], dense[(0, s)]);
                            assert!(
                                (g - d).abs() <= 1e-4 * (1.0 + d.abs()),
                                "{isa:?}: {g} vs faer {d}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "outer_sums_f32: 9 block values")]
    fn outer_sums_reject_other_block_sizes() {
        let z = vec![0.0f32; 3 * 5];
        outer_sums_f32(&mut [0.0; 9], (&z, 0, 1, 3), (&z, 0, 1, 3), 5);
    }

    #[test]
    #[should_panic(expected = "operand u")]
    fn kernels_reject_operands_outside_their_slice() {
        let z = vec![0.0f32; 8 * 4];
        // u reversed from start 6: row 7 would be at offset -1.
        outer_sums_f32(&mut [0.0; 64], (&z, 0, 1, 8), (&z, 6, -1, 8), 4);
    }

    #[test]
    #[should_panic(expected = "would alias")]
    fn products_reject_aliasing_outputs() {
        let (mut z, u, w) = (vec![0.0f32; 64], vec![0.0f32; 64], vec![0.0f32; 64]);
        product_f32((&mut z, 0, 1, 4), &w, (&u, 0, 1, 8), 8);
    }
}
