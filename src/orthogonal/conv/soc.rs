//! [`Soc`]: the skew orthogonal convolution (Singla & Feizi 2021; digest §5.1, §5.3), as the
//! official `SOC` module of `gs_conv/skew_ortho_conv.py` builds it, with a certified bound.
//!
//! For an input `x` of shape `(batch, in, h, w)` the layer computes
//!
//! ```text
//! x → space_to_depth (stride 2 only: (in, 2h', 2w') → (4·in, h', w'))
//!   → zero channels appended up to c = max(out, in·stride²)
//!   → T_t(L_n) = Σ_{i ≤ t} L_n^{⋆i} / i!        (grouped, `groups` groups, k × k)
//!   → the first `out` channels (only if out < in·stride²)
//!   → + bias
//! ```
//!
//! with `L = M − convᵀ(M)` ([`skew_kernel`]) from the trainable
//! `M` of shape `(c, c/groups, k, k)`, and per group `L_n = correction · L / (f·σ + ε)`, `σ`
//! the spectral estimate of [`spectral`](super::spectral) (power iteration in training, exact
//! singular values in evaluation) and `f = k` ([`BoundScaling::Provable`]) or `f = 1`
//! ([`BoundScaling::OfficialSoc`]). `t` is `train_terms` (5) in [`Mode::Train`] and
//! `eval_terms` (12) in [`Mode::Eval`].
//!
//! **What is proven** (exact arithmetic). `conv2d(·, L)` has a skew-symmetric Jacobian, so
//! `exp(L_n)` is orthogonal. In evaluation the layer computes [`SocEval::sigma`]
//! `≥ max_g k·min_r ‖R_r(L_{n,g})‖₂ ≥ ‖L_n‖₂` for the scaled kernel it applies, from exact
//! singular values with the rounding of their computation and of the scaling covered
//! ([`normalized_kernel`]), and `‖T_t(L_n) − exp(L_n)‖₂ ≤ Σ_{i>t} σ^i/i! ≤ σ^{t+1}/(t+1)! · e^σ`
//! ([`truncation_bound`]). Space-to-depth is a permutation, zero-padding an isometric
//! embedding, taking channels a projection and the bias a translation, so the layer is
//! Lipschitz with constant at most `1 + σ^{t+1}/(t+1)!·e^σ` ([`SocEval::lipschitz_bound`]); for
//! `out = in·stride²` it is also within that distance of an orthogonal map. Floating-point
//! rounding of the computation itself is not part of the bound; the tests measure it.

use crate::autodiff::ops::channel::{pad_channels, space_to_depth, take_channels};
use crate::autodiff::ops::conv::add_channel_bias;
use crate::autodiff::params::Params;
use crate::autodiff::tape::{Tape, Var};
use crate::error::{Error, Result};
use crate::kernels::conv::exp_conv_forward;
use crate::orthogonal::conv::skew::{skew_kernel, skew_kernel_var};
use crate::orthogonal::conv::spectral::{SpectralVectors, normalized_kernel, spectral_scale};
use crate::orthogonal::conv::{Mode, SpectralState};
use crate::real::Real;
use crate::tensor::Tensor;
use faer::Par;
use rand::Rng;

/// How the skew kernel is normalised before the exponential.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum BoundScaling {
    /// Divide by the provable bound `k · min_r σ_r` (Fantastic Four, Theorem 1), so
    /// `‖L_n‖₂ ≤ correction` when `σ_r` are exact.
    #[default]
    Provable,
    /// Divide by `min_r σ_r` as the official `skew_ortho_conv.py` does (no `√(h·w) = k` factor),
    /// so only `‖L_n‖₂ ≤ k · correction` is guaranteed (2.1 for a 3×3 kernel and correction 0.7).
    OfficialSoc,
}

/// The hyperparameters of an SOC layer; the defaults are the official code's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SocSettings {
    /// Taylor terms in [`Mode::Train`] (official: 5).
    pub train_terms: usize,
    /// Taylor terms in [`Mode::Eval`] (official: 12).
    pub eval_terms: usize,
    /// Power iterations at a training step whose counter is a multiple of `update_freq`
    /// (official: 50; the first training step is one of them).
    pub init_iters: usize,
    /// Power iterations at the other training steps (official: 1).
    pub update_iters: usize,
    /// Refresh period of the power iteration, in training steps (official: 200).
    pub update_freq: u64,
    /// The correction `c` of `L_n = c·L/σ`; `None` is the official choice, 0.7 for `k > 1` and
    /// 1.0 for `k = 1`.
    pub correction: Option<f64>,
    /// Which bound divides the kernel.
    pub scaling: BoundScaling,
    /// A trainable per-channel bias (official: yes).
    pub bias: bool,
    /// All-zero kernel and bias at initialisation (the official `zero_init`; the layer is then
    /// the identity on its first `out` channels). Otherwise the kernel is `N(0, 1/(c/groups))`
    /// and the bias `U(−1/√out, 1/√out)`, as the official `reset_parameters`.
    pub zero_init: bool,
}

impl Default for SocSettings {
    fn default() -> Self {
        Self {
            train_terms: 5,
            eval_terms: 12,
            init_iters: 50,
            update_iters: 1,
            update_freq: 200,
            correction: None,
            scaling: BoundScaling::Provable,
            bias: true,
            zero_init: false,
        }
    }
}

impl SocSettings {
    /// The correction for a `k × k` kernel: `correction`, or 0.7 (`k > 1`) / 1.0 (`k = 1`).
    pub fn correction_for(&self, k: usize) -> f64 {
        self.correction.unwrap_or(if k > 1 { 0.7 } else { 1.0 })
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the value if an iteration count or the refresh period
    /// is 0 (a training step must estimate `σ` from vectors updated with the current kernel) or
    /// the correction is not positive and finite.
    pub fn validate(&self) -> Result<()> {
        if self.init_iters == 0 || self.update_iters == 0 || self.update_freq == 0 {
            return Err(Error::InvalidArgument(format!(
                "SOC settings: init_iters={}, update_iters={}, update_freq={} must all be at least 1",
                self.init_iters, self.update_iters, self.update_freq
            )));
        }
        if let Some(c) = self.correction
            && !(c.is_finite() && c > 0.0)
        {
            return Err(Error::InvalidArgument(format!(
                "SOC settings: correction={c} must be positive and finite"
            )));
        }
        Ok(())
    }
}

/// `σ^{t+1}/(t+1)! · e^σ`: a bound on `‖T_t(L) − exp(L)‖₂ = ‖Σ_{i>t} L^i/i!‖₂` for `‖L‖₂ ≤ σ`
/// (each tail term `σ^{t+1+j}/(t+1+j)! ≤ σ^{t+1}/(t+1)! · σ^j/j!`).
pub fn truncation_bound(sigma: f64, terms: usize) -> f64 {
    let mut term = 1.0;
    for i in 1..=terms + 1 {
        term *= sigma / i as f64;
    }
    term * sigma.exp()
}

/// The skew orthogonal convolution layer (module docs).
#[derive(Clone, Debug)]
pub struct Soc<T: Real> {
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    groups: usize,
    channels: usize,
    settings: SocSettings,
    weight: Tensor<T>,
    bias: Option<Tensor<T>>,
    vectors: SpectralVectors<T>,
    step: u64,
}

impl<T: Real> Soc<T> {
    /// An SOC layer `in_channels → out_channels` with a `kernel × kernel` kernel, stride 1 or 2,
    /// `groups` groups (the official `SOC(in, out, kernel_size, stride, groups=…)`), initialised
    /// from `rng` (kernel, bias and the power-iteration vectors).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the values if a channel count is 0, the kernel size is
    /// even, the stride is not 1 or 2, `groups` does not divide `c = max(out, in·stride²)`, or the
    /// settings are invalid ([`SocSettings::validate`]).
    pub fn new<R: Rng + ?Sized>(
        (in_channels, out_channels): (usize, usize),
        kernel: usize,
        stride: usize,
        groups: usize,
        settings: SocSettings,
        rng: &mut R,
    ) -> Result<Self> {
        settings.validate()?;
        let channels = out_channels.max(in_channels * stride * stride);
        if in_channels == 0
            || out_channels == 0
            || kernel.is_multiple_of(2)
            || !(stride == 1 || stride == 2)
        {
            return Err(Error::InvalidArgument(format!(
                "SOC: need in, out ≥ 1, an odd kernel and stride 1 or 2, got in={in_channels}, out={out_channels}, kernel={kernel}, stride={stride}"
            )));
        }
        if groups == 0 || !channels.is_multiple_of(groups) {
            return Err(Error::InvalidArgument(format!(
                "SOC: groups={groups} must divide the {channels} channels max(out={out_channels}, in·stride²={})",
                in_channels * stride * stride
            )));
        }
        let cg = channels / groups;
        let shape = [channels, cg, kernel, kernel];
        let (weight, bias) = if settings.zero_init {
            (Tensor::zeros(&shape), Tensor::zeros(&[out_channels]))
        } else {
            let w = Tensor::randn(&shape, 1.0 / (cg as f64).sqrt(), rng);
            let bound = 1.0 / (out_channels as f64).sqrt();
            (w, Tensor::rand_uniform(&[out_channels], -bound, bound, rng))
        };
        let vectors = SpectralVectors::random(&shape, groups, rng);
        Ok(Self {
            in_channels,
            out_channels,
            kernel,
            stride,
            groups,
            channels,
            settings,
            weight,
            bias: settings.bias.then_some(bias),
            vectors,
            step: 0,
        })
    }

    /// The final classifier of LipConvnet: an ungrouped 1×1 SOC `features → classes` (official
    /// `SOC(flat_features, num_classes, kernel_size=1)`), applied to a 1×1 map.
    ///
    /// # Errors
    /// As [`Soc::new`].
    pub fn classifier<R: Rng + ?Sized>(
        features: usize,
        classes: usize,
        settings: SocSettings,
        rng: &mut R,
    ) -> Result<Self> {
        Self::new((features, classes), 1, 1, 1, settings, rng)
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.out_channels
    }

    /// Kernel size `k`.
    pub fn kernel_size(&self) -> usize {
        self.kernel
    }

    /// Stride (1 or 2).
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Groups of the convolution.
    pub fn groups(&self) -> usize {
        self.groups
    }

    /// Channels the exponential acts on, `c = max(out, in·stride²)`.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The settings.
    pub fn settings(&self) -> &SocSettings {
        &self.settings
    }

    /// The trainable kernel `M`, shape `(c, c/groups, k, k)`.
    pub fn weight(&self) -> &Tensor<T> {
        &self.weight
    }

    /// The skew kernel `L = M − convᵀ(M)`.
    pub fn skew(&self) -> Tensor<T> {
        skew_kernel(&self.weight, self.groups)
    }

    /// Training steps taken (the power-iteration counter).
    pub fn step(&self) -> u64 {
        self.step
    }

    /// `(correction, f)` of the normalisation `L_n = correction·L/(f·σ + ε)`.
    fn scale(&self) -> (f64, f64) {
        let f = match self.settings.scaling {
            BoundScaling::Provable => self.kernel as f64,
            BoundScaling::OfficialSoc => 1.0,
        };
        (self.settings.correction_for(self.kernel), f)
    }

    /// Taylor terms in `mode`.
    pub fn terms(&self, mode: Mode) -> usize {
        match mode {
            Mode::Train => self.settings.train_terms,
            Mode::Eval => self.settings.eval_terms,
        }
    }

    /// The layer on the tape with the parameters given as leaves (see [`Params::leaves`]). In
    /// [`Mode::Train`] this is one training step of the official module: the power iteration
    /// runs `init_iters` steps when the step counter is a multiple of `update_freq`, else
    /// `update_iters`, on the current skew kernel, and the counter advances. In [`Mode::Eval`]
    /// the normalisation uses exact top singular vectors (an SVD per reshaping, so its gradient is
    /// the gradient of the exact bound) and the state is unchanged.
    ///
    /// # Panics
    /// If `x` is not `(batch, in, h, w)` (even `h`, `w` for stride 2) or `leaves` does not match
    /// [`Params::params`]; the message names `Soc::forward` and the shapes. In evaluation mode,
    /// if the SVD fails (non-finite parameters).
    pub fn forward_with<'t>(
        &mut self,
        x: Var<'t, T>,
        leaves: &[Var<'t, T>],
        mode: Mode,
    ) -> Var<'t, T> {
        let xs = x.shape();
        assert!(
            xs.len() == 4 && xs[1] == self.in_channels,
            "Soc::forward: input of shape {xs:?} for a layer with {} input channels",
            self.in_channels
        );
        assert!(
            leaves.len() == 1 + usize::from(self.bias.is_some()),
            "Soc::forward: {} parameter leaves for a layer with {} parameters",
            leaves.len(),
            1 + usize::from(self.bias.is_some())
        );
        let l = skew_kernel_var(leaves[0], self.groups);
        let vectors = match mode {
            Mode::Train => {
                let iters = if self.step.is_multiple_of(self.settings.update_freq) {
                    self.settings.init_iters
                } else {
                    self.settings.update_iters
                };
                self.vectors.iterate(&l.value(), self.groups, iters);
                self.step += 1;
                self.vectors.clone()
            }
            Mode::Eval => SpectralVectors::exact(&l.value(), self.groups)
                .unwrap_or_else(|e| panic!("Soc::forward (evaluation): {e}")),
        };
        let ln = spectral_scale(l, self.groups, &vectors, self.scale());
        let mut h = x;
        if self.stride == 2 {
            h = h.space_to_depth();
        }
        if self.channels > h.shape()[1] {
            h = h.pad_channels(self.channels);
        }
        h = h.exp_conv(ln, self.groups, self.terms(mode));
        if self.out_channels < self.channels {
            h = h.take_channels(self.out_channels);
        }
        if self.bias.is_some() {
            h = h.add_channel_bias(leaves[1]);
        }
        h
    }

    /// [`Soc::forward_with`] entering the parameters as leaves; returns them for the gradients.
    ///
    /// # Panics
    /// As [`Soc::forward_with`].
    pub fn forward<'t>(
        &mut self,
        tape: &'t Tape<T>,
        x: Var<'t, T>,
        mode: Mode,
    ) -> (Var<'t, T>, Vec<Var<'t, T>>) {
        let leaves = self.leaves(tape);
        (self.forward_with(x, &leaves, mode), leaves)
    }

    /// The layer as evaluated: the kernel normalised with exact singular values, the certified
    /// bound `σ` of that kernel and the evaluation terms (module docs).
    ///
    /// # Errors
    /// [`Error::Numerical`] if an SVD fails (non-finite parameters).
    pub fn eval(&self) -> Result<SocEval<T>> {
        let (kernel, sigma) = normalized_kernel(&self.skew(), self.groups, self.scale())?;
        Ok(SocEval {
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            stride: self.stride,
            groups: self.groups,
            channels: self.channels,
            terms: self.settings.eval_terms,
            kernel,
            bias: self.bias.clone(),
            sigma,
        })
    }

    /// The layer in evaluation mode without a tape: `self.eval()?.apply(x)` (prepare with
    /// [`Soc::eval`] once to apply it to many batches).
    ///
    /// # Panics
    /// As [`SocEval::apply`], and if the SVD fails (non-finite parameters).
    pub fn apply(&self, x: &Tensor<T>) -> Tensor<T> {
        self.eval()
            .unwrap_or_else(|e| panic!("Soc::apply: {e}"))
            .apply(x)
    }

    /// The spectral-normalisation state: the power-iteration vectors `u1 … u4`, `v1 … v4` (the
    /// official names; `(groups, ·)` each) and the step counter `step`. Saving it with the
    /// parameters and restoring it with [`Soc::set_state`] makes the next training steps bitwise
    /// the same.
    pub fn state(&self) -> SpectralState<T> {
        let mut tensors = Vec::with_capacity(8);
        for (r, u) in self.vectors.u.iter().enumerate() {
            tensors.push((format!("u{}", r + 1), u.clone()));
        }
        for (r, v) in self.vectors.v.iter().enumerate() {
            tensors.push((format!("v{}", r + 1), v.clone()));
        }
        SpectralState {
            tensors,
            counters: vec![("step".into(), self.step)],
        }
    }

    /// Restores [`Soc::state`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the entry if a name is missing or unknown or a tensor has
    /// the wrong shape.
    pub fn set_state(&mut self, state: &SpectralState<T>) -> Result<()> {
        state.check_names(&self.state())?;
        for r in 0..self.vectors.u.len() {
            let u = state.tensor(&format!("u{}", r + 1)).expect("checked names");
            let v = state.tensor(&format!("v{}", r + 1)).expect("checked names");
            self.vectors.u[r] = u.clone();
            self.vectors.v[r] = v.clone();
        }
        self.step = state.counter("step").expect("checked names");
        Ok(())
    }
}

impl<T: Real> Params<T> for Soc<T> {
    fn params(&self) -> Vec<&Tensor<T>> {
        std::iter::once(&self.weight)
            .chain(self.bias.as_ref())
            .collect()
    }
    fn params_mut(&mut self) -> Vec<&mut Tensor<T>> {
        std::iter::once(&mut self.weight)
            .chain(self.bias.as_mut())
            .collect()
    }
    fn param_names(&self) -> Vec<String> {
        let mut n = vec!["weight".to_string()];
        if self.bias.is_some() {
            n.push("bias".into());
        }
        n
    }
}

/// An SOC layer prepared for evaluation ([`Soc::eval`]): the normalised kernel, its certified
/// spectral bound and the evaluation terms. Applying it needs no tape and no SVD.
#[derive(Clone, Debug)]
pub struct SocEval<T> {
    in_channels: usize,
    out_channels: usize,
    stride: usize,
    groups: usize,
    channels: usize,
    terms: usize,
    kernel: Tensor<T>,
    bias: Option<Tensor<T>>,
    sigma: f64,
}

impl<T: Real> SocEval<T> {
    /// The layer (module docs) on `x` of shape `(batch, in, h, w)`.
    ///
    /// # Panics
    /// If `x` is not `(batch, in, h, w)` (even `h`, `w` for stride 2); names `SocEval::apply` and
    /// the shape.
    pub fn apply(&self, x: &Tensor<T>) -> Tensor<T> {
        assert!(
            x.ndim() == 4 && x.shape()[1] == self.in_channels,
            "SocEval::apply: input of shape {:?} for a layer with {} input channels",
            x.shape(),
            self.in_channels
        );
        let mut h = if self.stride == 2 {
            space_to_depth(x)
        } else {
            x.clone()
        };
        if self.channels > h.shape()[1] {
            h = pad_channels(&h, self.channels);
        }
        h = exp_conv_forward(&h, &self.kernel, self.groups, self.terms, Par::rayon(0));
        if self.out_channels < self.channels {
            h = take_channels(&h, self.out_channels);
        }
        match &self.bias {
            Some(b) => add_channel_bias(&h, b),
            None => h,
        }
    }

    /// [`SocEval::apply`] on the tape, with the evaluated kernel and the bias entered as
    /// constants: the same computation, differentiable in `x` only (input gradients for
    /// adversarial attacks and input Jacobians; no SVD, no parameter gradients).
    ///
    /// # Panics
    /// As [`SocEval::apply`] (the message names the tape op that rejects the shape).
    pub fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        let xs = x.shape();
        assert!(
            xs.len() == 4 && xs[1] == self.in_channels,
            "SocEval::forward: input of shape {xs:?} for a layer with {} input channels",
            self.in_channels
        );
        let tape = x.tape();
        let mut h = x;
        if self.stride == 2 {
            h = h.space_to_depth();
        }
        if self.channels > h.shape()[1] {
            h = h.pad_channels(self.channels);
        }
        h = h.exp_conv(tape.constant(self.kernel.clone()), self.groups, self.terms);
        if self.out_channels < self.channels {
            h = h.take_channels(self.out_channels);
        }
        match &self.bias {
            Some(b) => h.add_channel_bias(tape.constant(b.clone())),
            None => h,
        }
    }

    /// The normalised kernel `L_n` the layer applies.
    pub fn kernel(&self) -> &Tensor<T> {
        &self.kernel
    }

    /// The certified `σ ≥ ‖L_n‖₂`: `max_g k·min_r ‖R_r(L_{n,g})‖₂` from exact singular values,
    /// raised to cover their rounding ([`normalized_kernel`]).
    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    /// Taylor terms used.
    pub fn terms(&self) -> usize {
        self.terms
    }

    /// `σ^{t+1}/(t+1)!·e^σ ≥ ‖T_t(L_n) − exp(L_n)‖₂` ([`truncation_bound`]).
    pub fn truncation_bound(&self) -> f64 {
        truncation_bound(self.sigma, self.terms)
    }

    /// The layer's Lipschitz bound `1 + σ^{t+1}/(t+1)!·e^σ` (module docs).
    pub fn lipschitz_bound(&self) -> f64 {
        1.0 + self.truncation_bound()
    }
}
