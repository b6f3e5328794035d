//! Learning-rate schedules as factors of the optimizer's learning rate: constant, cosine decay
//! with optional linear warmup, and step decay at milestones (PyTorch's `MultiStepLR`).
//!
//! A schedule never holds a learning rate: step `t` uses `η_t = η · factor_at(t)`, with `η` the
//! rate the optimizer was built with (the one place it is set; [`crate::nn::optim`]).
//!
//! ```
//! use gslab::nn::schedule::Schedule;
//! // SGD's recipe of the LipConvnet code: ×0.1 at 50 % and 75 % of 100 steps.
//! let s = Schedule::multi_step(vec![50, 75], 0.1);
//! assert_eq!([s.factor_at(0), s.factor_at(49)], [1.0, 1.0]);
//! assert!((s.factor_at(50) - 0.1).abs() < 1e-15 && (s.factor_at(99) - 0.01).abs() < 1e-15);
//! ```

/// A factor of the learning rate as a function of the (0-based) step.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Schedule {
    /// `factor(t) = 1`.
    #[default]
    Constant,
    /// Linear warmup then cosine decay: `factor(t) = (t+1)/warmup` for `t < warmup`, then with
    /// `u = (t − warmup)/(total − warmup)` clamped to `[0, 1]`,
    /// `factor(t) = min + (1 − min)·(1 + cos(πu))/2`.
    Cosine {
        /// Final factor (reached at step `total`).
        min: f64,
        /// Total number of steps (the cosine reaches `min` here and stays).
        total: usize,
        /// Warmup steps (0 = none).
        warmup: usize,
    },
    /// `factor(t) = gamma^k` with `k` the number of milestones `≤ t`.
    MultiStep {
        /// Steps at which the factor is multiplied by `gamma`, increasing.
        milestones: Vec<usize>,
        /// The multiplier at each milestone.
        gamma: f64,
    },
}

impl Schedule {
    /// Cosine decay from factor 1 to `min` over `total` steps after `warmup` warmup steps.
    pub fn cosine(min: f64, total: usize, warmup: usize) -> Self {
        Self::Cosine { min, total, warmup }
    }

    /// Multiplication by `gamma` at each of the `milestones`.
    pub fn multi_step(milestones: Vec<usize>, gamma: f64) -> Self {
        Self::MultiStep { milestones, gamma }
    }

    /// The factor at step `t` (0-based).
    pub fn factor_at(&self, t: usize) -> f64 {
        match self {
            Self::Constant => 1.0,
            &Self::Cosine { min, total, warmup } => {
                if t < warmup {
                    return (t + 1) as f64 / warmup as f64;
                }
                let span = total.saturating_sub(warmup).max(1) as f64;
                let u = ((t - warmup) as f64 / span).clamp(0.0, 1.0);
                min + (1.0 - min) * 0.5 * (1.0 + (std::f64::consts::PI * u).cos())
            }
            Self::MultiStep { milestones, gamma } => {
                let k = milestones.iter().filter(|&&m| m <= t).count();
                gamma.powi(k as i32)
            }
        }
    }
}
