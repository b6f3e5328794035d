//! [`Dense`]: an unstructured `(n_out, n_in)` matrix as the one-factor, one-block chain (the
//! dense baseline for parameter and speed comparisons).

use crate::error::{Error, Result};
use crate::real::Real;
use crate::structured::{ChainLayout, LinearOp, identity_chain, random_blocks};
use crate::tensor::Tensor;
use rand::Rng;
use std::borrow::Cow;
use std::sync::Arc;

/// A dense matrix `W` of shape `(n_out, n_in)`, stored as one block: `y = W x`.
#[derive(Clone, Debug)]
pub struct Dense<T: Real> {
    layout: Arc<ChainLayout>,
    blocks: Vec<Tensor<T>>,
}

fn dense_layout(n_out: usize, n_in: usize) -> Result<ChainLayout> {
    ChainLayout::dense(n_out, n_in)
}

impl<T: Real> Dense<T> {
    /// The `(n_out, n_in)` matrix with ones on the main diagonal (`I` when square).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if a size is zero.
    pub fn new(n_out: usize, n_in: usize) -> Result<Self> {
        let layout = dense_layout(n_out, n_in)?;
        let blocks = identity_chain(&layout);
        Ok(Self {
            layout: Arc::new(layout),
            blocks,
        })
    }

    /// i.i.d. `N(0, 1/n_in)` entries.
    ///
    /// # Errors
    /// As [`Dense::new`].
    pub fn random<R: Rng + ?Sized>(n_out: usize, n_in: usize, rng: &mut R) -> Result<Self> {
        let layout = dense_layout(n_out, n_in)?;
        let blocks = vec![random_blocks(layout.factors()[0], rng)];
        Ok(Self {
            layout: Arc::new(layout),
            blocks,
        })
    }

    /// The matrix `w` of shape `(n_out, n_in)`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `w` is not a non-empty 2-D tensor.
    pub fn from_matrix(w: &Tensor<T>) -> Result<Self> {
        let [n_out, n_in] = *w.shape() else {
            return Err(Error::InvalidArgument(format!(
                "Dense::from_matrix needs a 2-D tensor, got shape {:?}",
                w.shape()
            )));
        };
        let layout = dense_layout(n_out, n_in)?;
        let blocks = vec![w.clone().reshape(&[1, n_out, n_in])?];
        Ok(Self {
            layout: Arc::new(layout),
            blocks,
        })
    }

    /// The matrix from its one-block tensor of shape `(1, n_out, n_in)`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the shape is not `(1, n_out, n_in)` with nonzero sizes.
    pub fn from_blocks(blocks: Tensor<T>) -> Result<Self> {
        let [1, n_out, n_in] = *blocks.shape() else {
            return Err(Error::InvalidArgument(format!(
                "Dense::from_blocks needs shape (1, n_out, n_in), got {:?}",
                blocks.shape()
            )));
        };
        let layout = dense_layout(n_out, n_in)?;
        Ok(Self {
            layout: Arc::new(layout),
            blocks: vec![blocks],
        })
    }
}

impl<T: Real> LinearOp<T> for Dense<T> {
    fn layout_arc(&self) -> &Arc<ChainLayout> {
        &self.layout
    }

    fn blocks(&self) -> Cow<'_, [Tensor<T>]> {
        Cow::Borrowed(&self.blocks)
    }
}
