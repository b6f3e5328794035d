//! Parameter-efficient adapters on a frozen linear layer `y = x W₀ᵀ + bias` (`W₀` is
//! `out × in`, the torch convention). Trained parameters are saved with
//! [`io::save_params`](crate::io::save_params).
//!
//! Orthogonal adapters ([`OrthoAdapter`]) learn `W' = diag(s)·Q_out·W₀·Q̃_in` with the scale
//! `s ∈ ℝ^out` starting at ones and orthogonal chains starting at the identity, so the adapted
//! layer equals the base layer exactly at init (digest §8, T6):
//! - **GSOFT** ([`OrthoAdapter::gsoft`]): `W' = diag(s)·W₀·Q`, `Q = Pᵀ L P R` on the input side,
//!   as the official `GSOFTLayer` (`s * F.linear(gs_ort(x), W) + bias`, digest §4.1); or
//!   `W' = diag(s)·Q·W₀` on the output side ([`OrthoAdapter::gsoft_output`], the later variant's `is_left=False`).
//! - **Double GSOFT** ([`OrthoAdapter::double_gsoft`]): `W' = diag(s)·Q_out·W₀·Q_in` (§4.2).
//! - **OFT / BOFT** ([`OrthoAdapter::oft`], [`OrthoAdapter::boft`]) as PEFT builds them
//!   (digest §2.5): `W' = (M W₀ᵀ)ᵀ·s = diag(s)·W₀·Mᵀ` with `M = F_{m−1}⋯F_0` the butterfly
//!   ([`OrthoButterfly`]; OFT is `m = 1`, block-diagonal). So `x` is multiplied by `M` itself:
//!   `y = x·M·W₀ᵀ·diag(s)`, computed with the transposed chain ([`OrthoChain::forward_t_with`]).
//! - **GS chains** ([`OrthoAdapter::gs_chain`]): `W' = diag(s)·W₀·Q` with an `m`-factor
//!   [`OrthoGsChain`] (`m = 2` is GSOFT), for the ablation over the number of factors.
//!
//! Blocks are given as a [`BlockRule`] (`BlockRule::Size(b)` or `BlockRule::Count(r)`), applied to
//! the dimension the rotation acts on; errors name the adapter and that dimension.
//!
//! [`Lora`]: `W' = W₀ + (α/r)·B A`, `A ∈ ℝ^{r×in}` random, `B ∈ ℝ^{out×r}` zero.
//!
//! Every adapter implements [`Adapter`]: `forward(&tape, x)` for training and a tape-free
//! `apply(&x)` for evaluation; neither forms `W'`: the chain products act on the activations. `merge()` forms the
//! plain dense weight for inference (no overhead); merged and unmerged outputs agree to rounding.

use crate::autodiff::params::Params;
use crate::autodiff::tape::{Tape, Var};
use crate::blocks::{BlockRule, Blocks};
use crate::error::{Error, Result};
use crate::orthogonal::chain::OrthoChain;
use crate::orthogonal::layers::{OrthoButterfly, OrthoGs, OrthoGsChain};
use crate::orthogonal::map::OrthoMap;
use crate::real::Real;
use crate::structured::LinearOp;
use crate::tensor::Tensor;
use rand::Rng;

/// A plain dense linear layer `y = x Wᵀ + bias` (`W` is `out × in`): the frozen base of every
/// adapter and the result of `merge()`.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseLinear<T: Real> {
    /// The weight, `(out, in)`.
    pub weight: Tensor<T>,
    /// The bias, `(out)`, if any.
    pub bias: Option<Tensor<T>>,
}

impl<T: Real> DenseLinear<T> {
    /// Validates `weight` `(out, in)` and `bias` `(out)`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the shapes if they do not fit.
    pub fn new(weight: Tensor<T>, bias: Option<Tensor<T>>) -> Result<Self> {
        if weight.ndim() != 2 {
            return Err(Error::InvalidArgument(format!(
                "linear weight must be (out, in), got {:?}",
                weight.shape()
            )));
        }
        if let Some(b) = &bias
            && b.shape() != [weight.shape()[0]]
        {
            return Err(Error::InvalidArgument(format!(
                "bias of shape {:?} for a weight of shape {:?}",
                b.shape(),
                weight.shape()
            )));
        }
        Ok(Self { weight, bias })
    }

    /// Output features.
    pub fn out_features(&self) -> usize {
        self.weight.shape()[0]
    }

    /// Input features.
    pub fn in_features(&self) -> usize {
        self.weight.shape()[1]
    }

    /// `y = x Wᵀ + bias` without a tape.
    ///
    /// # Panics
    /// If `x` is not `(batch, in)`.
    pub fn apply(&self, x: &Tensor<T>) -> Tensor<T> {
        let y = x.matmul_t(false, &self.weight, true);
        match &self.bias {
            Some(b) => add_row(&y, b),
            None => y,
        }
    }

    /// `y = x Wᵀ + bias` on a tape, with the weight and bias entered as constants (the layer
    /// is frozen: nothing to differentiate).
    ///
    /// # Panics
    /// If `x` is not `(batch, in)`.
    pub fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        let tape = x.tape();
        let y = x.matmul_t(false, tape.constant(self.weight.clone()), true);
        self.add_bias(y)
    }

    fn add_bias<'t>(&self, y: Var<'t, T>) -> Var<'t, T> {
        match &self.bias {
            Some(b) => y.add_row(y.tape().constant(b.clone())),
            None => y,
        }
    }
}

/// `y[i, j] = x[i, j] + b[j]`.
fn add_row<T: Real>(x: &Tensor<T>, b: &Tensor<T>) -> Tensor<T> {
    let n = b.numel();
    let mut y = x.clone();
    for row in y.data_mut().chunks_mut(n) {
        row.iter_mut().zip(b.data()).for_each(|(v, &c)| *v += c);
    }
    y
}

/// What every adapter on a frozen [`DenseLinear`] offers: training on a tape, tape-free
/// evaluation, and merging into a plain dense layer. Parameters come from [`Params`].
pub trait Adapter<T: Real>: Params<T> {
    /// The frozen base layer.
    fn base(&self) -> &DenseLinear<T>;

    /// `y = x W'ᵀ + bias` on the tape, with the parameters given as leaves in [`Params`] order.
    ///
    /// # Panics
    /// If `x` is not `(batch, in)` or `leaves` does not match [`Params::params`].
    fn forward_with<'t>(&self, x: Var<'t, T>, leaves: &[Var<'t, T>]) -> Var<'t, T>;

    /// `y = x W'ᵀ + bias` on the tape; enters the parameters as leaves and returns them.
    ///
    /// # Panics
    /// If `x` is not `(batch, in)`.
    fn forward<'t>(&self, tape: &'t Tape<T>, x: Var<'t, T>) -> (Var<'t, T>, Vec<Var<'t, T>>) {
        let leaves = self.leaves(tape);
        (self.forward_with(x, &leaves), leaves)
    }

    /// `y = x W'ᵀ + bias` without a tape (evaluation), without forming `W'`.
    ///
    /// # Panics
    /// If `x` is not `(batch, in)`.
    fn apply(&self, x: &Tensor<T>) -> Tensor<T>;

    /// The effective dense layer `W'` and the bias (for inference without overhead).
    fn merge(&self) -> DenseLinear<T>;
}

/// The rotation on the input side of an [`OrthoAdapter`].
#[derive(Clone, Debug)]
enum InputRotation<T: Real> {
    /// `W₀·Q` (GSOFT): `x ↦ x·Qᵀ`.
    Direct(OrthoChain<T>),
    /// `W₀·Mᵀ` (PEFT OFT/BOFT): `x ↦ x·M`.
    Transposed(OrthoChain<T>),
}

impl<T: Real> InputRotation<T> {
    fn chain(&self) -> &OrthoChain<T> {
        match self {
            Self::Direct(c) | Self::Transposed(c) => c,
        }
    }
    fn chain_mut(&mut self) -> &mut OrthoChain<T> {
        match self {
            Self::Direct(c) | Self::Transposed(c) => c,
        }
    }
}

/// An orthogonal adapter `W' = diag(s)·Q_out·W₀·Q̃_in` on a frozen [`DenseLinear`] (module docs).
/// Trainable: the free parameters of the input chain, of the output chain, then `s`.
#[derive(Clone, Debug)]
pub struct OrthoAdapter<T: Real> {
    base: DenseLinear<T>,
    q_in: Option<InputRotation<T>>,
    q_out: Option<OrthoChain<T>>,
    scale: Option<Tensor<T>>,
}

impl<T: Real> OrthoAdapter<T> {
    fn build(
        base: DenseLinear<T>,
        q_in: Option<InputRotation<T>>,
        q_out: Option<OrthoChain<T>>,
        scale: bool,
    ) -> Result<Self> {
        if let Some(q) = &q_in {
            check_size(q.chain().n(), base.in_features(), "input")?;
        }
        if let Some(q) = &q_out {
            check_size(q.n(), base.out_features(), "output")?;
        }
        let scale = scale.then(|| Tensor::ones(&[base.out_features()]));
        Ok(Self {
            base,
            q_in,
            q_out,
            scale,
        })
    }

    /// GSOFT: `W' = diag(s)·W₀·Q` with `Q` = [`OrthoGs`] on the `in` features, its blocks given
    /// by `rule` (a block size or a block count).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the adapter and `in_features` if `rule` does not fit.
    pub fn gsoft(
        base: DenseLinear<T>,
        rule: BlockRule,
        map: OrthoMap,
        scale: bool,
    ) -> Result<Self> {
        let n = base.in_features();
        let q = context(
            "GSOFT",
            "in",
            n,
            rule.on(n).and_then(|b| OrthoGs::new(b, map)),
        )?;
        Self::build(base, Some(InputRotation::Direct(q.into())), None, scale)
    }

    /// GSOFT on the output side: `W' = diag(s)·Q·W₀` with `Q` = [`OrthoGs`] on the `out`
    /// features.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the adapter and `out_features` if `rule` does not fit.
    pub fn gsoft_output(
        base: DenseLinear<T>,
        rule: BlockRule,
        map: OrthoMap,
        scale: bool,
    ) -> Result<Self> {
        let n = base.out_features();
        let q = context(
            "GSOFT (output)",
            "out",
            n,
            rule.on(n).and_then(|b| OrthoGs::new(b, map)),
        )?;
        Self::build(base, None, Some(q.into()), scale)
    }

    /// Double GSOFT: `W' = diag(s)·Q_out·W₀·Q_in`, [`OrthoGs`] on both sides with the blocks of
    /// `rule_in` on the `in` features and of `rule_out` on the `out` features.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the adapter and the dimension a rule does not fit.
    pub fn double_gsoft(
        base: DenseLinear<T>,
        rule_in: BlockRule,
        rule_out: BlockRule,
        map: OrthoMap,
        scale: bool,
    ) -> Result<Self> {
        let (n_in, n_out) = (base.in_features(), base.out_features());
        let on = |rule: BlockRule, n| rule.on(n).and_then(|b| OrthoGs::new(b, map));
        let qi = context("Double GSOFT", "in", n_in, on(rule_in, n_in))?;
        let qo = context("Double GSOFT", "out", n_out, on(rule_out, n_out))?;
        Self::build(
            base,
            Some(InputRotation::Direct(qi.into())),
            Some(qo.into()),
            scale,
        )
    }

    /// An `m`-factor GS chain on the input side: `W' = diag(s)·W₀·Q` with `Q` =
    /// [`OrthoGsChain`] (`m = 1` is a block-diagonal rotation, `m = 2` is GSOFT), for the
    /// ablation over the number of factors.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the adapter and `in_features` if `rule` does not fit or
    /// `m = 0`.
    pub fn gs_chain(
        base: DenseLinear<T>,
        rule: BlockRule,
        m: usize,
        map: OrthoMap,
        scale: bool,
    ) -> Result<Self> {
        let make = |b| Ok(OrthoGsChain::new(b, m, map)?.into());
        Self::on_input(base, &format!("GS chain (m={m})"), rule, make, false, scale)
    }

    /// PEFT BOFT: `W' = diag(s)·W₀·Mᵀ` with `M` = [`OrthoButterfly`] (`m` factors) on the `in`
    /// features.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the adapter, `in_features` and the failed condition of
    /// PEFT's rule ([`check_peft_butterfly`](crate::kernels::layout::check_peft_butterfly)).
    pub fn boft(
        base: DenseLinear<T>,
        rule: BlockRule,
        m: usize,
        map: OrthoMap,
        scale: bool,
    ) -> Result<Self> {
        let make = |b| Ok(OrthoButterfly::new(b, m, map)?.into());
        Self::on_input(base, &format!("BOFT (m={m})"), rule, make, true, scale)
    }

    /// An adapter with one rotation on the input side, built by `make` from the blocks `rule`
    /// gives on `in_features` (`X ↦ X·Qᵀ`, or `X ↦ X·Q` when `transposed`, PEFT's convention);
    /// construction errors are labelled as the adapter's.
    fn on_input(
        base: DenseLinear<T>,
        adapter: &str,
        rule: BlockRule,
        make: impl FnOnce(Blocks) -> Result<OrthoChain<T>>,
        transposed: bool,
        scale: bool,
    ) -> Result<Self> {
        let n = base.in_features();
        let q = context(adapter, "in", n, rule.on(n).and_then(make))?;
        let rotation = if transposed {
            InputRotation::Transposed(q)
        } else {
            InputRotation::Direct(q)
        };
        Self::build(base, Some(rotation), None, scale)
    }

    /// PEFT OFT (BOFT with one factor): `W' = diag(s)·W₀·Mᵀ`, `M` block-diagonal with the
    /// blocks of `rule`.
    ///
    /// # Errors
    /// As [`OrthoAdapter::boft`].
    pub fn oft(base: DenseLinear<T>, rule: BlockRule, map: OrthoMap, scale: bool) -> Result<Self> {
        Self::boft(base, rule, 1, map, scale)
    }

    /// The input-side chain, if any.
    pub fn input_chain(&self) -> Option<&OrthoChain<T>> {
        self.q_in.as_ref().map(InputRotation::chain)
    }

    /// The output-side chain, if any.
    pub fn output_chain(&self) -> Option<&OrthoChain<T>> {
        self.q_out.as_ref()
    }

    /// The scale vector `s`, if any.
    pub fn scale(&self) -> Option<&Tensor<T>> {
        self.scale.as_ref()
    }

    /// Trainable parameter count with free skew storage (chains' `Σ k·b(b−1)/2` plus `out` for
    /// the scale).
    pub fn free_param_count(&self) -> usize {
        self.chains()
            .map(OrthoChain::free_param_count)
            .sum::<usize>()
            + self.scale_len()
    }

    /// Trainable parameter count in the paper's convention (`Σ k·b²` plus `out`), digest §3.6.
    pub fn paper_param_count(&self) -> usize {
        self.chains()
            .map(OrthoChain::paper_param_count)
            .sum::<usize>()
            + self.scale_len()
    }

    fn scale_len(&self) -> usize {
        self.scale.as_ref().map_or(0, Tensor::numel)
    }

    fn chains(&self) -> impl Iterator<Item = &OrthoChain<T>> {
        self.input_chain().into_iter().chain(self.q_out.as_ref())
    }
}

fn check_size(chain_n: usize, dim: usize, side: &str) -> Result<()> {
    if chain_n != dim {
        return Err(Error::InvalidArgument(format!(
            "{side} rotation of size {chain_n} for {dim} {side} features"
        )));
    }
    Ok(())
}

/// `r` with a construction error re-labelled as the adapter's: `"{adapter} adapter on
/// {side}_features = {n}: {reason}"`.
fn context<R>(adapter: &str, side: &str, n: usize, r: Result<R>) -> Result<R> {
    r.map_err(|e| {
        let reason = match e {
            Error::InvalidArgument(m) | Error::BlockMismatch(m) => m,
            other => other.to_string(),
        };
        Error::InvalidArgument(format!(
            "{adapter} adapter on {side}_features = {n}: {reason}"
        ))
    })
}

/// `x[i, j] *= s[j]` for every row `i`.
fn mul_row<T: Real>(x: &mut Tensor<T>, s: &Tensor<T>) {
    let n = s.numel();
    for row in x.data_mut().chunks_mut(n) {
        row.iter_mut().zip(s.data()).for_each(|(v, &c)| *v *= c);
    }
}

impl<T: Real> Adapter<T> for OrthoAdapter<T> {
    /// The frozen base layer.
    fn base(&self) -> &DenseLinear<T> {
        &self.base
    }
    /// `y = x W'ᵀ + bias` on the tape, the parameters given as leaves in [`Params`] order:
    /// `x ↦ x·Q̃_inᵀ ↦ ·W₀ᵀ ↦ ·Q_outᵀ ↦ ⊙s ↦ +bias`.
    ///
    /// # Panics
    /// If `x` is not `(batch, in)` or `leaves` does not match [`Params::params`].
    fn forward_with<'t>(&self, x: Var<'t, T>, leaves: &[Var<'t, T>]) -> Var<'t, T> {
        let want = self.params().len();
        assert!(
            leaves.len() == want,
            "OrthoAdapter::forward_with: {} leaves for {want} parameters",
            leaves.len()
        );
        let mut rest = leaves;
        let mut h = x;
        if let Some(q) = &self.q_in {
            let (mine, tail) = rest.split_at(q.chain().m());
            h = match q {
                InputRotation::Direct(c) => c.forward_with(h, mine),
                InputRotation::Transposed(c) => c.forward_t_with(h, mine),
            };
            rest = tail;
        }
        let tape = x.tape();
        h = h.matmul_t(false, tape.constant(self.base.weight.clone()), true);
        if let Some(q) = &self.q_out {
            let (mine, tail) = rest.split_at(q.m());
            h = q.forward_with(h, mine);
            rest = tail;
        }
        if self.scale.is_some() {
            h = h.mul_row(rest[0]);
        }
        self.base.add_bias(h)
    }
    /// `y = x W'ᵀ + bias` without a tape, through the structured kernels (no dense `Q` and no
    /// merged weight): `x ↦ x·Q̃_inᵀ ↦ ·W₀ᵀ ↦ ·Q_outᵀ ↦ ⊙s ↦ +bias`.
    ///
    /// # Panics
    /// If `x` is not `(batch, in)`.
    fn apply(&self, x: &Tensor<T>) -> Tensor<T> {
        let mut h = match &self.q_in {
            Some(InputRotation::Direct(c)) => c.apply(x),
            Some(InputRotation::Transposed(c)) => c.apply_t(x),
            None => x.clone(),
        };
        h = h.matmul_t(false, &self.base.weight, true);
        if let Some(c) = &self.q_out {
            h = c.apply(&h);
        }
        if let Some(s) = &self.scale {
            mul_row(&mut h, s);
        }
        match &self.base.bias {
            Some(b) => add_row(&h, b),
            None => h,
        }
    }
    /// The effective weight `W' = diag(s)·Q_out·W₀·Q̃_in` (dense) and the bias. The rotations are
    /// applied to the rows of `W₀` (and of `W₀ᵀ` for `Q_out`, `Q·W = (Wᵀ·Qᵀ)ᵀ`) through the
    /// structured kernel; no dense `Q` is formed.
    fn merge(&self) -> DenseLinear<T> {
        let mut w = self.base.weight.clone();
        match &self.q_in {
            Some(InputRotation::Direct(c)) => w = c.apply_t(&w),
            Some(InputRotation::Transposed(c)) => w = c.apply(&w),
            None => {}
        }
        if let Some(c) = &self.q_out {
            w = c.apply(&w.transpose()).transpose();
        }
        if let Some(s) = &self.scale {
            let n = w.shape()[1];
            for (row, &si) in w.data_mut().chunks_mut(n).zip(s.data()) {
                row.iter_mut().for_each(|v| *v *= si);
            }
        }
        DenseLinear {
            weight: w,
            bias: self.base.bias.clone(),
        }
    }
}

impl<T: Real> Params<T> for OrthoAdapter<T> {
    fn params(&self) -> Vec<&Tensor<T>> {
        let mut v: Vec<&Tensor<T>> = Vec::new();
        for c in self.chains() {
            v.extend(c.params());
        }
        v.extend(self.scale.as_ref());
        v
    }
    fn params_mut(&mut self) -> Vec<&mut Tensor<T>> {
        let mut v: Vec<&mut Tensor<T>> = Vec::new();
        if let Some(q) = &mut self.q_in {
            v.extend(q.chain_mut().params_mut());
        }
        if let Some(q) = &mut self.q_out {
            v.extend(q.params_mut());
        }
        v.extend(self.scale.as_mut());
        v
    }
    fn param_names(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(q) = &self.q_in {
            v.extend((0..q.chain().m()).map(|i| format!("in.factor{i}")));
        }
        if let Some(q) = &self.q_out {
            v.extend((0..q.m()).map(|i| format!("out.factor{i}")));
        }
        if self.scale.is_some() {
            v.push("scale".into());
        }
        v
    }
}

/// LoRA: `W' = W₀ + (α/r)·B A` with `A ∈ ℝ^{r×in}` drawn uniform in `±1/√in` (PEFT's
/// Kaiming-uniform bound) and `B ∈ ℝ^{out×r}` zero, so `W' = W₀` exactly at init.
/// Trainable: `A`, then `B`.
#[derive(Clone, Debug)]
pub struct Lora<T: Real> {
    base: DenseLinear<T>,
    a: Tensor<T>,
    b: Tensor<T>,
    alpha: f64,
}

impl<T: Real> Lora<T> {
    /// Rank `r ≥ 1`, scaling `α` (PEFT's GLUE setting is `α = r`), `A` drawn from `rng`.
    ///
    /// # Errors
    /// If `r = 0`.
    pub fn new<R: Rng + ?Sized>(
        base: DenseLinear<T>,
        r: usize,
        alpha: f64,
        rng: &mut R,
    ) -> Result<Self> {
        if r == 0 {
            return Err(Error::InvalidArgument(format!(
                "LoRA adapter on in_features = {}: the rank must be r >= 1, got r=0",
                base.in_features()
            )));
        }
        let bound = 1.0 / (base.in_features() as f64).sqrt();
        let a = Tensor::rand_uniform(&[r, base.in_features()], -bound, bound, rng);
        let b = Tensor::zeros(&[base.out_features(), r]);
        Ok(Self { base, a, b, alpha })
    }

    /// The rank `r`.
    pub fn rank(&self) -> usize {
        self.a.shape()[0]
    }

    fn factor(&self) -> T {
        T::from_f64(self.alpha / self.rank() as f64)
    }

    /// Trainable parameters `r·(in + out)`.
    pub fn param_count(&self) -> usize {
        self.a.numel() + self.b.numel()
    }
}

impl<T: Real> Adapter<T> for Lora<T> {
    /// `y = x W₀ᵀ + (α/r)·(x Aᵀ) Bᵀ + bias` on the tape, leaves `[A, B]`.
    ///
    /// # Panics
    /// If `x` is not `(batch, in)` or there are not two leaves.
    fn forward_with<'t>(&self, x: Var<'t, T>, leaves: &[Var<'t, T>]) -> Var<'t, T> {
        assert!(
            leaves.len() == 2,
            "Lora::forward_with: expected leaves [A, B]"
        );
        let tape = x.tape();
        let base = x.matmul_t(false, tape.constant(self.base.weight.clone()), true);
        let delta = x
            .matmul_t(false, leaves[0], true)
            .matmul_t(false, leaves[1], true)
            .mul_scalar(self.factor());
        self.base.add_bias(base.add(delta))
    }
    /// `y = x W₀ᵀ + (α/r)·(x Aᵀ) Bᵀ + bias` without a tape (no merged weight).
    ///
    /// # Panics
    /// If `x` is not `(batch, in)`.
    fn apply(&self, x: &Tensor<T>) -> Tensor<T> {
        let delta = x
            .matmul_t(false, &self.a, true)
            .matmul_t(false, &self.b, true)
            .scale(self.factor());
        self.base.apply(x).add(&delta)
    }
    /// The frozen base layer.
    fn base(&self) -> &DenseLinear<T> {
        &self.base
    }
    /// `W' = W₀ + (α/r)·B A` and the bias.
    fn merge(&self) -> DenseLinear<T> {
        let ba = self.b.matmul(&self.a).scale(self.factor());
        DenseLinear {
            weight: self.base.weight.add(&ba),
            bias: self.base.bias.clone(),
        }
    }
}

impl<T: Real> Params<T> for Lora<T> {
    fn params(&self) -> Vec<&Tensor<T>> {
        vec![&self.a, &self.b]
    }
    fn params_mut(&mut self) -> Vec<&mut Tensor<T>> {
        vec![&mut self.a, &mut self.b]
    }
    fn param_names(&self) -> Vec<String> {
        vec!["lora_A".into(), "lora_B".into()]
    }
}
