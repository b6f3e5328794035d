//! [`LipConvnet`]: the 1-Lipschitz convolutional network of Singla & Feizi (2021) with SOC or
//! GS-SOC convolutions, as the official `lip_convnets.LipConvNet` builds it (digest §5.3).
//!
//! **Architecture.** Five stages of `depth/5` blocks (`block = activation(conv(x))`); in each
//! stage every convolution keeps the width except the last, which has stride 2 (space-to-depth
//! inside the SOC) and doubles it: `in → init → … → 2·init`, then `2·init → … → 4·init`, and so
//! on up to `32·init` channels (`3 → 32 → 32 → 64, 64 → 64 → 64 → 128, …, 512 → 1024` for
//! LipConvnet-15 with 32 initial channels). All kernels are 3×3 except the last convolution of
//! stage 5 (1×1). The `s × s` map left after the five halvings (`s = input/32`) is flattened into
//! channels (`(b, C, s, s) → (b, C·s², 1, 1)`, an identity on the entries; the official code
//! only supports `s = 1`) and a final ungrouped 1×1 [`Soc`] maps it to the classes.
//!
//! **Convolutions** ([`ConvKind`]): SOC, GS-SOC `(g₁, −)` (`PermutedSOC`) or GS-SOC `(g₁, g₂)`
//! (`GS_SOC_Accelerated`), see [`GsSoc`]; the classifier stays ungrouped in every variant.
//! **Activations** ([`Activation`]): MaxMin or MaxMinPermuted, in either order
//! ([`MaxMinOrder`]); [`LipConvnetConfig::table3`] uses the official code's order (min first).
//!
//! **Certified bound.** [`LipConvnetEval::lipschitz_bound`] is the product of the layers'
//! bounds `1 + σ^{t+1}/(t+1)!·e^σ` ([`SocEval::lipschitz_bound`]); shuffles, space-to-depth,
//! zero-padding, channel truncation, the flattening and MaxMin are 1-Lipschitz, and biases do
//! not change a Lipschitz constant. So `‖f(x) − f(y)‖₂ ≤ L · ‖x − y‖₂` for the evaluated network
//! in exact arithmetic (module docs of [`crate::orthogonal::conv::soc`]).

use crate::autodiff::ops::maxmin::{MaxMinOrder, maxmin, maxmin_permuted};
use crate::autodiff::params::Params;
use crate::autodiff::tape::{Tape, Var};
use crate::error::{Error, Result};
use crate::orthogonal::conv::gs_soc::in_context;
use crate::orthogonal::conv::{GsSoc, GsSocEval, Mode, Soc, SocEval, SocSettings, SpectralState};
use crate::real::Real;
use crate::tensor::Tensor;
use rand::Rng;

/// The convolution layer of every block (Table 3's rows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvKind {
    /// Plain SOC.
    Soc,
    /// GS-SOC: shuffle(g₁) → SOC k×k with `g1` groups, then (with `g2`) shuffle(g₂) → SOC 1×1
    /// with `g2` groups. `g2 = None` is the "(g₁, −)" row.
    GsSoc {
        /// Groups of the k×k convolution.
        g1: usize,
        /// Groups of the 1×1 convolution, if there is one.
        g2: Option<usize>,
    },
}

/// The activation after every convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    /// MaxMin on the channel halves ([`Var::maxmin`]).
    MaxMin(MaxMinOrder),
    /// MaxMin on neighbouring channels ([`Var::maxmin_permuted`]).
    MaxMinPermuted(MaxMinOrder),
}

impl Activation {
    fn on_var<'t, T: Real>(self, x: Var<'t, T>) -> Var<'t, T> {
        match self {
            Self::MaxMin(o) => x.maxmin(o),
            Self::MaxMinPermuted(o) => x.maxmin_permuted(o),
        }
    }

    fn on_tensor<T: Real>(self, x: &Tensor<T>) -> Tensor<T> {
        match self {
            Self::MaxMin(o) => maxmin(x, o),
            Self::MaxMinPermuted(o) => maxmin_permuted(x, o),
        }
    }
}

/// What [`LipConvnet::new`] builds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LipConvnetConfig {
    /// Number of convolutions before the classifier, a multiple of 5 (15 for LipConvnet-15).
    pub depth: usize,
    /// Channels of stage 1 (32 in the paper); even, so MaxMin can pair them.
    pub init_channels: usize,
    /// Input channels (3 for CIFAR).
    pub in_channels: usize,
    /// Input height and width, a multiple of 32 (32 for CIFAR).
    pub input_size: usize,
    /// Output classes (100 for CIFAR-100).
    pub classes: usize,
    /// The convolution of every block.
    pub conv: ConvKind,
    /// The activation of every block.
    pub activation: Activation,
    /// Paired channel shuffles (GS-SOC only).
    pub paired: bool,
    /// SOC hyperparameters of every convolution (the classifier included).
    pub settings: SocSettings,
}

impl LipConvnetConfig {
    /// LipConvnet-15 of Table 3: 32 initial channels, 3×32×32 inputs, 100 classes, official SOC
    /// settings; plain SOC with MaxMin and unpaired shuffles, GS-SOC with MaxMinPermuted and
    /// paired shuffles (the paper's best setting, Table 4), both in the official code's order
    /// (min first).
    pub fn table3(conv: ConvKind) -> Self {
        let gs = conv != ConvKind::Soc;
        Self {
            depth: 15,
            init_channels: 32,
            in_channels: 3,
            input_size: 32,
            classes: 100,
            conv,
            activation: if gs {
                Activation::MaxMinPermuted(MaxMinOrder::MinFirst)
            } else {
                Activation::MaxMin(MaxMinOrder::MinFirst)
            },
            paired: gs,
            settings: SocSettings::default(),
        }
    }

    /// The 15 (generally `depth`) convolutions in order: `(in, out, kernel, stride)`.
    pub fn conv_shapes(&self) -> Vec<(usize, usize, usize, usize)> {
        let per = self.depth / 5;
        let mut out = Vec::with_capacity(self.depth);
        let mut in_planes = self.in_channels;
        for stage in 0..5 {
            let planes = if stage == 0 {
                self.init_channels
            } else {
                in_planes
            };
            for j in 0..per {
                let last = j + 1 == per;
                let stride = if last { 2 } else { 1 };
                let kernel = if stage == 4 && last { 1 } else { 3 };
                out.push((in_planes, planes * stride, kernel, stride));
                in_planes = planes * stride;
            }
        }
        out
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the value unless `depth` is a positive multiple of 5,
    /// `init_channels` is even and positive, `input_size` is a positive multiple of 32, and
    /// `in_channels`, `classes` are positive; and the SOC settings' errors.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::InvalidArgument(format!("LipConvnet: {what}")));
        if self.depth == 0 || !self.depth.is_multiple_of(5) {
            return bad(format!(
                "depth={} must be a positive multiple of 5 (5 stages)",
                self.depth
            ));
        }
        if self.init_channels == 0 || !self.init_channels.is_multiple_of(2) {
            return bad(format!(
                "init_channels={} must be even and positive (MaxMin pairs channels)",
                self.init_channels
            ));
        }
        if self.input_size == 0 || !self.input_size.is_multiple_of(32) {
            return bad(format!(
                "input_size={} must be a positive multiple of 32 (5 stride-2 stages)",
                self.input_size
            ));
        }
        if self.in_channels == 0 || self.classes == 0 {
            return bad(format!(
                "in_channels={} and classes={} must be positive",
                self.in_channels, self.classes
            ));
        }
        self.settings.validate()
    }
}

/// The network (module docs).
#[derive(Clone, Debug)]
pub struct LipConvnet<T: Real> {
    config: LipConvnetConfig,
    blocks: Vec<GsSoc<T>>,
    head: Soc<T>,
}

impl<T: Real> LipConvnet<T> {
    /// Builds the network, initialising every layer from `rng` in order.
    ///
    /// # Errors
    /// [`LipConvnetConfig::validate`], and the layers' errors ([`GsSoc::new`]: e.g. groups that do
    /// not divide a layer's channels, or a paired shuffle on channels not divisible by `2·g`).
    pub fn new<R: Rng + ?Sized>(config: LipConvnetConfig, rng: &mut R) -> Result<Self> {
        config.validate()?;
        let mut blocks = Vec::with_capacity(config.depth);
        for (i, (cin, cout, k, s)) in config.conv_shapes().into_iter().enumerate() {
            let layer = match config.conv {
                ConvKind::Soc => GsSoc::soc((cin, cout), (k, s), config.settings, rng),
                ConvKind::GsSoc { g1, g2 } => GsSoc::new(
                    (cin, cout),
                    (k, s),
                    (g1, g2),
                    config.paired,
                    config.settings,
                    rng,
                ),
            }
            .map_err(|e| {
                in_context(
                    e,
                    &format!("LipConvnet block {i} ({cin} → {cout}, {k}×{k}, stride {s})"),
                )
            })?;
            blocks.push(layer);
        }
        let side = config.input_size / 32;
        let last = blocks
            .last()
            .map_or(config.in_channels, GsSoc::out_channels);
        let head = Soc::classifier(last * side * side, config.classes, config.settings, rng)?;
        Ok(Self {
            config,
            blocks,
            head,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LipConvnetConfig {
        &self.config
    }

    /// The convolution blocks, in order.
    pub fn blocks(&self) -> &[GsSoc<T>] {
        &self.blocks
    }

    /// The 1×1 SOC classifier.
    pub fn head(&self) -> &Soc<T> {
        &self.head
    }

    /// Checks a `(batch, in, size, size)` input; panics naming `op` otherwise.
    fn check_input(&self, op: &str, s: &[usize]) {
        let c = &self.config;
        assert!(
            s.len() == 4 && s[1] == c.in_channels && s[2] == c.input_size && s[3] == c.input_size,
            "{op}: input of shape {s:?} for a network taking (batch, {}, {}, {})",
            c.in_channels,
            c.input_size,
            c.input_size
        );
    }

    /// The logits `(batch, classes)` on the tape, with the parameters given as leaves
    /// ([`Params::leaves`] order). [`Mode::Train`] advances every layer's power iteration by one
    /// training step; [`Mode::Eval`] uses exact singular values and the evaluation terms.
    ///
    /// # Panics
    /// If `x` is not `(batch, in, size, size)` or `leaves` does not match; names
    /// `LipConvnet::forward` and the shapes.
    pub fn forward_with<'t>(
        &mut self,
        x: Var<'t, T>,
        leaves: &[Var<'t, T>],
        mode: Mode,
    ) -> Var<'t, T> {
        self.check_input("LipConvnet::forward", &x.shape());
        assert!(
            leaves.len() == self.params().len(),
            "LipConvnet::forward: {} parameter leaves for {} parameters",
            leaves.len(),
            self.params().len()
        );
        let batch = x.shape()[0];
        let mut h = x;
        let mut at = 0;
        for block in &mut self.blocks {
            let n = block.params().len();
            h = self
                .config
                .activation
                .on_var(block.forward_with(h, &leaves[at..at + n], mode));
            at += n;
        }
        let s = h.shape();
        if s[2] * s[3] > 1 {
            h = h.reshape(&[batch, s[1] * s[2] * s[3], 1, 1]);
        }
        self.head
            .forward_with(h, &leaves[at..], mode)
            .reshape(&[batch, self.config.classes])
    }

    /// [`LipConvnet::forward_with`] entering the parameters as leaves; returns them.
    ///
    /// # Panics
    /// As [`LipConvnet::forward_with`].
    pub fn forward<'t>(
        &mut self,
        tape: &'t Tape<T>,
        x: Var<'t, T>,
        mode: Mode,
    ) -> (Var<'t, T>, Vec<Var<'t, T>>) {
        let leaves = self.leaves(tape);
        (self.forward_with(x, &leaves, mode), leaves)
    }

    /// The network prepared for evaluation: every layer's exactly normalised kernel and
    /// certified bound ([`Soc::eval`]); [`LipConvnetEval::apply`] then needs no tape and no SVD.
    ///
    /// # Errors
    /// [`Error::Numerical`] if an SVD fails (non-finite parameters).
    pub fn eval(&self) -> Result<LipConvnetEval<T>> {
        Ok(LipConvnetEval {
            config: self.config,
            blocks: self.blocks.iter().map(GsSoc::eval).collect::<Result<_>>()?,
            head: self.head.eval()?,
        })
    }

    /// The logits in evaluation mode without a tape: `self.eval()?.apply(x)` (prepare with
    /// [`LipConvnet::eval`] once to evaluate many batches).
    ///
    /// # Panics
    /// As [`LipConvnetEval::apply`], and if an SVD fails (non-finite parameters).
    pub fn apply(&self, x: &Tensor<T>) -> Tensor<T> {
        self.eval()
            .unwrap_or_else(|e| panic!("LipConvnet::apply: {e}"))
            .apply(x)
    }

    /// The certified Lipschitz bound of the evaluated network ([`LipConvnetEval::lipschitz_bound`]).
    ///
    /// # Errors
    /// As [`LipConvnet::eval`].
    pub fn lipschitz_bound(&self) -> Result<f64> {
        Ok(self.eval()?.lipschitz_bound())
    }

    /// The spectral state of every layer (`blocks.{i}.soc1.u1`, …, `head.step`); with the
    /// parameters, what a checkpoint needs for a bitwise resume.
    pub fn state(&self) -> SpectralState<T> {
        let mut s = SpectralState::default();
        for (i, b) in self.blocks.iter().enumerate() {
            s.push_prefixed(&format!("blocks.{i}"), b.state());
        }
        s.push_prefixed("head", self.head.state());
        s
    }

    /// Restores [`LipConvnet::state`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the first missing, unknown or mis-shaped entry.
    pub fn set_state(&mut self, state: &SpectralState<T>) -> Result<()> {
        state.check_names(&self.state())?;
        for (i, b) in self.blocks.iter_mut().enumerate() {
            b.set_state(&state.sub(&format!("blocks.{i}")))?;
        }
        self.head.set_state(&state.sub("head"))
    }
}

impl<T: Real> Params<T> for LipConvnet<T> {
    fn params(&self) -> Vec<&Tensor<T>> {
        let mut p: Vec<&Tensor<T>> = self.blocks.iter().flat_map(|b| b.params()).collect();
        p.extend(self.head.params());
        p
    }
    fn params_mut(&mut self) -> Vec<&mut Tensor<T>> {
        let mut p: Vec<&mut Tensor<T>> = self
            .blocks
            .iter_mut()
            .flat_map(|b| b.params_mut())
            .collect();
        p.extend(self.head.params_mut());
        p
    }
    fn param_names(&self) -> Vec<String> {
        let mut n: Vec<String> = self
            .blocks
            .iter()
            .enumerate()
            .flat_map(|(i, b)| {
                b.param_names()
                    .into_iter()
                    .map(move |s| format!("blocks.{i}.{s}"))
            })
            .collect();
        n.extend(
            self.head
                .param_names()
                .into_iter()
                .map(|s| format!("head.{s}")),
        );
        n
    }
}

/// A [`LipConvnet`] prepared for evaluation ([`LipConvnet::eval`]).
#[derive(Clone, Debug)]
pub struct LipConvnetEval<T> {
    config: LipConvnetConfig,
    blocks: Vec<GsSocEval<T>>,
    head: SocEval<T>,
}

impl<T: Real> LipConvnetEval<T> {
    /// The logits `(batch, classes)` of `x` of shape `(batch, in, size, size)`.
    ///
    /// # Panics
    /// If `x` has the wrong shape; names `LipConvnetEval::apply` and the shapes.
    pub fn apply(&self, x: &Tensor<T>) -> Tensor<T> {
        let c = &self.config;
        let s = x.shape();
        assert!(
            s.len() == 4 && s[1] == c.in_channels && s[2] == c.input_size && s[3] == c.input_size,
            "LipConvnetEval::apply: input of shape {s:?} for a network taking (batch, {}, {}, {})",
            c.in_channels,
            c.input_size,
            c.input_size
        );
        let batch = s[0];
        let mut h = x.clone();
        for b in &self.blocks {
            h = c.activation.on_tensor(&b.apply(&h));
        }
        let f = h.numel() / batch.max(1);
        let h = h
            .reshape(&[batch, f, 1, 1])
            .expect("flatten: same elements");
        self.head
            .apply(&h)
            .reshape(&[batch, c.classes])
            .expect("logits: same elements")
    }

    /// [`LipConvnetEval::apply`] on the tape with every evaluated kernel and bias entered as a
    /// constant ([`SocEval::forward`]): the same logits `(batch, classes)`, differentiable in the
    /// input only. This is what an adversarial attack on the certified network needs: gradients
    /// of the evaluated function itself, with no SVD and no parameter gradients per call.
    ///
    /// # Panics
    /// If `x` is not `(batch, in, size, size)`; names `LipConvnetEval::forward` and the shapes.
    pub fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        let c = &self.config;
        let s = x.shape();
        assert!(
            s.len() == 4 && s[1] == c.in_channels && s[2] == c.input_size && s[3] == c.input_size,
            "LipConvnetEval::forward: input of shape {s:?} for a network taking (batch, {}, {}, {})",
            c.in_channels,
            c.input_size,
            c.input_size
        );
        let batch = s[0];
        let mut h = x;
        for b in &self.blocks {
            h = c.activation.on_var(b.forward(h));
        }
        let s = h.shape();
        if s[2] * s[3] > 1 {
            h = h.reshape(&[batch, s[1] * s[2] * s[3], 1, 1]);
        }
        self.head.forward(h).reshape(&[batch, c.classes])
    }

    /// Every layer's Lipschitz bound, blocks in order then the classifier.
    pub fn layer_bounds(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self.blocks.iter().map(GsSocEval::lipschitz_bound).collect();
        v.push(self.head.lipschitz_bound());
        v
    }

    /// The certified Lipschitz bound of the network: the product of [`Self::layer_bounds`]
    /// (module docs).
    pub fn lipschitz_bound(&self) -> f64 {
        self.layer_bounds().iter().product()
    }

    /// The evaluated blocks.
    pub fn blocks(&self) -> &[GsSocEval<T>] {
        &self.blocks
    }

    /// The evaluated classifier.
    pub fn head(&self) -> &SocEval<T> {
        &self.head
    }
}
