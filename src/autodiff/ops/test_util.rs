//! Helpers shared by the op tests: seeded inputs, the projection to a scalar, and the f64
//! gradcheck with the step and tolerance every op is held to.

use crate::autodiff::gradcheck::gradcheck;
use crate::autodiff::tape::{Tape, Var};
use crate::tensor::Tensor;
use rand::{SeedableRng, rngs::StdRng};

/// Central-difference step of every op gradcheck.
const H: f64 = 1e-6;
/// Largest relative error a gradcheck may report.
const TOL: f64 = 1e-6;

/// Standard normal entries from a seeded generator.
pub(crate) fn randn(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::randn(shape, 1.0, &mut StdRng::seed_from_u64(seed))
}

/// Uniform entries in `[lo, hi)` from a seeded generator.
pub(crate) fn uniform(shape: &[usize], lo: f64, hi: f64, seed: u64) -> Tensor<f64> {
    Tensor::rand_uniform(shape, lo, hi, &mut StdRng::seed_from_u64(seed))
}

/// Entries bounded away from 0 (|x| ≥ 0.2), to stay off the kink of relu.
pub(crate) fn off_zero(shape: &[usize], seed: u64) -> Tensor<f64> {
    randn(shape, seed).map(|v| if v >= 0.0 { v + 0.2 } else { v - 0.2 })
}

/// `Σ y ⊙ W` with a fixed random `W`: turns any output into a scalar whose seed gradient
/// `W` is not uniform, so the whole vector-Jacobian product is checked.
pub(crate) fn project<'t>(y: Var<'t, f64>, seed: u64) -> Var<'t, f64> {
    let w = y.tape().constant(randn(&y.shape(), 1000 + seed));
    y.mul(w).sum()
}

/// Gradcheck of `f` at `inputs` (central differences, step `H`): at least one entry compared
/// and `max_rel_err < TOL`.
pub(crate) fn check<F>(name: &str, f: F, inputs: &[Tensor<f64>])
where
    F: for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Var<'t, f64>,
{
    let r = gradcheck(f, inputs, H);
    println!("gradcheck {name}: {r}");
    assert!(r.checked > 0, "{name}: nothing checked");
    assert!(r.max_rel_err < TOL, "{name}: {r}");
}

/// Asserts `|a_i − b_i| ≤ tol` for every entry (and equal lengths).
pub(crate) fn close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol, "{a:?} vs {b:?}");
    }
}

/// A tensor of the given shape and data (panics on a length mismatch).
pub(crate) fn t(shape: &[usize], data: &[f64]) -> Tensor<f64> {
    Tensor::from_vec(shape, data.to_vec()).unwrap()
}
