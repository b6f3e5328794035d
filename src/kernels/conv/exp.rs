//! The truncated convolution exponential `y = T_t(L) x = Σ_{i=0}^{t} L^{⋆i} x / i!`
//! (Definition 6.1; `L^{⋆i}` is `i` applications of the grouped convolution with the kernel `L`
//! of shape `(c, c/g, k, k)`) and its backward pass.
//!
//! Forward: `u_0 = x`, `u_i = conv(u_{i−1}, L) / i`, `y = Σ u_i`. Backward, with `g_i = ∂/∂u_i`:
//! `g_t = dY`, `g_{i−1} = dY + convᵀ(L) ⋆ g_i / i`, `dX = g_0` (that is, `dX = T_t(Lᵀ) dY`), and
//! `dL = Σ_{i=1}^{t} wgrad(u_{i−1}, g_i) / i` where `wgrad(u, g)[o, j, a, b] =
//! Σ g[o, r, s] · u[G(o)·c/g + j, r + a − p, s + b − p]` is the kernel gradient of one
//! convolution. One (panel, group) item runs the whole recursion in cache (module docs of
//! [`crate::kernels::conv`]).

use crate::kernels::claims::par_claimed;
use crate::kernels::conv::im2col::{gather_panel, im2col, scatter_panel};
use crate::kernels::conv::{
    ConvGeom, Tiling, check_shape, conv_transpose_kernel, gemm, group_items, inner_par, workers,
};
use crate::kernels::pool::PoolVec;
use crate::real::Real;
use crate::tensor::Tensor;
use faer::{Accum, MatMut, MatRef, Par};

/// Checks `x` (`(batch, c, h, w)`) and a square grouped kernel `l` (`(c, c/g, k, k)`); panics
/// naming `op` and the shapes.
fn geometry(op: &str, x: &Tensor<impl Real>, l: &Tensor<impl Real>, groups: usize) -> ConvGeom {
    let g = ConvGeom::of(op, x.shape(), l.shape(), groups);
    assert!(
        g.c_out == g.c_in,
        "{op}: the exponential needs a square kernel (c, c/groups, k, k); input of shape {:?}, kernel of shape {:?}, groups {groups}",
        x.shape(),
        l.shape()
    );
    g
}

/// What [`exp_conv_forward_saved`] keeps for [`exp_conv_backward`]: the terms
/// `u_1, …, u_{t−1}` for the whole batch, laid out by (panel, group) item (`u_0` is the input,
/// which the backward is given again).
#[derive(Clone, Debug)]
pub struct ExpConvSaved<T> {
    geom: ConvGeom,
    batch: usize,
    terms: usize,
    data: PoolVec<T>,
}

impl<T> ExpConvSaved<T> {
    /// Batch size of the saved forward pass.
    pub fn batch(&self) -> usize {
        self.batch
    }
}

/// Where item (panel `p`, group `grp`) keeps its saved terms: `(terms − 1)` panels of
/// `c/g × nb_p·hw`, after all earlier items' (panel-major, group-minor).
fn saved_range(t: &Tiling, g: &ConvGeom, terms: usize, p: usize) -> (usize, usize) {
    let per_image = g.c_in * g.hw() * terms.saturating_sub(1);
    let (n0, nb) = t.panel(p);
    (n0 * per_image, nb * per_image / g.groups)
}

/// `y = T_t(L) x = Σ_{i=0}^{terms} L^{⋆i} x / i!` for `x` of shape `(batch, c, h, w)` and a
/// kernel `l` of shape `(c, c/groups, k, k)` (module docs). `terms = 0` gives `y = x`. Bitwise
/// the same for any thread count.
///
/// # Panics
/// If the shapes do not fit or the kernel is not square (names `exp_conv_forward` and the shapes).
pub fn exp_conv_forward<T: Real>(
    x: &Tensor<T>,
    l: &Tensor<T>,
    groups: usize,
    terms: usize,
    par: Par,
) -> Tensor<T> {
    let g = geometry("exp_conv_forward", x, l, groups);
    let mut y = Tensor::zeros(x.shape());
    forward_impl(&g, (x, l, terms), &mut y, false, par);
    y
}

/// [`exp_conv_forward`] writing into a caller-provided tensor of the input's shape (every
/// element overwritten). Scratch comes from per-thread pools and does not grow with the batch.
///
/// # Panics
/// If the shapes do not fit (names `exp_conv_forward_into` and the shapes).
pub fn exp_conv_forward_into<T: Real>(
    x: &Tensor<T>,
    l: &Tensor<T>,
    groups: usize,
    terms: usize,
    y: &mut Tensor<T>,
    par: Par,
) {
    let op = "exp_conv_forward_into";
    let g = geometry(op, x, l, groups);
    check_shape(op, "output", y, x.shape());
    forward_impl(&g, (x, l, terms), y, false, par);
}

/// [`exp_conv_forward`] that also returns the terms the backward pass needs.
///
/// # Panics
/// As [`exp_conv_forward`].
pub fn exp_conv_forward_saved<T: Real>(
    x: &Tensor<T>,
    l: &Tensor<T>,
    groups: usize,
    terms: usize,
    par: Par,
) -> (Tensor<T>, ExpConvSaved<T>) {
    let g = geometry("exp_conv_forward_saved", x, l, groups);
    let mut y = Tensor::zeros(x.shape());
    let saved = forward_impl(&g, (x, l, terms), &mut y, true, par);
    (y, saved)
}

/// [`exp_conv_forward_saved`] writing `y` into a caller-provided tensor of the input's shape.
///
/// # Panics
/// As [`exp_conv_forward_into`].
pub fn exp_conv_forward_saved_into<T: Real>(
    x: &Tensor<T>,
    l: &Tensor<T>,
    groups: usize,
    terms: usize,
    y: &mut Tensor<T>,
    par: Par,
) -> ExpConvSaved<T> {
    let op = "exp_conv_forward_saved_into";
    let g = geometry(op, x, l, groups);
    check_shape(op, "output", y, x.shape());
    forward_impl(&g, (x, l, terms), y, true, par)
}

/// Per-worker scratch: the im2col matrix and three `c/g × cols` panels.
struct Scratch<T> {
    col: PoolVec<T>,
    a: PoolVec<T>,
    b: PoolVec<T>,
    c: PoolVec<T>,
}

impl<T: Real> Scratch<T> {
    fn new(g: &ConvGeom, cols: usize) -> Self {
        let panel = g.cout_g() * cols;
        Self {
            col: PoolVec::new(g.col_rows() * cols),
            a: PoolVec::new(panel),
            b: PoolVec::new(panel),
            c: PoolVec::new(panel),
        }
    }
}

/// Where a term of the series lives while an item runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Loc {
    /// The input `x` (NCHW).
    X,
    /// Saved term `u_{j+1}`, slot `j` of the item's saved range.
    Saved(usize),
    /// Scratch panel `a`.
    A,
    /// Scratch panel `b`.
    B,
}

fn forward_impl<T: Real>(
    g: &ConvGeom,
    (x, l, terms): (&Tensor<T>, &Tensor<T>, usize),
    y: &mut Tensor<T>,
    save: bool,
    par: Par,
) -> ExpConvSaved<T> {
    let batch = x.shape()[0];
    let (c, cg, hw, kc) = (g.c_in, g.cin_g(), g.hw(), g.col_rows());
    let t = Tiling::new(batch.max(1), g, l.numel());
    let slots = if save { terms.saturating_sub(1) } else { 0 };
    let mut data = PoolVec::<T>::new(batch * c * hw * slots);
    if batch == 0 {
        return ExpConvSaved {
            geom: *g,
            batch,
            terms,
            data,
        };
    }
    let (xd, ld) = (x.data(), l.data());
    let outs = group_items(y.data_mut(), (c, hw, g.groups), t.panels, |n| n / t.nb);
    let mut saved: Vec<&mut [T]> = Vec::with_capacity(outs.len());
    {
        let mut rest: &mut [T] = &mut data;
        for p in 0..t.panels {
            let (_, nb) = t.panel(p);
            for _ in 0..g.groups {
                let (head, tail) = rest.split_at_mut(nb * cg * hw * slots);
                saved.push(head);
                rest = tail;
            }
        }
    }
    let items: Vec<_> = outs.into_iter().zip(saved).enumerate().collect();
    let init = || Scratch::<T>::new(g, t.nb * hw);
    let inner = inner_par(items.len(), par);
    par_claimed(items, workers(par), init, |s, _, (it, (mut outs, sv))| {
        let (p, grp) = (it / g.groups, it % g.groups);
        let (n0, nb) = t.panel(p);
        let (ncol, m) = (nb * hw, cg * nb * hw);
        let xs = |i: usize, n: usize| &xd[((n0 + n) * c + grp * cg + i) * hw..][..hw];
        let lg = MatRef::from_row_major_slice(&ld[grp * cg * kc..][..cg * kc], cg, kc);
        // The accumulator is the output itself for a one-image panel, else scratch panel c.
        let direct = nb == 1;
        if direct {
            gather_panel(xs, (cg, 1, hw), &mut outs[0][..m]);
        } else {
            gather_panel(xs, (cg, nb, hw), &mut s.c[..m]);
        }
        let mut prev = Loc::X;
        for i in 1..=terms {
            match prev {
                Loc::X => im2col(xs, (cg, nb), (g.h, g.w, g.k), &mut s.col),
                loc => {
                    let buf: &[T] = match loc {
                        Loc::Saved(j) => &sv[j * m..][..m],
                        Loc::A => &s.a[..m],
                        _ => &s.b[..m],
                    };
                    im2col(
                        |ch, n| &buf[(ch * nb + n) * hw..][..hw],
                        (cg, nb),
                        (g.h, g.w, g.k),
                        &mut s.col,
                    );
                }
            }
            let dst_loc = if i < terms && slots > 0 {
                Loc::Saved(i - 1)
            } else if prev == Loc::A {
                Loc::B
            } else {
                Loc::A
            };
            let dst: &mut [T] = match dst_loc {
                Loc::Saved(j) => &mut sv[j * m..][..m],
                Loc::A => &mut s.a[..m],
                _ => &mut s.b[..m],
            };
            let rhs = MatRef::from_row_major_slice(&s.col[..kc * ncol], kc, ncol);
            let alpha = T::one() / T::from_usize(i);
            gemm(
                MatMut::from_row_major_slice_mut(&mut *dst, cg, ncol),
                Accum::Replace,
                lg,
                rhs,
                alpha,
                inner,
            );
            let acc: &mut [T] = if direct {
                &mut outs[0][..m]
            } else {
                &mut s.c[..m]
            };
            acc.iter_mut().zip(dst.iter()).for_each(|(a, &d)| *a += d);
            prev = dst_loc;
        }
        if !direct {
            scatter_panel(&s.c[..m], (cg, hw), &mut outs);
        }
    });
    ExpConvSaved {
        geom: *g,
        batch,
        terms,
        data,
    }
}

/// Gradients of `y = T_t(L) x` (see [`exp_conv_forward`]) given the forward's input `x`, what it
/// saved and `dy`: returns `(dx, dl)` with `dx = T_t(Lᵀ) dy` (`Lᵀ` the adjoint convolution,
/// [`conv_transpose_kernel`]; `T_t(−L) dy` for a skew `L`) and `dl = Σ_{i=1}^{t}
/// wgrad(u_{i−1}, g_i) / i` (module docs). Bitwise the same for any thread count.
///
/// # Panics
/// If the shapes do not fit, or `saved` is not from a saving forward of this geometry, batch and
/// number of terms (names `exp_conv_backward` and the shapes).
pub fn exp_conv_backward<T: Real>(
    (x, l, groups, terms): (&Tensor<T>, &Tensor<T>, usize, usize),
    saved: &ExpConvSaved<T>,
    dy: &Tensor<T>,
    par: Par,
) -> (Tensor<T>, Tensor<T>) {
    let mut dx = Tensor::zeros(x.shape());
    let mut dl = Tensor::zeros(l.shape());
    backward_impl(
        "exp_conv_backward",
        (x, l, groups, terms),
        saved,
        dy,
        (Some(&mut dx), Some(&mut dl)),
        par,
    );
    (dx, dl)
}

/// [`exp_conv_backward`] writing into caller-provided gradients (every element overwritten);
/// `None` skips a gradient's work. Scratch comes from per-thread pools; the partial kernel
/// gradients are at most 16 kernels, whatever the batch.
///
/// # Panics
/// As [`exp_conv_backward`], and if `dx` / `dl` do not have the shapes of `x` / `l`.
pub fn exp_conv_backward_into<T: Real>(
    (x, l, groups, terms): (&Tensor<T>, &Tensor<T>, usize, usize),
    saved: &ExpConvSaved<T>,
    dy: &Tensor<T>,
    dx: Option<&mut Tensor<T>>,
    dl: Option<&mut Tensor<T>>,
    par: Par,
) {
    backward_impl(
        "exp_conv_backward_into",
        (x, l, groups, terms),
        saved,
        dy,
        (dx, dl),
        par,
    );
}

type Grads<'a, T> = (Option<&'a mut Tensor<T>>, Option<&'a mut Tensor<T>>);

fn backward_impl<T: Real>(
    op: &str,
    (x, l, groups, terms): (&Tensor<T>, &Tensor<T>, usize, usize),
    saved: &ExpConvSaved<T>,
    dy: &Tensor<T>,
    (dx, dl): Grads<'_, T>,
    par: Par,
) {
    let g = geometry(op, x, l, groups);
    let batch = x.shape()[0];
    check_shape(op, "output gradient", dy, x.shape());
    assert!(
        saved.geom == g && saved.batch == batch && saved.terms == terms,
        "{op}: saved state of batch {} with {} terms for {:?} does not match a batch of {batch} with {terms} terms for {g:?}",
        saved.batch,
        saved.terms,
        saved.geom
    );
    if let Some(dx) = &dx {
        check_shape(op, "input gradient", dx, x.shape());
    }
    if let Some(dl) = &dl {
        check_shape(op, "kernel gradient", dl, l.shape());
    }
    let need_dx = dx.is_some();
    let (c, cg, hw, kc) = (g.c_in, g.cin_g(), g.hw(), g.col_rows());
    let kn = l.numel();
    let t = Tiling::new(batch.max(1), &g, kn);
    if batch == 0 || terms == 0 {
        if let Some(dx) = dx {
            dx.data_mut().copy_from_slice(dy.data());
        }
        if let Some(dl) = dl {
            dl.data_mut().fill(T::zero());
        }
        return;
    }
    let mut dl_data: Option<&mut [T]> = dl.map(|d| d.data_mut());
    let need_dl = dl_data.is_some();
    let lt = conv_transpose_kernel(l, groups);
    let (xd, dyd, ltd, sd) = (x.data(), dy.data(), lt.data(), &saved.data[..]);
    // Item (chunk r, group grp): its dx slices (one per image of the chunk) and its partial dl.
    let mut chunk_of = vec![0; t.panels];
    for r in 0..t.chunks {
        t.chunk(r).for_each(|p| chunk_of[p] = r);
    }
    let mut dx_items = match dx {
        Some(dx) => group_items(dx.data_mut(), (c, hw, g.groups), t.chunks, |n| {
            chunk_of[n / t.nb]
        }),
        None => (0..t.chunks * g.groups).map(|_| Vec::new()).collect(),
    };
    let mut extra = PoolVec::<T>::new(if need_dl { (t.chunks - 1) * kn } else { 0 });
    let mut dl_items: Vec<&mut [T]> = match dl_data.as_deref_mut() {
        Some(dl) => std::iter::once(dl)
            .chain(extra.chunks_mut(kn))
            .flat_map(|part| part.chunks_mut(cg * kc))
            .collect(),
        None => Vec::new(),
    };
    let items: Vec<_> = dx_items
        .drain(..)
        .enumerate()
        .map(|(it, outs)| {
            let part = if need_dl {
                Some(std::mem::take(&mut dl_items[it]))
            } else {
                None
            };
            (it, outs, part)
        })
        .collect();
    let init = || Scratch::<T>::new(&g, t.nb * hw);
    let inner = inner_par(items.len(), par);
    par_claimed(
        items,
        workers(par),
        init,
        |s, _, (it, mut outs, mut part)| {
            let (r, grp) = (it / g.groups, it % g.groups);
            if let Some(part) = part.as_deref_mut() {
                part.fill(T::zero());
            }
            let ltg = MatRef::from_row_major_slice(&ltd[grp * cg * kc..][..cg * kc], cg, kc);
            let first_image = t.panel(t.chunk(r).start).0;
            for p in t.chunk(r) {
                let (n0, nb) = t.panel(p);
                let (ncol, m) = (nb * hw, cg * nb * hw);
                let (s0, slen) = saved_range(&t, &g, terms, p);
                let sv = &sd[s0 + grp * slen..][..slen];
                let xs = |i: usize, n: usize| &xd[((n0 + n) * c + grp * cg + i) * hw..][..hw];
                let dys = |i: usize, n: usize| &dyd[((n0 + n) * c + grp * cg + i) * hw..][..hw];
                // dY as a panel (scratch c), and g_t = dY in scratch a.
                gather_panel(dys, (cg, nb, hw), &mut s.c[..m]);
                s.a[..m].copy_from_slice(&s.c[..m]);
                for i in (1..=terms).rev() {
                    let alpha = T::one() / T::from_usize(i);
                    if let Some(part) = part.as_deref_mut() {
                        if i == 1 {
                            im2col(xs, (cg, nb), (g.h, g.w, g.k), &mut s.col);
                        } else {
                            let u = &sv[(i - 2) * m..][..m];
                            im2col(
                                |ch, n| &u[(ch * nb + n) * hw..][..hw],
                                (cg, nb),
                                (g.h, g.w, g.k),
                                &mut s.col,
                            );
                        }
                        let gi = MatRef::from_row_major_slice(&s.a[..m], cg, ncol);
                        let colv = MatRef::from_row_major_slice(&s.col[..kc * ncol], kc, ncol);
                        let dst = MatMut::from_row_major_slice_mut(part, cg, kc);
                        gemm(dst, Accum::Add, gi, colv.transpose(), alpha, inner);
                    }
                    if i > 1 || need_dx {
                        let ga = &s.a[..m];
                        im2col(
                            |ch, n| &ga[(ch * nb + n) * hw..][..hw],
                            (cg, nb),
                            (g.h, g.w, g.k),
                            &mut s.col,
                        );
                        s.b[..m].copy_from_slice(&s.c[..m]);
                        let rhs = MatRef::from_row_major_slice(&s.col[..kc * ncol], kc, ncol);
                        let dst = MatMut::from_row_major_slice_mut(&mut s.b[..m], cg, ncol);
                        gemm(dst, Accum::Add, ltg, rhs, alpha, inner);
                        std::mem::swap(&mut s.a, &mut s.b);
                    }
                }
                if need_dx {
                    let lo = n0 - first_image;
                    scatter_panel(&s.a[..m], (cg, hw), &mut outs[lo..lo + nb]);
                }
            }
        },
    );
    if let Some(dl) = dl_data {
        for r in 1..t.chunks {
            let src = &extra[(r - 1) * kn..][..kn];
            dl.iter_mut().zip(src).for_each(|(a, &b)| *a += b);
        }
    }
}
