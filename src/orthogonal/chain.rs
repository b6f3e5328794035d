//! [`OrthoChain`]: an orthogonal chain `Q = P_{m+1} B_m P_m ⋯ B_1 P_1` (Definition 5.1,
//! gather-convention permutations, see [`ChainLayout`]) whose factors have square `b_i × b_i`
//! blocks `B_i[j] = map(K_ij)`, each the Cayley or exponential image of a skew generator stored by
//! its `b_i(b_i−1)/2` free parameters ([`crate::orthogonal::cayley`]). Orthogonal blocks and
//! permutations make `Q` orthogonal (Remark 1); zero parameters give `Q = I` exactly when the
//! layout's permutations compose to the identity (every named layer's layout does).
//!
//! It maps the rows of a `(batch, n)` input like every operator of the crate: `X ↦ X·Qᵀ` (each
//! row `y = Q x`), through [`chain_apply`] on a tape or the chain kernel without one; it never
//! densifies. It is the common core of the named layers ([`crate::orthogonal::layers`]).

use crate::autodiff::ops::chain::chain_apply;
use crate::autodiff::params::Params;
use crate::autodiff::tape::{Tape, Var};
use crate::error::{Error, Result};
use crate::kernels::chain::{chain_forward, chain_forward_t};
use crate::kernels::layout::ChainLayout;
use crate::orthogonal::cayley::{PAR_MIN_BLOCK_WORK, skew_dim};
use crate::orthogonal::map::OrthoMap;
use crate::real::Real;
use crate::structured::{GsChain, LinearOp};
use crate::tensor::Tensor;
use faer::Par;
use std::borrow::Cow;
use std::sync::Arc;

/// An orthogonal chain with square orthogonal blocks parametrized by free skew parameters
/// (module docs). Trainable: one `(k_i, b_i(b_i−1)/2)` tensor per factor, `B_1` first.
#[derive(Clone, Debug)]
pub struct OrthoChain<T: Real> {
    layout: Arc<ChainLayout>,
    layout_t: Arc<ChainLayout>,
    map: OrthoMap,
    params: Vec<Tensor<T>>,
}

impl<T: Real> OrthoChain<T> {
    /// A chain with the given layout, zero parameters (identity blocks) and block map `map`.
    ///
    /// # Errors
    /// [`Error::BlockMismatch`] if a factor has non-square blocks or the chain is not square.
    pub fn new(layout: ChainLayout, map: OrthoMap) -> Result<Self> {
        for (i, f) in layout.factors().iter().enumerate() {
            if f.b1 != f.b2 {
                return Err(Error::BlockMismatch(format!(
                    "orthogonal chains need square blocks, factor {i} has {}x{}",
                    f.b1, f.b2
                )));
            }
        }
        if layout.n_in() != layout.n_out() {
            return Err(Error::BlockMismatch(format!(
                "orthogonal chains must be square, got {} x {}",
                layout.n_out(),
                layout.n_in()
            )));
        }
        let params = layout
            .factors()
            .iter()
            .map(|f| Tensor::zeros(&[f.k, skew_dim(f.b1)]))
            .collect();
        let layout_t = Arc::new(layout.transposed());
        Ok(Self {
            layout: Arc::new(layout),
            layout_t,
            map,
            params,
        })
    }

    /// The block map (Cayley or exp).
    pub fn map(&self) -> OrthoMap {
        self.map
    }

    /// The size `n` of `Q` (`n × n`).
    pub fn n(&self) -> usize {
        self.layout.n_in()
    }

    /// Number of factors `m`.
    pub fn m(&self) -> usize {
        self.layout.m()
    }

    /// The free parameters of factor `i`, shape `(k_i, b_i(b_i−1)/2)`.
    ///
    /// # Panics
    /// If `i ≥ m`.
    pub fn factor_params(&self, i: usize) -> &Tensor<T> {
        &self.params[i]
    }

    /// Replaces all free parameters.
    ///
    /// # Errors
    /// [`Error::BlockMismatch`] naming the first tensor whose shape is not `(k_i, b_i(b_i−1)/2)`.
    pub fn set_params(&mut self, params: Vec<Tensor<T>>) -> Result<()> {
        if params.len() != self.params.len() {
            return Err(Error::BlockMismatch(format!(
                "{} parameter tensors for a chain of {} factors",
                params.len(),
                self.params.len()
            )));
        }
        for (i, (p, old)) in params.iter().zip(&self.params).enumerate() {
            if p.shape() != old.shape() {
                return Err(Error::BlockMismatch(format!(
                    "factor {i} needs free parameters of shape {:?}, got {:?}",
                    old.shape(),
                    p.shape()
                )));
            }
        }
        self.params = params;
        Ok(())
    }

    /// Free parameter count `Σ k_i·b_i(b_i−1)/2` (what is stored and trained).
    pub fn free_param_count(&self) -> usize {
        self.layout
            .factors()
            .iter()
            .map(|f| f.k * skew_dim(f.b1))
            .sum()
    }

    /// The paper's count `Σ k_i·b_i²` (a full `A` per block with `K = A − Aᵀ`, digest §3.6);
    /// equal to [`LinearOp::param_count`].
    pub fn paper_param_count(&self) -> usize {
        self.layout.param_count()
    }

    /// The orthogonal blocks on the tape from parameter leaves (one `(k_i, b_i, b_i)` per factor).
    ///
    /// # Panics
    /// If `leaves` does not hold one `(k_i, b_i(b_i−1)/2)` tensor per factor.
    pub fn blocks_on<'t>(&self, leaves: &[Var<'t, T>]) -> Vec<Var<'t, T>> {
        assert!(
            leaves.len() == self.m(),
            "OrthoChain::blocks_on: {} parameter leaves for {} factors",
            leaves.len(),
            self.m()
        );
        leaves
            .iter()
            .zip(self.layout.factors())
            .map(|(v, f)| self.map.apply(*v, f.b1))
            .collect()
    }

    /// `Y = X·Qᵀ` on the tape, with the parameters given as leaves (see [`Params::leaves`]).
    ///
    /// # Panics
    /// If `x` is not `(batch, n)` or `leaves` does not match the factors.
    pub fn forward_with<'t>(&self, x: Var<'t, T>, leaves: &[Var<'t, T>]) -> Var<'t, T> {
        chain_apply(x, &self.blocks_on(leaves), &self.layout)
    }

    /// `Y = X·Qᵀ` on the tape; enters the parameters as leaves and returns them (for gradients).
    ///
    /// # Panics
    /// If `x` is not `(batch, n)`.
    pub fn forward<'t>(&self, tape: &'t Tape<T>, x: Var<'t, T>) -> (Var<'t, T>, Vec<Var<'t, T>>) {
        let leaves = self.leaves(tape);
        (self.forward_with(x, &leaves), leaves)
    }

    /// `Y = X·Q` on the tape (each row `y = Qᵀ x`), with the parameters given as leaves. Uses
    /// `map(K)ᵀ = map(−K)` for both maps (`((I+K)(I−K)⁻¹)ᵀ = (I−K)(I+K)⁻¹` and
    /// `exp(K)ᵀ = exp(−K)`) on the layout of `Qᵀ` ([`ChainLayout::transposed`]).
    ///
    /// # Panics
    /// If `x` is not `(batch, n)` or `leaves` does not match the factors.
    pub fn forward_t_with<'t>(&self, x: Var<'t, T>, leaves: &[Var<'t, T>]) -> Var<'t, T> {
        assert!(
            leaves.len() == self.m(),
            "OrthoChain::forward_t_with: {} parameter leaves for {} factors",
            leaves.len(),
            self.m()
        );
        let blocks: Vec<Var<'t, T>> = leaves
            .iter()
            .rev()
            .zip(self.layout.factors().iter().rev())
            .map(|(v, f)| self.map.apply(v.neg(), f.b1))
            .collect();
        chain_apply(x, &blocks, &self.layout_t)
    }

    /// The orthogonal blocks without a tape, one `(k_i, b_i, b_i)` tensor per factor.
    pub fn block_tensors(&self) -> Vec<Tensor<T>> {
        self.params
            .iter()
            .zip(self.layout.factors())
            .map(|(p, f)| self.map.blocks(p, f.b1))
            .collect()
    }

    /// The dense `n × n` matrix `Q`, as `(I·Qᵀ)ᵀ` through the forward kernel (for checks and
    /// merging at small sizes; [`LinearOp::to_dense`] computes the same matrix as `I·Q`).
    pub fn matrix(&self) -> Tensor<T> {
        self.apply(&Tensor::eye(self.n())).transpose()
    }

    /// A frozen copy as a structured operator: the current blocks on the same layout, so a loop
    /// that only evaluates pays for the block map once.
    pub fn to_chain(&self) -> GsChain<T> {
        GsChain::from_layout((*self.layout).clone(), self.block_tensors())
            .expect("the blocks of a chain match its layout")
    }

    /// Rayon for batches with at least [`PAR_MIN_BLOCK_WORK`] multiply-adds, else sequential.
    fn par_for(&self, x: &Tensor<T>) -> Par {
        let work = x.numel() * self.layout.macs_per_vector() / self.n().max(1);
        if work >= PAR_MIN_BLOCK_WORK {
            Par::rayon(0)
        } else {
            Par::Seq
        }
    }
}

impl<T: Real> LinearOp<T> for OrthoChain<T> {
    fn layout_arc(&self) -> &Arc<ChainLayout> {
        &self.layout
    }

    /// The orthogonal blocks, computed from the free parameters by the block map.
    fn blocks(&self) -> Cow<'_, [Tensor<T>]> {
        Cow::Owned(self.block_tensors())
    }

    /// `Y = X·Qᵀ` without a tape, sequential for small batches.
    fn apply(&self, x: &Tensor<T>) -> Tensor<T> {
        chain_forward(&self.layout, &self.block_tensors(), x, self.par_for(x))
    }

    /// `Y = X·Q` without a tape (each row `y = Qᵀ x`), sequential for small batches.
    fn apply_t(&self, x: &Tensor<T>) -> Tensor<T> {
        chain_forward_t(&self.layout, &self.block_tensors(), x, self.par_for(x))
    }
}

impl<T: Real> Params<T> for OrthoChain<T> {
    fn params(&self) -> Vec<&Tensor<T>> {
        self.params.iter().collect()
    }
    fn params_mut(&mut self) -> Vec<&mut Tensor<T>> {
        self.params.iter_mut().collect()
    }
    fn param_names(&self) -> Vec<String> {
        (0..self.params.len())
            .map(|i| format!("factor{i}"))
            .collect()
    }
}
