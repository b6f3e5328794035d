//! Fast 2-D convolutions on NCHW `(batch, channels, h, w)` tensors: the grouped convolution
//! (stride 1, zero padding `k/2` that keeps the size, odd square kernels), its backward pass,
//! and the truncated convolution exponential `T_t(L) x = Σ_{i≤t} L^{⋆i} x / i!` (Definition 6.1)
//! with its backward, plus the slow naive references every fast path is tested against.
//!
//! **Convention.** A kernel `W` of shape `(c_out, c_in/g, k, k)` with `g` groups computes the
//! cross-correlation (PyTorch's `F.conv2d(x, W, padding=k//2, groups=g)`)
//!
//! ```text
//! y[n, o, r, s] = Σ_{i, a, b} W[o, i, a, b] · x[n, G(o)·c_in/g + i, r + a − p, s + b − p],
//! ```
//!
//! with `p = k/2`, `G(o) = ⌊o / (c_out/g)⌋` the group of output channel `o`, and `x = 0` outside
//! the image. Its adjoint is the same convolution of the output with the kernel
//! [`conv_transpose_kernel`] (`convᵀ`: spatially flipped, input and output channels swapped
//! within each group), so `x ↦ conv2d(x, L)` has a skew-symmetric Jacobian when
//! `L = M − convᵀ(M)`.
//!
//! # Design
//! - **Lowering.** For one group `G` and a *panel* of `nb` consecutive images, the convolution is
//!   one GEMM `Y_G = W_G · col` with `W_G` the `(c_out/g) × (c_in/g)·k²` rows of the kernel (its
//!   row-major storage as it is) and `col` the `(c_in/g)·k² × nb·h·w` im2col matrix of the group's
//!   input channels (module `im2col`). Every product is faer `matmul` calls with `Par::Seq`: one
//!   call, or one per fixed tile of 64 output rows for products with at least 128 rows; when a
//!   call has fewer items than threads, the tiles of each product run in parallel.
//! - **Panels.** A panel holds `⌈256 / (h·w)⌉` images (at least 256 pixels per GEMM, so an 8×8
//!   map still gives faer a wide product and a 1×1 map a batch-wide one), capped by the batch.
//!   With one image per panel the GEMM writes the NCHW output in place; otherwise it writes a
//!   scratch panel that is copied out. The panel size depends only on the shapes.
//! - **Parallelism** is over (panel, group) items on the current rayon pool, handed out through
//!   `kernels::claims` (a worker keeps the same items from call to call); each worker has its own
//!   scratch (im2col matrix and panels) from the thread's buffer pool (`kernels::pool`), sized by
//!   the panel, never by the batch. Items never share output, so the results are bitwise
//!   identical for any number of threads.
//! - **Weight gradients** are sums over the batch. They are accumulated per (reduction chunk,
//!   group) in a fixed number of partial kernels (at most 16 chunks of consecutive panels, fewer
//!   for large kernels), then summed in chunk order. The chunking depends only on the shapes,
//!   so the rounding does too.
//! - **Convolution exponential.** One item runs the whole series for its panel and group in
//!   cache: `t` im2col + GEMM steps `u_i = L_G · col(u_{i−1}) / i`, accumulated into the output.
//!   A saving forward writes `u_1 … u_{t−1}` into a buffer laid out by item. The backward runs
//!   the adjoint recursion `g_t = dY`, `g_{i−1} = dY + convᵀ(L) ⋆ g_i / i` (so `dX = T_t(Lᵀ) dY`;
//!   for a skew `L`, `Lᵀ = −L` and the adjoint of `T_t(L)` is `T_t(−L)`), and accumulates
//!   `dL += g_i · col(u_{i−1})ᵀ / i` per reduction chunk.
//! - No SIMD or `unsafe` code here: the arithmetic is faer's, the rest are copies.

mod backward;
mod exp;
mod forward;
mod im2col;
mod reference;

pub use backward::{conv2d_backward, conv2d_backward_into};
pub use exp::{
    ExpConvSaved, exp_conv_backward, exp_conv_backward_into, exp_conv_forward,
    exp_conv_forward_into, exp_conv_forward_saved, exp_conv_forward_saved_into,
};
pub use forward::{conv2d_forward, conv2d_forward_into};
pub use reference::{conv2d_reference, exp_conv_reference};

use crate::error::{Error, Result};
use crate::real::Real;
use crate::tensor::Tensor;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

/// The geometry of a grouped convolution on `h × w` images: `c_in → c_out` channels, an odd
/// `k × k` kernel, `groups` groups (each maps `c_in/g` input channels to `c_out/g` outputs),
/// stride 1 and zero padding `k/2` (output size = input size).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvGeom {
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Image height.
    pub h: usize,
    /// Image width.
    pub w: usize,
    /// Kernel size (odd).
    pub k: usize,
    /// Number of groups (divides `c_in` and `c_out`).
    pub groups: usize,
}

impl ConvGeom {
    /// A validated geometry.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the values if a size is 0, `k` is even, or `groups` does
    /// not divide both channel counts.
    pub fn new(
        c_in: usize,
        c_out: usize,
        h: usize,
        w: usize,
        k: usize,
        groups: usize,
    ) -> Result<Self> {
        let g = Self {
            c_in,
            c_out,
            h,
            w,
            k,
            groups,
        };
        match g.problem() {
            None => Ok(g),
            Some(p) => Err(Error::InvalidArgument(format!("convolution: {p}"))),
        }
    }

    /// What is wrong with the geometry, if anything.
    fn problem(&self) -> Option<String> {
        let Self {
            c_in,
            c_out,
            h,
            w,
            k,
            groups,
        } = *self;
        if c_in == 0 || c_out == 0 || h == 0 || w == 0 {
            return Some(format!(
                "empty sizes: c_in={c_in}, c_out={c_out}, h={h}, w={w}"
            ));
        }
        if k.is_multiple_of(2) {
            return Some(format!(
                "kernel size k={k} must be odd (zero padding k/2 keeps the size only for odd k)"
            ));
        }
        if groups == 0 || !c_in.is_multiple_of(groups) || !c_out.is_multiple_of(groups) {
            return Some(format!(
                "groups={groups} must divide c_in={c_in} and c_out={c_out}"
            ));
        }
        None
    }

    /// The geometry of `conv2d(x, w, groups)` from the tensor shapes; panics naming `op` and the
    /// shapes unless `x` is `(batch, c_in, h, w)`, `w` is `(c_out, c_in/groups, k, k)` with `k`
    /// odd and `groups` dividing both channel counts.
    pub(crate) fn of(op: &str, x: &[usize], w: &[usize], groups: usize) -> Self {
        let fail = |why: &str| -> ! {
            panic!("{op}: {why}: input of shape {x:?}, kernel of shape {w:?}, groups {groups}")
        };
        let ([_, c_in, h, wd], [c_out, cig, k1, k2]) = (x, w) else {
            fail("need a 4-D input (batch, c_in, h, w) and a 4-D kernel (c_out, c_in/groups, k, k)")
        };
        if k1 != k2 {
            fail("the kernel is not square");
        }
        if groups == 0 || cig * groups != *c_in {
            fail("kernel input channels times groups differ from the input channels");
        }
        let g = Self {
            c_in: *c_in,
            c_out: *c_out,
            h: *h,
            w: *wd,
            k: *k1,
            groups,
        };
        if let Some(p) = g.problem() {
            fail(&p);
        }
        g
    }

    /// Zero padding `k/2` on each side.
    pub fn pad(&self) -> usize {
        self.k / 2
    }

    /// Input channels per group.
    pub fn cin_g(&self) -> usize {
        self.c_in / self.groups
    }

    /// Output channels per group.
    pub fn cout_g(&self) -> usize {
        self.c_out / self.groups
    }

    /// Pixels per image `h·w`.
    pub fn hw(&self) -> usize {
        self.h * self.w
    }

    /// Rows of a group's im2col matrix, `(c_in/g)·k²` (the inner GEMM dimension).
    pub fn col_rows(&self) -> usize {
        self.cin_g() * self.k * self.k
    }

    /// Kernel shape `[c_out, c_in/g, k, k]`.
    pub fn kernel_shape(&self) -> [usize; 4] {
        [self.c_out, self.cin_g(), self.k, self.k]
    }

    /// Input shape `[batch, c_in, h, w]`.
    pub fn input_shape(&self, batch: usize) -> [usize; 4] {
        [batch, self.c_in, self.h, self.w]
    }

    /// Output shape `[batch, c_out, h, w]`.
    pub fn output_shape(&self, batch: usize) -> [usize; 4] {
        [batch, self.c_out, self.h, self.w]
    }

    /// The geometry of the adjoint convolution (`c_in` and `c_out` swapped).
    pub(crate) fn transposed(&self) -> Self {
        Self {
            c_in: self.c_out,
            c_out: self.c_in,
            ..*self
        }
    }
}

/// `convᵀ(W)`: the kernel of the adjoint convolution, shape `(c_in, c_out/g, k, k)` for a
/// `(c_out, c_in/g, k, k)` kernel with `groups` groups:
/// `convᵀ(W)[G·c_in/g + i, o, a, b] = W[G·c_out/g + o, i, k−1−a, k−1−b]` (spatial flip, input and
/// output channels swapped within each group `G`). `conv2d(·, convᵀ(W))` is the adjoint of
/// `conv2d(·, W)` for zero padding `k/2`, and `convᵀ(convᵀ(W)) = W`.
///
/// # Panics
/// If `w` is not 4-D with a square kernel or `groups` does not divide `c_out`; names the shape.
pub fn conv_transpose_kernel<T: Real>(w: &Tensor<T>, groups: usize) -> Tensor<T> {
    let &[c_out, cig, k, k2] = w.shape() else {
        panic!(
            "conv_transpose_kernel: need a 4-D kernel (c_out, c_in/groups, k, k), got shape {:?}",
            w.shape()
        )
    };
    assert!(
        k == k2 && groups > 0 && c_out.is_multiple_of(groups),
        "conv_transpose_kernel: kernel of shape {:?} with groups {groups} (need a square kernel and groups dividing c_out)",
        w.shape()
    );
    let cog = c_out / groups;
    let kk = k * k;
    let src = w.data();
    let mut out = vec![T::zero(); src.len()];
    // tiles of TILE × TILE (o, i) pairs keep both the reads and the strided writes in cache
    const TILE: usize = 16;
    for g in 0..groups {
        for o0 in (0..cog).step_by(TILE) {
            for i0 in (0..cig).step_by(TILE) {
                for o in o0..(o0 + TILE).min(cog) {
                    for i in i0..(i0 + TILE).min(cig) {
                        let s = &src[((g * cog + o) * cig + i) * kk..][..kk];
                        let d = &mut out[((g * cig + i) * cog + o) * kk..][..kk];
                        d.iter_mut().zip(s.iter().rev()).for_each(|(v, &x)| *v = x);
                    }
                }
            }
        }
    }
    Tensor::from_vec(&[groups * cig, cog, k, k], out).expect("conv_transpose_kernel: sizes")
}

/// Fewest pixels in one GEMM panel; a panel holds `⌈PANEL_PIXELS / (h·w)⌉` images.
const PANEL_PIXELS: usize = 256;

/// Most reduction chunks (partial weight gradients) of a backward pass.
const MAX_PARTIALS: usize = 16;

/// Most elements in all partial weight gradients of a backward pass together.
const PARTIAL_BUDGET: usize = 1 << 22;

/// How a batch is cut: `nb` images per panel, `panels` panels (the last may be shorter), and
/// `chunks` reduction chunks of consecutive panels. Depends only on the batch and the geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tiling {
    pub batch: usize,
    pub nb: usize,
    pub panels: usize,
    pub chunks: usize,
}

impl Tiling {
    pub fn new(batch: usize, geom: &ConvGeom, kernel_numel: usize) -> Self {
        let nb = PANEL_PIXELS.div_ceil(geom.hw()).clamp(1, batch.max(1));
        let panels = batch.div_ceil(nb);
        let chunks = (PARTIAL_BUDGET / kernel_numel.max(1))
            .clamp(1, MAX_PARTIALS)
            .min(panels)
            .max(1);
        Self {
            batch,
            nb,
            panels,
            chunks,
        }
    }

    /// First image and image count of panel `p`.
    pub fn panel(&self, p: usize) -> (usize, usize) {
        let n0 = p * self.nb;
        (n0, self.nb.min(self.batch - n0))
    }

    /// Panels of reduction chunk `r`: `[r·panels/chunks, (r+1)·panels/chunks)`.
    pub fn chunk(&self, r: usize) -> std::ops::Range<usize> {
        r * self.panels / self.chunks..(r + 1) * self.panels / self.chunks
    }
}

/// The parallelism inside each GEMM for a call with `items` work items: `Par::Seq` when there
/// are at least as many items as workers (the items are spread instead), else `par`, so a call
/// with fewer (panel, group) items than threads still uses them all (through [`gemm`]).
pub(crate) fn inner_par(items: usize, par: Par) -> Par {
    if items >= workers(par) { Par::Seq } else { par }
}

/// Rows of one tile of [`gemm`].
const ROW_TILE: usize = 64;

/// `dst = alpha·lhs·rhs` (or `dst += …` with [`Accum::Add`]), as faer products of fixed row tiles
/// of [`ROW_TILE`] rows when `dst` has at least `2·ROW_TILE` rows, run in parallel when `par` is
/// not `Par::Seq`. The tiling depends only on the shapes, so the result is bitwise the same for
/// any `par` (faer's own threading gave no speedup on these products).
pub(crate) fn gemm<T: Real>(
    dst: MatMut<'_, T>,
    accum: Accum,
    lhs: MatRef<'_, T>,
    rhs: MatRef<'_, T>,
    alpha: T,
    par: Par,
) {
    let m = dst.nrows();
    if m < 2 * ROW_TILE {
        matmul(dst, accum, lhs, rhs, alpha, Par::Seq);
        return;
    }
    let mut tiles = Vec::with_capacity(m.div_ceil(ROW_TILE));
    let (mut rest, mut lrest) = (dst, lhs);
    while rest.nrows() > 0 {
        let r = ROW_TILE.min(rest.nrows());
        let (top, bottom) = rest.split_at_row_mut(r);
        let (ltop, lbottom) = lrest.split_at_row(r);
        tiles.push((top, ltop));
        (rest, lrest) = (bottom, lbottom);
    }
    let run = |(d, l): (MatMut<'_, T>, MatRef<'_, T>)| matmul(d, accum, l, rhs, alpha, Par::Seq);
    if matches!(par, Par::Seq) {
        tiles.into_iter().for_each(run);
    } else {
        tiles.into_par_iter().for_each(run);
    }
}

/// Number of rayon workers for `par` (1 for `Par::Seq`).
pub(crate) fn workers(par: Par) -> usize {
    if matches!(par, Par::Seq) {
        1
    } else {
        par.degree()
    }
}

/// Splits NCHW data with `c` channels (`groups` groups) into, for every image, one mutable slice
/// per group (`c/groups · hw` elements): `out[n][g]`.
pub(crate) fn split_images<T>(
    data: &mut [T],
    c: usize,
    hw: usize,
    groups: usize,
) -> Vec<Vec<&mut [T]>> {
    let per_group = (c / groups) * hw;
    data.chunks_mut(c * hw)
        .map(|img| img.chunks_mut(per_group).collect())
        .collect()
}

/// Distributes the per-image group slices of NCHW data with `c` channels over work items:
/// `items[item_of(n)·groups + g]` receives image `n`'s slice of group `g` (in image order).
pub(crate) fn group_items<T>(
    data: &mut [T],
    (c, hw, groups): (usize, usize, usize),
    n_items: usize,
    item_of: impl Fn(usize) -> usize,
) -> Vec<Vec<&mut [T]>> {
    let mut items: Vec<Vec<&mut [T]>> = (0..n_items * groups).map(|_| Vec::new()).collect();
    for (n, gs) in split_images(data, c, hw, groups).into_iter().enumerate() {
        let it = item_of(n);
        for (g, s) in gs.into_iter().enumerate() {
            items[it * groups + g].push(s);
        }
    }
    items
}

/// Checks that a caller-provided tensor has `shape`; panics naming `op`, `what` and the shapes.
pub(crate) fn check_shape<T: Real>(op: &str, what: &str, t: &Tensor<T>, shape: &[usize]) {
    assert!(
        t.shape() == shape,
        "{op}: {what} of shape {:?} where {shape:?} is needed",
        t.shape()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn geometry_errors_name_the_values() {
        let even = ConvGeom::new(4, 4, 5, 5, 2, 1).unwrap_err().to_string();
        assert!(even.contains("k=2"), "{even}");
        let groups = ConvGeom::new(6, 4, 5, 5, 3, 4).unwrap_err().to_string();
        assert!(
            groups.contains("groups=4") && groups.contains("c_in=6"),
            "{groups}"
        );
        assert!(ConvGeom::new(4, 8, 3, 7, 5, 2).is_ok());
    }

    #[test]
    fn transpose_kernel_is_an_involution_with_the_documented_entries() {
        let mut rng = StdRng::seed_from_u64(3);
        let w = Tensor::<f64>::randn(&[6, 2, 3, 3], 1.0, &mut rng); // c_out 6, c_in 4, 2 groups
        let t = conv_transpose_kernel(&w, 2);
        assert_eq!(t.shape(), &[4, 3, 3, 3]);
        // convᵀ(W)[G·2 + i, o, a, b] = W[G·3 + o, i, 2−a, 2−b]
        let at = |x: &Tensor<f64>, s: [usize; 4], i: [usize; 4]| {
            x.data()[((i[0] * s[1] + i[1]) * s[2] + i[2]) * s[3] + i[3]]
        };
        assert_eq!(
            at(&t, [4, 3, 3, 3], [3, 2, 0, 1]),
            at(&w, [6, 2, 3, 3], [5, 1, 2, 1])
        );
        assert_eq!(conv_transpose_kernel(&t, 2), w);
    }

    #[test]
    fn tiling_depends_on_shapes_only_and_covers_the_batch() {
        let g = ConvGeom::new(8, 8, 8, 8, 3, 1).unwrap();
        let t = Tiling::new(10, &g, 8 * 8 * 9);
        assert_eq!((t.nb, t.panels), (4, 3));
        assert_eq!(t.panel(2), (8, 2));
        let covered: Vec<usize> = (0..t.chunks).flat_map(|r| t.chunk(r)).collect();
        assert_eq!(covered, (0..t.panels).collect::<Vec<_>>());
        // a huge kernel gets a single partial
        assert_eq!(Tiling::new(512, &g, PARTIAL_BUDGET).chunks, 1);
    }
}
