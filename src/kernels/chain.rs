//! Fast batched products with a block-diagonal chain `A = P_{m+1} B_m P_m ⋯ B_1 P_1`
//! (Definition 5.1, described by a [`ChainLayout`]) and their backward pass: the public entry
//! points, their shape checks, and what a saved forward keeps.
//!
//! # Design
//! - How a call runs (chunks of rows claimed by each worker, block-major panels, one faer
//!   product per block and chunk, permutations folded into strided reads or in-cache gathers):
//!   module `kernels::run`.
//! - **Forward with save** ([`chain_forward_saved`]) gathers each factor input `U_i` straight into
//!   a batch-wide buffer laid out for the backward pass: block `j` of factor `i` is one
//!   `b_i × batch` column-major matrix. The buffer is allocated once per factor (not per chunk)
//!   and cut into disjoint per-(chunk, block) slices that the parallel chunks fill; the products
//!   then read their input from there. The first factor's input is not copied when `P_1` reads
//!   every block of `X` affinely (GS has `P_1 = I`): the backward is given `X` again and its
//!   weight gradient reads `X` through strided views.
//! - The **backward pass** is the forward pass of the transposed chain
//!   `Aᵀ = P_1ᵀ B_1ᵀ P_2ᵀ ⋯ B_mᵀ P_{m+1}ᵀ` run on `dY`, saving each factor's output gradient
//!   `dZ_i` in the same batch-wide layout, except the last factor's when `P_{m+1}⁻¹` reads every
//!   block of `dY` affinely (GS shuffles): that `dZ_m` stays in `dY` and is read in place,
//!   through strided views, by both the products and the weight gradient. Then
//!   `dB_i[j] = dZ_{i,j} · U_{i,j}ᵀ` is **one faer product over the whole batch** per block,
//!   parallel over (factor, block) (module `kernels::weight_grads`). Factors with fewer than 8
//!   large blocks (Dense, LowRank: one block) cut each block's gradient into a fixed
//!   number of row tiles, so they are parallel too. Every output entry is computed by exactly one
//!   task, with a tiling that depends only on the layout and the batch: deterministic.
//! - **Buffers are recycled** (module `kernels::pool`): scratch panels, transposed blocks, the
//!   saved inputs (returned when the [`ChainSaved`] is dropped) and the backward's `dZ_i` come
//!   from a process-wide pool, so repeated calls (a training loop) do not pay page faults and
//!   zeroing for fresh memory each time. Every element read from a pooled buffer is written
//!   first in the same call.
//! - **Caller-provided outputs**: [`chain_forward_into`], [`chain_forward_saved_into`] and
//!   [`chain_backward_into`] overwrite `Y`, `dX` and the `dB_i` in place (faer's allocation-free
//!   style); the allocating functions wrap them. A training loop that keeps its output tensors
//!   then allocates nothing per call beyond pooled buffers.
//! - Memory: three scratch panels of about `c · max_i n_i` and a copy of the forward steps'
//!   blocks (the layer's parameters) per worker, plus (when saving for the tape) each factor's
//!   input for the whole batch (and, in the backward, each factor's output gradient). Nothing
//!   grows with `n²` beyond the parameters themselves.

use crate::kernels::gather::affine_step;
use crate::kernels::layout::ChainLayout;
use crate::kernels::plan::{Direction, Prepared, prepared};
use crate::kernels::pool::PoolVec;
pub use crate::kernels::run::chunk_rows;
use crate::kernels::run::{Save, full_chunk, run_plan};
use crate::kernels::weight_grads::{InPlace, weight_grads};
use crate::real::Real;
use crate::tensor::Tensor;
use faer::Par;
use std::borrow::Borrow;
use std::sync::Arc;

/// Checks a `(batch, n)` input and the block tensors; panics naming `op` and the shapes.
fn check_inputs<T: Real, B: Borrow<Tensor<T>>>(
    op: &str,
    layout: &ChainLayout,
    blocks: &[B],
    x: &Tensor<T>,
    n: usize,
) {
    assert!(
        x.ndim() == 2 && x.shape()[1] == n,
        "{op}: input of shape {:?} for a chain needing (batch, {n})",
        x.shape()
    );
    let owned: Vec<&Tensor<T>> = blocks.iter().map(Borrow::borrow).collect();
    assert!(
        owned.len() == layout.m(),
        "{op}: {} block tensors for a chain of {} factors",
        owned.len(),
        layout.m()
    );
    for (i, (b, f)) in owned.iter().zip(layout.factors()).enumerate() {
        assert!(
            b.shape() == f.tensor_shape(),
            "{op}: factor {i} needs blocks of shape {:?}, got {:?}",
            f.tensor_shape(),
            b.shape()
        );
    }
}

fn block_data<T: Real, B: Borrow<Tensor<T>>>(blocks: &[B]) -> Vec<&[T]> {
    blocks.iter().map(|b| b.borrow().data()).collect()
}

/// `Y = X·Aᵀ` for a `(batch, n_in)` batch `X`, i.e. every row `y = A x` with
/// `A = P_{m+1} B_m P_m ⋯ B_1 P_1`. `par = Par::Seq` runs on the calling thread; any
/// `Par::Rayon(_)` spreads the batch chunks over the current rayon pool (the result is bitwise the
/// same either way).
///
/// # Panics
/// If `x` is not `(batch, n_in)` or the blocks do not match the layout (names the shapes).
pub fn chain_forward<T: Real, B: Borrow<Tensor<T>>>(
    layout: &ChainLayout,
    blocks: &[B],
    x: &Tensor<T>,
    par: Par,
) -> Tensor<T> {
    let mut y = Tensor::zeros(&[batch_of(x), layout.n_out()]);
    forward_impl(
        "chain_forward",
        layout,
        blocks,
        x,
        &mut y,
        Save::Nothing,
        par,
    );
    y
}

/// [`chain_forward`] writing `Y = X·Aᵀ` into a caller-provided `(batch, n_out)` tensor `y`
/// (every element is overwritten), so a loop that calls it allocates nothing that grows with the
/// batch (the allocation-free entry point, as faer's `_into` functions).
///
/// # Panics
/// If `x` is not `(batch, n_in)`, `y` is not `(batch, n_out)` or the blocks do not match the
/// layout (names the shapes).
pub fn chain_forward_into<T: Real, B: Borrow<Tensor<T>>>(
    layout: &ChainLayout,
    blocks: &[B],
    x: &Tensor<T>,
    y: &mut Tensor<T>,
    par: Par,
) {
    forward_impl(
        "chain_forward_into",
        layout,
        blocks,
        x,
        y,
        Save::Nothing,
        par,
    );
}

/// Checks the shapes (panics naming `op`) and runs the forward plan into `y`; with
/// `save = Save::All`, the returned [`ChainSaved`] holds every factor's input for the backward.
fn forward_impl<T: Real, B: Borrow<Tensor<T>>>(
    op: &str,
    layout: &ChainLayout,
    blocks: &[B],
    x: &Tensor<T>,
    y: &mut Tensor<T>,
    save: Save,
    par: Par,
) -> ChainSaved<T> {
    check_inputs(op, layout, blocks, x, layout.n_in());
    let batch = x.shape()[0];
    check_output(op, y, batch, layout.n_out());
    let chunk = chunk_rows(layout);
    let w = block_data(blocks);
    let dir = (layout, Direction::Forward);
    // A first factor that reads every block of X affinely (an identity P_1, as in GS) keeps no
    // copy of its input: the backward reads X itself.
    let first_in_x = save == Save::All && first_read_in_place(layout, batch, chunk).is_some();
    let save = if first_in_x { Save::AfterFirst } else { save };
    let inputs = run_plan(dir, &w, x.data(), y.data_mut(), save, chunk, par);
    ChainSaved {
        batch,
        chunk,
        first_in_x,
        inputs,
    }
}

/// The forward plan of `layout` for this batch and chunk size, if every block of its first step
/// reads `X` (rows of `n_in`) affinely; the first step's read map then gives the offsets of the
/// first sample and each block's row step, so the first factor's input can be read from `X`.
fn first_read_in_place(layout: &ChainLayout, batch: usize, chunk: usize) -> Option<Arc<Prepared>> {
    let prep = prepared(layout, Direction::Forward, full_chunk(batch, chunk));
    prep.maps.steps[0].rs.is_some().then_some(prep)
}

/// `Y = X·A` for a `(batch, n_out)` batch `X` (the transposed operator, `y = Aᵀ x` per row).
///
/// # Panics
/// If `x` is not `(batch, n_out)` or the blocks do not match the layout (names the shapes).
pub fn chain_forward_t<T: Real, B: Borrow<Tensor<T>>>(
    layout: &ChainLayout,
    blocks: &[B],
    x: &Tensor<T>,
    par: Par,
) -> Tensor<T> {
    check_inputs("chain_forward_t", layout, blocks, x, layout.n_out());
    let mut y = Tensor::zeros(&[x.shape()[0], layout.n_in()]);
    let w = block_data(blocks);
    run_plan(
        (layout, Direction::Transposed),
        &w,
        x.data(),
        y.data_mut(),
        Save::Nothing,
        chunk_rows(layout),
        par,
    );
    y
}

/// Rows of a batch tensor (0 for a tensor without dimensions; `check_inputs` then reports it).
fn batch_of<T: Real>(x: &Tensor<T>) -> usize {
    x.shape().first().copied().unwrap_or(0)
}

/// Checks that a caller-provided output is `(batch, n)`; panics naming `op` and the shapes.
fn check_output<T: Real>(op: &str, out: &Tensor<T>, batch: usize, n: usize) {
    assert!(
        out.shape() == [batch, n],
        "{op}: output of shape {:?} where ({batch}, {n}) is needed",
        out.shape()
    );
}

/// What [`chain_forward_saved`] keeps for [`chain_backward`]: the input `U_i = P_i z_{i-1}` of
/// every factor for the whole batch, block-major (block `j` of factor `i` is a `b_i × batch`
/// column-major matrix), so each weight gradient block is one product over the batch. The
/// first factor's input is not copied when `P_1` reads every block of `X` affinely (an identity,
/// as in GS `L P R`): the backward then reads it from `X`, which it is given again.
#[derive(Clone, Debug)]
pub struct ChainSaved<T> {
    batch: usize,
    chunk: usize,
    /// The first factor's input is `X` itself, read in place by the backward (`inputs[0]` is
    /// then empty).
    first_in_x: bool,
    /// `inputs[i]`: factor `i`, in the layout of `saved_buffers`.
    inputs: Vec<PoolVec<T>>,
}

impl<T> ChainSaved<T> {
    /// Batch size of the saved forward pass.
    pub fn batch(&self) -> usize {
        self.batch
    }
}

/// [`chain_forward`] that also returns the per-factor inputs needed by [`chain_backward`].
///
/// # Panics
/// As [`chain_forward`].
pub fn chain_forward_saved<T: Real, B: Borrow<Tensor<T>>>(
    layout: &ChainLayout,
    blocks: &[B],
    x: &Tensor<T>,
    par: Par,
) -> (Tensor<T>, ChainSaved<T>) {
    let mut y = Tensor::zeros(&[batch_of(x), layout.n_out()]);
    let saved = forward_impl(
        "chain_forward_saved",
        layout,
        blocks,
        x,
        &mut y,
        Save::All,
        par,
    );
    (y, saved)
}

/// [`chain_forward_saved`] writing `Y` into a caller-provided `(batch, n_out)` tensor `y`
/// (every element is overwritten).
///
/// # Panics
/// As [`chain_forward_into`].
pub fn chain_forward_saved_into<T: Real, B: Borrow<Tensor<T>>>(
    layout: &ChainLayout,
    blocks: &[B],
    x: &Tensor<T>,
    y: &mut Tensor<T>,
    par: Par,
) -> ChainSaved<T> {
    forward_impl(
        "chain_forward_saved_into",
        layout,
        blocks,
        x,
        y,
        Save::All,
        par,
    )
}

/// Backward of `Y = X·Aᵀ`: given the forward's input `X` and what it saved, and `dY`
/// (`(batch, n_out)`), returns `dX = dY·A` and, for every factor, `dB_i` with blocks
/// `dB_i[j] = Σ_s dZ_{i,j}[:, s] · U_{i,j}[:, s]ᵀ`, where `U_i` is the factor's input (saved, or
/// for the first factor possibly read from `X`) and `dZ_i` its output gradient. Each block (or
/// fixed tile of a block) of `dB_i` is one product over the whole batch, so the result does not
/// depend on the thread count.
///
/// `x` must hold the values the saved forward pass was run on (as a tape keeps an op's inputs).
///
/// # Panics
/// If `x` is not `(batch, n_in)` or `dy` not `(batch, n_out)` for the saved batch, or the blocks
/// do not match the layout.
pub fn chain_backward<T: Real, B: Borrow<Tensor<T>>>(
    layout: &ChainLayout,
    blocks: &[B],
    (x, saved): (&Tensor<T>, &ChainSaved<T>),
    dy: &Tensor<T>,
    par: Par,
) -> (Tensor<T>, Vec<Tensor<T>>) {
    let mut dx = Tensor::zeros(&[saved.batch, layout.n_in()]);
    let mut dbs: Vec<Tensor<T>> = layout
        .factors()
        .iter()
        .map(|f| Tensor::zeros(&f.tensor_shape()))
        .collect();
    backward_impl(
        "chain_backward",
        (layout, blocks, x, saved),
        dy,
        (&mut dx, &mut dbs),
        par,
    );
    (dx, dbs)
}

/// [`chain_backward`] writing `dX` and every `dB_i` into caller-provided tensors (every element is
/// overwritten): `dx` of shape `(batch, n_in)` and `dbs[i]` of factor `i`'s block shape
/// `(k, b1, b2)`.
///
/// # Panics
/// As [`chain_backward`], and if `dx` or a `dbs[i]` has the wrong shape (names the shapes).
pub fn chain_backward_into<T: Real, B: Borrow<Tensor<T>>>(
    layout: &ChainLayout,
    blocks: &[B],
    (x, saved): (&Tensor<T>, &ChainSaved<T>),
    dy: &Tensor<T>,
    (dx, dbs): (&mut Tensor<T>, &mut [Tensor<T>]),
    par: Par,
) {
    backward_impl(
        "chain_backward_into",
        (layout, blocks, x, saved),
        dy,
        (dx, dbs),
        par,
    );
}

/// Checks the shapes (panics naming `op`) and runs the backward pass into `dx` and `dbs`.
fn backward_impl<T: Real, B: Borrow<Tensor<T>>>(
    op: &str,
    (layout, blocks, x, saved): (&ChainLayout, &[B], &Tensor<T>, &ChainSaved<T>),
    dy: &Tensor<T>,
    (dx, dbs): (&mut Tensor<T>, &mut [Tensor<T>]),
    par: Par,
) {
    check_inputs(op, layout, blocks, dy, layout.n_out());
    assert!(
        dy.shape()[0] == saved.batch,
        "{op}: gradient of shape {:?} for a saved batch of {}",
        dy.shape(),
        saved.batch
    );
    assert!(
        x.shape() == [saved.batch, layout.n_in()],
        "{op}: forward input of shape {:?} for a saved batch of ({}, {})",
        x.shape(),
        saved.batch,
        layout.n_in()
    );
    check_output(op, dx, saved.batch, layout.n_in());
    let shapes: Vec<[usize; 3]> = layout.factors().iter().map(|f| f.tensor_shape()).collect();
    assert!(
        dbs.len() == shapes.len() && dbs.iter().zip(&shapes).all(|(d, s)| d.shape() == s),
        "{op}: weight gradients of shapes {:?} where {shapes:?} are needed",
        dbs.iter().map(|d| d.shape().to_vec()).collect::<Vec<_>>()
    );
    let dir = (layout, Direction::Transposed);
    let prep = prepared(layout, dir.1, full_chunk(saved.batch, saved.chunk));
    let plan = &prep.plan;
    let w = block_data(blocks);
    // dz[s]: step s of the transposed plan = factor m-1-s.
    // The first step reads dY through P_{m+1}⁻¹; if every block of that read is affine, dZ_m is
    // not copied out of dY: the products and the weight gradients read dY in place.
    let step0 = &plan.steps[0];
    let rs0: Option<Vec<isize>> = step0
        .gather
        .chunks_exact(step0.b_in)
        .map(affine_step)
        .collect();
    let save = if rs0.is_some() {
        Save::AfterFirst
    } else {
        Save::All
    };
    let dz = run_plan(dir, &w, dy.data(), dx.data_mut(), save, saved.chunk, par);
    let first = rs0.as_ref().map(|rs| InPlace {
        src: dy.data(),
        base: &step0.gather,
        rs,
        ss: layout.n_out(),
    });
    let fwd = saved
        .first_in_x
        .then(|| first_read_in_place(layout, saved.batch, saved.chunk))
        .flatten();
    let x_read = fwd.as_ref().and_then(|p| {
        let map = &p.maps.steps[0];
        map.rs.as_ref().map(|rs| InPlace {
            src: x.data(),
            base: &map.g.base,
            rs,
            ss: layout.n_in(),
        })
    });
    assert!(
        x_read.is_some() == saved.first_in_x,
        "{op}: the saved forward read X in place but this layout does not"
    );
    let inputs = (&saved.inputs[..], saved.batch);
    weight_grads(layout, inputs, (&dz, first), x_read, dbs, par);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::{BlockShape, Blocks};
    use crate::kernels::plan::{Maps, Plan};
    use crate::perm::Perm;
    use rand::{SeedableRng, rngs::StdRng};

    /// Gaussian blocks for every factor of `layout`.
    fn random_blocks(layout: &ChainLayout, r: &mut StdRng) -> Vec<Tensor<f64>> {
        let f = layout.factors();
        f.iter()
            .map(|s| Tensor::randn(&s.tensor_shape(), 1.0, r))
            .collect()
    }

    /// GS (`P_1 = I`) keeps no copy of `X` for the backward, which reads the first factor's input
    /// from `X`; a chain whose `P_1` is a random permutation saves the gathered input.
    #[test]
    fn first_input_is_read_from_x_only_when_affine() {
        let r = &mut StdRng::seed_from_u64(5);
        let s = BlockShape::square(4, 8);
        let gs = ChainLayout::gsoft(s, s).unwrap();
        let x = Tensor::<f64>::randn(&[40, 32], 1.0, r);
        let (_, sv) = chain_forward_saved(&gs, &random_blocks(&gs, r), &x, Par::Seq);
        assert!(sv.first_in_x && sv.inputs[0].is_empty() && !sv.inputs[1].is_empty());
        let perms = (0..3).map(|_| Perm::random(32, r)).collect();
        let chain = ChainLayout::new(vec![s; 2], perms).unwrap();
        let (_, sv) = chain_forward_saved(&chain, &random_blocks(&chain, r), &x, Par::Seq);
        assert!(!sv.first_in_x && sv.inputs.iter().all(|b| !b.is_empty()));
    }

    /// Which gathers of the forward and backward plans run as tiled transpositions, as
    /// `(steps with a transposed form, final gather has one)` per plan.
    fn transposed_gathers(layout: &ChainLayout, c: usize) -> [(usize, bool); 2] {
        [Plan::forward(layout), Plan::transposed(layout)].map(|plan| {
            let maps = Maps::new(&plan, c);
            let steps = maps.steps.iter().filter(|m| m.g.tr.is_some()).count();
            (steps, maps.out.g.tr.is_some())
        })
    }

    /// The shuffles of GSOFT (`Pᵀ L P R`), Monarch and shuffled GS chains are recognised as
    /// transpositions at the benchmark sizes (k = b and k ≠ b), so their gathers take the SIMD
    /// path; the identity reads of the first factor are not.
    #[test]
    fn shuffles_take_the_transposition_path() {
        for (k, b) in [(32, 32), (128, 32), (16, 64), (64, 16)] {
            let s = BlockShape::square(k, b);
            let gs = ChainLayout::gsoft(s, s).unwrap();
            let got = transposed_gathers(&gs, chunk_rows(&gs));
            // Forward: step 1 reads X as it is, step 2 through P, the output through Pᵀ.
            // Backward (Aᵀ = Rᵀ Pᵀ Lᵀ P): both steps read through a shuffle, dX as it is.
            assert_eq!(got, [(1, true), (2, false)], "GSOFT k={k} b={b}");
        }
        let blocks = Blocks::count(1024, 32).unwrap();
        let mon = ChainLayout::monarch_square(blocks).unwrap();
        let got = transposed_gathers(&mon, 32);
        assert!(got.iter().all(|&(s, _)| s >= 1), "Monarch {got:?}");
        let chain = ChainLayout::gs_chain(&[blocks.shape(); 3]).unwrap();
        let got = transposed_gathers(&chain, 32);
        assert!(got.iter().all(|&(s, _)| s >= 2), "GsChain m=3 {got:?}");
        // BOFT's block butterflies swap half-blocks: not a transposition (element loop).
        let boft = ChainLayout::peft_butterfly(blocks, 6).unwrap();
        println!("BOFT: {:?}", transposed_gathers(&boft, 32));
    }
}
