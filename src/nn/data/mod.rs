//! Classification data: the seeded two-interleaved-spirals set ([`two_spirals`]), MNIST digits
//! read from IDX files ([`mnist`], through the generic reader [`idx`]), and the metrics
//! [`argmax_rows`], [`accuracy`] and [`one_hot`].
//!
//! # The IDX format
//! The MNIST files are IDX arrays: a 4-byte magic number `00 00 tt nd` (two zero bytes, the
//! element type code `tt`, `0x08` for unsigned bytes, and the number of dimensions `nd`), then
//! the `nd` dimensions as big-endian `u32`, then `Π dims` elements, row-major. MNIST images are
//! magic `0x00000803`, dimensions `(count, 28, 28)`, one byte per pixel (0 = background,
//! 255 = ink); labels are `0x00000801`, `(count)`, one byte `0..=9` each. The files are usually
//! gzip-compressed; [`idx::read_idx`] reads both forms and validates the header and the exact
//! payload length, returning an [`Error::Format`] naming the offending value, never panicking.
//!
//! # Conventions
//! - Images are NCHW tensors `(count, 1, side, side)` (one grey channel), row-major pixels.
//! - Pixel values are `byte / 255 ∈ [0, 1]`.
//! - [`mnist::Mnist::padded`]`(32)` centres the 28×28 digits in a 32×32 zero canvas (2 pixels
//!   on each side), the power-of-two size the structured layers want. Zero padding is an
//!   isometry: norms and distances between images are unchanged.
//! - [`mnist::Mnist::flat`] gives the `(count, side²)` rows an operator acts on.
//! - The shipped 10,000 digits (`data/mnist-10k/`, [`mnist::mnist_dir`]) are already shuffled:
//!   the first 8,000 train, the last 2,000 test ([`mnist::Mnist::split`]).

pub mod idx;
pub mod mnist;

use crate::error::{Error, Result};
use crate::real::Real;
use crate::tensor::Tensor;
use rand::{SeedableRng, rngs::StdRng};
use rand_distr::{Distribution, StandardNormal};

/// Points with integer class labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Classification<T> {
    /// Inputs, shape `(n, features)`.
    pub x: Tensor<T>,
    /// Label of each row, in `0..classes`.
    pub labels: Vec<usize>,
    /// Number of classes.
    pub classes: usize,
}

/// Two interleaved spirals in the plane, `n_per_class` points each, rows ordered class 0 then class 1.
///
/// Point `i ∈ {0..n−1}` of class `c ∈ {0, 1}` has `s = (i + 1)/n`, radius `r = s`, angle
/// `θ = 2π·turns·s + c·π`, and coordinates `(r cos θ + σ ε₁, r sin θ + σ ε₂)` with `σ = noise` and
/// `ε ~ N(0, I)` drawn from a `StdRng` seeded by `seed`. Class 1 is class 0 rotated by π.
///
/// # Errors
/// [`Error::InvalidArgument`] naming the value if `n_per_class = 0`, `turns` is not finite and
/// positive, or `noise` is not finite and non-negative.
pub fn two_spirals<T: Real>(
    n_per_class: usize,
    turns: f64,
    noise: f64,
    seed: u64,
) -> Result<Classification<T>> {
    let bad = |what: String| Err(Error::InvalidArgument(format!("two_spirals: {what}")));
    if n_per_class == 0 {
        return bad("n_per_class must be positive, got 0".into());
    }
    if !(turns.is_finite() && turns > 0.0) {
        return bad(format!("turns must be finite and positive, got {turns}"));
    }
    if !(noise.is_finite() && noise >= 0.0) {
        return bad(format!(
            "noise must be finite and non-negative, got {noise}"
        ));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut data = Vec::with_capacity(4 * n_per_class);
    let mut labels = Vec::with_capacity(2 * n_per_class);
    for c in 0..2 {
        for i in 0..n_per_class {
            let s = (i + 1) as f64 / n_per_class as f64;
            let theta = 2.0 * std::f64::consts::PI * turns * s + c as f64 * std::f64::consts::PI;
            let e1: f64 = StandardNormal.sample(&mut rng);
            let e2: f64 = StandardNormal.sample(&mut rng);
            data.push(T::from_f64(s * theta.cos() + noise * e1));
            data.push(T::from_f64(s * theta.sin() + noise * e2));
            labels.push(c);
        }
    }
    Ok(Classification {
        x: Tensor::from_vec(&[2 * n_per_class, 2], data)?,
        labels,
        classes: 2,
    })
}

/// Index of the largest entry of each row of a 2-D tensor (the first one on ties).
///
/// # Panics
/// If `scores` is not 2-D.
pub fn argmax_rows<T: Real>(scores: &Tensor<T>) -> Vec<usize> {
    let [_, c] = scores.shape()[..] else {
        panic!(
            "argmax_rows: expected a 2-D tensor, got shape {:?}",
            scores.shape()
        )
    };
    scores
        .data()
        .chunks_exact(c.max(1))
        .map(|row| (1..row.len()).fold(0, |best, j| if row[j] > row[best] { j } else { best }))
        .collect()
}

/// Fraction of rows whose argmax equals the label: `(1/n) Σ_i 1[argmax_j s_ij = y_i]`.
///
/// # Panics
/// If `scores` is not 2-D or `labels.len()` is not its number of rows.
pub fn accuracy<T: Real>(scores: &Tensor<T>, labels: &[usize]) -> f64 {
    let pred = argmax_rows(scores);
    assert!(
        pred.len() == labels.len(),
        "accuracy: shape mismatch {:?} vs labels of length {}",
        scores.shape(),
        labels.len()
    );
    let hits = pred.iter().zip(labels).filter(|(p, y)| p == y).count();
    hits as f64 / labels.len().max(1) as f64
}

/// One-hot matrix `E[i, j] = 1[j = y_i]`, shape `(n, classes)`.
///
/// # Errors
/// [`Error::InvalidArgument`] naming the first label `≥ classes`.
pub fn one_hot<T: Real>(labels: &[usize], classes: usize) -> Result<Tensor<T>> {
    if let Some(&bad) = labels.iter().find(|&&y| y >= classes) {
        return Err(Error::InvalidArgument(format!(
            "one_hot: label {bad} out of range for {classes} classes"
        )));
    }
    let mut e = Tensor::zeros(&[labels.len(), classes]);
    for (i, &y) in labels.iter().enumerate() {
        e.data_mut()[i * classes + y] = T::one();
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spirals_follow_the_formula_without_noise() {
        let d = two_spirals::<f64>(8, 1.5, 0.0, 0).unwrap();
        assert_eq!(d.x.shape(), &[16, 2]);
        assert_eq!(d.labels, [vec![0; 8], vec![1; 8]].concat());
        // i = 3 of 8: s = 1/2, θ = 2π·1.5·0.5 = 3π/2 → (0, −1/2); class 1 adds π → (0, 1/2)
        let (x0, y0) = (d.x.at2(3, 0), d.x.at2(3, 1));
        let (x1, y1) = (d.x.at2(11, 0), d.x.at2(11, 1));
        assert!(x0.abs() < 1e-15 && (y0 + 0.5).abs() < 1e-15, "{x0} {y0}");
        assert!(x1.abs() < 1e-15 && (y1 - 0.5).abs() < 1e-15, "{x1} {y1}");
    }

    #[test]
    fn spirals_are_seeded_and_validated() {
        let a = two_spirals::<f64>(10, 1.0, 0.1, 7).unwrap();
        assert_eq!(a, two_spirals(10, 1.0, 0.1, 7).unwrap());
        assert_ne!(a, two_spirals(10, 1.0, 0.1, 8).unwrap());
        let e = two_spirals::<f64>(0, 1.0, 0.1, 7).unwrap_err().to_string();
        assert!(e.contains("n_per_class"), "{e}");
        let e = two_spirals::<f64>(3, 1.0, -1.0, 7).unwrap_err().to_string();
        assert!(e.contains("noise") && e.contains("-1"), "{e}");
    }

    #[test]
    fn accuracy_and_one_hot() {
        let s = Tensor::from_vec(&[3, 2], vec![0.1, 0.9, 2.0, -1.0, 0.5, 0.5]).unwrap();
        assert_eq!(argmax_rows(&s), vec![1, 0, 0]);
        assert_eq!(accuracy(&s, &[1, 1, 0]), 2.0 / 3.0);
        let e = one_hot::<f64>(&[2, 0], 3).unwrap();
        assert_eq!(e.data(), &[0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
        assert!(
            one_hot::<f64>(&[3], 3)
                .unwrap_err()
                .to_string()
                .contains("label 3")
        );
    }
}
