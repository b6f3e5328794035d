//! Structured linear operators and the GS theory about them.
//!
//! Every operator here is a chain `A = P_{m+1} B_m P_m ⋯ B_1 P_1` (Definition 5.1): a
//! [`ChainLayout`] (sizes and permutations) plus one `(k, b1, b2)` block tensor per factor.
//! They share the [`LinearOp`] trait, whose default methods run the batched kernels of
//! [`crate::kernels::chain`]:
//!
//! | type | chain |
//! |---|---|
//! | [`BlockDiag`] | `m = 1`, identity permutations |
//! | [`Gs`] | `A = P_L (L P R) P_R`: factors `[R, L]`, permutations `[P_R, P, P_L]` |
//! | [`GsChain`] | general `m` (Definition 5.1) |
//! | [`Monarch`] | `P₁ L P₂ R` with `k_L = b_R¹`, `k_R = b_L²` (Dao et al., 2022) |
//! | [`Butterfly`] | BOFT `F_{m−1} ⋯ F_0`, `F_i = P_i B_i P_iᵀ` with PEFT's permutations |
//! | [`LowRank`] | `U Vᵀ`: factors `[Vᵀ, U]`, one block each |
//! | [`Dense`] | one factor with one block |
//!
//! Convention: `apply(X) = X·Aᵀ` on the rows of a `(batch, n_in)` tensor, so
//! `to_dense() = apply(I)ᵀ`.
//!
//! ```
//! use gslab::structured::{Gs, LinearOp};
//! use gslab::{Blocks, Tensor};
//! use rand::{SeedableRng, rngs::StdRng};
//! // GSOFT's Q = Pᵀ L P R with 4 blocks of 3×3 (n = 12), P = P_(4,12) (scatter reading).
//! let q = Gs::<f64>::gsoft_random(Blocks::count(12, 4)?, &mut StdRng::seed_from_u64(0))?;
//! let x = Tensor::ones(&[2, 12]);
//! let y = q.apply(&x); // (2, 12): each row is Q·x
//! let dense = q.to_dense();
//! assert!(y.sub(&x.matmul_t(false, &dense, true)).max_abs() < 1e-12);
//! assert_eq!(q.param_count(), 2 * 4 * 3 * 3);
//! # Ok::<(), gslab::Error>(())
//! ```

pub mod block_diag;
pub mod butterfly;
pub mod dense;
pub mod gs;
pub mod gs_chain;
pub mod low_rank;
pub mod monarch;
pub mod pattern;
pub mod project;

pub use crate::blocks::BlockShape;
pub use crate::kernels::layout::{self, ChainLayout};
pub use block_diag::BlockDiag;
pub use butterfly::Butterfly;
pub use dense::Dense;
pub use gs::Gs;
pub use gs_chain::GsChain;
pub use low_rank::LowRank;
pub use monarch::Monarch;

use crate::error::{Error, Result};
use crate::kernels::chain::{chain_forward, chain_forward_t};
use crate::real::Real;
use crate::tensor::Tensor;
use faer::Par;
use rand::Rng;
use std::borrow::Cow;
use std::sync::Arc;

/// A structured linear operator `A` (shape `(n_out, n_in)`) stored as a block-diagonal chain.
///
/// All methods but [`LinearOp::layout_arc`] and [`LinearOp::blocks`] have defaults that go
/// through the layout and the batched chain kernels.
pub trait LinearOp<T: Real> {
    /// The chain `A = P_{m+1} B_m P_m ⋯ B_1 P_1`, shared (the tape op
    /// [`chain_apply`](crate::autodiff::ops::chain::chain_apply) takes it by `Arc`).
    fn layout_arc(&self) -> &Arc<ChainLayout>;

    /// The block tensors, one `(k_i, b_i¹, b_i²)` tensor per factor, `B_1` first: borrowed for
    /// operators that store them, computed for parametrized ones (the orthogonal layers build
    /// their blocks from skew generators on each call).
    fn blocks(&self) -> Cow<'_, [Tensor<T>]>;

    /// The chain layout.
    fn layout(&self) -> &ChainLayout {
        self.layout_arc()
    }

    /// `(n_out, n_in)`: rows and columns of `A`.
    fn shape(&self) -> (usize, usize) {
        (self.layout().n_out(), self.layout().n_in())
    }

    /// `Y = X·Aᵀ` for `X` of shape `(batch, n_in)` (each row `y = A x`), parallel over batch chunks.
    ///
    /// # Panics
    /// If `x` is not `(batch, n_in)`.
    fn apply(&self, x: &Tensor<T>) -> Tensor<T> {
        chain_forward(self.layout(), &self.blocks(), x, Par::rayon(0))
    }

    /// `Y = X·A` for `X` of shape `(batch, n_out)` (each row `y = Aᵀ x`).
    ///
    /// # Panics
    /// If `x` is not `(batch, n_out)`.
    fn apply_t(&self, x: &Tensor<T>) -> Tensor<T> {
        chain_forward_t(self.layout(), &self.blocks(), x, Par::rayon(0))
    }

    /// The boolean sparsity pattern of `A`, computed symbolically from the structure
    /// ([`Pattern::of_layout`](pattern::Pattern::of_layout)): entry `(i, j)` is set when a path
    /// through the factors links input `j` to output `i`. Equal to the nonzero pattern of `A` for
    /// generic blocks.
    fn pattern(&self) -> pattern::Pattern {
        pattern::Pattern::of_layout(self.layout())
    }

    /// The dense `(n_out, n_in)` matrix `A = I·A` (through [`LinearOp::apply_t`]); costs
    /// `n_out · n_in` memory, for tests and small sizes.
    fn to_dense(&self) -> Tensor<T> {
        self.apply_t(&Tensor::eye(self.layout().n_out()))
    }

    /// Block entries `Σ_i k_i·b_i¹·b_i²` (for the orthogonal layers: the paper's `b²`-per-block
    /// count). FLOPs of `apply` on a batch: [`chain_flops`](crate::count::chain_flops) of
    /// [`ChainLayout::macs_per_vector`].
    fn param_count(&self) -> usize {
        self.layout().param_count()
    }
}

/// [`identity_blocks`] for every factor of `layout`, `B_1` first.
pub(crate) fn identity_chain<T: Real>(layout: &ChainLayout) -> Vec<Tensor<T>> {
    layout
        .factors()
        .iter()
        .map(|&f| identity_blocks(f))
        .collect()
}

/// Blocks whose entries are `B_j[u][t] = 1 if u = t else 0` (each block is the leading part of
/// an identity; with square blocks and identity permutations the operator is `I`).
pub(crate) fn identity_blocks<T: Real>(shape: BlockShape) -> Tensor<T> {
    let BlockShape { k: _, b1, b2 } = shape;
    Tensor::from_fn(&shape.tensor_shape(), |idx| {
        let (u, t) = ((idx / b2) % b1, idx % b2);
        if u == t { T::one() } else { T::zero() }
    })
}

/// Blocks with i.i.d. `N(0, 1/b2)` entries, so that `‖B x‖ ≈ ‖x‖` on average.
pub(crate) fn random_blocks<T: Real, R: Rng + ?Sized>(shape: BlockShape, rng: &mut R) -> Tensor<T> {
    Tensor::randn(
        &shape.tensor_shape(),
        1.0 / (shape.b2.max(1) as f64).sqrt(),
        rng,
    )
}

/// Reads the block shape of a 3-D `(k, b1, b2)` tensor, naming `what` in the error.
pub(crate) fn block_shape_of<T: Real>(what: &str, t: &Tensor<T>) -> Result<BlockShape> {
    match *t.shape() {
        [k, b1, b2] if k > 0 && b1 > 0 && b2 > 0 => Ok(BlockShape::new(k, b1, b2)),
        _ => Err(Error::BlockMismatch(format!(
            "{what} must be a non-empty (k, b1, b2) block tensor, got shape {:?}",
            t.shape()
        ))),
    }
}

/// Checks that a block shape has no zero size, naming `what`.
pub(crate) fn check_nonempty(what: &str, s: BlockShape) -> Result<()> {
    if s.k == 0 || s.b1 == 0 || s.b2 == 0 {
        return Err(Error::BlockMismatch(format!(
            "{what} has an empty block shape: k={}, b1={}, b2={}",
            s.k, s.b1, s.b2
        )));
    }
    Ok(())
}
