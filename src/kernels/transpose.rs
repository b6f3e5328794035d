//! Tiled transposed copies `D[i][t] = S[t][i]`, the inner loop of the permutation gathers.
//!
//! A GS shuffle `P_(k,n)` sends feature `v` of block `i` to feature `i` of block `v`, so gathering
//! a block-major panel through it is a transposition: for each sample, the `k × b` matrix of
//! (block, feature) is read with rows of one feature across blocks contiguous and written with
//! the features of one block contiguous. Element by element this costs an indexed load and a
//! store per scalar; here it runs in square tiles of `W × W` (8 × 8 for f32, 4 × 4 for f64) with
//! AVX shuffles when the CPU has AVX ([`Isa::current`](crate::kernels::cpu::Isa::current) at
//! least AVX2), and in scalar tiles otherwise or at
//! the edges. Every routine moves bits only: results are identical on every path.

/// `D[i][t] = S[t][i]` for `i < rows`, `t < cols`, where row `i` of `D` starts at `d[i·ds]` and
/// row `t` of `S` at `s[t·ss]`.
///
/// # Panics
/// If a row of `D` or `S` would leave its slice, or if rows of `D` overlap (`ds < cols`).
pub fn transpose<T: Copy + 'static>(
    d: &mut [T],
    ds: usize,
    s: &[T],
    ss: usize,
    rows: usize,
    cols: usize,
) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(
        ds >= cols && (rows - 1) * ds + cols <= d.len(),
        "transpose: {rows} rows of {cols} at stride {ds} do not fit a destination of {}",
        d.len()
    );
    check_source(s.len(), ss, rows, cols);
    let base = d.as_mut_ptr();
    // SAFETY: row i of D is d[i·ds .. i·ds + cols], inside `d` (checked above), and the rows are
    // disjoint (ds ≥ cols); S is inside `s` (checked by `check_source`); `d` is borrowed mutably
    // for the whole call, so nothing else reads or writes it.
    unsafe { transpose_raw(|i| base.add(i * ds), s, ss, rows, cols) }
}

/// Where the rows of a transposition land in a set of block-major blocks (each block a
/// `b × samples` column-major matrix, one sample's `b` features contiguous): row `m` of sample
/// `q` is segment `g % (b / cols)` (of `cols` elements) of block `g / (b / cols)`, where
/// `g = start + m·step` is the group of row `m`, i.e. it starts at element
/// `q·b + (g % (b / cols))·cols` of that block.
#[derive(Clone, Copy, Debug)]
pub struct BlockRows {
    /// Group of row 0.
    pub start: usize,
    /// Group distance of consecutive rows (at least 1, so rows are distinct groups).
    pub step: usize,
    /// Features per block (a multiple of the row length).
    pub b: usize,
}

/// For every sample `q < samples`: `D_q[m][t] = S_q[t][m]` for `m < rows`, `t < cols`, where row
/// `m` of `D_q` is placed in the blocks `d` as [`BlockRows`] says and row `t` of `S_q` starts at
/// `s[q·sstep + t·ss]`. The destination rows are computed, not collected, so a gather calls this
/// once per chain and chunk without building a list of `rows · samples` slices.
///
/// # Panics
/// If `step` is 0, `cols` does not divide `b`, a row's group is past the last block, a used block
/// is shorter than `samples · b`, or a row of `S` would leave `s`.
pub fn transpose_to_blocks<T: Copy + 'static>(
    d: &mut [&mut [T]],
    at: BlockRows,
    s: &[T],
    (ss, sstep): (usize, usize),
    (rows, cols, samples): (usize, usize, usize),
) {
    if rows == 0 || cols == 0 || samples == 0 {
        return;
    }
    let BlockRows { start, step, b } = at;
    assert!(
        step >= 1 && b.is_multiple_of(cols),
        "transpose_to_blocks: group step {step} or row length {cols} for blocks of {b}"
    );
    let q = b / cols;
    let last = start + (rows - 1) * step;
    assert!(
        last < d.len() * q,
        "transpose_to_blocks: group {last} of rows of {cols} is past {} blocks of {b}",
        d.len()
    );
    assert!(
        (start / q..=last / q).all(|j| d[j].len() >= samples * b),
        "transpose_to_blocks: a block is shorter than {samples} samples of {b}"
    );
    let last_sample = (samples - 1) * sstep;
    assert!(
        last_sample <= s.len(),
        "transpose_to_blocks: sample {samples} starts outside the source"
    );
    check_source(s.len() - last_sample, ss, rows, cols);
    // Row m of sample 0, computed once (an integer division per row and tile is measurable).
    let first: Vec<*mut T> = (0..rows)
        .map(|m| {
            let g = start + m * step;
            // In bounds: g / q < d.len() (checked: g ≤ last) and (g % q)·cols < b ≤ its length.
            d[g / q][(g % q) * cols..].as_mut_ptr()
        })
        .collect();
    for sample in 0..samples {
        // SAFETY: row m of this sample is `first[m]` advanced by sample·b, which ends at most
        // (sample + 1)·b ≤ samples·b elements into its block, inside it (checked).
        let row = |m: usize| unsafe { first[m].add(sample * b) };
        // SAFETY: every row is inside its block (see `row`); rows of one sample are distinct
        // groups (step ≥ 1), i.e. distinct blocks or distinct segments of one, so they do not
        // overlap; the blocks are distinct `&mut` slices, so they do not overlap `s`; S_q is inside
        // `s` (the last sample was checked by `check_source`, earlier ones start before it); `d`
        // is borrowed mutably for the whole call and the pointers in `first` come from it.
        unsafe { transpose_raw(row, &s[sample * sstep..], ss, rows, cols) }
    }
}

/// Copies runs of consecutive elements into block-major blocks: for every run `(f, o, len)` and
/// sample `q < samples`, `d[f / b][q·b + f % b + t] = s[q·ss + o + t]` for `t < len`. One call
/// covers a whole gather (the checks run once, the CPU features are looked up once), and each
/// run is copied in 32-byte pieces by straight-line moves: the compiler would turn short copies of
/// unknown length into `memcpy` calls, each paying a dispatch.
///
/// # Panics
/// If `b` is 0, a run crosses the end of its block or lies past the last block, a block is
/// shorter than `samples · b`, or a run would read outside `s`.
pub fn copy_runs<T: Copy + 'static>(
    d: &mut [&mut [T]],
    b: usize,
    s: &[T],
    ss: usize,
    runs: &[(usize, usize, usize)],
    samples: usize,
) {
    if samples == 0 || runs.is_empty() {
        return;
    }
    assert!(b > 0, "copy_runs: blocks of 0 elements");
    let last = (samples - 1) * ss;
    for &(f, o, len) in runs {
        assert!(
            f % b + len <= b && f / b < d.len() && last + o + len <= s.len(),
            "copy_runs: run ({f}, {o}, {len}) does not fit {} blocks of {b} or a source of {}",
            d.len(),
            s.len()
        );
    }
    assert!(
        d.iter().all(|blk| blk.len() >= samples * b),
        "copy_runs: a block is shorter than {samples} samples of {b}"
    );
    let blocks: Vec<*mut T> = d.iter_mut().map(|blk| blk.as_mut_ptr()).collect();
    let shape = (b, ss, samples);
    if simd::has_avx() {
        // SAFETY: AVX is available (checked); every run of every sample is inside its block and
        // inside `s` (checked above); the blocks are distinct `&mut` slices, so no write
        // overlaps `s`, and `d` is borrowed mutably for the whole call.
        unsafe { simd::copy_runs_avx(&blocks, s.as_ptr(), runs, shape) }
    } else {
        // SAFETY: as above.
        unsafe { copy_runs_raw(&blocks, s.as_ptr(), runs, shape) }
    }
}

/// The loops of [`copy_runs`] on checked pointers.
///
/// # Safety
/// For every run `(f, o, len)` and sample `q < samples`, `blocks[f / b] + q·b + f % b` must be
/// valid for `len` writes and `s + q·ss + o` for `len` reads, not overlapping.
#[inline(always)]
unsafe fn copy_runs_raw<T: Copy>(
    blocks: &[*mut T],
    s: *const T,
    runs: &[(usize, usize, usize)],
    (b, ss, samples): (usize, usize, usize),
) {
    let size = std::mem::size_of::<T>();
    for q in 0..samples {
        for &(f, o, len) in runs {
            // SAFETY: forwarded from the caller.
            unsafe {
                let dst = blocks[f / b].add(q * b + f % b).cast::<u8>();
                let src = s.add(q * ss + o).cast::<u8>();
                copy_short(dst, src, len * size);
            }
        }
    }
}

/// Copies `bytes` bytes in 32-byte pieces, then 8-byte pieces, then single bytes; the constant
/// sizes compile to inline moves.
///
/// # Safety
/// `s` must be valid for `bytes` reads and `d` for `bytes` writes, not overlapping.
#[inline(always)]
unsafe fn copy_short(d: *mut u8, s: *const u8, bytes: usize) {
    let mut i = 0;
    // SAFETY: every piece lies inside the first `bytes` bytes (forwarded from the caller).
    unsafe {
        while i + 32 <= bytes {
            std::ptr::copy_nonoverlapping(s.add(i), d.add(i), 32);
            i += 32;
        }
        while i + 8 <= bytes {
            std::ptr::copy_nonoverlapping(s.add(i), d.add(i), 8);
            i += 8;
        }
        while i < bytes {
            *d.add(i) = *s.add(i);
            i += 1;
        }
    }
}

/// Panics unless `S[t][i] = s[t·ss + i]` stays inside a slice of `len` for `t < cols`, `i < rows`.
fn check_source(len: usize, ss: usize, rows: usize, cols: usize) {
    assert!(
        (cols - 1) * ss + rows <= len,
        "transpose: {cols} source rows of {rows} at stride {ss} do not fit a source of {len}"
    );
}

/// The transposition with `row(i)` pointing at `D[i][0]`.
///
/// # Safety
/// For `i < rows`, `row(i)` must be valid for writes of `cols` elements, the rows must not
/// overlap each other or `s`, and `s[t·ss + i]` must be in bounds for `t < cols`, `i < rows`.
unsafe fn transpose_raw<T: Copy + 'static>(
    row: impl Fn(usize) -> *mut T,
    s: &[T],
    ss: usize,
    rows: usize,
    cols: usize,
) {
    let src = s.as_ptr();
    let w = simd::width::<T>();
    let (ri, ci) = (rows - rows % w.max(1), cols - cols % w.max(1));
    if w > 1 {
        for i0 in (0..ri).step_by(w) {
            for t0 in (0..ci).step_by(w) {
                // SAFETY: the tile's W rows of D (elements t0 .. t0 + W) and of S (elements
                // i0 .. i0 + W) are inside the checked ranges since i0 + W ≤ rows, t0 + W ≤ cols.
                unsafe { simd::tile(|i| row(i0 + i).add(t0), src.add(t0 * ss + i0), ss) };
            }
        }
    }
    // Scalar remainder: columns ci.. of the tiled rows, then the rows ri.. (all of them when
    // there is no SIMD tile).
    let (ri, ci) = if w > 1 { (ri, ci) } else { (0, 0) };
    for i in 0..rows {
        let from = if i < ri { ci } else { 0 };
        let r = row(i);
        for t in from..cols {
            // SAFETY: i < rows and t < cols are inside the ranges the caller guarantees.
            unsafe { *r.add(t) = *src.add(t * ss + i) };
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    //! AVX tiles: 8 × 8 for 4-byte scalars, 4 × 4 for 8-byte scalars (moved as f32 / f64 bits).
    use std::arch::x86_64::*;
    use std::mem::size_of;

    /// Whether the kernels may use AVX: [`Isa::current`](crate::kernels::cpu::Isa::current) is
    /// AVX2 or better (AVX2 implies AVX).
    pub(super) fn has_avx() -> bool {
        crate::kernels::cpu::Isa::current() >= crate::kernels::cpu::Isa::Avx2
    }

    /// [`copy_runs_raw`](super::copy_runs_raw) compiled with AVX, so each 32-byte piece is one
    /// unaligned load and store.
    ///
    /// # Safety
    /// AVX must be available; the pointers must satisfy `copy_runs_raw`'s contract.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn copy_runs_avx<T: Copy>(
        blocks: &[*mut T],
        s: *const T,
        runs: &[(usize, usize, usize)],
        shape: (usize, usize, usize),
    ) {
        // SAFETY: forwarded from the caller.
        unsafe { super::copy_runs_raw(blocks, s, runs, shape) }
    }

    /// Tile width for `T`: 8 (4-byte), 4 (8-byte) when the CPU has AVX, else 1 (no SIMD tiles).
    pub(super) fn width<T: 'static>() -> usize {
        if !has_avx() {
            return 1;
        }
        match size_of::<T>() {
            4 => 8,
            8 => 4,
            _ => 1,
        }
    }

    /// One `W × W` tile, `W = width::<T>()`: row `i` of the tile of D at `d(i)`, row `t` of the
    /// tile of S at `s + t·ss`.
    ///
    /// # Safety
    /// AVX must be available and `width::<T>() > 1`; the tile's rows must be valid as stated.
    #[inline(always)]
    pub(super) unsafe fn tile<T>(d: impl Fn(usize) -> *mut T, s: *const T, ss: usize) {
        // SAFETY: forwarded from the caller; the casts only reinterpret 4- or 8-byte scalars as
        // f32 / f64 bit patterns, which the shuffles move without looking at them.
        unsafe {
            if size_of::<T>() == 4 {
                tile8_f32(std::array::from_fn(|i| d(i).cast()), s.cast(), ss);
            } else {
                tile4_f64(std::array::from_fn(|i| d(i).cast()), s.cast(), ss);
            }
        }
    }

    /// `d[i][t] = s[t·ss + i]` for an 8 × 8 tile of f32 (unpack, shuffle, lane permute).
    #[target_feature(enable = "avx")]
    unsafe fn tile8_f32(d: [*mut f32; 8], s: *const f32, ss: usize) {
        // SAFETY: the caller guarantees 8 readable rows of 8 at s + t·ss and 8 writable rows.
        unsafe {
            let r: [__m256; 8] = std::array::from_fn(|t| _mm256_loadu_ps(s.add(t * ss)));
            let lo = |a, b| _mm256_unpacklo_ps(a, b);
            let hi = |a, b| _mm256_unpackhi_ps(a, b);
            let t = [
                lo(r[0], r[1]),
                hi(r[0], r[1]),
                lo(r[2], r[3]),
                hi(r[2], r[3]),
                lo(r[4], r[5]),
                hi(r[4], r[5]),
                lo(r[6], r[7]),
                hi(r[6], r[7]),
            ];
            let u = [
                _mm256_shuffle_ps::<0x44>(t[0], t[2]),
                _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
                _mm256_shuffle_ps::<0x44>(t[1], t[3]),
                _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
                _mm256_shuffle_ps::<0x44>(t[4], t[6]),
                _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
                _mm256_shuffle_ps::<0x44>(t[5], t[7]),
                _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
            ];
            for i in 0..4 {
                _mm256_storeu_ps(d[i], _mm256_permute2f128_ps::<0x20>(u[i], u[i + 4]));
                _mm256_storeu_ps(d[i + 4], _mm256_permute2f128_ps::<0x31>(u[i], u[i + 4]));
            }
        }
    }

    /// `d[i][t] = s[t·ss + i]` for a 4 × 4 tile of f64 (unpack, lane permute).
    #[target_feature(enable = "avx")]
    unsafe fn tile4_f64(d: [*mut f64; 4], s: *const f64, ss: usize) {
        // SAFETY: the caller guarantees 4 readable rows of 4 at s + t·ss and 4 writable rows.
        unsafe {
            let r: [__m256d; 4] = std::array::from_fn(|t| _mm256_loadu_pd(s.add(t * ss)));
            let t0 = _mm256_unpacklo_pd(r[0], r[1]);
            let t1 = _mm256_unpackhi_pd(r[0], r[1]);
            let t2 = _mm256_unpacklo_pd(r[2], r[3]);
            let t3 = _mm256_unpackhi_pd(r[2], r[3]);
            _mm256_storeu_pd(d[0], _mm256_permute2f128_pd::<0x20>(t0, t2));
            _mm256_storeu_pd(d[1], _mm256_permute2f128_pd::<0x20>(t1, t3));
            _mm256_storeu_pd(d[2], _mm256_permute2f128_pd::<0x31>(t0, t2));
            _mm256_storeu_pd(d[3], _mm256_permute2f128_pd::<0x31>(t1, t3));
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod simd {
    //! No SIMD tiles on this architecture: everything runs in the scalar loop.

    /// Always 1: no SIMD tiles.
    pub(super) fn width<T: 'static>() -> usize {
        1
    }

    /// Always false: no SIMD copies.
    pub(super) fn has_avx() -> bool {
        false
    }

    /// Never called (`has_avx` is false).
    pub(super) unsafe fn copy_runs_avx<T: Copy>(
        _blocks: &[*mut T],
        _s: *const T,
        _runs: &[(usize, usize, usize)],
        _shape: (usize, usize, usize),
    ) {
        unreachable!("no SIMD copies on this architecture")
    }

    /// Never called (width 1).
    pub(super) unsafe fn tile<T>(_d: impl Fn(usize) -> *mut T, _s: *const T, _ss: usize) {
        unreachable!("no SIMD tiles on this architecture")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slow reference: one element at a time.
    fn naive<T: Copy>(d: &mut [T], ds: usize, s: &[T], ss: usize, rows: usize, cols: usize) {
        for i in 0..rows {
            for t in 0..cols {
                d[i * ds + t] = s[t * ss + i];
            }
        }
    }

    fn check<T: Copy + PartialEq + std::fmt::Debug + 'static>(from: impl Fn(usize) -> T) {
        // Sizes around the tile widths, strides with slack, and non-square shapes.
        for (rows, cols) in [(1, 1), (3, 5), (8, 8), (9, 17), (16, 4), (32, 32), (13, 40)] {
            let (ds, ss) = (cols + 3, rows + 5);
            let s: Vec<T> = (0..cols * ss).map(&from).collect();
            let fill = from(usize::MAX / 2);
            let mut want = vec![fill; rows * ds];
            let mut got = want.clone();
            naive(&mut want, ds, &s, ss, rows, cols);
            transpose(&mut got, ds, &s, ss, rows, cols);
            assert_eq!(got, want, "transpose {rows}x{cols}");
            // Two samples, the second reading the source one element further on, into rows
            // that are segments of blocks: groups 1, 3, 5, … (step 2), two segments per block.
            let s2: Vec<T> = (0..cols * ss + 1).map(&from).collect();
            let (b, step) = (2 * cols, 2);
            let last_group = 1 + (rows - 1) * step;
            let nblocks = last_group / 2 + 1;
            let mut blocks: Vec<Vec<T>> = (0..nblocks).map(|_| vec![fill; 2 * b + 3]).collect();
            let mut views: Vec<&mut [T]> = blocks.iter_mut().map(|b| &mut b[..]).collect();
            let at = BlockRows { start: 1, step, b };
            transpose_to_blocks(&mut views, at, &s2, (ss, 1), (rows, cols, 2));
            let mut want_blocks: Vec<Vec<T>> =
                (0..nblocks).map(|_| vec![fill; 2 * b + 3]).collect();
            for q in 0..2 {
                for m in 0..rows {
                    let g = 1 + m * step;
                    for t in 0..cols {
                        want_blocks[g / 2][q * b + (g % 2) * cols + t] = s2[q + t * ss + m];
                    }
                }
            }
            assert_eq!(blocks, want_blocks, "transpose_to_blocks {rows}x{cols}");
        }
    }

    #[test]
    fn tiles_match_the_naive_copy_f32_and_f64() {
        check(|i| i as f32 * 0.5 - 3.0);
        check(|i| i as f64 * 0.25 + 1.0);
    }

    /// Runs of every length around the piece sizes (1–40 elements, 4- and 8-byte scalars), into
    /// two blocks over three samples, equal the element-by-element definition and write nothing
    /// else.
    #[test]
    fn copy_runs_copy_every_length() {
        fn check<T: Copy + PartialEq + std::fmt::Debug + 'static>(from: impl Fn(usize) -> T) {
            for len in [1usize, 3, 7, 8, 9, 15, 16, 17, 32, 40] {
                let (b, ss, samples) = (2 * len + 5, 3 * len + 11, 3);
                let s: Vec<T> = (0..samples * ss).map(&from).collect();
                // One run at the end of block 0 and one at the start of block 1.
                let runs = [(b - len, 2, len), (b + 1, len + 4, len)];
                let fill = from(usize::MAX / 2);
                let mut blocks = vec![vec![fill; samples * b + 2]; 2];
                let mut want = blocks.clone();
                let mut views: Vec<&mut [T]> = blocks.iter_mut().map(|v| &mut v[..]).collect();
                copy_runs(&mut views, b, &s, ss, &runs, samples);
                for q in 0..samples {
                    for &(f, o, l) in &runs {
                        for t in 0..l {
                            want[f / b][q * b + f % b + t] = s[q * ss + o + t];
                        }
                    }
                }
                assert_eq!(blocks, want, "len {len}");
            }
        }
        check(|i| i as f32 + 0.5);
        check(|i| i as f64 - 0.25);
    }

    #[test]
    #[should_panic(expected = "copy_runs: run (6, 0, 3) does not fit 2 blocks of 8")]
    fn run_across_a_block_end_panics() {
        let mut blocks = vec![vec![0f32; 8]; 2];
        let mut views: Vec<&mut [f32]> = blocks.iter_mut().map(|v| &mut v[..]).collect();
        copy_runs(&mut views, 8, &[0f32; 16], 8, &[(6, 0, 3)], 1);
    }

    #[test]
    fn nan_payloads_move_bit_for_bit() {
        let s: Vec<f32> = (0..64u32)
            .map(|i| f32::from_bits(0x7fc0_0000 | i))
            .collect();
        let mut d = vec![0f32; 64];
        transpose(&mut d, 8, &s, 8, 8, 8);
        for i in 0..8 {
            for t in 0..8 {
                assert_eq!(d[i * 8 + t].to_bits(), s[t * 8 + i].to_bits());
            }
        }
    }

    #[test]
    #[should_panic(expected = "transpose: 4 rows of 4 at stride 4 do not fit a destination of 15")]
    fn short_destination_panics() {
        transpose(&mut [0f64; 15], 4, &[0f64; 16], 4, 4, 4);
    }
}
