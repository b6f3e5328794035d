//! [`LowRank`]: `A = U Vᵀ` with `U ∈ ℝ^{n_out × rank}`, `V ∈ ℝ^{n_in × rank}`, the two-factor
//! chain `[Vᵀ, U]` with one block per factor (the low-rank baseline, e.g. LoRA's `B A`).

use crate::error::{Error, Result};
use crate::real::Real;
use crate::structured::{ChainLayout, LinearOp, identity_chain, random_blocks};
use crate::tensor::Tensor;
use faer::MatRef;
use rand::Rng;
use std::borrow::Cow;
use std::sync::Arc;

/// A rank-`rank` product `A = U Vᵀ` of shape `(n_out, n_in)`: `y = U (Vᵀ x)`.
#[derive(Clone, Debug)]
pub struct LowRank<T: Real> {
    layout: Arc<ChainLayout>,
    blocks: Vec<Tensor<T>>,
}

fn low_rank_layout(n_out: usize, n_in: usize, rank: usize) -> Result<ChainLayout> {
    ChainLayout::low_rank(n_out, n_in, rank)
}

impl<T: Real> LowRank<T> {
    /// `U` and `V` with ones on their main diagonals (`U Vᵀ` is the leading `rank × rank`
    /// identity padded with zeros).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if a size is zero.
    pub fn new(n_out: usize, n_in: usize, rank: usize) -> Result<Self> {
        let layout = low_rank_layout(n_out, n_in, rank)?;
        let blocks = identity_chain(&layout);
        Ok(Self {
            layout: Arc::new(layout),
            blocks,
        })
    }

    /// i.i.d. entries: `Vᵀ` with variance `1/n_in`, `U` with variance `1/rank`.
    ///
    /// # Errors
    /// As [`LowRank::new`].
    pub fn random<R: Rng + ?Sized>(
        n_out: usize,
        n_in: usize,
        rank: usize,
        rng: &mut R,
    ) -> Result<Self> {
        let layout = low_rank_layout(n_out, n_in, rank)?;
        let blocks = layout
            .factors()
            .iter()
            .map(|&f| random_blocks(f, rng))
            .collect();
        Ok(Self {
            layout: Arc::new(layout),
            blocks,
        })
    }

    /// `A = U Vᵀ` from `u` of shape `(n_out, rank)` and `v` of shape `(n_in, rank)`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the tensors are not 2-D with equal, nonzero `rank`.
    pub fn from_factors(u: &Tensor<T>, v: &Tensor<T>) -> Result<Self> {
        let ([n_out, ru], [n_in, rv]) = (u.shape(), v.shape()) else {
            return Err(Error::InvalidArgument(format!(
                "LowRank::from_factors needs 2-D U and V, got shapes {:?} and {:?}",
                u.shape(),
                v.shape()
            )));
        };
        if ru != rv {
            return Err(Error::InvalidArgument(format!(
                "LowRank::from_factors: U has rank {ru} columns but V has {rv}"
            )));
        }
        let (n_out, n_in, rank) = (*n_out, *n_in, *ru);
        let layout = low_rank_layout(n_out, n_in, rank)?;
        let vt = v.transpose().reshape(&[1, rank, n_in])?;
        let u = u.clone().reshape(&[1, n_out, rank])?;
        Ok(Self {
            layout: Arc::new(layout),
            blocks: vec![vt, u],
        })
    }

    /// From the chain blocks `[Vᵀ (1, rank, n_in), U (1, n_out, rank)]`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] or [`Error::BlockMismatch`] if the shapes are not of that form.
    pub fn from_blocks(blocks: Vec<Tensor<T>>) -> Result<Self> {
        let (n_out, n_in, rank) = match blocks.as_slice() {
            [vt, u] => match (vt.shape(), u.shape()) {
                ([1, r, n_in], [1, n_out, _]) => (*n_out, *n_in, *r),
                _ => (0, 0, 0),
            },
            _ => (0, 0, 0),
        };
        if rank == 0 {
            return Err(Error::InvalidArgument(format!(
                "LowRank::from_blocks needs [(1, rank, n_in), (1, n_out, rank)], got {:?}",
                blocks
                    .iter()
                    .map(|b| b.shape().to_vec())
                    .collect::<Vec<_>>()
            )));
        }
        let layout = low_rank_layout(n_out, n_in, rank)?;
        layout.check_blocks(&blocks)?;
        Ok(Self {
            layout: Arc::new(layout),
            blocks,
        })
    }

    /// The rank bound `rank`.
    pub fn rank(&self) -> usize {
        self.layout.factors()[0].b1
    }

    /// `U` as a `(n_out, rank)` view.
    pub fn u(&self) -> MatRef<'_, T> {
        let f = self.layout.factors()[1];
        MatRef::from_row_major_slice(self.blocks[1].data(), f.b1, f.b2)
    }

    /// `V` as a `(n_in, rank)` view (a transposed view of the stored `Vᵀ`).
    pub fn v(&self) -> MatRef<'_, T> {
        let f = self.layout.factors()[0];
        MatRef::from_row_major_slice(self.blocks[0].data(), f.b1, f.b2).transpose()
    }
}

impl<T: Real> LinearOp<T> for LowRank<T> {
    fn layout_arc(&self) -> &Arc<ChainLayout> {
        &self.layout
    }

    fn blocks(&self) -> Cow<'_, [Tensor<T>]> {
        Cow::Borrowed(&self.blocks)
    }
}
