//! The weight gradients of a chain's backward pass, `dB_i[j] = dZ_{i,j} · U_{i,j}ᵀ` summed over
//! the whole batch: one faer product per (factor, block, row tile), in parallel over those
//! tasks. Factors with fewer than [`MIN_GRAD_TASKS`] large blocks (Dense, LowRank: one block)
//! cut each block's gradient into a fixed number of row tiles. Every output entry is computed by
//! exactly one task, with a tiling that depends only on the layout and the batch, so the result
//! does not depend on the thread count.

use crate::kernels::layout::ChainLayout;
use crate::kernels::pool::PoolVec;
use crate::kernels::run::{saved_stride, strided_view};
use crate::real::Real;
use crate::tensor::Tensor;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
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
        let acc = MatMut::from_row_major_slice_mut(dst, rows, b2);
        let (o1, o2) = (j * saved_stride(b1, batch), j * saved_stride(b2, batch));
        let zm = match (&first, dz[m - 1 - i].is_empty()) {
            // dZ of the last factor read in place from dY (rows of length ss).
            (Some(f), true) => strided_view(f.src, f.base[j * b1], b1, batch, f.rs[j], f.ss),
            _ => MatRef::from_column_major_slice(&dz[m - 1 - i][o1..o1 + b1 * batch], b1, batch),
        };
        let um = match (&x_read, i) {
            // The first factor's input read in place from X (rows of length ss).
            (Some(f), 0) => strided_view(f.src, f.base[j * b2], b2, batch, f.rs[j], f.ss),
            _ => MatRef::from_column_major_slice(&inputs[i][o2..o2 + b2 * batch], b2, batch),
        };
        let zt = zm.subrows(r0, rows);
        matmul(acc, Accum::Replace, zt, um.transpose(), T::one(), Par::Seq);
    };
    if matches!(par, Par::Seq) || tasks.len() == 1 {
        tasks.into_iter().for_each(go);
    } else {
        tasks.into_par_iter().for_each(go);
    }
}
