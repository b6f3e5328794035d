//! A small training loop: per step, enter the parameters on a fresh tape, evaluate the loss,
//! stop with [`Error::NonFiniteLoss`] the moment it is not finite, back-propagate, optionally
//! clip the global gradient norm, set the schedule's factor of the optimizer's learning rate and
//! update. The learning rate itself is the optimizer's (set where it is built); the loop never
//! replaces it.

use crate::autodiff::params::Params;
use crate::autodiff::tape::{Tape, Var};
use crate::error::{Error, Result};
use crate::nn::optim::{Optimizer, clip_grad_norm};
use crate::nn::schedule::Schedule;
use crate::real::Real;
use crate::tensor::Tensor;

/// How long and how to train (the learning rate is the optimizer's).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Number of optimizer steps.
    pub steps: usize,
    /// Factor of the optimizer's learning rate per step.
    pub schedule: Schedule,
    /// Global-norm gradient clipping threshold, if any.
    pub clip: Option<f64>,
}

impl TrainConfig {
    /// `steps` steps at the optimizer's learning rate (constant schedule), no clipping.
    pub fn new(steps: usize) -> Self {
        Self {
            steps,
            schedule: Schedule::Constant,
            clip: None,
        }
    }

    /// The same with `schedule` scaling the learning rate.
    pub fn with_schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// The same with global-norm clipping at `max_norm`.
    pub fn with_clip(mut self, max_norm: f64) -> Self {
        self.clip = Some(max_norm);
        self
    }
}

/// What happened during training: the loss before each update and the gradient norm (before
/// clipping).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainLog {
    /// Loss at step `t`, evaluated before update `t`.
    pub losses: Vec<f64>,
    /// Global gradient norm at step `t`, before clipping.
    pub grad_norms: Vec<f64>,
}

/// One step: loss and gradients of `loss_fn` at the current parameters, without updating.
/// Returns `(loss, gradients)` in parameter order (zeros for parameters the loss ignores).
///
/// # Errors
/// [`Error::NonFiniteLoss`] with `step` if the loss is NaN or infinite.
///
/// # Panics
/// If `loss_fn` does not return a scalar.
pub fn loss_and_grads<T, M, F>(
    model: &M,
    step: usize,
    loss_fn: &mut F,
) -> Result<(f64, Vec<Tensor<T>>)>
where
    T: Real,
    M: Params<T>,
    F: for<'t> FnMut(usize, &M, &'t Tape<T>, &[Var<'t, T>]) -> Var<'t, T>,
{
    let tape = Tape::new();
    let leaves = model.leaves(&tape);
    let loss = loss_fn(step, model, &tape, &leaves);
    let value = loss.value().item().to_f64();
    if !value.is_finite() {
        return Err(Error::NonFiniteLoss {
            context: String::new(),
            step,
            loss: value,
        });
    }
    let grads = tape.backward(loss);
    Ok((value, leaves.iter().map(|v| grads.wrt(*v)).collect()))
}

/// Trains `model` for `cfg.steps` steps. `loss_fn(step, model, tape, leaves)` builds the loss
/// from the model's parameters entered as `leaves` (in [`Params::params`] order); `on_step(step,
/// loss, model)` runs after each update (for logging or invariant checks).
///
/// # Errors
/// [`Error::NonFiniteLoss`] naming the first step whose loss is not finite; the parameters are
/// left as they were after the previous step.
pub fn fit<T, M, O, F, C>(
    model: &mut M,
    opt: &mut O,
    cfg: &TrainConfig,
    mut loss_fn: F,
    mut on_step: C,
) -> Result<TrainLog>
where
    T: Real,
    M: Params<T>,
    O: Optimizer<T>,
    F: for<'t> FnMut(usize, &M, &'t Tape<T>, &[Var<'t, T>]) -> Var<'t, T>,
    C: FnMut(usize, f64, &M),
{
    let mut log = TrainLog::default();
    for step in 0..cfg.steps {
        let (loss, mut grads) = loss_and_grads(model, step, &mut loss_fn)?;
        let norm = match cfg.clip {
            Some(c) => clip_grad_norm(&mut grads, c),
            None => crate::nn::optim::global_norm(&grads),
        };
        opt.set_lr_factor(cfg.schedule.factor_at(step));
        opt.step(&mut model.params_mut(), &grads);
        log.losses.push(loss);
        log.grad_norms.push(norm);
        on_step(step, loss, model);
    }
    Ok(log)
}
