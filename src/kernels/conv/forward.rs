//! The convolution forward pass: per (panel, group) item, im2col and one faer GEMM.

use crate::kernels::claims::par_claimed;
use crate::kernels::conv::im2col::{im2col, scatter_panel};
use crate::kernels::conv::{ConvGeom, Tiling, check_shape, gemm, group_items, inner_par, workers};
use crate::kernels::pool::PoolVec;
use crate::real::Real;
use crate::tensor::Tensor;
use faer::{Accum, MatMut, MatRef, Par};

/// `y = conv2d(x, w, groups)` for `x` of shape `(batch, c_in, h, w)` and a kernel `w` of shape
/// `(c_out, c_in/groups, k, k)` (odd `k`, stride 1, zero padding `k/2`; module docs of
/// [`crate::kernels::conv`]). `par = Par::Seq` runs on the calling thread; `Par::Rayon(_)`
/// spreads (panel, group) items over the current rayon pool, with bitwise the same result.
///
/// # Panics
/// If the shapes do not fit (names `conv2d_forward` and the shapes).
pub fn conv2d_forward<T: Real>(x: &Tensor<T>, w: &Tensor<T>, groups: usize, par: Par) -> Tensor<T> {
    let g = ConvGeom::of("conv2d_forward", x.shape(), w.shape(), groups);
    let batch = x.shape()[0];
    let mut y = Tensor::zeros(&g.output_shape(batch));
    forward_impl(&g, batch, x.data(), w.data(), y.data_mut(), par);
    y
}

/// [`conv2d_forward`] writing into a caller-provided `(batch, c_out, h, w)` tensor `y` (every
/// element is overwritten): the allocation-free entry point (scratch comes from per-thread pools
/// and does not grow with the batch).
///
/// # Panics
/// If the shapes do not fit or `y` has the wrong shape (names `conv2d_forward_into` and the
/// shapes).
pub fn conv2d_forward_into<T: Real>(
    x: &Tensor<T>,
    w: &Tensor<T>,
    groups: usize,
    y: &mut Tensor<T>,
    par: Par,
) {
    let op = "conv2d_forward_into";
    let g = ConvGeom::of(op, x.shape(), w.shape(), groups);
    let batch = x.shape()[0];
    check_shape(op, "output", y, &g.output_shape(batch));
    forward_impl(&g, batch, x.data(), w.data(), y.data_mut(), par);
}

/// The forward pass on raw NCHW data (shapes already checked).
pub(crate) fn forward_impl<T: Real>(
    g: &ConvGeom,
    batch: usize,
    x: &[T],
    w: &[T],
    y: &mut [T],
    par: Par,
) {
    if batch == 0 {
        return;
    }
    let t = Tiling::new(batch, g, w.len());
    let (cig, cog, hw, kc) = (g.cin_g(), g.cout_g(), g.hw(), g.col_rows());
    let items: Vec<_> = group_items(y, (g.c_out, hw, g.groups), t.panels, |n| n / t.nb)
        .into_iter()
        .enumerate()
        .collect();
    let cols = t.nb * hw;
    let init = || {
        let panel = if t.nb > 1 { cog * cols } else { 0 };
        (PoolVec::<T>::new(kc * cols), PoolVec::<T>::new(panel))
    };
    let inner = inner_par(items.len(), par);
    par_claimed(
        items,
        workers(par),
        init,
        |(col, panel), _, (it, mut outs)| {
            let (p, grp) = (it / g.groups, it % g.groups);
            let (n0, nb) = t.panel(p);
            let ncol = nb * hw;
            let src = |i: usize, n: usize| &x[((n0 + n) * g.c_in + grp * cig + i) * hw..][..hw];
            im2col(src, (cig, nb), (g.h, g.w, g.k), col);
            let wg = MatRef::from_row_major_slice(&w[grp * cog * kc..][..cog * kc], cog, kc);
            let rhs = MatRef::from_row_major_slice(&col[..kc * ncol], kc, ncol);
            if nb == 1 {
                let dst = MatMut::from_row_major_slice_mut(&mut outs[0][..cog * hw], cog, hw);
                gemm(dst, Accum::Replace, wg, rhs, T::one(), inner);
            } else {
                let dst = MatMut::from_row_major_slice_mut(&mut panel[..cog * ncol], cog, ncol);
                gemm(dst, Accum::Replace, wg, rhs, T::one(), inner);
                scatter_panel(&panel[..cog * ncol], (cog, hw), &mut outs);
            }
        },
    );
}
