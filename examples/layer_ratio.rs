use gslab::orthogonal::conv::{GsSoc, Mode, SocSettings};
use gslab::{Tape, Tensor};
use rand::{SeedableRng, rngs::StdRng};
use std::time::Instant;
fn main() {
    gslab::malloc::keep_freed_memory();
    let variants: [(&str, (usize, Option<usize>)); 5] = [
        ("soc", (1, None)),
        ("gs4", (4, None)),
        ("gs4_1", (4, Some(1))),
        ("gs4_2", (4, Some(2))),
        ("gs4_4", (4, Some(4))),
    ];
    for (c, side, batch) in [(64usize, 16usize, 4usize), (256, 8, 2)] {
        for t in [1usize, 2] {
            let pool = gslab::threads::pool(t, true).unwrap();
            pool.install(|| {
                let mut r = StdRng::seed_from_u64(3);
                let x = Tensor::<f32>::randn(&[batch, c, side, side], 1.0, &mut r);
                let mut layers: Vec<GsSoc<f32>> = variants
                    .iter()
                    .map(|(_, g)| {
                        GsSoc::new((c, c), (3, 1), *g, g.0 > 1, SocSettings::default(), &mut r)
                            .unwrap()
                    })
                    .collect();
                let mut best = vec![f64::MAX; 5];
                for round in 0..15 {
                    for (j, layer) in layers.iter_mut().enumerate() {
                        let t0 = Instant::now();
                        let tape = Tape::new();
                        let xv = tape.leaf(x.clone());
                        let (y, leaves) = layer.forward(&tape, xv, Mode::Train);
                        let g = tape.backward(y.sum());
                        let gs: Vec<Tensor<f32>> = leaves.iter().map(|&v| g.wrt(v)).collect();
                        std::hint::black_box((g.wrt(xv), gs));
                        if round > 0 {
                            best[j] = best[j].min(t0.elapsed().as_secs_f64() * 1e3);
                        }
                    }
                }
                let s: Vec<String> = variants
                    .iter()
                    .zip(&best)
                    .map(|((n, _), b)| format!("{n} {b:.2} ms ({:.2})", b / best[0]))
                    .collect();
                println!("c={c} {side}x{side} b={batch} t{t}: {}", s.join(", "));
            });
        }
    }
}
