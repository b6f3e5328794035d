//! Optimizers on plain [`Tensor`] parameters given their gradients: SGD with momentum, Adam and
//! AdamW (the PyTorch update rules), and global-norm gradient clipping. Models expose their
//! trainable tensors through [`Params`](crate::autodiff::params::Params).
//!
//! **The learning rate has one home: the optimizer's constructor.** A schedule never replaces
//! it; it multiplies it ([`Optimizer::set_lr_factor`], what
//! [`fit`](crate::nn::train::fit) calls with [`Schedule::factor_at`](crate::nn::schedule::Schedule::factor_at)),
//! so step `t` uses `η_t = η · factor_t`.
//!
//! Everything an optimizer carries between steps (moments, velocities, step count) is returned by
//! [`Optimizer::state`] and restored by [`Optimizer::set_state`], for checkpoints that resume to
//! bitwise the same run.
//!
//! Update rules (step `t = 1, 2, …`, learning rate `η` (times the schedule's factor), gradient
//! `g`, parameter `p`):
//! - **SGD** (momentum `μ`, weight decay `λ`): `g ← g + λp`, `v ← μv + g`, `p ← p − ηv`
//!   (`v₀ = 0`; `μ = 0` is plain gradient descent).
//! - **Adam** (`β₁, β₂, ε`, L2 weight decay `λ` added to the gradient): `g ← g + λp`,
//!   `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, `m̂ = m/(1−β₁ᵗ)`, `v̂ = v/(1−β₂ᵗ)`,
//!   `p ← p − η m̂/(√v̂ + ε)`.
//! - **AdamW** (decoupled weight decay, Loshchilov & Hutter): `p ← p(1 − ηλ)` first, then the
//!   Adam update with the raw gradient.

use crate::error::{Error, Result};
use crate::real::Real;
use crate::tensor::Tensor;

/// An optimizer updating parameters in place from their gradients.
pub trait Optimizer<T: Real> {
    /// One update of every parameter from its gradient (same order and shapes every call).
    ///
    /// # Panics
    /// If the numbers of parameters and gradients differ, or a gradient's shape differs from its
    /// parameter's, or the parameter list changed since the first step.
    fn step(&mut self, params: &mut [&mut Tensor<T>], grads: &[Tensor<T>]);
    /// The learning rate `η` the optimizer was built with.
    fn lr(&self) -> f64;
    /// The factor the following steps multiply `η` by (1 until a schedule sets it).
    fn lr_factor(&self) -> f64;
    /// Sets the factor of the following steps: they use `η · factor` (module docs).
    fn set_lr_factor(&mut self, factor: f64);
    /// Everything carried between steps, for a checkpoint.
    fn state(&self) -> OptimizerState<T>;
    /// Restores a state returned by [`Optimizer::state`] of an optimizer of the same kind.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the missing or extra state tensor.
    fn set_state(&mut self, state: OptimizerState<T>) -> Result<()>;
}

/// An optimizer's state between steps: named tensors (`"m.3"`, `"v.3"`, `"velocity.3"` for
/// parameter 3, empty before the first step) and the number of steps taken.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState<T: Real> {
    /// The state tensors, in parameter order.
    pub tensors: Vec<(String, Tensor<T>)>,
    /// Steps taken so far.
    pub steps: u64,
}

/// `tensors` as `prefix.i` names.
fn named<T: Real>(prefix: &str, tensors: &[Tensor<T>]) -> Vec<(String, Tensor<T>)> {
    tensors
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("{prefix}.{i}"), t.clone()))
        .collect()
}

/// Takes the tensors `prefix.0, prefix.1, …` out of `state` (all of them, in order).
fn take_named<T: Real>(
    who: &str,
    prefix: &str,
    state: &mut Vec<(String, Tensor<T>)>,
) -> Result<Vec<Tensor<T>>> {
    let mut out = Vec::new();
    loop {
        let want = format!("{prefix}.{}", out.len());
        match state.iter().position(|(n, _)| *n == want) {
            Some(i) => out.push(state.remove(i).1),
            None => break,
        }
    }
    if let Some((extra, _)) = state
        .iter()
        .find(|(n, _)| n.starts_with(&format!("{prefix}.")))
    {
        return Err(Error::InvalidArgument(format!(
            "{who} state: '{extra}' without '{prefix}.{}'",
            out.len()
        )));
    }
    Ok(out)
}

fn check_step<T: Real>(op: &str, params: &[&mut Tensor<T>], grads: &[Tensor<T>]) {
    assert!(
        params.len() == grads.len(),
        "{op}: {} parameters but {} gradients",
        params.len(),
        grads.len()
    );
    for (p, g) in params.iter().zip(grads) {
        g.assert_same_shape(p, op);
    }
}

/// Lazily creates one zero state tensor per parameter; panics if the parameter list changed.
fn init_state<T: Real>(op: &str, state: &mut Vec<Tensor<T>>, params: &[&mut Tensor<T>]) {
    if state.is_empty() {
        *state = params.iter().map(|p| Tensor::zeros(p.shape())).collect();
    }
    assert!(
        state.len() == params.len()
            && state
                .iter()
                .zip(params)
                .all(|(s, p)| s.shape() == p.shape()),
        "{op}: the parameter list changed between steps"
    );
}

/// Stochastic gradient descent with momentum and L2 weight decay (PyTorch's `SGD`, no
/// dampening, no Nesterov): `v ← μv + (g + λp)`, `p ← p − ηv`.
#[derive(Clone, Debug)]
pub struct Sgd<T: Real> {
    lr: f64,
    factor: f64,
    /// Momentum μ (0 = plain gradient descent).
    pub momentum: f64,
    /// L2 weight decay λ.
    pub weight_decay: f64,
    steps: u64,
    velocity: Vec<Tensor<T>>,
}

impl<T: Real> Sgd<T> {
    /// SGD with learning rate `lr` and momentum `momentum`, no weight decay.
    pub fn new(lr: f64, momentum: f64) -> Self {
        Self {
            lr,
            factor: 1.0,
            momentum,
            weight_decay: 0.0,
            steps: 0,
            velocity: Vec::new(),
        }
    }

    /// Sets the L2 weight decay λ.
    pub fn with_weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }
}

impl<T: Real> Optimizer<T> for Sgd<T> {
    fn step(&mut self, params: &mut [&mut Tensor<T>], grads: &[Tensor<T>]) {
        check_step("Sgd::step", params, grads);
        init_state("Sgd::step", &mut self.velocity, params);
        self.steps += 1;
        let (lr, mu, wd) = (
            T::from_f64(self.lr * self.factor),
            T::from_f64(self.momentum),
            T::from_f64(self.weight_decay),
        );
        for ((p, g), v) in params.iter_mut().zip(grads).zip(&mut self.velocity) {
            let (pd, vd) = (p.data_mut(), v.data_mut());
            for ((pi, &gi), vi) in pd.iter_mut().zip(g.data()).zip(vd.iter_mut()) {
                let gi = gi + wd * *pi;
                *vi = mu * *vi + gi;
                *pi -= lr * *vi;
            }
        }
    }
    fn lr(&self) -> f64 {
        self.lr
    }
    fn lr_factor(&self) -> f64 {
        self.factor
    }
    fn set_lr_factor(&mut self, factor: f64) {
        self.factor = factor;
    }
    fn state(&self) -> OptimizerState<T> {
        OptimizerState {
            tensors: named("velocity", &self.velocity),
            steps: self.steps,
        }
    }
    fn set_state(&mut self, mut state: OptimizerState<T>) -> Result<()> {
        let velocity = take_named("Sgd", "velocity", &mut state.tensors)?;
        if let Some((name, _)) = state.tensors.first() {
            return Err(Error::InvalidArgument(format!(
                "Sgd state: unknown tensor '{name}'"
            )));
        }
        self.velocity = velocity;
        self.steps = state.steps;
        Ok(())
    }
}

/// Adam, and AdamW when `decoupled` is set (module docs for both rules).
#[derive(Clone, Debug)]
pub struct Adam<T: Real> {
    lr: f64,
    factor: f64,
    /// First-moment decay β₁.
    pub beta1: f64,
    /// Second-moment decay β₂.
    pub beta2: f64,
    /// Denominator guard ε.
    pub eps: f64,
    /// Weight decay λ: L2 (added to the gradient) for Adam, decoupled for AdamW.
    pub weight_decay: f64,
    /// AdamW's decoupled decay `p ← p(1 − ηλ)` instead of L2.
    pub decoupled: bool,
    t: u64,
    m: Vec<Tensor<T>>,
    v: Vec<Tensor<T>>,
}

impl<T: Real> Adam<T> {
    /// Adam with PyTorch's defaults β = (0.9, 0.999), ε = 1e-8, no weight decay.
    pub fn new(lr: f64) -> Self {
        Self {
            lr,
            factor: 1.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            t: 0,
            m: Vec::new(),
            v: Vec::new(),
        }
    }

    /// AdamW: Adam with decoupled weight decay `weight_decay`.
    pub fn adamw(lr: f64, weight_decay: f64) -> Self {
        Self {
            weight_decay,
            decoupled: true,
            ..Self::new(lr)
        }
    }

    /// Sets β₁, β₂.
    pub fn with_betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }

    /// Sets ε.
    pub fn with_eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.t
    }
}

impl<T: Real> Optimizer<T> for Adam<T> {
    fn step(&mut self, params: &mut [&mut Tensor<T>], grads: &[Tensor<T>]) {
        check_step("Adam::step", params, grads);
        init_state("Adam::step", &mut self.m, params);
        init_state("Adam::step", &mut self.v, params);
        self.t += 1;
        let t = self.t as i32;
        let f = T::from_f64;
        let eta = self.lr * self.factor;
        let (b1, b2, eps, lr) = (f(self.beta1), f(self.beta2), f(self.eps), f(eta));
        let bc1 = f(1.0 - self.beta1.powi(t));
        let bc2 = f(1.0 - self.beta2.powi(t));
        let wd = f(self.weight_decay);
        let decay = f(1.0 - eta * self.weight_decay);
        let one = T::one();
        for (((p, g), m), v) in params
            .iter_mut()
            .zip(grads)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            let pd = p.data_mut();
            let it = pd
                .iter_mut()
                .zip(g.data())
                .zip(m.data_mut())
                .zip(v.data_mut());
            for (((pi, &gi), mi), vi) in it {
                let gi = if self.decoupled {
                    if self.weight_decay != 0.0 {
                        *pi *= decay;
                    }
                    gi
                } else {
                    gi + wd * *pi
                };
                *mi = b1 * *mi + (one - b1) * gi;
                *vi = b2 * *vi + (one - b2) * gi * gi;
                let mhat = *mi / bc1;
                let vhat = *vi / bc2;
                *pi -= lr * mhat / (vhat.sqrt() + eps);
            }
        }
    }
    fn lr(&self) -> f64 {
        self.lr
    }
    fn lr_factor(&self) -> f64 {
        self.factor
    }
    fn set_lr_factor(&mut self, factor: f64) {
        self.factor = factor;
    }
    fn state(&self) -> OptimizerState<T> {
        let mut tensors = named("m", &self.m);
        tensors.extend(named("v", &self.v));
        OptimizerState {
            tensors,
            steps: self.t,
        }
    }
    fn set_state(&mut self, mut state: OptimizerState<T>) -> Result<()> {
        let m = take_named("Adam", "m", &mut state.tensors)?;
        let v = take_named("Adam", "v", &mut state.tensors)?;
        if let Some((name, _)) = state.tensors.first() {
            return Err(Error::InvalidArgument(format!(
                "Adam state: unknown tensor '{name}'"
            )));
        }
        if m.len() != v.len() {
            return Err(Error::InvalidArgument(format!(
                "Adam state: {} first moments but {} second moments",
                m.len(),
                v.len()
            )));
        }
        (self.m, self.v, self.t) = (m, v, state.steps);
        Ok(())
    }
}

/// The global gradient norm `‖(g_1, …, g_n)‖₂` over all tensors, in f64.
pub fn global_norm<T: Real>(grads: &[Tensor<T>]) -> f64 {
    grads
        .iter()
        .flat_map(|g| g.data())
        .map(|&x| Real::to_f64(x) * Real::to_f64(x))
        .sum::<f64>()
        .sqrt()
}

/// Global-norm clipping (PyTorch's `clip_grad_norm_`): if `N = ‖g‖₂ > max_norm`, every gradient
/// is multiplied by `max_norm / N` (PyTorch divides by `N + 10⁻⁶`; this is the exact rescaling).
/// Returns `N` (the norm before clipping). A non-finite `N` leaves the gradients unchanged.
pub fn clip_grad_norm<T: Real>(grads: &mut [Tensor<T>], max_norm: f64) -> f64 {
    let n = global_norm(grads);
    if n > max_norm && n.is_finite() {
        let c = T::from_f64(max_norm / n);
        for g in grads.iter_mut() {
            g.data_mut().iter_mut().for_each(|x| *x *= c);
        }
    }
    n
}
