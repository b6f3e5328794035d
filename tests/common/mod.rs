//! Helpers shared by the integration tests (each test binary includes this module).
#![allow(dead_code)]

use gslab::{Real, Tensor, Var};
use rand::{SeedableRng, rngs::StdRng};

/// `k` blocks of size `b` (`n = k·b`).
pub fn blocks_kb(k: usize, b: usize) -> gslab::Blocks {
    gslab::Blocks::count(k * b, k).unwrap()
}

/// A seeded generator.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// i.i.d. `N(0, std²)` entries, drawn in f64 from `seed` and rounded to `T` (so f32 and f64
/// tensors of one seed hold the same numbers up to rounding).
pub fn randn<T: Real>(shape: &[usize], std: f64, seed: u64) -> Tensor<T> {
    Tensor::<f64>::randn(shape, std, &mut rng(seed)).cast()
}

/// `max |a − b|` in f64.
pub fn max_abs_diff<T: Real>(a: &Tensor<T>, b: &Tensor<T>) -> f64 {
    a.sub(b).max_abs().to_f64()
}

/// `Σ w ⊙ v`: a scalar probe, so that a gradient check sees every output entry with its own
/// weight (a plain sum would hide errors that cancel across entries).
pub fn probe<'t>(v: Var<'t, f64>, w: &Tensor<f64>) -> Var<'t, f64> {
    let w = w.clone();
    let val = v.value().mul(&w).sum();
    v.tape().push_op(Tensor::scalar(val), &[v], move |g, _| {
        vec![Some(w.scale(g.item()))]
    })
}
