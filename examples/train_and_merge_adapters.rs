//! Train GSOFT and LoRA adapters on a frozen 32 → 16 layer towards a rotated copy of it, then
//! merge both into plain dense layers with the same outputs.
//! Run: `cargo run --release --example train_and_merge_adapters`.
use gslab::nn::{optim::Adam, train::TrainConfig, train::fit};
use gslab::orthogonal::OrthoMap;
use gslab::orthogonal::adapters::{Adapter, DenseLinear, Lora, OrthoAdapter};
use gslab::rand::{SeedableRng, rngs::StdRng};
use gslab::{BlockRule, Params, Tensor};

/// 300 Adam steps on the mean squared error to `y`, then: loss before and after, and the largest
/// difference between the adapted and the merged layer.
fn train_and_merge<A: Adapter<f64>>(a: &mut A, x: &Tensor<f64>, y: &Tensor<f64>) -> [f64; 3] {
    let cfg = TrainConfig::new(300);
    let log = fit(
        a,
        &mut Adam::new(0.02),
        &cfg,
        |_, m: &A, t, v| {
            m.forward_with(t.constant(x.clone()), v)
                .mse(t.constant(y.clone()))
        },
        |_, _, _| {},
    );
    let l = log.expect("finite losses").losses;
    [l[0], l[299], a.apply(x).sub(&a.merge().apply(x)).max_abs()]
}

fn main() -> gslab::Result<()> {
    let r = &mut StdRng::seed_from_u64(2);
    let base = DenseLinear::new(Tensor::randn(&[16, 32], 0.3, r), None)?;
    let gsoft = |s| OrthoAdapter::gsoft(base.clone(), BlockRule::Size(4), OrthoMap::Cayley, s);
    let mut teacher = gsoft(false)?;
    teacher
        .params_mut()
        .into_iter()
        .for_each(|p| *p = Tensor::randn(p.shape(), 0.3, r));
    let x = Tensor::randn(&[128, 32], 1.0, r);
    let y = teacher.apply(&x); // a rotated version of the base layer
    let g = train_and_merge(&mut gsoft(true)?, &x, &y);
    let l = train_and_merge(&mut Lora::new(base.clone(), 4, 4.0, r)?, &x, &y);
    for (name, [first, last, diff]) in [("GSOFT", g), ("LoRA", l)] {
        println!("{name}: loss {first:.2e} -> {last:.2e}, merged vs adapted {diff:.1e}");
        assert!(diff < 1e-12 && last < 0.5 * first);
    }
    Ok(())
}
