//! [`BlockDiag`]: `B = diag(B_1, …, B_k)` with `b1 × b2` blocks (rectangular allowed), the
//! one-factor chain with identity permutations. OFT's `Q` is this with square orthogonal blocks.

use crate::error::Result;
use crate::real::Real;
use crate::structured::{
    BlockShape, ChainLayout, LinearOp, block_shape_of, check_nonempty, identity_blocks,
    random_blocks,
};
use crate::tensor::Tensor;
use rand::Rng;
use std::borrow::Cow;
use std::sync::Arc;

/// A block-diagonal matrix `diag(B_1, …, B_k)` of shape `(k·b1, k·b2)`:
/// `y[j·b1 + u] = Σ_t B_j[u][t] · x[j·b2 + t]`.
#[derive(Clone, Debug)]
pub struct BlockDiag<T: Real> {
    layout: Arc<ChainLayout>,
    blocks: Vec<Tensor<T>>,
}

impl<T: Real> BlockDiag<T> {
    /// Blocks of `shape` (`k` of `b1 × b2`), each the leading part of an identity
    /// (`B_j[u][t] = [u = t]`), so with square blocks the matrix is `I`.
    ///
    /// # Errors
    /// [`Error::BlockMismatch`](crate::Error::BlockMismatch) if a size is zero.
    pub fn new(shape: BlockShape) -> Result<Self> {
        check_nonempty("BlockDiag", shape)?;
        Self::from_blocks(identity_blocks(shape))
    }

    /// Blocks of `shape` with i.i.d. `N(0, 1/b2)` entries.
    ///
    /// # Errors
    /// As [`BlockDiag::new`].
    pub fn random<R: Rng + ?Sized>(shape: BlockShape, rng: &mut R) -> Result<Self> {
        check_nonempty("BlockDiag", shape)?;
        Self::from_blocks(random_blocks(shape, rng))
    }

    /// The block-diagonal matrix with the blocks of a `(k, b1, b2)` tensor.
    ///
    /// # Errors
    /// [`Error::BlockMismatch`](crate::Error::BlockMismatch) if the tensor is not a non-empty
    /// 3-D tensor.
    pub fn from_blocks(blocks: Tensor<T>) -> Result<Self> {
        let s = block_shape_of("BlockDiag blocks", &blocks)?;
        let layout = ChainLayout::block_diag(s)?;
        Ok(Self {
            layout: Arc::new(layout),
            blocks: vec![blocks],
        })
    }

    /// The block shape `(k, b1, b2)`.
    pub fn block_shape(&self) -> BlockShape {
        self.layout.factors()[0]
    }

    /// The `(k, b1, b2)` block tensor.
    pub fn block_tensor(&self) -> &Tensor<T> {
        &self.blocks[0]
    }
}

impl<T: Real> LinearOp<T> for BlockDiag<T> {
    fn layout_arc(&self) -> &Arc<ChainLayout> {
        &self.layout
    }

    fn blocks(&self) -> Cow<'_, [Tensor<T>]> {
        Cow::Borrowed(&self.blocks)
    }
}
