//! A seeded fit of an orthogonal GS layer to a target of its own class.

use crate::layers::randomize;
use gslab::nn::optim::Adam;
use gslab::nn::schedule::Schedule;
use gslab::nn::train::{TrainConfig, fit};
use gslab::orthogonal::{OrthoGs, OrthoLayer, OrthoMap, orthogonality_error};
use gslab::{Blocks, Tensor};

/// OrthoGs (Cayley, n = 16, r = 4) fits a random orthogonal GS target drawn from the same class
/// (random free parameters, std 0.5) to ‖Q − T‖²_F/n² < 1e-8 in f64.
#[test]
fn ortho_gs_fits_random_orthogonal_gs_target() {
    let (n, r) = (16, 4);
    let blocks = Blocks::count(n, r).unwrap();
    let mut target = OrthoGs::<f64>::new(blocks, OrthoMap::Cayley).unwrap();
    randomize(&mut target, 0.5, 2024);
    let t = target.matrix();
    assert!(orthogonality_error(&t) < 1e-14);
    let eye = Tensor::<f64>::eye(n);
    let tt = t.transpose(); // forward(I) = I·Qᵀ = Qᵀ
    let mut model = OrthoGs::<f64>::new(blocks, OrthoMap::Cayley).unwrap();
    // η = 0.05, cosine decay to 1e-4 = 0.002·η over the 1500 steps.
    let mut opt = Adam::new(0.05);
    let cfg = TrainConfig::new(1500).with_schedule(Schedule::cosine(0.002, 1500, 0));
    let log = fit(
        &mut model,
        &mut opt,
        &cfg,
        |_, m: &OrthoGs<f64>, tape, leaves| {
            m.forward_with(tape.constant(eye.clone()), leaves)
                .mse(tape.constant(tt.clone()))
        },
        |_, _, _| {},
    )
    .unwrap();
    let final_loss = model.matrix().sub(&t).map(|v| v * v).mean();
    eprintln!(
        "fit: loss {:.3e} -> {:.3e} (final {final_loss:.3e})",
        log.losses[0],
        log.losses.last().unwrap()
    );
    assert!(final_loss < 1e-8, "final loss {final_loss:e}");
    assert!(orthogonality_error(&model.matrix()) <= 10.0 * n as f64 * f64::EPSILON);
}
