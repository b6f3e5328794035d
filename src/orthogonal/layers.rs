//! The named orthogonal layers: each fixes the layout of an [`OrthoChain`] and exposes it
//! through the shared [`OrthoLayer`] trait, and each is a [`LinearOp`] (so `apply`, `to_dense`,
//! `pattern`, `param_count` work as on the structured operators) and [`Params`] (for training).
//!
//! | layer | `Q` | layout |
//! |---|---|---|
//! | [`OrthoGs`] | GSOFT's `Pᵀ L P R`, `P = P_(r,n)` scatter reading (digest §4.1, §8) | [`ChainLayout::gsoft`] |
//! | [`OrthoGsChain`] | `(P^{m−1})ᵀ B_m P ⋯ B_2 P B_1` (digest §10) | [`ChainLayout::gs_chain_closed`] |
//! | [`OrthoBlockDiag`] | OFT's `diag(Q_1, …, Q_r)` (digest §1) | [`ChainLayout::block_diag`] |
//! | [`OrthoButterfly`] | BOFT's `F_{m−1}⋯F_0`, PEFT permutations (digest §2.5) | [`ChainLayout::peft_butterfly`] |
//! | [`OrthoMonarch`] | `Pᵀ L P R` with `k_L·k_R = n` (digest §2.4) | [`ChainLayout::monarch_square`] |
//! | [`OrthoDense`] | one dense `n × n` block (the unstructured baseline) | [`ChainLayout::dense`] |
//!
//! Every constructor takes its blocks as a [`Blocks`] value (`Blocks::count(n, r)` or
//! `Blocks::size(n, b)`), so a block size cannot be passed where a count is meant. All start at
//! `Q = I` exactly. Parameter counts are reported in both conventions: free
//! (`Σ k_i·b_i(b_i−1)/2`, what is stored) and the paper's (`Σ k_i·b_i²`, digest §3.6).
//!
//! ```
//! use gslab::orthogonal::{OrthoLayer, OrthoMap, layers::OrthoGs, orthogonality_error};
//! use gslab::structured::LinearOp;
//! use gslab::{Blocks, Tensor};
//! let q = OrthoGs::<f64>::new(Blocks::size(64, 8)?, OrthoMap::Cayley)?;
//! assert_eq!(q.to_dense(), Tensor::eye(64)); // zero parameters: Q = I exactly
//! assert_eq!((q.free_param_count(), q.paper_param_count()), (2 * 8 * 28, 2 * 8 * 64));
//! assert_eq!(q.pattern().row_counts()[0], 64); // min(n, b²) nonzeros per row
//! assert!(orthogonality_error(&q.matrix()) < 1e-15);
//! # Ok::<(), gslab::Error>(())
//! ```

use crate::autodiff::params::Params;
use crate::autodiff::tape::{Tape, Var};
use crate::blocks::Blocks;
use crate::error::{Error, Result};
use crate::kernels::layout::ChainLayout;
use crate::orthogonal::chain::OrthoChain;
use crate::orthogonal::map::OrthoMap;
use crate::real::Real;
use crate::structured::LinearOp;
use crate::tensor::Tensor;
use std::borrow::Cow;
use std::sync::Arc;

/// What every orthogonal layer offers: its [`OrthoChain`] and the methods built on it. Provided
/// methods forward to the chain.
pub trait OrthoLayer<T: Real>: LinearOp<T> + Params<T> {
    /// The underlying orthogonal chain.
    fn chain(&self) -> &OrthoChain<T>;

    /// The underlying orthogonal chain, mutably (to set parameters).
    fn chain_mut(&mut self) -> &mut OrthoChain<T>;

    /// The block map (Cayley or exp).
    fn map(&self) -> OrthoMap {
        self.chain().map()
    }

    /// The size `n` of `Q`.
    fn n(&self) -> usize {
        self.chain().n()
    }

    /// Free parameter count `Σ k_i·b_i(b_i−1)/2`.
    fn free_param_count(&self) -> usize {
        self.chain().free_param_count()
    }

    /// The paper's parameter count `Σ k_i·b_i²`.
    fn paper_param_count(&self) -> usize {
        self.chain().paper_param_count()
    }

    /// `Y = X·Qᵀ` on the tape; enters the parameters as leaves and returns them.
    ///
    /// # Panics
    /// If `x` is not `(batch, n)`.
    fn forward<'t>(&self, tape: &'t Tape<T>, x: Var<'t, T>) -> (Var<'t, T>, Vec<Var<'t, T>>) {
        self.chain().forward(tape, x)
    }

    /// `Y = X·Qᵀ` on the tape with the parameters given as leaves.
    ///
    /// # Panics
    /// If `x` is not `(batch, n)` or `leaves` does not match the factors.
    fn forward_with<'t>(&self, x: Var<'t, T>, leaves: &[Var<'t, T>]) -> Var<'t, T> {
        self.chain().forward_with(x, leaves)
    }

    /// The dense `n × n` matrix `Q` (checks and merging at small sizes).
    fn matrix(&self) -> Tensor<T> {
        self.chain().matrix()
    }

    /// Replaces all free parameters (one `(k_i, b_i(b_i−1)/2)` tensor per factor).
    ///
    /// # Errors
    /// [`Error::BlockMismatch`] naming the first tensor of the wrong shape.
    fn set_params(&mut self, params: Vec<Tensor<T>>) -> Result<()> {
        self.chain_mut().set_params(params)
    }
}

impl<T: Real> OrthoLayer<T> for OrthoChain<T> {
    fn chain(&self) -> &OrthoChain<T> {
        self
    }
    fn chain_mut(&mut self) -> &mut OrthoChain<T> {
        self
    }
}

/// Declares a named layer: a struct holding an [`OrthoChain`], with [`OrthoLayer`], [`LinearOp`]
/// and [`Params`] forwarded to it.
macro_rules! ortho_layer {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $name<T: Real> {
            chain: OrthoChain<T>,
        }

        impl<T: Real> OrthoLayer<T> for $name<T> {
            fn chain(&self) -> &OrthoChain<T> {
                &self.chain
            }
            fn chain_mut(&mut self) -> &mut OrthoChain<T> {
                &mut self.chain
            }
        }

        impl<T: Real> LinearOp<T> for $name<T> {
            fn layout_arc(&self) -> &Arc<ChainLayout> {
                self.chain.layout_arc()
            }
            fn blocks(&self) -> Cow<'_, [Tensor<T>]> {
                self.chain.blocks()
            }
            fn apply(&self, x: &Tensor<T>) -> Tensor<T> {
                self.chain.apply(x)
            }
            fn apply_t(&self, x: &Tensor<T>) -> Tensor<T> {
                self.chain.apply_t(x)
            }
        }

        impl<T: Real> Params<T> for $name<T> {
            fn params(&self) -> Vec<&Tensor<T>> {
                self.chain.params()
            }
            fn params_mut(&mut self) -> Vec<&mut Tensor<T>> {
                self.chain.params_mut()
            }
            fn param_names(&self) -> Vec<String> {
                self.chain.param_names()
            }
        }

        impl<T: Real> From<$name<T>> for OrthoChain<T> {
            fn from(layer: $name<T>) -> Self {
                layer.chain
            }
        }
    };
}

ortho_layer!(
    /// GSOFT's orthogonal GS matrix `Q = Pᵀ L P R` (digest §4.1): `R` and `L` have `r`
    /// orthogonal `b × b` blocks (`n = r·b`), `P = P_(r,n)` in the scatter reading of the
    /// official code ([`ChainLayout::gsoft`]). Chain factors `[R, L]`, perms `[I, P, Pᵀ]`.
    OrthoGs
);

impl<T: Real> OrthoGs<T> {
    /// `L` and `R` with the blocks of `blocks`, identity at init.
    ///
    /// # Errors
    /// Never for a valid [`Blocks`] (kept as `Result` like the other constructors).
    pub fn new(blocks: Blocks, map: OrthoMap) -> Result<Self> {
        let s = blocks.shape();
        Ok(Self {
            chain: OrthoChain::new(ChainLayout::gsoft(s, s)?, map)?,
        })
    }
}

ortho_layer!(
    /// An orthogonal GS chain `Q = (P^{m−1})ᵀ B_m P ⋯ B_2 P B_1` (digest §10 "GS with m
    /// factors", closed by a fixed output permutation, [`ChainLayout::gs_chain_closed`]): every
    /// factor has `r` orthogonal `b × b` blocks and `P = P_(r,n)` (scatter reading) sits between
    /// factors. `m = 1` is OFT's block-diagonal `Q`, `m = 2` exactly [`OrthoGs`]; the closing
    /// permutation only reorders rows (same density) and makes zero parameters give `Q = I`.
    OrthoGsChain
);

impl<T: Real> OrthoGsChain<T> {
    /// `m ≥ 1` factors with the blocks of `blocks`, identity at init.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `m = 0`.
    pub fn new(blocks: Blocks, m: usize, map: OrthoMap) -> Result<Self> {
        Ok(Self {
            chain: OrthoChain::new(ChainLayout::gs_chain_closed(blocks, m)?, map)?,
        })
    }
}

ortho_layer!(
    /// OFT's block-diagonal `Q = diag(Q_1, …, Q_r)` (digest §1): one factor, no permutations.
    OrthoBlockDiag
);

impl<T: Real> OrthoBlockDiag<T> {
    /// The blocks of `blocks`, identity at init.
    ///
    /// # Errors
    /// Never for a valid [`Blocks`] (kept as `Result` like the other constructors).
    pub fn new(blocks: Blocks, map: OrthoMap) -> Result<Self> {
        Ok(Self {
            chain: OrthoChain::new(ChainLayout::block_diag(blocks.shape())?, map)?,
        })
    }
}

ortho_layer!(
    /// BOFT's butterfly `Q = F_{m−1} ⋯ F_0` with `F_i = P_i B_i P_iᵀ` and the PEFT permutations
    /// ([`ChainLayout::peft_butterfly`], digest §2.5): every `B_i` has `r` orthogonal `b × b`
    /// blocks.
    OrthoButterfly
);

impl<T: Real> OrthoButterfly<T> {
    /// `m` butterfly factors with the blocks of `blocks`, identity at init.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] from PEFT's rule
    /// ([`check_peft_butterfly`](crate::kernels::layout::check_peft_butterfly)), naming the
    /// failed condition.
    pub fn new(blocks: Blocks, m: usize, map: OrthoMap) -> Result<Self> {
        Ok(Self {
            chain: OrthoChain::new(ChainLayout::peft_butterfly(blocks, m)?, map)?,
        })
    }
}

ortho_layer!(
    /// Orthogonal Monarch `Q = Pᵀ L P R` (Dao et al.; digest §2.4) with square blocks
    /// ([`ChainLayout::monarch_square`]): `L` has `k_L` blocks of size `k_R`, `R` has `k_R`
    /// blocks of size `k_L`, so `k_L·k_R = n` (the square-block Monarch constraint, T16).
    OrthoMonarch
);

impl<T: Real> OrthoMonarch<T> {
    /// `L` with the `r = k_L` blocks of size `b = k_R` of `l`; `R` with `k_R` blocks of size
    /// `k_L`. Identity at init.
    ///
    /// # Errors
    /// Never for a valid [`Blocks`] (kept as `Result` like the other constructors).
    pub fn new(l: Blocks, map: OrthoMap) -> Result<Self> {
        Ok(Self {
            chain: OrthoChain::new(ChainLayout::monarch_square(l)?, map)?,
        })
    }
}

ortho_layer!(
    /// The unstructured baseline: one dense `n × n` orthogonal block, `n(n−1)/2` free parameters.
    OrthoDense
);

impl<T: Real> OrthoDense<T> {
    /// A dense `n × n` orthogonal matrix, identity at init.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `n = 0`.
    pub fn new(n: usize, map: OrthoMap) -> Result<Self> {
        if n == 0 {
            return Err(Error::InvalidArgument(
                "OrthoDense needs n >= 1, got n=0".into(),
            ));
        }
        Ok(Self {
            chain: OrthoChain::new(ChainLayout::dense(n, n)?, map)?,
        })
    }
}
