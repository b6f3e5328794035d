//! Fast batched products with a block-diagonal chain `A = P_{m+1} B_m P_m ⋯ B_1 P_1`
//! (Definition 5.1, described by a [`ChainLayout`]) and their backward pass.
//!
//! # Design
//! - The batch `X` (shape `(batch, n_in)`, row-major) is cut into **chunks of a fixed number of
//!   rows** ([`chunk_rows`]: `clamp(32K / max_i n_i, 16, 256)`; it depends only on the layout,
//!   never on the thread count, so results are bitwise identical for any number of threads). One
//!   chunk's activations stay in cache while it runs through all factors. One rayon task per
//!   worker runs the chunks it claims (module `kernels::claims`): first its own contiguous
//!   range, keyed by its rayon index so that it runs the same chunks (output rows, saved
//!   pieces) call after call, then steals from the back of the others'. Each worker has its own
//!   scratch panels and its own column-major copy of the blocks from its thread's buffer pool:
//!   on this machine kind, writing memory the other core had cached costs 3–4× more.
//! - If the whole batch is **one chunk**, the parallelism moves inside it: the block products
//!   of every step run in parallel over blocks and the final gather in parallel over rows. The
//!   last step then always writes a panel (never the strided output), whatever the thread count.
//! - Inside a chunk of `c` rows a factor's input or output is a **block-major panel**: block `j`
//!   is a `b × c` column-major matrix (one sample's `b` features contiguous) at offset
//!   `j·(c·b + PAD)`; the small padding keeps blocks off power-of-two distances (cache sets).
//! - Every block product `Z_j = op(B_j) · U_j` (`(b1 × b2)·(b2 × c)`) is one faer `matmul` with
//!   `Par::Seq`. The blocks are handed to faer column-major: `B_jᵀ` (backward) is the stored
//!   row-major block as it is, and the forward steps use a transposed copy made once per call
//!   by each worker (otherwise faer repacks every row-major block for every chunk).
//! - **Permutations are never applied as separate passes.** Before factor `i` the input is
//!   `U_i[f] = Z_{i−1}[σ_i(f)]`. If, for every block, the source offsets of its `b` features form
//!   an arithmetic progression (true for P_(k,n) shuffles, identities, reversals), the product
//!   reads the source through a strided faer view, with no copy at all. Otherwise (or when the
//!   input must be saved) the panel is gathered once, in cache: a GS shuffle as SIMD tiled
//!   transpositions, other maps by runs of consecutive offsets (module `kernels::gather`). The
//!   read maps of every step depend only on the layout and the chunk size: they are built
//!   once and cached in the layout (module `kernels::plan`), shared by all workers.
//!   Likewise the last permutation is folded into the last product's write into the output rows
//!   when every block lands on consecutive columns, and is otherwise one row-by-row gather from
//!   the last panel (cheaper than faer's scattered stores).
//! - GSOFT `Pᵀ L P R` therefore runs as two faer products per block and chunk (the second reads
//!   its shuffled input through a strided view) plus one output gather.
//! - **Forward with save** ([`chain_forward_saved`]) gathers each factor input `U_i` straight into
//!   a batch-wide buffer laid out for the backward pass: block `j` of factor `i` is one
//!   `b_i² × batch` column-major matrix. The buffer is allocated once per factor (not per chunk)
//!   and cut into disjoint per-(chunk, block) slices that the parallel chunks fill; the products
//!   then read their input from there. The first factor's input is not copied when `P_1` reads
//!   every block of `X` affinely (GS has `P_1 = I`): the backward is given `X` again and its
//!   weight gradient reads `X` through strided views.
//! - The **backward pass** is the forward pass of the transposed chain
//!   `Aᵀ = P_1ᵀ B_1ᵀ P_2ᵀ ⋯ B_mᵀ P_{m+1}ᵀ` run on `dY`, saving each factor's output gradient
//!   `dZ_i` in the same batch-wide layout, except the last factor's when `P_{m+1}⁻¹` reads every
//!   block of `dY` affinely (GS shuffles): that `dZ_m` stays in `dY` and is read in place,
//!   through strided views, by both the products and the weight gradient. Then
//!   `dB_i[j] = dZ_{i,j} · U_{i,j}ᵀ` is **one faer product over the whole batch** per block, parallel over (factor, block). Factors with fewer
//!   than 8 large blocks (Dense, LowRank: one block) cut each block's gradient into a fixed
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

use crate::kernels::claims::par_claimed;
use crate::kernels::gather::{affine_step, gather_blocks, gather_rows};
use crate::kernels::plan::{
    Direction, Maps, PAD, Plan, Prepared, ReadMap, Step, block_stride, panel_len, prepared,
};
use crate::kernels::pool::PoolVec;
use crate::kernels::transpose::transpose;
use crate::real::Real;
use crate::structured::layout::ChainLayout;
use crate::tensor::Tensor;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;
use std::borrow::Borrow;
use std::sync::Arc;

/// Target number of scalars in one chunk panel: `chunk_rows · max n ≈ CHUNK_ELEMS`, so a chunk's
/// panels fit in L2 (tuned at n = 1024, b = 32: 16K–64K elements were within 20 %).
const CHUNK_ELEMS: usize = 32 * 1024;

/// Fewest rows per chunk: below 16 samples the per-block products are too thin for faer's
/// microkernels (at n = 4096, b = 64, 16 rows were 10 % faster than 8, 32 rows 5 % more).
const MIN_CHUNK_ROWS: usize = 16;

/// Rows per batch chunk for a layout: `clamp(CHUNK_ELEMS / max_i n_i, 16, 256)`. It depends only
/// on the layout, so the chunking (and therefore every rounding) is the same for any thread count.
pub fn chunk_rows(layout: &ChainLayout) -> usize {
    (CHUNK_ELEMS / max_width(layout)).clamp(MIN_CHUNK_ROWS, 256)
}

/// `max(n_in, n_out(B_1), …, n_out(B_m))`, the widest vector inside the chain.
fn max_width(layout: &ChainLayout) -> usize {
    layout
        .factors()
        .iter()
        .map(|f| f.n_out().max(f.n_in()))
        .max()
        .unwrap_or(1)
        .max(1)
}

/// Per-worker scratch: a gather panel `u` and two output panels (ping-pong).
struct Scratch<T> {
    u: PoolVec<T>,
    z: [PoolVec<T>; 2],
}

impl<T: Real> Scratch<T> {
    fn new(plan: &Plan, c: usize) -> Self {
        let len = plan
            .steps
            .iter()
            .map(|s| panel_len(s.k, s.b_in, c).max(panel_len(s.k, s.b_out, c)))
            .max()
            .unwrap_or(0);
        Self {
            u: PoolVec::new(len),
            z: [PoolVec::new(len), PoolVec::new(len)],
        }
    }
}

/// Builds a panel (`k` blocks of `b` features, `c` samples, block stride [`block_stride`]) from
/// `src` through `map`.
fn gather_panel<T: Real>(dst: &mut [T], src: &[T], map: &ReadMap, k: usize, b: usize, c: usize) {
    let bs = block_stride(c, b);
    let mut blocks: Vec<&mut [T]> = dst.chunks_mut(bs).take(k).collect();
    gather_blocks(&mut blocks, src, &map.g, map.ss, b, c);
}

/// Panics (naming `what`) unless every offset `start + i·rs + j·cs` (`i < rows`, `j < cols`)
/// lies in `0..len`: an affine map takes its extreme values at the corners.
fn check_strided(
    len: usize,
    start: usize,
    (rows, cols): (usize, usize),
    (rs, cs): (isize, usize),
    what: &str,
) {
    let last_row = start as isize + (rows as isize - 1) * rs;
    assert!(
        last_row >= 0 && (last_row.max(start as isize) as usize) + (cols - 1) * cs < len,
        "{what} out of bounds"
    );
}

/// A read-only strided `rows × cols` view of `src` starting at `start` with strides `(rs, cs)`,
/// checked to stay inside `src`.
fn strided_view<T>(
    src: &[T],
    start: usize,
    rows: usize,
    cols: usize,
    rs: isize,
    cs: usize,
) -> MatRef<'_, T> {
    check_strided(src.len(), start, (rows, cols), (rs, cs), "strided_view");
    // SAFETY: every element `start + i·rs + j·cs` (i < rows, j < cols) lies in `src`: the extreme
    // offsets of an affine map are at the corners, checked above; the view borrows `src`.
    unsafe { MatRef::from_raw_parts(src.as_ptr().add(start), rows, cols, rs, cs as isize) }
}

/// A mutable strided view of `dst` (see [`strided_view`]); panics if two elements would alias.
fn strided_view_mut<T>(
    dst: &mut [T],
    start: usize,
    rows: usize,
    cols: usize,
    rs: isize,
    cs: usize,
) -> MatMut<'_, T> {
    check_strided(dst.len(), start, (rows, cols), (rs, cs), "strided_view_mut");
    assert!(
        rows == 1 || (rs != 0 && rs.unsigned_abs() * (rows - 1) < cs.max(1)),
        "strided_view_mut: strides ({rs}, {cs}) would alias"
    );
    // SAFETY: in bounds as in `strided_view`, and the view holds the unique borrow of `dst`.
    // No two elements alias: within a column the offsets i·rs differ (rs ≠ 0); between columns
    // they differ by at least cs > |rs|·(rows − 1), the span of one column.
    unsafe { MatMut::from_raw_parts_mut(dst.as_mut_ptr().add(start), rows, cols, rs, cs as isize) }
}

/// The block `j` of a step as a column-major faer view `op(B_j)` (`b_out × b_in`), from the
/// step's blocks prepared by [`col_major_blocks`].
fn block_view<'a, T: Real>(step: &Step, w: &'a [T], j: usize) -> MatRef<'a, T> {
    let (bi, bo) = (step.b_in, step.b_out);
    MatRef::from_column_major_slice(&w[j * bi * bo..(j + 1) * bi * bo], bo, bi)
}

/// Every step's blocks `op(B_j)` stored column-major, indexed by factor: a transposed step reads
/// `B_jᵀ`, which is the row-major `B_j` as it is; a forward step gets a transposed copy, so faer
/// does not repack the row-major block for every chunk.
///
/// Each worker of a parallel run makes its own copy (from its thread's buffer pool), into memory
/// only its core has touched: rewriting one shared copy that the other worker had read is
/// 3–4× slower on this machine kind (`cargo bench --bench structured -- cross_core_write`), and
/// the workers' copies run at the same time.
struct Weights<T> {
    copies: Vec<Option<PoolVec<T>>>,
}

impl<T: Real> Weights<T> {
    fn new(plan: &Plan, blocks: &[&[T]]) -> Self {
        let mut copies: Vec<Option<PoolVec<T>>> = blocks.iter().map(|_| None).collect();
        for step in plan.steps.iter().filter(|s| !s.transposed) {
            let (bi, bo) = (step.b_in, step.b_out);
            let src = blocks[step.factor];
            let mut dst = PoolVec::new(src.len());
            // Column c of the column-major copy is row c of the transpose: D[c][r] = B[r][c].
            for (d, sblk) in dst.chunks_exact_mut(bi * bo).zip(src.chunks_exact(bi * bo)) {
                transpose(d, bo, sblk, bi, bi, bo);
            }
            copies[step.factor] = Some(dst);
        }
        Self { copies }
    }

    /// The blocks of every factor as the steps read them: the copy if there is one, else the
    /// caller's blocks.
    fn views<'a>(&'a self, blocks: &[&'a [T]]) -> Vec<&'a [T]> {
        self.copies
            .iter()
            .zip(blocks)
            .map(|(p, &b)| p.as_ref().map_or(b, |v| &v[..]))
            .collect()
    }
}

/// Where a step reads its input: a gathered scratch panel, the gathered blocks saved for the
/// backward pass (one `b × c` slice per block), or (no gather) strided views of the source.
enum Input<'a, T> {
    Panel(&'a [T]),
    Saved(&'a [&'a mut [T]]),
    Strided {
        src: &'a [T],
        base: &'a [usize],
        rs: &'a [isize],
        ss: usize,
    },
}

/// Where a step writes its output: a panel, or (last step) strided views of the output rows.
enum Output<'a, T> {
    Panel(&'a mut [T]),
    Rows {
        y: &'a mut [T],
        starts: &'a [(usize, isize)],
        n: usize,
    },
}

/// `Z_j = op(B_j) · U_j` for every block of a step on `c` samples (faer, `Par::Seq`).
fn block_products<T: Real>(
    step: &Step,
    w: &[T],
    input: &Input<'_, T>,
    out: Output<'_, T>,
    c: usize,
    par: Par,
) {
    let (bi, bo) = (step.b_in, step.b_out);
    let bso = block_stride(c, bo);
    let product = |j: usize, zj: MatMut<'_, T>| {
        let uj = input_block(input, j, bi, c);
        matmul(
            zj,
            Accum::Replace,
            block_view(step, w, j),
            uj,
            T::one(),
            Par::Seq,
        );
    };
    match out {
        Output::Panel(z) if !matches!(par, Par::Seq) && step.k > 1 => {
            z.par_chunks_mut(bso).enumerate().for_each(|(j, zj)| {
                product(
                    j,
                    MatMut::from_column_major_slice_mut(&mut zj[..c * bo], bo, c),
                );
            });
        }
        Output::Panel(z) => {
            for (j, zj) in z.chunks_mut(bso).enumerate() {
                product(
                    j,
                    MatMut::from_column_major_slice_mut(&mut zj[..c * bo], bo, c),
                );
            }
        }
        Output::Rows { y, starts, n } => {
            for (j, &(start, rs)) in starts.iter().enumerate() {
                product(j, strided_view_mut(y, start, bo, c, rs, n));
            }
        }
    }
}

/// The input block `U_j` (`b_in × c`) of a step as a faer view.
fn input_block<'a, T: Real>(
    input: &'a Input<'_, T>,
    j: usize,
    bi: usize,
    c: usize,
) -> MatRef<'a, T> {
    match input {
        Input::Panel(u) => {
            let bsi = block_stride(c, bi);
            MatRef::from_column_major_slice(&u[j * bsi..j * bsi + c * bi], bi, c)
        }
        Input::Saved(u) => MatRef::from_column_major_slice(&u[j][..c * bi], bi, c),
        Input::Strided { src, base, rs, ss } => strided_view(src, base[j * bi], bi, c, rs[j], *ss),
    }
}

/// A step's input on `c` samples read from `src` through `map`: gathered into the step's saved
/// blocks if `save` is given, else read in place through strided views if every block's offsets
/// are affine, else gathered into the scratch `u`.
fn step_input<'a, 'b: 'a, T: Real>(
    step: &Step,
    src: &'a [T],
    map: &'a ReadMap,
    c: usize,
    save: Option<&'a mut [&'b mut [T]]>,
    u: &'a mut [T],
) -> Input<'a, T> {
    let b = step.b_in;
    if let Some(dst) = save {
        gather_blocks(dst, src, &map.g, map.ss, b, c);
        let dst: &'a [&'b mut [T]] = dst;
        return Input::Saved(dst);
    }
    match &map.rs {
        Some(rs) => Input::Strided {
            src,
            base: &map.g.base,
            rs,
            ss: map.ss,
        },
        None => {
            let dst = &mut u[..panel_len(step.k, b, c)];
            gather_panel(dst, src, map, step.k, b, c);
            Input::Panel(dst)
        }
    }
}

/// The saved blocks of one chunk: `[step][block]`, each the chunk's `b_in × c` columns of that
/// block in the batch-wide saved buffer of the step.
type ChunkSave<'a, T> = Vec<Vec<&'a mut [T]>>;

/// Runs one chunk of `c` rows through the whole plan. If `save` is given, every step's input is
/// gathered into the step's saved blocks and the products read it from there; otherwise steps
/// whose input blocks are affine in the source read it through strided views without any copy.
///
/// `inner` is the parallelism inside the chunk (over the blocks of a step, and over rows in the
/// final gather); it is only used when the whole batch is one chunk. In that case the last step
/// always writes a panel (no direct strided output), so the arithmetic is the same for any
/// `inner`.
#[allow(clippy::too_many_arguments)]
fn run_chunk<T: Real>(
    plan: &Plan,
    blocks: &[&[T]],
    x: &[T],
    y: &mut [T],
    mut save: Option<&mut ChunkSave<'_, T>>,
    (c, maps): (usize, &Maps),
    scr: &mut Scratch<T>,
    inner: Option<Par>,
) {
    let direct = plan.out_direct.as_ref().filter(|_| inner.is_none());
    let par = inner.unwrap_or(Par::Seq);
    let Scratch { u, z } = scr;
    let (z_a, z_b) = z.split_at_mut(1);
    let (mut z_prev, mut z_next) = (&mut z_a[0], &mut z_b[0]);
    let last = plan.steps.len() - 1;
    for (i, step) in plan.steps.iter().enumerate() {
        let src: &[T] = if i == 0 { x } else { z_prev };
        // A step without saved blocks (the backward's first step) reads its source in place.
        let dst = save
            .as_deref_mut()
            .map(|sv| &mut sv[i][..])
            .filter(|d| !d.is_empty());
        let input = step_input(step, src, &maps.steps[i], c, dst, u);
        let out = match (direct, i == last) {
            (Some(starts), true) => Output::Rows {
                y: &mut *y,
                starts,
                n: plan.n_out,
            },
            _ => Output::Panel(&mut z_next[..panel_len(step.k, step.b_out, c)]),
        };
        block_products(step, blocks[step.factor], &input, out, c, par);
        std::mem::swap(&mut z_prev, &mut z_next);
    }
    if direct.is_none() {
        let (map, n) = (&maps.out, plan.n_out);
        if matches!(par, Par::Seq) {
            gather_rows(y, z_prev, &map.g, map.ss, n);
        } else {
            y.par_chunks_mut(n).enumerate().for_each(|(s, row)| {
                gather_rows(row, &z_prev[s * map.ss..], &map.g, map.ss, n);
            });
        }
    }
}

/// Distance between consecutive blocks of a batch-wide saved buffer (block size `b`).
fn saved_stride(b: usize, batch: usize) -> usize {
    b * batch + PAD
}

/// One batch-wide saved buffer per step: `k` blocks, block `j` a `b_in × batch` column-major
/// matrix at offset `j·saved_stride(b_in, batch)`, from the buffer pool (every element that is
/// later read is written by the gathers, so stale contents are fine).
fn saved_buffers<T: Real>(plan: &Plan, batch: usize, save: Save) -> Vec<PoolVec<T>> {
    plan.steps
        .iter()
        .enumerate()
        .map(|(i, s)| match (save, i) {
            (Save::AfterFirst, 0) => PoolVec::new(0),
            _ => PoolVec::new(s.k * saved_stride(s.b_in, batch)),
        })
        .collect()
}

/// Which step inputs a run of a plan keeps (batch-wide, for the weight gradients).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Save {
    /// None (a plain forward).
    Nothing,
    /// Every step's input.
    All,
    /// Every step's input but the first, which the caller still holds (the backward's `dY`)
    /// and the weight gradients read in place.
    AfterFirst,
}

/// Splits the saved buffers into each chunk's disjoint pieces: `[chunk][step][block]`.
fn split_saved<'a, T>(
    plan: &Plan,
    bufs: &'a mut [PoolVec<T>],
    batch: usize,
    chunk: usize,
) -> Vec<ChunkSave<'a, T>> {
    let nq = batch.div_ceil(chunk);
    let mut out: Vec<ChunkSave<'a, T>> = (0..nq)
        .map(|_| plan.steps.iter().map(|s| Vec::with_capacity(s.k)).collect())
        .collect();
    for (i, (buf, step)) in bufs.iter_mut().zip(&plan.steps).enumerate() {
        let b = step.b_in;
        for blk in buf.chunks_mut(saved_stride(b, batch)) {
            for (q, piece) in blk[..b * batch].chunks_mut(chunk * b).enumerate() {
                out[q][i].push(piece);
            }
        }
    }
    out
}

/// The chunk size whose plan a run of `batch` rows in chunks of `chunk` uses for its full chunks:
/// `chunk`, or `batch` when the whole batch is one chunk.
fn full_chunk(batch: usize, chunk: usize) -> usize {
    if batch > chunk || batch == 0 {
        chunk
    } else {
        batch
    }
}

/// One chunk of a run, handed to whichever worker claims it: its input rows, output rows and
/// saved pieces.
type Job<'a, 'b, T> = (&'a [T], &'a mut [T], &'a mut ChunkSave<'b, T>);

/// Runs the `plan` of `layout` in direction `dir` over a whole `(batch, n_in)` row-major batch
/// `x` into `y`, chunk by chunk (in parallel unless `par` is `Par::Seq`). With `save`, returns
/// each step's input for the whole batch in the layout of [`saved_buffers`].
fn run_plan<T: Real>(
    (layout, dir): (&ChainLayout, Direction),
    blocks: &[&[T]],
    x: &[T],
    y: &mut [T],
    save: Save,
    chunk: usize,
    par: Par,
) -> Vec<PoolVec<T>> {
    let saving = save != Save::Nothing;
    let n_in = match dir {
        Direction::Forward => layout.n_in(),
        Direction::Transposed => layout.n_out(),
    };
    let batch = x.len() / n_in.max(1);
    let nq = batch.div_ceil(chunk);
    let last_c = batch.saturating_sub(nq.saturating_sub(1) * chunk);
    let full = prepared(layout, dir, full_chunk(batch, chunk));
    let plan = &full.plan;
    let mut bufs = if saving {
        saved_buffers(plan, batch, save)
    } else {
        Vec::new()
    };
    if batch == 0 {
        return bufs;
    }
    let mut saves = if saving {
        split_saved(plan, &mut bufs, batch, chunk)
    } else {
        (0..nq).map(|_| Vec::new()).collect()
    };
    let part = (nq > 1 && last_c != chunk).then(|| prepared(layout, dir, last_c));
    let maps_for = |c: usize| match &part {
        Some(p) if c == last_c => &p.maps,
        _ => &full.maps,
    };
    if nq == 1 {
        let weights = Weights::new(plan, blocks);
        let mut scr = Scratch::new(plan, batch);
        let sv = saving.then_some(&mut saves[0]);
        let w = weights.views(blocks);
        run_chunk(plan, &w, x, y, sv, (batch, &full.maps), &mut scr, Some(par));
    } else {
        let jobs: Vec<Job<'_, '_, T>> = x
            .chunks(chunk * plan.n_in)
            .zip(y.chunks_mut(chunk * plan.n_out))
            .zip(saves.iter_mut())
            .map(|((xq, yq), sv)| (xq, yq, sv))
            .collect();
        let workers = if matches!(par, Par::Seq) {
            1
        } else {
            par.degree()
        };
        let init = || (Weights::new(plan, blocks), Scratch::new(plan, chunk));
        par_claimed(jobs, workers, init, |(weights, scr), _, (xq, yq, sv)| {
            let c = xq.len() / plan.n_in;
            let sv = saving.then_some(sv);
            let w = weights.views(blocks);
            run_chunk(plan, &w, xq, yq, sv, (c, maps_for(c)), scr, None);
        });
    }
    drop(saves);
    bufs
}

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

/// The first factor's input read in place from `X` (rows of `n_in`), if every block of the
/// forward's first step reads `X` affinely: the read offsets of the first sample and each
/// block's row step.
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
    weight_grads(layout, saved, (&dz, first), x_read, dbs, par);
}

/// A factor's output gradient read in place from the backward's input rows: block `j`, feature
/// `v`, sample `s` at `src[base[j·b + v] + s·ss]`, with `base` affine in `v` (step `rs[j]`).
struct InPlace<'a, T> {
    src: &'a [T],
    base: &'a [usize],
    rs: &'a [isize],
    ss: usize,
}

/// Minimum number of weight-gradient tasks per factor: a factor with fewer blocks has each
/// block's gradient cut into row tiles (a layout-only choice, so results stay deterministic).
const MIN_GRAD_TASKS: usize = 8;

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
fn weight_grads<T: Real>(
    layout: &ChainLayout,
    saved: &ChainSaved<T>,
    (dz, first): (&[PoolVec<T>], Option<InPlace<'_, T>>),
    x_read: Option<InPlace<'_, T>>,
    dbs: &mut [Tensor<T>],
    par: Par,
) {
    let (m, batch) = (layout.m(), saved.batch);
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
            _ => MatRef::from_column_major_slice(&saved.inputs[i][o2..o2 + b2 * batch], b2, batch),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perm::Perm;
    use crate::structured::LinearOp;
    use crate::structured::butterfly::Butterfly;
    use crate::structured::gs::Gs;
    use crate::structured::gs_chain::GsChain;
    use crate::structured::layout::BlockShape;
    use crate::structured::monarch::Monarch;
    use rand::{SeedableRng, rngs::StdRng};

    /// GS (`P_1 = I`) keeps no copy of `X` for the backward, which reads the first factor's input
    /// from `X`; a chain whose `P_1` is a random permutation saves the gathered input.
    #[test]
    fn first_input_is_read_from_x_only_when_affine() {
        let r = &mut StdRng::seed_from_u64(5);
        let gs = Gs::<f64>::gsoft_random(4, 8, r).unwrap();
        let x = Tensor::<f64>::randn(&[40, 32], 1.0, r);
        let (_, sv) = chain_forward_saved(gs.layout(), gs.blocks(), &x, Par::Seq);
        assert!(sv.first_in_x && sv.inputs[0].is_empty() && !sv.inputs[1].is_empty());
        let f = vec![BlockShape::square(4, 8); 2];
        let perms = (0..3).map(|_| Perm::random(32, r)).collect();
        let chain = GsChain::<f64>::random(f, perms, r).unwrap();
        let (_, sv) = chain_forward_saved(chain.layout(), chain.blocks(), &x, Par::Seq);
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
        let r = &mut StdRng::seed_from_u64(3);
        for (k, b) in [(32, 32), (128, 32), (16, 64), (64, 16)] {
            let gs = Gs::<f32>::gsoft_random(k, b, r).unwrap();
            let got = transposed_gathers(gs.layout(), chunk_rows(gs.layout()));
            // Forward: step 1 reads X as it is, step 2 through P, the output through Pᵀ.
            // Backward (Aᵀ = Rᵀ Pᵀ Lᵀ P): both steps read through a shuffle, dX as it is.
            assert_eq!(got, [(1, true), (2, false)], "GSOFT k={k} b={b}");
        }
        let mon = Monarch::<f32>::random_square(32, 32, r).unwrap();
        let got = transposed_gathers(mon.layout(), 32);
        assert!(got.iter().all(|&(s, _)| s >= 1), "Monarch {got:?}");
        let f = vec![BlockShape::square(32, 32); 3];
        let chain = GsChain::<f32>::random_shuffled(&f, r).unwrap();
        let got = transposed_gathers(chain.layout(), 32);
        assert!(got.iter().all(|&(s, _)| s >= 2), "GsChain m=3 {got:?}");
        // BOFT's block butterflies swap half-blocks: not a transposition (element loop).
        let boft = Butterfly::<f32>::new(1024, 32, 6).unwrap();
        println!("BOFT: {:?}", transposed_gathers(boft.layout(), 32));
    }
}
