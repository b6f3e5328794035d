use gslab::kernels::chain::*;
use gslab::structured::layout::*;
use gslab::*;
use rand::{SeedableRng, rngs::StdRng};
use std::sync::Arc;

fn random_layout(rng: &mut StdRng) -> (ChainLayout, Vec<Tensor<f64>>) {
    // 3 factors: 4 blocks 3x2 (8->12), 3 blocks 2x4 (12->6), 2 blocks 5x3 (6->10)
    let f = vec![
        BlockShape::new(4, 3, 2),
        BlockShape::new(3, 2, 4),
        BlockShape::new(2, 5, 3),
    ];
    let perms = vec![
        Perm::random(8, rng),
        Perm::random(12, rng),
        Perm::random(6, rng),
        Perm::random(10, rng),
    ];
    let l = ChainLayout::new(f.clone(), perms).unwrap();
    let b = f
        .iter()
        .map(|s| Tensor::randn(&s.tensor_shape(), 1.0, rng))
        .collect();
    (l, b)
}

#[test]
fn quick() {
    let mut rng = StdRng::seed_from_u64(1);
    let (l, b) = random_layout(&mut rng);
    let x = Tensor::<f64>::randn(&[37, 8], 1.0, &mut rng);
    let y = chain_forward(&l, &b, &x, faer::Par::rayon(0));
    let mut err: f64 = 0.0;
    for s in 0..37 {
        let r = reference_apply(&l, &b, &x.data()[s * 8..(s + 1) * 8]);
        for o in 0..10 {
            err = err.max((r[o] - y.data()[s * 10 + o]).abs());
        }
    }
    println!("fwd err {err}");
    assert!(err < 1e-12);
    let l = Arc::new(l);
    let rep = gradcheck(
        |_t, v| {
            let y = gslab::autodiff::ops::chain::chain_apply(v[0], &v[1..], &l);
            let yv = y.value();
            let w = Tensor::from_fn(yv.shape(), |i| (i as f64 * 0.37).sin());
            let c = y.tape().constant(w);
            let prod = y
                .tape()
                .push_op(Tensor::scalar(yv.mul(&c.value()).sum()), &[y], {
                    let wv = c.value();
                    move |_g, _| vec![Some((*wv).clone())]
                });
            prod
        },
        &[x.clone(), b[0].clone(), b[1].clone(), b[2].clone()],
        1e-6,
    );
    println!("{rep}");
    assert!(rep.max_rel_err < 1e-6);
}
