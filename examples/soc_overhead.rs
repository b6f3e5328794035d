use gslab::orthogonal::conv::skew::skew_kernel_var;
use gslab::orthogonal::conv::spectral::{SpectralVectors, scaled_kernel};
use gslab::{Tape, Tensor};
use rand::{SeedableRng, rngs::StdRng};
use std::time::Instant;
fn main() {
    gslab::malloc::keep_freed_memory();
    let mut r = StdRng::seed_from_u64(1);
    for (c, g) in [(256usize, 1usize), (256, 4), (64, 1)] {
        let l = Tensor::<f32>::randn(&[c, c / g, 3, 3], 0.1, &mut r);
        let mut v = SpectralVectors::random(l.shape(), g, &mut r);
        let t = Instant::now();
        for _ in 0..10 {
            v.iterate(&l, g, 1);
        }
        let it = t.elapsed().as_secs_f64() / 10.0;
        let t = Instant::now();
        for _ in 0..10 {
            std::hint::black_box(scaled_kernel(&l, g, &v, (0.7, 3.0)));
        }
        let sc = t.elapsed().as_secs_f64() / 10.0;
        let t = Instant::now();
        for _ in 0..10 {
            let tape = Tape::new();
            let m = tape.leaf(l.clone());
            let s = skew_kernel_var(m, g);
            let gr = tape.backward_with(s, l.clone());
            std::hint::black_box(gr.wrt(m));
        }
        let sk = t.elapsed().as_secs_f64() / 10.0;
        println!(
            "c={c} g={g}: iterate {:.2} ms, scaled_kernel {:.2} ms, skew fwd+bwd {:.2} ms",
            it * 1e3,
            sc * 1e3,
            sk * 1e3
        );
    }
}
