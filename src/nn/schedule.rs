//! Learning-rate schedules: constant, and cosine decay with optional linear warmup.

/// A learning rate as a function of the (0-based) step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// `η(t) = lr`.
    Constant {
        /// The learning rate.
        lr: f64,
    },
    /// Linear warmup then cosine decay:
    /// `η(t) = base·(t+1)/warmup` for `t < warmup`, then with `u = (t − warmup)/(total − warmup)`
    /// clamped to `[0, 1]`, `η(t) = min + (base − min)·(1 + cos(πu))/2`.
    Cosine {
        /// Peak learning rate (reached at the end of warmup).
        base: f64,
        /// Final learning rate (reached at step `total`).
        min: f64,
        /// Total number of steps (the cosine reaches `min` here and stays).
        total: usize,
        /// Warmup steps (0 = none).
        warmup: usize,
    },
}

impl Schedule {
    /// A constant learning rate.
    pub fn constant(lr: f64) -> Self {
        Self::Constant { lr }
    }

    /// Cosine decay from `base` to `min` over `total` steps after `warmup` warmup steps.
    pub fn cosine(base: f64, min: f64, total: usize, warmup: usize) -> Self {
        Self::Cosine {
            base,
            min,
            total,
            warmup,
        }
    }

    /// The learning rate at step `t` (0-based).
    pub fn lr_at(&self, t: usize) -> f64 {
        match *self {
            Self::Constant { lr } => lr,
            Self::Cosine {
                base,
                min,
                total,
                warmup,
            } => {
                if t < warmup {
                    return base * (t + 1) as f64 / warmup as f64;
                }
                let span = total.saturating_sub(warmup).max(1) as f64;
                let u = ((t - warmup) as f64 / span).clamp(0.0, 1.0);
                min + (base - min) * 0.5 * (1.0 + (std::f64::consts::PI * u).cos())
            }
        }
    }
}
