//! Running a chain's plan over a batch: chunks, block-major panels, block products and the
//! gathers between them. [`run_plan`] is the engine behind every entry point of
//! [`kernels::chain`](crate::kernels::chain) (forward, transposed, saved forward, and the
//! data-flow half of the backward).
//!
//! # Design
//! - The batch `X` (shape `(batch, n_in)`, row-major) is cut into **chunks of a fixed number of
//!   rows** ([`chunk_rows`]: `clamp(32K / max_i n_i, 16, 256)`; it depends only on the layout,
//!   never on the thread count, so results are bitwise identical for any number of threads). One
//!   chunk's activations stay in cache while it runs through all factors. One rayon task per
//!   worker runs the chunks it claims (module `kernels::claims`): first its own contiguous
//!   range, keyed by its rayon index so that it runs the same chunks (output rows, saved
//!   pieces) call after call, then steals from the back of the others'. Each worker has its own
//!   scratch panels and its own column-major copy of the blocks from its thread's buffer pool,
//!   so no core writes memory the other core has cached (see `kernels::pool`).
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
//! - **Saving** ([`Save`]): a saved run gathers each step's input straight into a batch-wide
//!   buffer laid out for the weight gradients ([`saved_buffers`]: block `j` of step `i` is one
//!   `b_in × batch` column-major matrix), cut into disjoint per-(chunk, block) slices that the
//!   parallel chunks fill; the products then read their input from there. A step whose input
//!   the caller still holds (`Save::AfterFirst`) reads it in place instead.

use crate::kernels::claims::par_claimed;
use crate::kernels::gather::{gather_blocks, gather_rows};
use crate::kernels::layout::ChainLayout;
use crate::kernels::plan::{
    Direction, Maps, PAD, Plan, ReadMap, Step, block_stride, panel_len, prepared,
};
use crate::kernels::pool::PoolVec;
use crate::kernels::small_blocks::{Strided, fits, product_f32};
use crate::kernels::transpose::transpose;
use crate::real::{Real, RealSlice, RealSliceMut};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

/// Target number of scalars in one chunk panel: `chunk_rows · max n ≈ CHUNK_ELEMS`, so a chunk's
/// panels fit in L2.
const CHUNK_ELEMS: usize = 32 * 1024;

/// Fewest rows per chunk: below 16 samples the per-block products are too thin for faer's
/// microkernels.
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
pub(crate) fn strided_view<T>(
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
/// several times slower (`cargo bench --bench structured -- cross_core_write`), and the workers'
/// copies run at the same time.
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
    if fits(bi, bo) && T::DTYPE == "F32" {
        small_products(step, w, input, out, c, par);
        return;
    }
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

/// [`block_products`] for f32 square blocks of 8 or 16, through the register kernel
/// [`product_f32`] (same structure: panels in parallel over blocks when `par` allows, the
/// output rows block by block).
fn small_products<T: Real>(
    step: &Step,
    w: &[T],
    input: &Input<'_, T>,
    out: Output<'_, T>,
    c: usize,
    par: Par,
) {
    let b = step.b_in;
    fn f32s<T: Real>(x: &[T]) -> &[f32] {
        match T::view(x) {
            RealSlice::F32(v) => v,
            RealSlice::F64(_) => unreachable!("small_products runs on f32 only"),
        }
    }
    let w = f32s(w);
    let u_of = |j: usize| -> Strided<'_, f32> {
        match input {
            Input::Panel(u) => {
                let bs = block_stride(c, b);
                (f32s(&u[j * bs..j * bs + c * b]), 0, 1, b)
            }
            Input::Saved(u) => (f32s(&u[j][..c * b]), 0, 1, b),
            Input::Strided { src, base, rs, ss } => (f32s(src), base[j * b], rs[j], *ss),
        }
    };
    let wj = |j: usize| &w[j * b * b..(j + 1) * b * b];
    let panel = |j: usize, zj: &mut [T]| {
        let zj = match T::view_mut(&mut zj[..c * b]) {
            RealSliceMut::F32(v) => v,
            RealSliceMut::F64(_) => unreachable!("small_products runs on f32 only"),
        };
        product_f32((zj, 0, 1, b), wj(j), u_of(j), c);
    };
    let bs = block_stride(c, b);
    match out {
        Output::Panel(z) if !matches!(par, Par::Seq) && step.k > 1 => {
            z.par_chunks_mut(bs)
                .enumerate()
                .for_each(|(j, zj)| panel(j, zj));
        }
        Output::Panel(z) => z
            .chunks_mut(bs)
            .enumerate()
            .for_each(|(j, zj)| panel(j, zj)),
        Output::Rows { y, starts, n } => {
            let y = match T::view_mut(y) {
                RealSliceMut::F32(v) => v,
                RealSliceMut::F64(_) => unreachable!("small_products runs on f32 only"),
            };
            for (j, &(start, rs)) in starts.iter().enumerate() {
                product_f32((&mut *y, start, rs, n), wj(j), u_of(j), c);
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
pub(crate) fn saved_stride(b: usize, batch: usize) -> usize {
    b * batch + PAD
}

/// One batch-wide saved buffer per step: `k` blocks, block `j` a `b_in × batch` column-major
/// matrix at offset `j·saved_stride(b_in, batch)`, from the buffer pool (every element that is
/// later read is written by the gathers, so stale contents are fine).
pub(crate) fn saved_buffers<T: Real>(plan: &Plan, batch: usize, save: Save) -> Vec<PoolVec<T>> {
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
pub(crate) enum Save {
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
pub(crate) fn full_chunk(batch: usize, chunk: usize) -> usize {
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
pub(crate) fn run_plan<T: Real>(
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
