use faer::Par;
use gslab::Tensor;
use gslab::kernels::conv::exp_conv_forward;
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
    for (c, side, batch, g) in [
        (256usize, 8usize, 2usize, 4usize),
        (256, 8, 8, 4),
        (256, 8, 2, 1),
        (256, 8, 8, 1),
    ] {
        let x = Tensor::<f32>::randn(&[batch, c, side, side], 1.0, &mut r);
        let l = Tensor::<f32>::randn(&[c, c / g, 3, 3], 0.01, &mut r);
        for (t, pin) in [(1, false), (2, false), (2, true)] {
            let pool = gslab::threads::pool(t, pin).unwrap();
            let ms = pool.install(|| {
                best(
                    || {
                        std::hint::black_box(exp_conv_forward(&x, &l, g, 5, Par::rayon(0)));
                    },
                    20,
                )
            });
            println!("c={c} {side}x{side} b={batch} g={g} t{t} pin={pin}: {ms:.2} ms");
        }
    }
}
