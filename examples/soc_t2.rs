use faer::Par;
use gslab::Tensor;
use gslab::kernels::conv::{ConvGeom, exp_conv_backward, exp_conv_forward_saved};
use rand::{SeedableRng, rngs::StdRng};
use std::time::Instant;
fn best<F: FnMut()>(mut f: F, n: usize) -> f64 {
    let mut b = f64::MAX;
    for _ in 0..n {
        let t = Instant::now();
        f();
        b = b.min(t.elapsed().as_secs_f64());
    }
    b * 1e3
}
fn main() {
    gslab::malloc::keep_freed_memory();
    let mut r = StdRng::seed_from_u64(1);
    for (c, side, batch) in [(64usize, 16usize, 4usize), (256, 8, 2)] {
        for g in [1usize, 4] {
            let x = Tensor::<f32>::randn(&[batch, c, side, side], 1.0, &mut r);
            let l = Tensor::<f32>::randn(&[c, c / g, 3, 3], 0.01, &mut r);
            let fl = ConvGeom::new(c, c, side, side, 3, g).unwrap().flops(batch) as f64 * 5.0;
            for t in [1, 2] {
                let pool = gslab::threads::pool(t, true).unwrap();
                pool.install(|| {
                let fwd = best(|| { std::hint::black_box(exp_conv_forward_saved(&x, &l, g, 5, Par::rayon(0))); }, 20);
                let (_, saved) = exp_conv_forward_saved(&x, &l, g, 5, Par::rayon(0));
                let bwd = best(|| { std::hint::black_box(exp_conv_backward((&x, &l, g, 5), &saved, &x, Par::rayon(0))); }, 20);
                println!("c={c} side={side} b={batch} g={g} t{t}: exp fwd {fwd:.2} ms ({:.0} GF/s), bwd {bwd:.2} ms ({:.0} GF/s)", fl / fwd / 1e6, 2.0 * fl / bwd / 1e6);
            });
            }
        }
    }
}
