//! The convolution backward pass: the input gradient is the forward pass of the adjoint
//! convolution (`dX = conv2d(dY, convᵀ(W))`), the kernel gradient
//! `dW_G = Σ_panels dY_G · col(x_G)ᵀ` is accumulated per (reduction chunk, group) and the chunks
//! are summed in order.

use crate::kernels::claims::par_claimed;
use crate::kernels::conv::forward::forward_impl;
use crate::kernels::conv::im2col::{gather_panel, im2col};
use crate::kernels::conv::{
    ConvGeom, Tiling, check_shape, conv_transpose_kernel, gemm, inner_par, workers,
};
use crate::kernels::pool::PoolVec;
use crate::real::Real;
use crate::tensor::Tensor;
use faer::{Accum, MatMut, MatRef, Par};

/// Gradients of `y = conv2d(x, w, groups)` given `dy` (shape of `y`): returns
/// `(dx, dw)` with `dx = conv2d(dy, convᵀ(w))` (the adjoint convolution,
/// [`conv_transpose_kernel`]) and `dw[o, i, a, b] = Σ_{n,r,s} dy[n, o, r, s] ·
/// x[n, G(o)·c_in/g + i, r + a − p, s + b − p]`. Bitwise the same for any thread count.
///
/// # Panics
/// If the shapes do not fit (names `conv2d_backward` and the shapes).
pub fn conv2d_backward<T: Real>(
    x: &Tensor<T>,
    w: &Tensor<T>,
    groups: usize,
    dy: &Tensor<T>,
    par: Par,
) -> (Tensor<T>, Tensor<T>) {
    let mut dx = Tensor::zeros(x.shape());
    let mut dw = Tensor::zeros(w.shape());
    backward_impl(
        "conv2d_backward",
        (x, w, groups, dy),
        Some(&mut dx),
        Some(&mut dw),
        par,
    );
    (dx, dw)
}

/// [`conv2d_backward`] writing into caller-provided gradients (every element overwritten); pass
/// `None` for a gradient that is not needed, and its work is skipped. Scratch comes from
/// per-thread pools and does not grow with the batch.
///
/// # Panics
/// If the shapes do not fit, or `dx` / `dw` do not have the shapes of `x` / `w` (names
/// `conv2d_backward_into` and the shapes).
pub fn conv2d_backward_into<T: Real>(
    (x, w, groups): (&Tensor<T>, &Tensor<T>, usize),
    dy: &Tensor<T>,
    dx: Option<&mut Tensor<T>>,
    dw: Option<&mut Tensor<T>>,
    par: Par,
) {
    backward_impl("conv2d_backward_into", (x, w, groups, dy), dx, dw, par);
}

type Inputs<'a, T> = (&'a Tensor<T>, &'a Tensor<T>, usize, &'a Tensor<T>);

fn backward_impl<T: Real>(
    op: &str,
    (x, w, groups, dy): Inputs<'_, T>,
    dx: Option<&mut Tensor<T>>,
    dw: Option<&mut Tensor<T>>,
    par: Par,
) {
    let g = ConvGeom::of(op, x.shape(), w.shape(), groups);
    let batch = x.shape()[0];
    check_shape(op, "output gradient", dy, &g.output_shape(batch));
    if let Some(dx) = dx {
        check_shape(op, "input gradient", dx, x.shape());
        let wt = conv_transpose_kernel(w, groups);
        forward_impl(
            &g.transposed(),
            batch,
            dy.data(),
            wt.data(),
            dx.data_mut(),
            par,
        );
    }
    if let Some(dw) = dw {
        check_shape(op, "kernel gradient", dw, w.shape());
        weight_grad(&g, batch, x.data(), dy.data(), dw.data_mut(), par);
    }
}

/// `dw = Σ_n dY_n · col(x_n)ᵀ` per group, in fixed reduction chunks summed in chunk order.
pub(crate) fn weight_grad<T: Real>(
    g: &ConvGeom,
    batch: usize,
    x: &[T],
    dy: &[T],
    dw: &mut [T],
    par: Par,
) {
    if batch == 0 {
        dw.fill(T::zero());
        return;
    }
    let kn = dw.len();
    let t = Tiling::new(batch, g, kn);
    let (cig, cog, hw, kc) = (g.cin_g(), g.cout_g(), g.hw(), g.col_rows());
    let mut extra = PoolVec::<T>::new((t.chunks - 1) * kn);
    let items: Vec<(usize, &mut [T])> = {
        let parts = std::iter::once(&mut *dw).chain(extra.chunks_mut(kn));
        parts
            .flat_map(|part| part.chunks_mut(cog * kc))
            .enumerate()
            .collect()
    };
    let cols = t.nb * hw;
    let init = || {
        let panel = if t.nb > 1 { cog * cols } else { 0 };
        (PoolVec::<T>::new(kc * cols), PoolVec::<T>::new(panel))
    };
    let inner = inner_par(items.len(), par);
    par_claimed(items, workers(par), init, |(col, dyp), _, (it, part)| {
        let (r, grp) = (it / g.groups, it % g.groups);
        part.fill(T::zero());
        for p in t.chunk(r) {
            let (n0, nb) = t.panel(p);
            let ncol = nb * hw;
            let xs = |i: usize, n: usize| &x[((n0 + n) * g.c_in + grp * cig + i) * hw..][..hw];
            im2col(xs, (cig, nb), (g.h, g.w, g.k), col);
            let dys = |o: usize, n: usize| &dy[((n0 + n) * g.c_out + grp * cog + o) * hw..][..hw];
            let dyv = if nb == 1 {
                MatRef::from_row_major_slice(
                    &dy[(n0 * g.c_out + grp * cog) * hw..][..cog * hw],
                    cog,
                    hw,
                )
            } else {
                gather_panel(dys, (cog, nb, hw), dyp);
                MatRef::from_row_major_slice(&dyp[..cog * ncol], cog, ncol)
            };
            let colv = MatRef::from_row_major_slice(&col[..kc * ncol], kc, ncol);
            let dst = MatMut::from_row_major_slice_mut(part, cog, kc);
            gemm(dst, Accum::Add, dyv, colv.transpose(), T::one(), inner);
        }
    });
    for r in 1..t.chunks {
        let src = &extra[(r - 1) * kn..][..kn];
        dw.iter_mut().zip(src).for_each(|(a, &b)| *a += b);
    }
}
