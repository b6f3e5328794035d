//! The weight gradients of a chain's backward pass, `dB_i[j] = dZ_{i,j} · U_{i,j}ᵀ` summed over
//! the whole batch: one faer product per (factor, block, row tile), in parallel over those
//! tasks. Factors with fewer than [`MIN_GRAD_TASKS`] large blocks (Dense, LowRank: one block)
//! cut each block's gradient into a fixed number of row tiles. Every output entry is computed by
//! exactly one task, with a tiling that depends only on the layout and the batch, so the result
//! does not depend on the thread count.
//!
//! f32 square blocks of 8 or 16 (GSOFT's and BOFT's small blocks) skip faer: a product of a
//! `b × batch` and a `batch × b` matrix is too thin for its microkernels, so they go through
//! `outer_sums_f32` (module `kernels::small_blocks`).

use crate::kernels::layout::ChainLayout;
use crate::kernels::pool::PoolVec;
use crate::kernels::run::{saved_stride, strided_view};
use crate::kernels::small_blocks::{Strided, fits, outer_sums_f32};
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
            && fits(b1, b2)
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
