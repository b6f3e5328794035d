//! Trainable orthogonal layers built on the structured chain product.
//!
//! Every layer is an [`OrthoChain`]: a chain `Q = P_{m+1} B_m P_m ⋯ B_1 P_1` (Definition 5.1,
//! gather-convention permutations, see [`ChainLayout`]) whose factors have square `b_i × b_i`
//! blocks `B_i[j] = map(K_ij)`, each the Cayley or exponential image of a skew generator stored by
//! its `b_i(b_i−1)/2` free parameters ([`crate::orthogonal::cayley`]). Orthogonal blocks and
//! permutations make `Q` orthogonal (Remark 1); zero parameters give `Q = I` exactly.
//!
//! A layer maps the rows of a `(batch, n)` input like every operator of the crate:
//! `forward(X) = X·Qᵀ` (each row `y = Q x`), through
//! [`chain_apply`], which never densifies.
//!
//! The named layers fix the layout:
//! - [`OrthoGs`] (GSOFT's `Q = Pᵀ L P R`, `P = P_(r,n)` scatter reading, digest §4.1, §8);
//! - [`GsChain`] (`B_m P ⋯ B_2 P B_1`, `P = P_(r,n)`, digest §10);
//! - [`Oft`] (block-diagonal, digest §1);
//! - [`Boft`] (PEFT butterfly `F_{m−1}⋯F_0`, `F_i = P_i B_i P_iᵀ`, digest §2.5);
//! - [`Monarch`] (`Pᵀ L P R` with `k_L·k_R = n`, digest §2.4);
//! - [`DenseOrtho`] (one `n × n` block, the unstructured baseline).
//!
//! Parameter counts are reported in both conventions: free (`Σ k_i·b_i(b_i−1)/2`, what is
//! stored here) and the paper's (`Σ k_i·b_i²`, `K = A − Aᵀ` with a full `A`, digest §3.6).

use crate::autodiff::ops::chain::chain_apply;
use crate::autodiff::tape::{Tape, Var};
use crate::blocks::BlockShape;
use crate::error::{Error, Result};
use crate::kernels::chain::{chain_forward, chain_forward_t};
use crate::kernels::layout::ChainLayout;
use crate::nn::optim::Params;
use crate::orthogonal::cayley::{PAR_MIN_BLOCK_WORK, skew_dim};
use crate::orthogonal::map::OrthoMap;
use crate::perm::Perm;
use crate::real::Real;
use crate::tensor::Tensor;
use faer::Par;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

/// An orthogonal chain `Q = P_{m+1} B_m P_m ⋯ B_1 P_1` with square orthogonal blocks
/// parametrized by free skew parameters (module docs). The common core of every layer.
#[derive(Clone, Debug)]
pub struct OrthoChain<T: Real> {
    layout: Arc<ChainLayout>,
    layout_t: Arc<ChainLayout>,
    map: OrthoMap,
    params: Vec<Tensor<T>>,
}

impl<T: Real> OrthoChain<T> {
    /// A chain with the given layout, zero parameters (`Q = I`) and block map `map`.
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
        let layout_t = Arc::new(transpose_layout(&layout));
        Ok(Self {
            layout: Arc::new(layout),
            layout_t,
            map,
            params,
        })
    }

    /// The chain's layout (sizes and permutations).
    pub fn layout(&self) -> &Arc<ChainLayout> {
        &self.layout
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

    /// The paper's count `Σ k_i·b_i²` (a full `A` per block with `K = A − Aᵀ`).
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

    /// The layout of `Qᵀ = P_1ᵀ B_1ᵀ P_2ᵀ ⋯ B_mᵀ P_{m+1}ᵀ` as a chain: factors reversed, every
    /// permutation inverted and the order reversed.
    pub fn transposed_layout(&self) -> ChainLayout {
        let factors = self.layout.factors().iter().rev().copied().collect();
        let perms = self
            .layout
            .perms()
            .iter()
            .rev()
            .map(Perm::inverse)
            .collect();
        ChainLayout::new(factors, perms).expect("the transpose of a valid square chain is valid")
    }

    /// `Y = X·Q` on the tape (each row `y = Qᵀ x`), with the parameters given as leaves. Uses
    /// `map(K)ᵀ = map(−K)` for both maps (`((I+K)(I−K)⁻¹)ᵀ = (I−K)(I+K)⁻¹` and
    /// `exp(K)ᵀ = exp(−K)`) on the [`OrthoChain::transposed_layout`].
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
        let neg: Vec<Var<'t, T>> = leaves.iter().rev().map(|v| v.neg()).collect();
        let blocks: Vec<Var<'t, T>> = neg
            .iter()
            .zip(self.layout.factors().iter().rev())
            .map(|(v, f)| self.map.apply(*v, f.b1))
            .collect();
        chain_apply(x, &blocks, &self.layout_t)
    }

    /// The orthogonal blocks without a tape.
    pub fn block_tensors(&self) -> Vec<Tensor<T>> {
        self.params
            .iter()
            .zip(self.layout.factors())
            .map(|(p, f)| self.map.blocks(p, f.b1))
            .collect()
    }

    /// `Y = X·Qᵀ` without a tape.
    ///
    /// # Panics
    /// If `x` is not `(batch, n)`.
    pub fn apply(&self, x: &Tensor<T>) -> Tensor<T> {
        chain_forward(&self.layout, &self.block_tensors(), x, self.par_for(x))
    }

    /// `Y = X·Q` without a tape (each row `y = Qᵀ x`), through the structured kernel.
    ///
    /// # Panics
    /// If `x` is not `(batch, n)`.
    pub fn apply_t(&self, x: &Tensor<T>) -> Tensor<T> {
        chain_forward_t(&self.layout, &self.block_tensors(), x, self.par_for(x))
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

    /// The dense `n × n` matrix `Q`, as `(I·Qᵀ)ᵀ`. For checks and merging on small sizes.
    pub fn matrix(&self) -> Tensor<T> {
        self.apply(&Tensor::eye(self.n())).transpose()
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

/// Declares a named layer as a newtype over [`OrthoChain`] (derefs to it, same parameters).
macro_rules! ortho_layer {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $name<T: Real>(pub OrthoChain<T>);

        impl<T: Real> Deref for $name<T> {
            type Target = OrthoChain<T>;
            fn deref(&self) -> &OrthoChain<T> {
                &self.0
            }
        }

        impl<T: Real> DerefMut for $name<T> {
            fn deref_mut(&mut self) -> &mut OrthoChain<T> {
                &mut self.0
            }
        }

        impl<T: Real> Params<T> for $name<T> {
            fn params(&self) -> Vec<&Tensor<T>> {
                self.0.params()
            }
            fn params_mut(&mut self) -> Vec<&mut Tensor<T>> {
                self.0.params_mut()
            }
            fn param_names(&self) -> Vec<String> {
                self.0.param_names()
            }
        }
    };
}

ortho_layer!(
    /// GSOFT's orthogonal GS matrix `Q = Pᵀ L P R` (digest §4.1): `R` and `L` have `r` orthogonal
    /// `b × b` blocks (`n = r·b`), `P = P_(r,n)` in the scatter reading of the official code
    /// ([`Perm::shuffle_scatter`]`(r, n)`). Chain factors `[R, L]`, perms `[I, P, Pᵀ]`.
    OrthoGs
);

impl<T: Real> OrthoGs<T> {
    /// `r` blocks of size `b = n/r` in each factor, identity at init.
    ///
    /// # Errors
    /// If `r` is 0 or does not divide `n`.
    pub fn new(n: usize, r: usize, map: OrthoMap) -> Result<Self> {
        let b = block_size(n, r, "OrthoGs")?;
        let p = Perm::shuffle_scatter(r, n)?;
        let layout = ChainLayout::new(
            vec![BlockShape::square(r, b); 2],
            vec![Perm::identity(n), p.clone(), p.inverse()],
        )?;
        Ok(Self(OrthoChain::new(layout, map)?))
    }
}

ortho_layer!(
    /// An orthogonal GS chain `Q = (P^{m−1})ᵀ B_m P ⋯ B_2 P B_1` (digest §10 "GS with m factors",
    /// closed by a fixed output permutation): every factor has `r` orthogonal `b × b` blocks and
    /// `P = P_(r,n)` (scatter reading) sits between factors. The closing `(P^{m−1})ᵀ` only reorders
    /// rows (same density and block structure) and makes zero parameters give `Q = I`; for
    /// `m = 2` this is exactly [`OrthoGs`]. Perms `[I, P, …, P, (P^{m−1})ᵀ]`.
    GsChain
);

impl<T: Real> GsChain<T> {
    /// `m ≥ 1` factors of `r` blocks of size `b = n/r`, identity at init.
    ///
    /// # Errors
    /// If `m = 0` or `r` does not divide `n`.
    pub fn new(n: usize, r: usize, m: usize, map: OrthoMap) -> Result<Self> {
        let b = block_size(n, r, "GsChain")?;
        if m == 0 {
            return Err(Error::InvalidArgument(
                "GsChain needs m >= 1 factors".into(),
            ));
        }
        let p = Perm::shuffle_scatter(r, n)?;
        let mut perms = vec![Perm::identity(n)];
        perms.extend(std::iter::repeat_n(p.clone(), m - 1));
        // Close with (P^{m−1})ᵀ so that identity blocks give Q = I.
        let mut closing = Perm::identity(n);
        for _ in 1..m {
            closing = closing.compose(&p);
        }
        perms.push(closing.inverse());
        let layout = ChainLayout::new(vec![BlockShape::square(r, b); m], perms)?;
        Ok(Self(OrthoChain::new(layout, map)?))
    }
}

ortho_layer!(
    /// OFT's block-diagonal `Q = diag(Q_1, …, Q_r)` (digest §1): one factor, no permutations.
    Oft
);

impl<T: Real> Oft<T> {
    /// `r` blocks of size `b = n/r`, identity at init.
    ///
    /// # Errors
    /// If `r` is 0 or does not divide `n`.
    pub fn new(n: usize, r: usize, map: OrthoMap) -> Result<Self> {
        let b = block_size(n, r, "Oft")?;
        let layout = ChainLayout::new(
            vec![BlockShape::square(r, b)],
            vec![Perm::identity(n), Perm::identity(n)],
        )?;
        Ok(Self(OrthoChain::new(layout, map)?))
    }
}

ortho_layer!(
    /// BOFT's butterfly `Q = F_{m−1} ⋯ F_0` with `F_i = P_i B_i P_iᵀ` and the PEFT permutations
    /// `P_i = block_butterfly_perm(n, r/2^i, b/2)` ([`Perm::block_butterfly`], a gather map since
    /// PEFT's `perm2mat` sets `P[i, perm[i]] = 1`); digest §2.5. Every `B_i` has `r` orthogonal
    /// `b × b` blocks. As a chain: perms `[P_0ᵀ, P_1ᵀP_0, …, P_{m−1}ᵀP_{m−2}, P_{m−1}]`.
    Boft
);

impl<T: Real> Boft<T> {
    /// `m` butterfly factors of `r` blocks of size `b = n/r`, identity at init.
    ///
    /// # Errors
    /// If `r` does not divide `n`, `b` is odd, `m = 0`, or `2^{m−1}` does not divide `r` (PEFT's
    /// validity conditions, through [`Perm::block_butterfly`]).
    pub fn new(n: usize, r: usize, m: usize, map: OrthoMap) -> Result<Self> {
        let b = block_size(n, r, "Boft")?;
        if m == 0 || b % 2 != 0 || m > 32 || !r.is_multiple_of(1usize << (m - 1)) {
            return Err(Error::InvalidArgument(format!(
                "Boft needs m >= 1, an even block size and 2^(m-1) | r, got n={n}, r={r} (b={b}), m={m}"
            )));
        }
        let layout = crate::structured::butterfly::peft_chain(n, r, m)?;
        Ok(Self(OrthoChain::new(layout, map)?))
    }
}

ortho_layer!(
    /// Orthogonal Monarch `Q = Pᵀ L P R` (Dao et al.; digest §2.4): `R` has `k_R` blocks of size
    /// `k_L`, `L` has `k_L` blocks of size `k_R`, so `k_L·k_R = n` (the square-block Monarch
    /// constraint, T16). `P = P_(k_L, n)` in the scatter reading sends entry `a` of every `R` block
    /// to `L` block `a`. Chain factors `[R, L]`, perms `[I, P, Pᵀ]`.
    Monarch
);

impl<T: Real> Monarch<T> {
    /// `k_l` blocks in `L` and `k_r` blocks in `R`, identity at init.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] unless `k_l·k_r = n` with both positive.
    pub fn new(n: usize, k_l: usize, k_r: usize, map: OrthoMap) -> Result<Self> {
        if k_l == 0 || k_r == 0 || k_l * k_r != n {
            return Err(Error::InvalidArgument(format!(
                "Monarch with square blocks needs k_L·k_R = n, got k_L={k_l}, k_R={k_r}, n={n}"
            )));
        }
        let p = Perm::shuffle_scatter(k_l, n)?;
        let layout = ChainLayout::new(
            vec![BlockShape::square(k_r, k_l), BlockShape::square(k_l, k_r)],
            vec![Perm::identity(n), p.clone(), p.inverse()],
        )?;
        Ok(Self(OrthoChain::new(layout, map)?))
    }
}

ortho_layer!(
    /// The unstructured baseline: one dense `n × n` orthogonal block, `n(n−1)/2` free parameters.
    DenseOrtho
);

impl<T: Real> DenseOrtho<T> {
    /// A dense `n × n` orthogonal matrix, identity at init.
    ///
    /// # Errors
    /// If `n = 0`.
    pub fn new(n: usize, map: OrthoMap) -> Result<Self> {
        block_size(n, 1, "DenseOrtho")?;
        let layout = ChainLayout::new(
            vec![BlockShape::square(1, n)],
            vec![Perm::identity(n), Perm::identity(n)],
        )?;
        Ok(Self(OrthoChain::new(layout, map)?))
    }
}

/// The chain of `Aᵀ = P_1ᵀ B_1ᵀ P_2ᵀ ⋯ B_mᵀ P_{m+1}ᵀ` for square blocks: factors reversed, every
/// permutation inverted and the order reversed.
fn transpose_layout(layout: &ChainLayout) -> ChainLayout {
    let factors = layout.factors().iter().rev().copied().collect();
    let perms = layout.perms().iter().rev().map(Perm::inverse).collect();
    ChainLayout::new(factors, perms).expect("the transpose of a valid square chain is valid")
}

/// `n / r`, or an error naming `who` unless `0 < r | n`.
fn block_size(n: usize, r: usize, who: &str) -> Result<usize> {
    if n == 0 || r == 0 || !n.is_multiple_of(r) {
        return Err(Error::InvalidArgument(format!(
            "{who}: the number of blocks r must divide n > 0, got n={n}, r={r}"
        )));
    }
    Ok(n / r)
}
