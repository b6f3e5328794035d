//! Fast batched products with a block-diagonal chain `A = P_{m+1} B_m P_m ⋯ B_1 P_1`
//! (Definition 5.1, described by a [`ChainLayout`]) and their backward pass.
//!
//! # Design
//! - The batch `X` (shape `(batch, n_in)`, row-major) is cut into **chunks of a fixed number of
//!   rows** ([`chunk_rows`]; it depends only on the layout, never on the thread count, so results
//!   are bitwise identical for any number of threads). One chunk's activations stay in cache while
//!   it runs through all factors.
//! - Inside a chunk of `c` rows the input of every factor is a **block-major panel**: block `j` is
//!   a `b × c` column-major matrix (one sample's `b` features contiguous), stored at offset
//!   `j·c·b`. Logical feature `g` of sample `s` of a panel with block size `b` sits at
//!   `(g / b)·c·b + s·b + g mod b`.
//! - Each permutation is **folded into the gather** that builds the next panel
//!   (`U_i[f] = Z_{i-1}[σ_i(f)]`), and the last one into the write of the output rows; no permuted
//!   copy of the whole batch is ever made.
//! - Every block product `Z_j = B_j · U_j` (`(b1 × b2)·(b2 × c)`) is one faer `matmul` with
//!   `Par::Seq`; rayon parallelises over chunks (forward, backward data flow) and over blocks
//!   (weight gradients).
//! - The backward pass is the forward pass of the transposed chain
//!   `Aᵀ = P_1ᵀ B_1ᵀ P_2ᵀ ⋯ B_mᵀ P_{m+1}ᵀ` run on `dY`, saving the output gradients `dZ_i` of each
//!   factor; then `dB_i[j] = Σ_chunks dZ_{i,j} · U_{i,j}ᵀ` with the chunks added in a fixed order.
//! - Memory: two scratch panels of `c · max_i n_i` per worker, plus (when saving for the tape) one
//!   `batch × n_i` panel array per factor. Nothing grows with `n²`.

use crate::real::Real;
use crate::structured::layout::ChainLayout;
use crate::tensor::Tensor;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;
use std::borrow::Borrow;

/// Target number of scalars in one chunk panel: `chunk_rows · max n ≈ CHUNK_ELEMS`, so a chunk's
/// two panels fit in L2.
const CHUNK_ELEMS: usize = 16 * 1024;

/// Rows per batch chunk for a layout: `clamp(CHUNK_ELEMS / max_i n_i, 8, 256)`. It depends only
/// on the layout, so the chunking (and therefore every rounding) is the same for any thread count.
pub fn chunk_rows(layout: &ChainLayout) -> usize {
    (CHUNK_ELEMS / max_width(layout)).clamp(8, 256)
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

/// One block-diagonal step of a plan: `k` blocks mapping `b_in` to `b_out` features, taken from
/// factor `factor` of the layout (transposed for the backward plan), with the gather map σ
/// (logical feature `f` of the step's input is feature `σ(f)` of the previous output).
struct Step {
    factor: usize,
    k: usize,
    b_in: usize,
    b_out: usize,
    transposed: bool,
    gather: Vec<usize>,
}

/// A chain as a sequence of gather + block-product steps and a final gather.
struct Plan {
    steps: Vec<Step>,
    out_gather: Vec<usize>,
    n_in: usize,
    n_out: usize,
    width: usize,
}

impl Plan {
    /// `Y = X·Aᵀ`: the steps of `A` itself.
    fn forward(layout: &ChainLayout) -> Self {
        let steps = layout
            .factors()
            .iter()
            .enumerate()
            .map(|(i, f)| Step {
                factor: i,
                k: f.k,
                b_in: f.b2,
                b_out: f.b1,
                transposed: false,
                gather: layout.perms()[i].as_slice().to_vec(),
            })
            .collect();
        Self {
            steps,
            out_gather: layout.perms()[layout.m()].as_slice().to_vec(),
            n_in: layout.n_in(),
            n_out: layout.n_out(),
            width: max_width(layout),
        }
    }

    /// `Y = X·A`: the steps of `Aᵀ = P_1ᵀ B_1ᵀ ⋯ B_mᵀ P_{m+1}ᵀ`.
    fn transposed(layout: &ChainLayout) -> Self {
        let m = layout.m();
        let steps = (0..m)
            .rev()
            .map(|i| {
                let f = layout.factors()[i];
                Step {
                    factor: i,
                    k: f.k,
                    b_in: f.b1,
                    b_out: f.b2,
                    transposed: true,
                    gather: layout.perms()[i + 1].inverse().as_slice().to_vec(),
                }
            })
            .collect();
        Self {
            steps,
            out_gather: layout.perms()[0].inverse().as_slice().to_vec(),
            n_in: layout.n_out(),
            n_out: layout.n_in(),
            width: max_width(layout),
        }
    }
}

/// Per-worker scratch: the current step input `u`, the current step output `z`, gather offsets.
struct Scratch<T> {
    u: Vec<T>,
    z: Vec<T>,
    base: Vec<usize>,
}

impl<T: Real> Scratch<T> {
    fn new(c: usize, width: usize) -> Self {
        Self {
            u: vec![T::zero(); c * width],
            z: vec![T::zero(); c * width],
            base: vec![0; width],
        }
    }
}

/// Offsets for gathering through `map` from a source whose rows are either plain rows of length
/// `n` (`panel_b = None`) or a block-major panel with block size `b` over `c` samples. Returns the
/// per-sample stride: element `(s, map[f])` sits at `base[f] + s·stride`.
fn fill_base(
    base: &mut [usize],
    map: &[usize],
    panel_b: Option<usize>,
    n: usize,
    c: usize,
) -> usize {
    match panel_b {
        None => {
            base.copy_from_slice(map);
            n
        }
        Some(b) => {
            for (o, &g) in base.iter_mut().zip(map) {
                *o = (g / b) * c * b + g % b;
            }
            b
        }
    }
}

/// Builds a block-major panel (`k` blocks of `b` features, `c` samples) from `src` through the
/// offsets `base` (see [`fill_base`]).
fn gather_panel<T: Copy>(
    dst: &mut [T],
    src: &[T],
    base: &[usize],
    stride: usize,
    k: usize,
    b: usize,
    c: usize,
) {
    for j in 0..k {
        let bj = &base[j * b..(j + 1) * b];
        let dj = &mut dst[j * c * b..(j + 1) * c * b];
        for (s, d) in dj.chunks_exact_mut(b).enumerate() {
            let off = s * stride;
            for (dd, &o) in d.iter_mut().zip(bj) {
                *dd = src[o + off];
            }
        }
    }
}

/// Writes plain rows `dst[s·n + o] = src[base[o] + s·stride]` for `c` samples.
fn gather_rows<T: Copy>(dst: &mut [T], src: &[T], base: &[usize], stride: usize, n: usize) {
    for (s, d) in dst.chunks_exact_mut(n).enumerate() {
        let off = s * stride;
        for (dd, &o) in d.iter_mut().zip(base) {
            *dd = src[o + off];
        }
    }
}

/// `Z_j = op(B_j) · U_j` for every block of a step on a chunk of `c` samples (faer, `Par::Seq`).
fn block_products<T: Real>(step: &Step, w: &[T], u: &[T], z: &mut [T], c: usize) {
    let (bi, bo) = (step.b_in, step.b_out);
    for j in 0..step.k {
        let wj = &w[j * bi * bo..(j + 1) * bi * bo];
        let bm = if step.transposed {
            MatRef::from_row_major_slice(wj, bi, bo).transpose()
        } else {
            MatRef::from_row_major_slice(wj, bo, bi)
        };
        let uj = MatRef::from_column_major_slice(&u[j * c * bi..(j + 1) * c * bi], bi, c);
        let zj = MatMut::from_column_major_slice_mut(&mut z[j * c * bo..(j + 1) * c * bo], bo, c);
        matmul(zj, Accum::Replace, bm, uj, T::one(), Par::Seq);
    }
}

/// Runs one chunk of `c` rows through the whole plan. If `saves` is not empty, step `i`'s input
/// panel is written to `saves[i]` (and read from there) instead of the scratch.
fn run_chunk<T: Real>(
    plan: &Plan,
    blocks: &[&[T]],
    x: &[T],
    y: &mut [T],
    saves: &mut [&mut [T]],
    c: usize,
    scr: &mut Scratch<T>,
) {
    let Scratch { u, z, base } = scr;
    for (i, step) in plan.steps.iter().enumerate() {
        let n_step = step.k * step.b_in;
        let panel_b = (i > 0).then(|| plan.steps[i - 1].b_out);
        let stride = fill_base(&mut base[..n_step], &step.gather, panel_b, plan.n_in, c);
        let dst: &mut [T] = if saves.is_empty() {
            &mut u[..c * n_step]
        } else {
            &mut *saves[i]
        };
        let src: &[T] = if i == 0 { x } else { z };
        gather_panel(dst, src, &base[..n_step], stride, step.k, step.b_in, c);
        let n_next = step.k * step.b_out;
        block_products(step, blocks[step.factor], dst, &mut z[..c * n_next], c);
    }
    let last_b = plan.steps[plan.steps.len() - 1].b_out;
    let stride = fill_base(
        &mut base[..plan.n_out],
        &plan.out_gather,
        Some(last_b),
        0,
        c,
    );
    gather_rows(y, z, &base[..plan.n_out], stride, plan.n_out);
}

/// One batch chunk of work: its input rows, output rows and per-step save panels.
struct Job<'a, T> {
    x: &'a [T],
    y: &'a mut [T],
    saves: Vec<&'a mut [T]>,
    c: usize,
}

/// Runs `plan` over a whole `(batch, n_in)` row-major batch `x` into `y`, optionally saving each
/// step's input panels into `saves` (one `batch · n_step` buffer per step, chunk after chunk).
fn run_plan<T: Real>(
    plan: &Plan,
    blocks: &[&[T]],
    x: &[T],
    y: &mut [T],
    saves: &mut [Vec<T>],
    chunk: usize,
    par: Par,
) {
    let batch = x.len() / plan.n_in.max(1);
    if batch == 0 {
        return;
    }
    let mut save_iters: Vec<_> = saves
        .iter_mut()
        .zip(&plan.steps)
        .map(|(s, st)| s.chunks_mut(chunk * st.k * st.b_in))
        .collect();
    let mut jobs = Vec::with_capacity(batch.div_ceil(chunk));
    for (xq, yq) in x
        .chunks(chunk * plan.n_in)
        .zip(y.chunks_mut(chunk * plan.n_out))
    {
        let saves = save_iters
            .iter_mut()
            .map(|it| it.next().expect("save buffer too short"))
            .collect();
        let c = xq.len() / plan.n_in;
        jobs.push(Job {
            x: xq,
            y: yq,
            saves,
            c,
        });
    }
    let go = |scr: &mut Scratch<T>, mut job: Job<'_, T>| {
        run_chunk(plan, blocks, job.x, job.y, &mut job.saves, job.c, scr);
    };
    if matches!(par, Par::Seq) || jobs.len() == 1 {
        let mut scr = Scratch::new(chunk, plan.width);
        for job in jobs {
            go(&mut scr, job);
        }
    } else {
        jobs.into_par_iter()
            .for_each_init(|| Scratch::new(chunk, plan.width), go);
    }
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
    check_inputs("chain_forward", layout, blocks, x, layout.n_in());
    let plan = Plan::forward(layout);
    run_public(&plan, layout, blocks, x, par)
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
    let plan = Plan::transposed(layout);
    run_public(&plan, layout, blocks, x, par)
}

fn run_public<T: Real, B: Borrow<Tensor<T>>>(
    plan: &Plan,
    layout: &ChainLayout,
    blocks: &[B],
    x: &Tensor<T>,
    par: Par,
) -> Tensor<T> {
    let batch = x.shape()[0];
    let mut y = vec![T::zero(); batch * plan.n_out];
    let w = block_data(blocks);
    run_plan(plan, &w, x.data(), &mut y, &mut [], chunk_rows(layout), par);
    Tensor::from_vec(&[batch, plan.n_out], y).expect("chain output shape")
}

/// What [`chain_forward_saved`] keeps for [`chain_backward`]: the input panel `U_i = P_i z_{i-1}`
/// of every factor for the whole batch (block-major per chunk, see the module docs).
#[derive(Clone, Debug)]
pub struct ChainSaved<T> {
    batch: usize,
    chunk: usize,
    inputs: Vec<Vec<T>>,
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
    check_inputs("chain_forward_saved", layout, blocks, x, layout.n_in());
    let plan = Plan::forward(layout);
    let batch = x.shape()[0];
    let chunk = chunk_rows(layout);
    let mut inputs: Vec<Vec<T>> = layout
        .factors()
        .iter()
        .map(|f| vec![T::zero(); batch * f.n_in()])
        .collect();
    let mut y = vec![T::zero(); batch * plan.n_out];
    let w = block_data(blocks);
    run_plan(&plan, &w, x.data(), &mut y, &mut inputs, chunk, par);
    let y = Tensor::from_vec(&[batch, plan.n_out], y).expect("chain output shape");
    (
        y,
        ChainSaved {
            batch,
            chunk,
            inputs,
        },
    )
}

/// Backward of `Y = X·Aᵀ`: given `dY` (`(batch, n_out)`) returns `dX = dY·A` and, for every
/// factor, `dB_i` with blocks `dB_i[j] = Σ_s dZ_{i,j}[:, s] · U_{i,j}[:, s]ᵀ`, where `U_i` is the
/// saved input and `dZ_i` the output gradient of factor `i`. The per-chunk contributions are
/// added in chunk order, so the result does not depend on the thread count.
///
/// # Panics
/// If `dy` is not `(batch, n_out)` for the saved batch, or the blocks do not match the layout.
pub fn chain_backward<T: Real, B: Borrow<Tensor<T>>>(
    layout: &ChainLayout,
    blocks: &[B],
    saved: &ChainSaved<T>,
    dy: &Tensor<T>,
    par: Par,
) -> (Tensor<T>, Vec<Tensor<T>>) {
    check_inputs("chain_backward", layout, blocks, dy, layout.n_out());
    assert!(
        dy.shape()[0] == saved.batch,
        "chain_backward: gradient of shape {:?} for a saved batch of {}",
        dy.shape(),
        saved.batch
    );
    let plan = Plan::transposed(layout);
    let batch = saved.batch;
    let w = block_data(blocks);
    // dZ panels in the order of the transposed plan's steps (factor m-1 first).
    let mut dz: Vec<Vec<T>> = plan
        .steps
        .iter()
        .map(|st| vec![T::zero(); batch * st.k * st.b_in])
        .collect();
    let mut dx = vec![T::zero(); batch * plan.n_out];
    run_plan(&plan, &w, dy.data(), &mut dx, &mut dz, saved.chunk, par);
    dz.reverse(); // now dz[i] belongs to factor i
    let dbs = weight_grads(layout, saved, &dz, par);
    let dx = Tensor::from_vec(&[batch, plan.n_out], dx).expect("chain dX shape");
    (dx, dbs)
}

/// `dB_i[j] = Σ_chunks dZ_{i,j} · U_{i,j}ᵀ`, parallel over (factor, block), chunks in order.
fn weight_grads<T: Real>(
    layout: &ChainLayout,
    saved: &ChainSaved<T>,
    dz: &[Vec<T>],
    par: Par,
) -> Vec<Tensor<T>> {
    let mut dbs: Vec<Tensor<T>> = layout
        .factors()
        .iter()
        .map(|f| Tensor::zeros(&f.tensor_shape()))
        .collect();
    let mut tasks = Vec::new();
    for (i, db) in dbs.iter_mut().enumerate() {
        let f = layout.factors()[i];
        for (j, dst) in db.data_mut().chunks_mut(f.b1 * f.b2).enumerate() {
            tasks.push((i, j, dst));
        }
    }
    let go = |(i, j, dst): (usize, usize, &mut [T])| {
        let f = layout.factors()[i];
        let (b1, b2) = (f.b1, f.b2);
        let mut acc = MatMut::from_row_major_slice_mut(dst, b1, b2);
        let mut r0 = 0;
        while r0 < saved.batch {
            let c = saved.chunk.min(saved.batch - r0);
            let zq = &dz[i][r0 * f.n_out() + j * c * b1..][..c * b1];
            let uq = &saved.inputs[i][r0 * f.n_in() + j * c * b2..][..c * b2];
            let zm = MatRef::from_column_major_slice(zq, b1, c);
            let um = MatRef::from_column_major_slice(uq, b2, c);
            let accum = if r0 == 0 { Accum::Replace } else { Accum::Add };
            matmul(acc.as_mut(), accum, zm, um.transpose(), T::one(), Par::Seq);
            r0 += c;
        }
    };
    if matches!(par, Par::Seq) || tasks.len() == 1 {
        tasks.into_iter().for_each(go);
    } else {
        tasks.into_par_iter().for_each(go);
    }
    dbs
}
