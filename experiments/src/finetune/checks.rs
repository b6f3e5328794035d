//! The checks run after every fine-tuning run:
//! - **merge**: the merged dense model against the adapted one on the whole target test set:
//!   the number of examples whose predicted class differs, and the largest per-example relative
//!   logit difference `‖z_merged − z_adapted‖_∞ / ‖z_adapted‖_∞`;
//! - **neuron Gram matrix** (OFT's hyperspherical energy: the pairwise angles between neurons,
//!   the rows of `W`): for each hidden layer the relative deviation
//!   `‖W'W'ᵀ − diag(s)·W₀W₀ᵀ·diag(s)‖_F / ‖diag(s)·W₀W₀ᵀ·diag(s)‖_F`, computed in f64 from the
//!   f32 weights. A one-sided input rotation `W' = diag(s)·W₀·Q` keeps it at rounding level
//!   (`QQᵀ = I`); LoRA and full fine-tuning do not (`s = 1` for them). Double GSOFT rotates the
//!   output side too, `W'W'ᵀ = diag(s)·Q_out·W₀W₀ᵀ·Q_outᵀ·diag(s)`, which conjugates the Gram
//!   matrix instead of keeping it: its preserved quantity is the spectrum, reported as the
//!   largest eigenvalue difference of `diag(s)⁻¹·W'W'ᵀ·diag(s)⁻¹` and `W₀W₀ᵀ` relative to the
//!   largest eigenvalue;
//! - **orthogonality**: the largest `‖BᵀB − I‖_max` over every block of every factor of every
//!   rotation (in f32, as trained); the permutations are exact, so the chain's own error is at
//!   most the sum over its factors.
//!
//! Rounding bound of the Gram deviation for a one-sided rotation with `m` factors of `b × b`
//! blocks: each row of `W'` is `m` products of length-`b` dot products in f32, relative error at
//! most `m·b·u` (`u = eps/2`, the worst-case dot-product bound) plus the blocks' orthogonality
//! error; the Gram matrix doubles it. [`Checks::gram_bound`] is `4·Σ m·b·eps(f32)` over the layer's
//! rotations (twice that estimate, covering the blocks' orthogonality error, which the crate
//! keeps below `10·b·eps` per block).

use super::model::{Adapted, Mlp};
use gslab::Tensor;
use gslab::faer::Side;
use gslab::orthogonal::orthogonality_error;
use serde::Serialize;

/// Results of the checks of one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Checks {
    /// Target test examples whose merged and adapted predictions differ.
    pub merge_disagree: usize,
    /// Largest per-example relative logit difference, merged vs adapted.
    pub merge_max_rel: f64,
    /// Relative neuron-Gram deviation of layer 1 and layer 2 (module docs).
    pub gram_dev: [f64; 2],
    /// Double GSOFT: relative eigenvalue deviation of the de-scaled Gram matrix per layer (NaN
    /// for the other methods).
    pub gram_eig_dev: [f64; 2],
    /// The rounding bound `4·Σ m·b·eps(f32)` per layer (module docs; NaN without a rotation).
    pub gram_bound: [f64; 2],
    /// Largest block orthogonality error `‖BᵀB − I‖_max` (NaN without a rotation).
    pub ortho_err: f64,
    /// `10·b_max·eps(f32)` for the largest block size of the rotations (NaN without one).
    pub ortho_bound: f64,
}

impl Checks {
    /// The values in a fixed order (for checkpoints).
    pub fn to_vec(&self) -> Vec<f64> {
        let mut v = vec![self.merge_disagree as f64, self.merge_max_rel];
        v.extend(self.gram_dev);
        v.extend(self.gram_eig_dev);
        v.extend(self.gram_bound);
        v.extend([self.ortho_err, self.ortho_bound]);
        v
    }

    /// Number of values of [`Checks::to_vec`].
    pub const LEN: usize = 10;

    /// Inverse of [`Checks::to_vec`].
    pub fn from_slice(v: &[f64]) -> Self {
        Self {
            merge_disagree: v[0] as usize,
            merge_max_rel: v[1],
            gram_dev: [v[2], v[3]],
            gram_eig_dev: [v[4], v[5]],
            gram_bound: [v[6], v[7]],
            ortho_err: v[8],
            ortho_bound: v[9],
        }
    }
}

/// Index of the largest entry of each row of `(n, c)` logits (the first on ties).
pub fn argmax_rows(z: &Tensor<f32>) -> Vec<usize> {
    let c = z.shape()[1];
    z.data()
        .chunks_exact(c)
        .map(|row| {
            let mut best = 0;
            for (j, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = j;
                }
            }
            best
        })
        .collect()
}

/// Runs every check of `model` (trained from `base`) on `x` (the target test inputs).
pub fn run_checks(model: &Adapted, merged: &Mlp, base: &Mlp, x: &Tensor<f32>) -> Checks {
    let za = model.apply(x);
    let zm = merged.apply(x);
    let c = za.shape()[1];
    let merge_max_rel = za
        .data()
        .chunks_exact(c)
        .zip(zm.data().chunks_exact(c))
        .map(|(a, m)| {
            let diff = a
                .iter()
                .zip(m)
                .map(|(x, y)| f64::from((x - y).abs()))
                .fold(0.0, f64::max);
            let size = a.iter().map(|v| f64::from(v.abs())).fold(0.0, f64::max);
            diff / size.max(f64::MIN_POSITIVE)
        })
        .fold(0.0, f64::max);
    let merge_disagree = argmax_rows(&za)
        .iter()
        .zip(argmax_rows(&zm))
        .filter(|(a, m)| **a != *m)
        .count();
    let bases = [&base.l1, &base.l2];
    let merged_layers = [&merged.l1, &merged.l2];
    let mut out = Checks {
        merge_disagree,
        merge_max_rel,
        gram_dev: [f64::NAN; 2],
        gram_eig_dev: [f64::NAN; 2],
        gram_bound: [f64::NAN; 2],
        ortho_err: f64::NAN,
        ortho_bound: f64::NAN,
    };
    let (mut ortho, mut bmax) = (f64::NAN, 0usize);
    for (i, layer) in model.layers.iter().enumerate() {
        let w0 = bases[i].weight.cast::<f64>();
        let w1 = merged_layers[i].weight.cast::<f64>();
        let ortho_adapter = layer.ortho();
        let s: Vec<f64> = match ortho_adapter.and_then(|a| a.scale()) {
            Some(s) => s.data().iter().map(|&v| f64::from(v)).collect(),
            None => vec![1.0; w0.shape()[0]],
        };
        let g0 = w0.matmul_t(false, &w0, true);
        let g1 = w1.matmul_t(false, &w1, true);
        let o = s.len();
        let target = Tensor::from_fn(&[o, o], |k| s[k / o] * g0.data()[k] * s[k % o]);
        out.gram_dev[i] = g1.sub(&target).norm() / target.norm();
        if let Some(a) = ortho_adapter {
            let chains: Vec<_> = a
                .input_chain()
                .into_iter()
                .chain(a.output_chain())
                .collect();
            let mut bound = 0.0;
            for ch in &chains {
                for blocks in ch.block_tensors() {
                    let b = blocks.shape()[1];
                    bmax = bmax.max(b);
                    bound += 4.0 * b as f64 * f64::from(f32::EPSILON);
                    let e = f64::from(orthogonality_error(&blocks));
                    ortho = if ortho.is_nan() { e } else { ortho.max(e) };
                }
            }
            out.gram_bound[i] = bound;
            if a.output_chain().is_some() {
                let descaled = Tensor::from_fn(&[o, o], |k| g1.data()[k] / (s[k / o] * s[k % o]));
                out.gram_eig_dev[i] = eig_dev(&descaled, &g0);
            }
        }
    }
    out.ortho_err = ortho;
    if bmax > 0 {
        out.ortho_bound = 10.0 * bmax as f64 * f64::from(f32::EPSILON);
    }
    out
}

/// `max_i |λ_i(a) − λ_i(b)| / max_i |λ_i(b)|` over the ascending eigenvalues of two symmetric
/// matrices (NaN if an eigenvalue computation fails).
fn eig_dev(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    let ev = |t: &Tensor<f64>| t.to_mat().self_adjoint_eigenvalues(Side::Lower).ok();
    match (ev(a), ev(b)) {
        (Some(la), Some(lb)) => {
            let top = lb.iter().map(|v| v.abs()).fold(0.0, f64::max);
            la.iter()
                .zip(&lb)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max)
                / top
        }
        _ => f64::NAN,
    }
}
