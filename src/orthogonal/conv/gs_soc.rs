//! [`GsSoc`]: the GS orthogonal convolution of the paper (digest §5.1, §5.3),
//!
//! ```text
//! GsSoc(x) = SOC₂( ChShuffle(g₂)( SOC₁( ChShuffle(g₁)(x) ) ) )
//! ```
//!
//! with `SOC₁` a grouped `k × k` [`Soc`] with `g₁` groups (carrying the stride and the channel
//! change `in → out`), `SOC₂` a grouped 1×1 `Soc` `out → out` with `g₂` groups, and `ChShuffle`
//! the official `channel_shuffle(x, groups, paired)` ([`channel_shuffle_perm`]). This is the
//! official `GS_SOC_Accelerated` (the "(g₁, g₂)" rows of Table 3); without the second
//! convolution it is `PermutedSOC` (the "(g₁, −)" rows), and with `g₁ = 1` and no second
//! convolution it is plain SOC.
//!
//! - As in the official code, the first shuffle is **skipped** when the input channel count is
//!   not divisible by `g₁` (e.g. the 3 input channels of LipConvnet); `g = 1` shuffles are the
//!   identity and are skipped too.
//! - The official `GS_SOC` class discards the result of its second shuffle
//!   (`channel_shuffle(x, …)` without assignment; digest §9 item 10); here the shuffle is applied,
//!   as in `GS_SOC_Accelerated`, which the paper's tables use.
//! - The layer is Lipschitz with the product of its two SOC bounds (shuffles are permutations).

use crate::autodiff::ops::channel::{channel_shuffle_perm, permute_channels};
use crate::autodiff::params::Params;
use crate::autodiff::tape::{Tape, Var};
use crate::error::{Error, Result};
use crate::orthogonal::conv::soc::{Soc, SocEval, SocSettings};
use crate::orthogonal::conv::{Mode, SpectralState};
use crate::perm::Perm;
use crate::real::Real;
use crate::tensor::Tensor;
use rand::Rng;

/// The GS orthogonal convolution (module docs).
#[derive(Clone, Debug)]
pub struct GsSoc<T: Real> {
    g1: usize,
    g2: Option<usize>,
    paired: bool,
    shuffle1: Option<Perm>,
    soc1: Soc<T>,
    second: Option<(Option<Perm>, Soc<T>)>,
}

/// An invalid-argument error with `ctx: ` before its message (other errors unchanged).
pub(crate) fn in_context(e: Error, ctx: &str) -> Error {
    match e {
        Error::InvalidArgument(m) => Error::InvalidArgument(format!("{ctx}: {m}")),
        other => other,
    }
}

/// `channel_shuffle(·, groups, paired)` on `channels` channels, or `None` where the layer skips it
/// (`groups = 1`, or `groups` not dividing the channels when `skip_indivisible`).
fn shuffle(
    channels: usize,
    groups: usize,
    paired: bool,
    skip_indivisible: bool,
) -> Result<Option<Perm>> {
    if groups == 1 || (skip_indivisible && !channels.is_multiple_of(groups)) {
        return Ok(None);
    }
    channel_shuffle_perm(channels, groups, paired).map(Some)
}

impl<T: Real> GsSoc<T> {
    /// A GS-SOC layer `in → out` channels: shuffle(g₁) → SOC `kernel × kernel`, `stride`, `g₁`
    /// groups → (if `g2` is given) shuffle(g₂) → SOC 1×1 `out → out`, `g₂` groups. `paired`
    /// selects the paired shuffle for both shuffles.
    ///
    /// # Errors
    /// As [`Soc::new`] for either convolution (so `g₁` must divide `max(out, in·stride²)` and
    /// `g₂` must divide `out`), and [`Error::InvalidArgument`] naming the values if a shuffle
    /// that is not skipped cannot be built (a paired shuffle needs `2·g` dividing the channels).
    pub fn new<R: Rng + ?Sized>(
        (in_channels, out_channels): (usize, usize),
        (kernel, stride): (usize, usize),
        (g1, g2): (usize, Option<usize>),
        paired: bool,
        settings: SocSettings,
        rng: &mut R,
    ) -> Result<Self> {
        if g1 == 0 || g2 == Some(0) {
            return Err(Error::InvalidArgument(format!(
                "GS-SOC: groups must be at least 1, got g1={g1}, g2={g2:?}"
            )));
        }
        let shuffle1 = shuffle(in_channels, g1, paired, true)
            .map_err(|e| in_context(e, "GS-SOC first shuffle"))?;
        let soc1 = Soc::new(
            (in_channels, out_channels),
            kernel,
            stride,
            g1,
            settings,
            rng,
        )?;
        let second = match g2 {
            None => None,
            Some(g2) => {
                let p = shuffle(out_channels, g2, paired, false)
                    .map_err(|e| in_context(e, "GS-SOC second shuffle"))?;
                Some((
                    p,
                    Soc::new((out_channels, out_channels), 1, 1, g2, settings, rng)?,
                ))
            }
        };
        Ok(Self {
            g1,
            g2,
            paired,
            shuffle1,
            soc1,
            second,
        })
    }

    /// Plain SOC in this form (`g₁ = 1`, no shuffle, no second convolution).
    ///
    /// # Errors
    /// As [`Soc::new`].
    pub fn soc<R: Rng + ?Sized>(
        channels: (usize, usize),
        (kernel, stride): (usize, usize),
        settings: SocSettings,
        rng: &mut R,
    ) -> Result<Self> {
        Self::new(channels, (kernel, stride), (1, None), false, settings, rng)
    }

    /// Table 3's "Groups" label: `-` for plain SOC, `(g₁, -)` or `(g₁, g₂)`.
    pub fn groups_label(&self) -> String {
        match (self.g1, self.g2) {
            (1, None) => "-".into(),
            (g1, None) => format!("({g1}, -)"),
            (g1, Some(g2)) => format!("({g1}, {g2})"),
        }
    }

    /// Whether the shuffles are paired.
    pub fn paired(&self) -> bool {
        self.paired
    }

    /// The first (k × k) convolution.
    pub fn first(&self) -> &Soc<T> {
        &self.soc1
    }

    /// The second (1×1) convolution, if any.
    pub fn second(&self) -> Option<&Soc<T>> {
        self.second.as_ref().map(|(_, s)| s)
    }

    /// The first shuffle's permutation (gather convention), `None` where it is skipped.
    pub fn first_shuffle(&self) -> Option<&Perm> {
        self.shuffle1.as_ref()
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.soc1.in_channels()
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.soc1.out_channels()
    }

    /// The layer on the tape with the parameters given as leaves ([`Params::leaves`] order:
    /// the first convolution's, then the second's); see [`Soc::forward_with`] for the modes.
    ///
    /// # Panics
    /// As [`Soc::forward_with`] (the message names `Soc::forward`).
    pub fn forward_with<'t>(
        &mut self,
        x: Var<'t, T>,
        leaves: &[Var<'t, T>],
        mode: Mode,
    ) -> Var<'t, T> {
        let n1 = self.soc1.params().len();
        assert!(
            leaves.len() == self.params().len(),
            "GsSoc::forward: {} parameter leaves for a layer with {} parameters",
            leaves.len(),
            self.params().len()
        );
        let mut h = x;
        if let Some(p) = &self.shuffle1 {
            h = h.permute_channels(p);
        }
        h = self.soc1.forward_with(h, &leaves[..n1], mode);
        if let Some((p, soc2)) = &mut self.second {
            if let Some(p) = p {
                h = h.permute_channels(p);
            }
            h = soc2.forward_with(h, &leaves[n1..], mode);
        }
        h
    }

    /// [`GsSoc::forward_with`] entering the parameters as leaves; returns them.
    ///
    /// # Panics
    /// As [`GsSoc::forward_with`].
    pub fn forward<'t>(
        &mut self,
        tape: &'t Tape<T>,
        x: Var<'t, T>,
        mode: Mode,
    ) -> (Var<'t, T>, Vec<Var<'t, T>>) {
        let leaves = self.leaves(tape);
        (self.forward_with(x, &leaves, mode), leaves)
    }

    /// The layer prepared for evaluation ([`Soc::eval`] of both convolutions).
    ///
    /// # Errors
    /// As [`Soc::eval`].
    pub fn eval(&self) -> Result<GsSocEval<T>> {
        Ok(GsSocEval {
            shuffle1: self.shuffle1.clone(),
            soc1: self.soc1.eval()?,
            second: match &self.second {
                None => None,
                Some((p, s)) => Some((p.clone(), s.eval()?)),
            },
        })
    }

    /// The layer in evaluation mode without a tape: `self.eval()?.apply(x)`.
    ///
    /// # Panics
    /// As [`GsSocEval::apply`], and if an SVD fails (non-finite parameters).
    pub fn apply(&self, x: &Tensor<T>) -> Tensor<T> {
        self.eval()
            .unwrap_or_else(|e| panic!("GsSoc::apply: {e}"))
            .apply(x)
    }

    /// The spectral state of both convolutions, names prefixed `soc1.` and `soc2.`.
    pub fn state(&self) -> SpectralState<T> {
        let mut s = SpectralState::default();
        s.push_prefixed("soc1", self.soc1.state());
        if let Some((_, soc2)) = &self.second {
            s.push_prefixed("soc2", soc2.state());
        }
        s
    }

    /// Restores [`GsSoc::state`].
    ///
    /// # Errors
    /// As [`Soc::set_state`], naming the entry.
    pub fn set_state(&mut self, state: &SpectralState<T>) -> Result<()> {
        state.check_names(&self.state())?;
        self.soc1.set_state(&state.sub("soc1"))?;
        if let Some((_, soc2)) = &mut self.second {
            soc2.set_state(&state.sub("soc2"))?;
        }
        Ok(())
    }
}

impl<T: Real> Params<T> for GsSoc<T> {
    fn params(&self) -> Vec<&Tensor<T>> {
        let mut p = self.soc1.params();
        if let Some((_, s)) = &self.second {
            p.extend(s.params());
        }
        p
    }
    fn params_mut(&mut self) -> Vec<&mut Tensor<T>> {
        let mut p = self.soc1.params_mut();
        if let Some((_, s)) = &mut self.second {
            p.extend(s.params_mut());
        }
        p
    }
    fn param_names(&self) -> Vec<String> {
        let mut n: Vec<String> = self
            .soc1
            .param_names()
            .into_iter()
            .map(|s| format!("soc1.{s}"))
            .collect();
        if let Some((_, s)) = &self.second {
            n.extend(s.param_names().into_iter().map(|s| format!("soc2.{s}")));
        }
        n
    }
}

/// A GS-SOC layer prepared for evaluation ([`GsSoc::eval`]).
#[derive(Clone, Debug)]
pub struct GsSocEval<T> {
    shuffle1: Option<Perm>,
    soc1: SocEval<T>,
    second: Option<(Option<Perm>, SocEval<T>)>,
}

impl<T: Real> GsSocEval<T> {
    /// The layer on `x` of shape `(batch, in, h, w)`.
    ///
    /// # Panics
    /// As [`SocEval::apply`].
    pub fn apply(&self, x: &Tensor<T>) -> Tensor<T> {
        let h = match &self.shuffle1 {
            Some(p) => permute_channels(x, p),
            None => x.clone(),
        };
        let mut h = self.soc1.apply(&h);
        if let Some((p, soc2)) = &self.second {
            if let Some(p) = p {
                h = permute_channels(&h, p);
            }
            h = soc2.apply(&h);
        }
        h
    }

    /// [`GsSocEval::apply`] on the tape with the evaluated kernels as constants
    /// ([`SocEval::forward`]): differentiable in `x` only.
    ///
    /// # Panics
    /// As [`SocEval::forward`].
    pub fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        let mut h = match &self.shuffle1 {
            Some(p) => x.permute_channels(p),
            None => x,
        };
        h = self.soc1.forward(h);
        if let Some((p, soc2)) = &self.second {
            if let Some(p) = p {
                h = h.permute_channels(p);
            }
            h = soc2.forward(h);
        }
        h
    }

    /// The evaluated convolutions (one or two).
    pub fn socs(&self) -> Vec<&SocEval<T>> {
        std::iter::once(&self.soc1)
            .chain(self.second.as_ref().map(|(_, s)| s))
            .collect()
    }

    /// The product of the convolutions' Lipschitz bounds ([`SocEval::lipschitz_bound`]).
    pub fn lipschitz_bound(&self) -> f64 {
        self.socs().iter().map(|s| s.lipschitz_bound()).product()
    }
}
