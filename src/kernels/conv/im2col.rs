//! The im2col matrix of one channel group of a panel of images, and the copies between NCHW
//! tensors and panels.
//!
//! For `ci` channels of `nb` images of `h × w` pixels and an odd `k × k` kernel with zero padding
//! `p = k/2`, row `(i·k + a)·k + b` of the im2col matrix holds channel `i` shifted by
//! `(a − p, b − p)`, zero where the shift leaves the image, for every image of the panel:
//! `col[(i·k + a)·k + b][n·h·w + r·w + s] = x_n[i][r + a − p][s + b − p]`. Then the convolution of
//! the panel with a `(c_out, ci·k²)` kernel matrix `W` is the GEMM `W · col`.
//!
//! Each channel is first copied into rows padded with `p` zeros on both sides, so that every row
//! segment of a tap is one copy of `w` entries; for the common widths (1, 2, 4, …, 32) that copy
//! has a compile-time length and compiles to a few vector moves instead of a `memcpy` call with
//! zero edges per segment (the segments are short: 8 or 16 entries on LipConvnet's maps).

use crate::real::Real;

/// Writes the im2col matrix of `ci` channels of `nb` images into `col`, row-major with rows of
/// `nb·h·w` entries. `src(i, n)` is channel `i` of image `n` (`h·w` entries, row-major).
///
/// # Panics
/// If `col` is shorter than `ci·k²·nb·h·w` or a source slice is shorter than `h·w`.
pub(crate) fn im2col<'s, T: Real>(
    src: impl Fn(usize, usize) -> &'s [T],
    (ci, nb): (usize, usize),
    (h, w, k): (usize, usize, usize),
    col: &mut [T],
) {
    let hw = h * w;
    let ncol = nb * hw;
    assert!(
        col.len() >= ci * k * k * ncol,
        "im2col: buffer of {} for {ci} channels, k={k}, {ncol} columns",
        col.len()
    );
    // Widths with a compile-time copy length (inline vector moves instead of memcpy calls).
    match w {
        1 => taps::<T, 1>(src, (ci, nb), (h, k), col),
        2 => taps::<T, 2>(src, (ci, nb), (h, k), col),
        4 => taps::<T, 4>(src, (ci, nb), (h, k), col),
        8 => taps::<T, 8>(src, (ci, nb), (h, k), col),
        16 => taps::<T, 16>(src, (ci, nb), (h, k), col),
        32 => taps::<T, 32>(src, (ci, nb), (h, k), col),
        _ => taps_any(src, (ci, nb), (h, w, k), col),
    }
}

/// [`im2col`] for images of width `W`: each channel is first copied into rows padded with `p`
/// zeros on both sides, so every tap's row segment is one fixed-length copy.
fn taps<'s, T: Real, const W: usize>(
    src: impl Fn(usize, usize) -> &'s [T],
    (ci, nb): (usize, usize),
    (h, k): (usize, usize),
    col: &mut [T],
) {
    let (p, hw) = (k / 2, h * W);
    let ncol = nb * hw;
    let wp = W + 2 * p;
    let mut padded = vec![T::zero(); h * wp];
    for i in 0..ci {
        for n in 0..nb {
            let x = &src(i, n)[..hw];
            for (prow, xrow) in padded.chunks_exact_mut(wp).zip(x.chunks_exact(W)) {
                prow[p..p + W].copy_from_slice(xrow);
            }
            for a in 0..k {
                for b in 0..k {
                    let dst = &mut col[((i * k + a) * k + b) * ncol + n * hw..][..hw];
                    for (r, d) in dst.chunks_exact_mut(W).enumerate() {
                        let d: &mut [T; W] = d.try_into().expect("W entries");
                        let sr = (r + a).wrapping_sub(p);
                        if sr < h {
                            let s: &[T; W] =
                                padded[sr * wp + b..][..W].try_into().expect("W entries");
                            *d = *s;
                        } else {
                            *d = [T::zero(); W];
                        }
                    }
                }
            }
        }
    }
}

/// [`im2col`] for any width: row segments copied with their zero edges.
fn taps_any<'s, T: Real>(
    src: impl Fn(usize, usize) -> &'s [T],
    (ci, nb): (usize, usize),
    (h, w, k): (usize, usize, usize),
    col: &mut [T],
) {
    let hw = h * w;
    let ncol = nb * hw;
    let p = k / 2;
    for i in 0..ci {
        for a in 0..k {
            for b in 0..k {
                let row = &mut col[((i * k + a) * k + b) * ncol..][..ncol];
                for n in 0..nb {
                    let x = &src(i, n)[..hw];
                    shifted(
                        x,
                        (h, w),
                        (a as isize - p as isize, b as isize - p as isize),
                        &mut row[n * hw..][..hw],
                    );
                }
            }
        }
    }
}

/// `d[r·w + s] = x[(r + dr)·w + (s + ds)]`, zero outside the `h × w` image.
fn shifted<T: Real>(x: &[T], (h, w): (usize, usize), (dr, ds): (isize, isize), d: &mut [T]) {
    let zero = T::zero();
    // columns s with 0 ≤ s + ds < w: [lo, hi)
    let lo = (-ds).clamp(0, w as isize) as usize;
    let hi = (w as isize - ds).clamp(0, w as isize) as usize;
    for r in 0..h {
        let dst = &mut d[r * w..][..w];
        let sr = r as isize + dr;
        if sr < 0 || sr >= h as isize || lo >= hi {
            dst.fill(zero);
            continue;
        }
        let srow = &x[sr as usize * w..][..w];
        dst[..lo].fill(zero);
        let off = (lo as isize + ds) as usize;
        dst[lo..hi].copy_from_slice(&srow[off..off + (hi - lo)]);
        dst[hi..].fill(zero);
    }
}

/// Copies `c` channels of `nb` images into a `(c, nb·hw)` row-major panel:
/// `panel[i][n·hw + q] = src(i, n)[q]`.
pub(crate) fn gather_panel<'s, T: Real>(
    src: impl Fn(usize, usize) -> &'s [T],
    (c, nb, hw): (usize, usize, usize),
    panel: &mut [T],
) {
    for i in 0..c {
        for n in 0..nb {
            panel[(i * nb + n) * hw..][..hw].copy_from_slice(&src(i, n)[..hw]);
        }
    }
}

/// Copies a `(c, nb·hw)` row-major panel out to per-image group slices (`c·hw` each, channel
/// major): `outs[n][i·hw + q] = panel[i][n·hw + q]`.
pub(crate) fn scatter_panel<T: Real>(panel: &[T], (c, hw): (usize, usize), outs: &mut [&mut [T]]) {
    let nb = outs.len();
    for (n, out) in outs.iter_mut().enumerate() {
        for i in 0..c {
            out[i * hw..][..hw].copy_from_slice(&panel[(i * nb + n) * hw..][..hw]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn im2col_rows_are_zero_padded_shifts() {
        // one channel, one 3×4 image with entries 1..12, k = 3
        let x: Vec<f64> = (1..=12).map(f64::from).collect();
        let mut col = vec![f64::NAN; 9 * 12];
        im2col(|_, _| &x, (1, 1), (3, 4, 3), &mut col);
        // tap (a, b) = (0, 0): shift (−1, −1)
        assert_eq!(
            &col[..12],
            &[0., 0., 0., 0., 0., 1., 2., 3., 0., 5., 6., 7.]
        );
        // centre tap = the image
        assert_eq!(&col[4 * 12..5 * 12], x.as_slice());
        // tap (2, 2): shift (+1, +1)
        assert_eq!(
            &col[8 * 12..],
            &[6., 7., 8., 0., 10., 11., 12., 0., 0., 0., 0., 0.]
        );
    }

    #[test]
    fn im2col_wider_kernel_than_image_is_all_zero_at_the_far_taps() {
        let x = [1.0f32, 2.0];
        let mut col = vec![f32::NAN; 25 * 2];
        im2col(|_, _| &x, (1, 1), (1, 2, 5), &mut col);
        // tap (2, 0): shift (0, −2) leaves the 1×2 image entirely
        assert_eq!(&col[10..12], &[0.0, 0.0]);
        assert_eq!(&col[(2 * 5 + 2) * 2..][..2], &x); // centre
        assert_eq!(&col[(2 * 5 + 3) * 2..][..2], &[2.0, 0.0]);
    }

    #[test]
    fn panels_round_trip() {
        let imgs: Vec<Vec<f64>> = (0..3)
            .map(|n| (0..8).map(|q| (n * 10 + q) as f64).collect())
            .collect();
        // 2 channels of 4 pixels per image
        let mut panel = vec![0.0; 2 * 3 * 4];
        gather_panel(|i, n| &imgs[n][i * 4..], (2, 3, 4), &mut panel);
        assert_eq!(&panel[..4], &[0., 1., 2., 3.]);
        assert_eq!(&panel[12..16], &[4., 5., 6., 7.]);
        let mut back: Vec<Vec<f64>> = vec![vec![0.0; 8]; 3];
        let mut outs: Vec<&mut [f64]> = back.iter_mut().map(|v| v.as_mut_slice()).collect();
        scatter_panel(&panel, (2, 4), &mut outs);
        assert_eq!(back, imgs);
    }
}
