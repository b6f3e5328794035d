//! Fit GSOFT's orthogonal `Q = Pᵀ L P R` (Cayley blocks) to a target of the same class and check
//! that every step stays exactly orthogonal. Run: `cargo run --release --example fit_orthogonal_gs`.
use gslab::nn::{optim::Adam, train::TrainConfig, train::fit};
use gslab::orthogonal::{OrthoGs, OrthoLayer, OrthoMap, orthogonality_error};
use gslab::{Blocks, Params, Tensor};

fn main() -> gslab::Result<()> {
    let blocks = Blocks::size(64, 8)?; // 8 blocks of 8×8 in L and in R
    let mut target = OrthoGs::<f64>::new(blocks, OrthoMap::Cayley)?;
    let mut rng = gslab::rand::rngs::StdRng::seed_from_u64(0);
    for p in target.params_mut() {
        *p = Tensor::randn(p.shape(), 0.5, &mut rng);
    }
    let (eye, want) = (Tensor::eye(64), target.matrix().transpose()); // I·Qᵀ = Qᵀ
    let mut q = OrthoGs::<f64>::new(blocks, OrthoMap::Cayley)?;
    let mut worst = 0.0f64;
    let log = fit(
        &mut q,
        &mut Adam::new(0.1),
        &TrainConfig::new(400),
        |_, m: &OrthoGs<f64>, tape, leaves| {
            m.forward_with(tape.constant(eye.clone()), leaves)
                .mse(tape.constant(want.clone()))
        },
        |_, _, m| worst = worst.max(orthogonality_error(&m.matrix())),
    )?;
    let (first, last) = (log.losses[0], log.losses[log.losses.len() - 1]);
    println!("loss {first:.3e} -> {last:.3e}; worst ‖QᵀQ − I‖ over 400 steps: {worst:.1e}");
    assert!(last < 1e-3 * first && worst < 10.0 * 64.0 * f64::EPSILON);
    Ok(())
}

use gslab::rand::SeedableRng;
