//! The Cayley map over a stack of blocks, from the free parameters of skew-symmetric generators.
//!
//! **Free parameters.** A stack of `k` skew-symmetric `b × b` generators is stored as a `(k, p)`
//! tensor `θ` with `p = b(b−1)/2`: row `j` holds the strict upper triangle of `K_j` in row-major
//! order, `(0,1), (0,2), …, (0,b−1), (1,2), …, (b−2,b−1)`, and
//!
//! ```text
//! K_il = θ_(i,l),   K_li = −θ_(i,l)   (i < l),   K_ii = 0.
//! ```
//!
//! This is half the storage of the paper's `K = A − Aᵀ` with a full `A` (digest §3.6, T18); the
//! `counts` conventions report both.
//!
//! **Map.** The paper's and the official code's Cayley transform (digest §1, §4.1),
//!
//! ```text
//! Q = (I + K)(I − K)⁻¹ = (I − K)⁻¹(I + K) = 2N − I,   N = (I − K)⁻¹,
//! ```
//!
//! where the two products agree because `I + K` and `(I − K)⁻¹` commute, and
//! `(I + K)N = (2I − (I − K))N = 2N − I`. `N` comes from Gauss–Jordan elimination of `I − K`
//! **without pivoting**, in place on a contiguous row-major block
//! ([`invert_unpivoted_in_place`]); then
//! `Q = 2N − I`. `I − K` is never singular: `K` is normal with eigenvalues `±iλ`, so the singular
//! values of `I − K` are `√(1 + λ²) ≥ 1` and `‖N‖₂ ≤ 1`. Skipping pivoting is safe because the
//! symmetric part of `I − K` is `I` (`xᵀ(I − K)x = |x|²`): every pivot of the elimination is `≥ 1`
//! and growth is bounded (argument in [`small_inv`](crate::kernels::small_inv)); the tests
//! compare `N` with faer's partial-pivot LU to `20·b·eps`. All-zero parameters give `I − K = I`,
//! `N = I` and `Q = I` bit for bit (the elimination skips rows whose multiplier is zero, so it does
//! no arithmetic on `I`).
//!
//! **Backward.** With `M = I − K`, `dN = −M⁻¹ dM M⁻¹ = N dK N`, so `dQ = 2 N dK N`. For an upstream
//! gradient `G = ∂ℓ/∂Q`,
//!
//! ```text
//! ∂ℓ/∂K = 2 Nᵀ G Nᵀ,        ∂ℓ/∂θ_(i,l) = (∂ℓ/∂K)_il − (∂ℓ/∂K)_li   (i < l),
//! ```
//!
//! the last step because `θ_(i,l)` enters `K` at `(i,l)` with sign `+` and at `(l,i)` with `−`.
//! The forward keeps `N` per block, so the backward is two small row-major products per block,
//! `Y = N(GᵀN) = (NᵀGNᵀ)ᵀ`, projected straight to `∂ℓ/∂θ_(i,l) = 2(Y_li − Y_il)`.
//! Blocks run in parallel with rayon when `k·b³ ≥` [`PAR_MIN_BLOCK_WORK`]; each block is computed
//! independently and sequentially, so the results are bitwise the same for any number of threads.

use crate::autodiff::tape::Var;
use crate::kernels::batch_inv::invert_unpivoted_blocks;
use crate::kernels::claims::par_claimed;
use crate::kernels::pool::PoolVec;
#[cfg(doc)]
use crate::kernels::small_inv::invert_unpivoted_in_place;
use crate::kernels::small_inv::matmul_rm;
use crate::kernels::transpose::transpose;
use crate::real::Real;
use crate::tensor::Tensor;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::lu::partial_pivoting::{factor, solve};
use faer::{Mat, MatMut, Par};

/// Number of free parameters of one `b × b` skew-symmetric generator, `b(b−1)/2`.
pub fn skew_dim(b: usize) -> usize {
    b * b.saturating_sub(1) / 2
}

/// Checks that `theta` is `(k, b(b−1)/2)` and returns `k`.
///
/// # Panics
/// If the shape does not match, naming `op`, the shape and `b`.
pub(crate) fn check_free<T: Real>(theta: &Tensor<T>, b: usize, op: &str) -> usize {
    let p = skew_dim(b);
    assert!(
        b >= 1 && theta.ndim() == 2 && theta.shape()[1] == p,
        "{op}: free parameters must have shape (k, b(b-1)/2) = (k, {p}) for b = {b}, got {:?}",
        theta.shape()
    );
    theta.shape()[0]
}

/// Writes `sign·K + diag·I` of one block into the row-major `b × b` slice `dst`, where `K` is the
/// skew generator of the free parameters `t` (length `b(b−1)/2`, strict upper triangle row-major).
fn fill_skew<T: Real>(t: &[T], b: usize, sign: T, diag: T, dst: &mut [T]) {
    let mut idx = 0;
    for i in 0..b {
        dst[i * b + i] = diag;
        for (l, &v) in (i + 1..b).zip(&t[idx..idx + (b - 1 - i)]) {
            dst[i * b + l] = sign * v;
            dst[l * b + i] = -(sign * v);
        }
        idx += b - 1 - i;
    }
}

/// The `(k, b, b)` stack of skew-symmetric generators `K_j` of free parameters `θ` (`(k, p)`).
///
/// # Panics
/// If `theta` is not `(k, b(b−1)/2)`.
pub fn skew_from_free<T: Real>(theta: &Tensor<T>, b: usize) -> Tensor<T> {
    let k = check_free(theta, b, "skew_from_free");
    let p = skew_dim(b);
    let mut out = Tensor::zeros(&[k, b, b]);
    for (j, dst) in out.data_mut().chunks_mut(b * b).enumerate() {
        let t = &theta.data()[j * p..(j + 1) * p];
        fill_skew(t, b, T::one(), T::zero(), dst);
    }
    out
}

/// Projects a `(k, b, b)` gradient with respect to `K` onto the free parameters:
/// `g_θ(i,l) = g_K[i,l] − g_K[l,i]` for `i < l`, returned as `(k, b(b−1)/2)`.
///
/// # Panics
/// If `g` is not `(k, b, b)`.
pub fn free_grad_from_skew<T: Real>(g: &Tensor<T>, b: usize) -> Tensor<T> {
    assert!(
        g.ndim() == 3 && g.shape()[1] == b && g.shape()[2] == b,
        "free_grad_from_skew: expected (k, {b}, {b}), got {:?}",
        g.shape()
    );
    let k = g.shape()[0];
    let p = skew_dim(b);
    let mut out = Tensor::zeros(&[k, p]);
    for (j, dst) in out.data_mut().chunks_mut(p.max(1)).enumerate().take(k) {
        let gb = &g.data()[j * b * b..(j + 1) * b * b];
        let mut idx = 0;
        for i in 0..b {
            for l in i + 1..b {
                dst[idx] = gb[i * b + l] - gb[l * b + i];
                idx += 1;
            }
        }
    }
    out
}

/// Reusable workspace for solving `A X = B` with small square `A` by LU with partial pivoting,
/// sequentially and without allocation after construction.
pub(crate) struct LuSolver<T: Real> {
    lu: Mat<T>,
    perm: Vec<usize>,
    perm_inv: Vec<usize>,
    mem: MemBuffer,
}

impl<T: Real> LuSolver<T> {
    /// A workspace for `n × n` systems with up to `rhs_cols` right-hand sides.
    pub(crate) fn new(n: usize, rhs_cols: usize) -> Self {
        let req = factor::lu_in_place_scratch::<usize, T>(n, n, Par::Seq, Default::default()).or(
            solve::solve_in_place_scratch::<usize, T>(n, rhs_cols, Par::Seq),
        );
        Self {
            lu: Mat::zeros(n, n),
            perm: vec![0; n],
            perm_inv: vec![0; n],
            mem: MemBuffer::new(req),
        }
    }

    /// The matrix to factor; fill it, then call [`LuSolver::solve_in_place`].
    pub(crate) fn matrix_mut(&mut self) -> MatMut<'_, T> {
        self.lu.as_mut()
    }

    /// Factors the matrix written through [`LuSolver::matrix_mut`] and overwrites `rhs` with
    /// `A⁻¹ rhs`.
    pub(crate) fn solve_in_place(&mut self, rhs: MatMut<'_, T>) {
        let stack = MemStack::new(&mut self.mem);
        let (_, p) = factor::lu_in_place(
            self.lu.as_mut(),
            &mut self.perm,
            &mut self.perm_inv,
            Par::Seq,
            stack,
            Default::default(),
        );
        let lu = self.lu.as_ref();
        solve::solve_in_place(lu, lu, p, rhs, Par::Seq, stack);
    }
}

/// Stacks with fewer multiply-adds than this (`k·b³`) are processed on the calling thread; rayon's
/// dispatch would cost more than the work.
pub const PAR_MIN_BLOCK_WORK: usize = 1 << 16;

/// Whether a stack with `work` multiply-adds should be split over rayon: `work ≥`
/// [`PAR_MIN_BLOCK_WORK`] and the current pool has more than one thread (a one-thread pool would
/// only add dispatch and wake-up costs).
fn run_parallel(work: usize) -> bool {
    work >= PAR_MIN_BLOCK_WORK && rayon::current_num_threads() > 1
}

/// Runs `f(workspace, j, chunk_j)` over the consecutive `chunk`-sized pieces of `out`, in
/// parallel over blocks when `work` is at least [`PAR_MIN_BLOCK_WORK`] and the pool has several
/// threads, sequentially otherwise; one `init()` workspace per worker. The blocks are handed out
/// with stable ownership (`kernels::claims`: each worker writes the same blocks call after
/// call, which keeps the output lines in its own cache). Blocks are independent, so the result
/// does not depend on the choice.
pub(crate) fn for_each_block<T, W, I, F>(out: &mut [T], chunk: usize, work: usize, init: I, f: F)
where
    T: Send,
    I: Fn() -> W + Sync + Send,
    F: Fn(&mut W, usize, &mut [T]) + Sync + Send,
{
    if chunk == 0 {
        return;
    }
    let blocks: Vec<&mut [T]> = out.chunks_mut(chunk).collect();
    par_claimed(blocks, block_workers(work), init, |w, j, c| f(w, j, c));
}

/// Workers for a stack of `work` multiply-adds: every thread of the current pool if
/// [`run_parallel`], else 1 (the calling thread).
fn block_workers(work: usize) -> usize {
    if run_parallel(work) {
        rayon::current_num_threads()
    } else {
        1
    }
}

/// Forward Cayley map without a tape: returns `(Q, N)`, both `(k, b, b)`, with
/// `N_j = (I − K_j)⁻¹` and `Q_j = 2N_j − I = (I + K_j)(I − K_j)⁻¹`.
///
/// `N_j` comes from Gauss–Jordan elimination without pivoting of `I − K_j` in place
/// ([`invert_unpivoted_blocks`]: one block per SIMD lane, bitwise
/// [`invert_unpivoted_in_place`] on each; safe because the symmetric part of `I − K_j` is `I`,
/// so every pivot is `≥ 1`), on groups of 16 (`f32`) or 8 (`f64`) blocks. Groups run in parallel
/// when `k·b³ ≥` [`PAR_MIN_BLOCK_WORK`]; the result is bitwise the same for any number of
/// threads.
///
/// # Panics
/// If `theta` is not `(k, b(b−1)/2)`.
pub fn cayley_with_inverse<T: Real>(theta: &Tensor<T>, b: usize) -> (Tensor<T>, Tensor<T>) {
    let k = check_free(theta, b, "cayley");
    let mut n = Tensor::zeros(&[k, b, b]);
    let mut q = Tensor::zeros(&[k, b, b]);
    cayley_with_inverse_into(theta, b, &mut q, &mut n);
    (q, n)
}

/// Panics unless `t` has shape `(k, b, b)`, naming `op`, `what` and the shapes.
fn check_blocks<T: Real>(t: &Tensor<T>, k: usize, b: usize, op: &str, what: &str) {
    assert!(
        t.shape() == [k, b, b],
        "{op}: {what} of shape {:?} where ({k}, {b}, {b}) is needed",
        t.shape()
    );
}

/// [`cayley_with_inverse`] writing `Q` and `N` into caller-provided `(k, b, b)` tensors (every
/// element is overwritten), so a training loop allocates nothing per step.
///
/// # Panics
/// If `theta` is not `(k, b(b−1)/2)` or `q`, `n` are not `(k, b, b)` (names the shapes).
pub fn cayley_with_inverse_into<T: Real>(
    theta: &Tensor<T>,
    b: usize,
    q: &mut Tensor<T>,
    n: &mut Tensor<T>,
) {
    let op = "cayley_with_inverse_into";
    let k = check_free(theta, b, op);
    check_blocks(q, k, b, op, "Q");
    check_blocks(n, k, b, op, "N");
    let p = skew_dim(b);
    let two = T::one() + T::one();
    let bb = b * b;
    if bb == 0 {
        return;
    }
    // Groups of `GROUP_BYTES / size_of::<T>()` blocks: one SIMD group of the batch inversion.
    let per = (GROUP_BYTES / std::mem::size_of::<T>()).max(1);
    let group = |scratch: &mut PoolVec<T>, g: usize, (ng, qg): (&mut [T], &mut [T])| {
        let j0 = g * per;
        for (j, nb) in ng.chunks_exact_mut(bb).enumerate() {
            let t = &theta.data()[(j0 + j) * p..(j0 + j + 1) * p];
            fill_skew(t, b, -T::one(), T::one(), nb); // I − K
        }
        invert_unpivoted_blocks(ng, b, scratch); // N = (I − K)⁻¹
        for (qb, nb) in qg.chunks_exact_mut(bb).zip(ng.chunks_exact(bb)) {
            for (x, &y) in qb.iter_mut().zip(nb) {
                *x = two * y;
            }
            for i in 0..b {
                qb[i * b + i] -= T::one(); // Q = 2N − I
            }
        }
    };
    let (nd, qd) = (n.data_mut(), q.data_mut());
    let groups: Vec<_> = nd
        .chunks_mut(per * bb)
        .zip(qd.chunks_mut(per * bb))
        .collect();
    // Each worker's interleaving scratch (one group) comes from its thread's buffer pool.
    let scratch = || PoolVec::new(bb * per);
    par_claimed(groups, block_workers(k * bb * b), scratch, group);
}

/// Bytes of one group of blocks of the forward map, the unit of its parallelism: one 512-bit
/// register per element in `invert_unpivoted_blocks` (16 blocks in `f32`, 8 in `f64`; two
/// groups of the AVX2 path).
const GROUP_BYTES: usize = 64;

/// The Cayley map `Q_j = (I + K_j)(I − K_j)⁻¹` of every block, without a tape; `(k, b, b)`.
///
/// # Panics
/// If `theta` is not `(k, b(b−1)/2)`.
pub fn cayley_tensor<T: Real>(theta: &Tensor<T>, b: usize) -> Tensor<T> {
    cayley_with_inverse(theta, b).0
}

/// `∂ℓ/∂θ` from `G = ∂ℓ/∂Q` and the stored inverses `N`: `∂ℓ/∂K = 2 Nᵀ G Nᵀ`, projected as in
/// [`free_grad_from_skew`]. Per block it forms `Y = N (Gᵀ N) = (Nᵀ G Nᵀ)ᵀ` with two row-major
/// products ([`matmul_rm`], contiguous rows of `N`, no transpose copy) and writes
/// `g_θ(i,l) = 2 (Y_li − Y_il)` straight into the `(k, b(b−1)/2)` result.
fn cayley_backward<T: Real>(g: &Tensor<T>, n: &Tensor<T>, b: usize) -> Tensor<T> {
    let mut out = Tensor::zeros(&[n.shape()[0], skew_dim(b)]);
    cayley_backward_into(g, n, b, &mut out);
    out
}

/// The backward of the Cayley map into a caller-provided `(k, b(b−1)/2)` tensor `dtheta` (every
/// element is overwritten): `∂ℓ/∂θ` from the upstream gradient `G = ∂ℓ/∂Q` and the inverses `N`
/// returned by [`cayley_with_inverse`], `∂ℓ/∂θ_(i,l) = 2 (Y_li − Y_il)` with `Y = N (Gᵀ N)`
/// (module docs).
///
/// # Panics
/// If `n` is not `(k, b, b)`, or `g`, `dtheta` do not match it (names the shapes).
pub fn cayley_backward_into<T: Real>(
    g: &Tensor<T>,
    n: &Tensor<T>,
    b: usize,
    dtheta: &mut Tensor<T>,
) {
    let op = "cayley_backward_into";
    let k = n.shape().first().copied().unwrap_or(0);
    check_blocks(n, k, b, op, "N");
    check_blocks(g, k, b, op, "G");
    let p = skew_dim(b);
    assert!(
        dtheta.shape() == [k, p],
        "{op}: dtheta of shape {:?} where ({k}, {p}) is needed",
        dtheta.shape()
    );
    let bb = b * b;
    let out = dtheta;
    let two = T::one() + T::one();
    for_each_block(
        out.data_mut(),
        p,
        k * bb * b,
        || (vec![T::zero(); bb], vec![T::zero(); bb]),
        |(gtn, y), j, dst| {
            let nj = &n.data()[j * bb..(j + 1) * bb];
            let gj = &g.data()[j * bb..(j + 1) * bb];
            matmul_rm(gtn, gj, nj, (b, b, b), true); // Gᵀ N
            matmul_rm(y, nj, gtn, (b, b, b), false); // N (Gᵀ N)
            // Yᵀ into the free scratch (tiled), so both reads below run along rows.
            transpose(gtn, b, y, b, b, b);
            let mut at = 0;
            for i in 0..b {
                let (yt_row, y_row) = (
                    &gtn[i * b + i + 1..(i + 1) * b],
                    &y[i * b + i + 1..(i + 1) * b],
                );
                for ((d, &lower), &upper) in
                    dst[at..at + y_row.len()].iter_mut().zip(yt_row).zip(y_row)
                {
                    *d = two * (lower - upper); // 2 (Y_li − Y_il)
                }
                at += y_row.len();
            }
        },
    );
}

/// Tape op: the Cayley map of every block, `(k, b(b−1)/2)` free parameters → `(k, b, b)`
/// orthogonal blocks `Q_j = (I + K_j)(I − K_j)⁻¹`, with the exact backward
/// `∂ℓ/∂K = 2 Nᵀ G Nᵀ` (module docs).
///
/// # Panics
/// If `theta` is not `(k, b(b−1)/2)`.
pub fn cayley<'t, T: Real>(theta: Var<'t, T>, b: usize) -> Var<'t, T> {
    let (q, n) = cayley_with_inverse(&theta.value(), b);
    theta.tape().push_op(q, &[theta], move |g, needs| {
        vec![needs[0].then(|| cayley_backward(g, &n, b))]
    })
}
