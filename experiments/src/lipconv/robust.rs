//! Certification and the PGD attack of `lipconv`: what the trained network guarantees, and an
//! attack that tries to break it.
//!
//! **Certificate** (SOC's `evaluate_certificates`). For logits `z = f(x)` with label `y`, the
//! margin is `m = z_y − max_{j≠y} z_j`. Each difference `z_i − z_j` is `√2·L`-Lipschitz in `x`
//! (the map `z ↦ z_i − z_j` has norm `√2`), so if `m/(√2·L) > ε` no perturbation of L2 norm
//! `≤ ε` changes the class: the point is *certified at radius* `ε`. `L` is the evaluated network's
//! certified bound ([`LipConvnetEval::lipschitz_bound`]).
//!
//! **Attack** (L2 PGD, Madry et al.). From `x₀ = x`, `steps` iterations of
//! `x ← Π(x + α·g/‖g‖)` with `g` the gradient of the margin `max_{j≠y} z_j − z_y` (runner-up `j`
//! of the current iterate) through the evaluated network ([`LipConvnetEval::forward`]), step
//! `α = 2.5·ε/steps`, and `Π` the projection onto the ball `‖x' − x‖ ≤ ε·(1 − 10⁻⁶)` (the factor
//! keeps the attack inside the certified ball after f32 rounding) followed by clipping to the
//! `[0, 1]` box (which only moves coordinates towards `x`, so the iterate stays in the ball). A
//! point is broken at the first iterate the network misclassifies, which is kept; otherwise the
//! last iterate is kept. Only correctly classified points are attacked (the others are not
//! robust anyway). The kept `x'` is re-evaluated with [`LipConvnetEval::apply`]: the PGD robust
//! accuracy counts the points still classified correctly there, an upper bound of the true
//! robust accuracy; `‖f(x) − f(x')‖/‖x − x'‖` is measured on every attacked pair.

use super::train::{TrainRun, gather};
use super::{Config, EPS_REPORTED, PGD_EPS};
use crate::Result;
use gslab::nn::data::argmax_rows;
use gslab::nn::data::mnist::Mnist;
use gslab::nn::lipconvnet::LipConvnetEval;
use gslab::{Tape, Tensor};
use serde::Serialize;
use std::time::Instant;

/// One test point of one run (a row of `points.csv`).
#[derive(Clone, Debug, Serialize)]
pub struct PointRow {
    /// The variant.
    pub variant: String,
    /// The seed.
    pub seed: u64,
    /// Index in the test set (0 = record 8,000 of the shipped digits).
    pub index: usize,
    /// True digit.
    pub label: usize,
    /// Predicted digit on the clean image.
    pub pred: usize,
    /// `z_y − max_{j≠y} z_j` on the clean image (positive iff correct, up to ties).
    pub margin: f64,
    /// `max(0, margin)/(√2·L)`: certified at every `ε` below it.
    pub cert_radius: f64,
    /// Whether PGD ran on the point (correctly classified points only).
    pub attacked: bool,
    /// Prediction on the kept PGD iterate (the clean prediction when not attacked).
    pub pgd_pred: usize,
    /// `‖x' − x‖` of the kept iterate (0 when not attacked).
    pub pgd_dist: f64,
    /// `‖f(x') − f(x)‖ / ‖x' − x‖` (empty when not attacked or `x' = x`).
    pub ratio: Option<f64>,
}

/// The evaluation of one trained run.
#[derive(Clone, Debug)]
pub struct RunEval {
    /// The certified Lipschitz bound `L` of the evaluated network.
    pub bound: f64,
    /// Every layer's bound (blocks, then the classifier).
    pub layer_bounds: Vec<f64>,
    /// Clean test accuracy.
    pub clean_acc: f64,
    /// Certified accuracy at each of [`EPS_REPORTED`].
    pub cert: [f64; 3],
    /// `(ε, certified accuracy)` on a grid of radii.
    pub curve: Vec<(f64, f64)>,
    /// Fraction of test points still correct after PGD at [`PGD_EPS`].
    pub pgd_acc: f64,
    /// Per-point results.
    pub points: Vec<PointRow>,
    /// The largest measured `‖f(x) − f(x')‖/‖x − x'‖` (0 if nothing was attacked).
    pub max_ratio: f64,
    /// Points certified at [`PGD_EPS`] whose PGD iterate is misclassified (must be 0).
    pub certified_flipped: usize,
    /// Attacked pairs whose ratio exceeds `L` (must be 0).
    pub ratio_violations: usize,
    /// Seconds for the clean evaluation and certification.
    pub certify_s: f64,
    /// Seconds for the attack.
    pub pgd_s: f64,
}

/// Radii of the certified-accuracy curve: 0, 0.05, …, 3.0.
pub fn curve_radii() -> Vec<f64> {
    (0..=60).map(|i| i as f64 * 0.05).collect()
}

/// Batch size of the evaluation and the attack.
const EVAL_BATCH: usize = 128;

/// Logits of `x` (any batch) in batches, as f64 rows.
fn logits(ev: &LipConvnetEval<f32>, x: &Tensor<f32>) -> Vec<[f64; 10]> {
    let per = x.numel() / x.shape()[0].max(1);
    let mut out = Vec::with_capacity(x.shape()[0]);
    for chunk in x.data().chunks(EVAL_BATCH * per) {
        let n = chunk.len() / per;
        let xb = Tensor::from_vec(&[n, 1, 32, 32], chunk.to_vec()).expect("n images");
        let z = ev.apply(&xb);
        for row in z.data().chunks_exact(10) {
            out.push(std::array::from_fn(|j| f64::from(row[j])));
        }
    }
    out
}

/// Index of the largest entry (the first on ties).
fn argmax(z: &[f64]) -> usize {
    (1..z.len()).fold(0, |b, j| if z[j] > z[b] { j } else { b })
}

/// `z_y − max_{j≠y} z_j`.
fn margin(z: &[f64], y: usize) -> f64 {
    let other = (0..z.len())
        .filter(|&j| j != y)
        .map(|j| z[j])
        .fold(f64::NEG_INFINITY, f64::max);
    z[y] - other
}

fn dist(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&p, &q)| {
            let d = f64::from(p) - f64::from(q);
            d * d
        })
        .sum::<f64>()
        .sqrt()
}

/// Certifies and attacks the trained run on the test set (module docs).
///
/// # Errors
/// [`gslab::Error::Numerical`] if the network cannot be evaluated (non-finite parameters).
pub fn evaluate(run: &TrainRun, cfg: &Config, test: &Mnist<f32>) -> Result<RunEval> {
    let t0 = Instant::now();
    let ev = run.net.eval()?;
    let bound = ev.lipschitz_bound();
    let clean = logits(&ev, test.images());
    let labels = test.labels();
    let n = labels.len();
    let denom = std::f64::consts::SQRT_2 * bound;
    let mut points: Vec<PointRow> = (0..n)
        .map(|i| {
            let m = margin(&clean[i], labels[i]);
            let pred = argmax(&clean[i]);
            PointRow {
                variant: run.variant.name(),
                seed: run.seed,
                index: i,
                label: labels[i],
                pred,
                margin: m,
                cert_radius: m.max(0.0) / denom,
                attacked: false,
                pgd_pred: pred,
                pgd_dist: 0.0,
                ratio: None,
            }
        })
        .collect();
    let certified = |p: &PointRow, eps: f64| p.pred == p.label && p.cert_radius > eps;
    let frac = |k: usize| k as f64 / n as f64;
    let clean_acc = frac(points.iter().filter(|p| p.pred == p.label).count());
    let cert_at = |eps: f64| frac(points.iter().filter(|p| certified(p, eps)).count());
    let cert = EPS_REPORTED.map(cert_at);
    let curve = curve_radii().into_iter().map(|e| (e, cert_at(e))).collect();
    let certify_s = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    let targets: Vec<usize> = (0..n).filter(|&i| points[i].pred == labels[i]).collect();
    let (x_all, _) = gather(test, &(0..n).collect::<Vec<_>>());
    let adv = pgd(&ev, test, &targets, cfg.pgd_steps, PGD_EPS);
    let per = 32 * 32;
    let adv_logits = logits(&ev, &adv);
    let (mut max_ratio, mut certified_flipped, mut ratio_violations) = (0.0f64, 0usize, 0usize);
    for (k, &i) in targets.iter().enumerate() {
        let p = &mut points[i];
        let za = &adv_logits[k];
        let d = dist(
            &adv.data()[k * per..(k + 1) * per],
            &x_all.data()[i * per..(i + 1) * per],
        );
        p.attacked = true;
        p.pgd_pred = argmax(za);
        p.pgd_dist = d;
        if d > 0.0 {
            let dz = za
                .iter()
                .zip(&clean[i])
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
                .sqrt();
            let r = dz / d;
            p.ratio = Some(r);
            max_ratio = max_ratio.max(r);
            if r > bound {
                ratio_violations += 1;
            }
        }
    }
    for p in &points {
        if certified(p, PGD_EPS) && p.pgd_pred != p.label {
            certified_flipped += 1;
        }
    }
    let pgd_acc = frac(
        points
            .iter()
            .filter(|p| p.pred == p.label && p.pgd_pred == p.label)
            .count(),
    );
    Ok(RunEval {
        bound,
        layer_bounds: ev.layer_bounds(),
        clean_acc,
        cert,
        curve,
        pgd_acc,
        points,
        max_ratio,
        certified_flipped,
        ratio_violations,
        certify_s,
        pgd_s: t1.elapsed().as_secs_f64(),
    })
}

/// L2 PGD on the points `targets` of `test` (module docs): the kept iterate of each, as a
/// `(targets.len(), 1, 32, 32)` tensor in the order of `targets`.
pub fn pgd(
    ev: &LipConvnetEval<f32>,
    test: &Mnist<f32>,
    targets: &[usize],
    steps: usize,
    eps: f64,
) -> Tensor<f32> {
    let per = 32 * 32;
    let radius = eps * (1.0 - 1e-6);
    let alpha = 2.5 * eps / steps as f64;
    let mut kept = vec![0.0f32; targets.len() * per];
    for (c, chunk) in targets.chunks(EVAL_BATCH).enumerate() {
        let (x0, labels) = gather(test, chunk);
        // Active rows: position in the chunk; their iterates in `xa` (same order).
        let mut active: Vec<usize> = (0..chunk.len()).collect();
        let mut xa = x0.data().to_vec();
        for s in 0..=steps {
            if active.is_empty() {
                break;
            }
            let xt = Tensor::from_vec(&[active.len(), 1, 32, 32], xa.clone()).expect("images");
            let tape = Tape::new();
            let xv = tape.leaf(xt);
            let z = ev.forward(xv);
            let zv = z.value();
            let pred = argmax_rows(&zv);
            let flipped: Vec<bool> = active
                .iter()
                .zip(&pred)
                .map(|(&r, &p)| p != labels[r])
                .collect();
            let done = s == steps;
            for (a, &r) in active.iter().enumerate() {
                if flipped[a] || done {
                    let at = (c * EVAL_BATCH + r) * per;
                    kept[at..at + per].copy_from_slice(&xa[a * per..(a + 1) * per]);
                }
            }
            if done {
                break;
            }
            // Gradient of Σ (z_runner-up − z_y) over the rows not yet broken.
            let mut mask = vec![0.0f32; active.len() * 10];
            for (a, &r) in active.iter().enumerate() {
                if flipped[a] {
                    continue;
                }
                let row = &zv.data()[a * 10..(a + 1) * 10];
                let y = labels[r];
                let j = (0..10).filter(|&j| j != y).fold(usize::MAX, |b, j| {
                    if b == usize::MAX || row[j] > row[b] {
                        j
                    } else {
                        b
                    }
                });
                mask[a * 10 + y] = -1.0;
                mask[a * 10 + j] = 1.0;
            }
            let mask = Tensor::from_vec(&[active.len(), 10], mask).expect("mask");
            let g = tape.backward(z.mul(tape.constant(mask)).sum()).wrt(xv);
            let mut next_active = Vec::with_capacity(active.len());
            let mut next_xa = Vec::with_capacity(xa.len());
            for (a, &r) in active.iter().enumerate() {
                if flipped[a] {
                    continue;
                }
                let gi = &g.data()[a * per..(a + 1) * per];
                let xi = &mut xa[a * per..(a + 1) * per];
                let x0i = &x0.data()[r * per..(r + 1) * per];
                let gn = gi
                    .iter()
                    .map(|&v| f64::from(v) * f64::from(v))
                    .sum::<f64>()
                    .sqrt();
                if gn > 0.0 {
                    let step = alpha / gn;
                    for (v, &d) in xi.iter_mut().zip(gi) {
                        *v = (f64::from(*v) + step * f64::from(d)) as f32;
                    }
                }
                let dn = dist(xi, x0i);
                let shrink = if dn > radius { radius / dn } else { 1.0 };
                for (v, &o) in xi.iter_mut().zip(x0i) {
                    let d = (f64::from(*v) - f64::from(o)) * shrink;
                    *v = (f64::from(o) + d).clamp(0.0, 1.0) as f32;
                }
                next_active.push(r);
                next_xa.extend_from_slice(xi);
            }
            active = next_active;
            xa = next_xa;
        }
    }
    Tensor::from_vec(&[targets.len(), 1, 32, 32], kept).expect("kept iterates")
}
