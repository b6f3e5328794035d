//! End-to-end training: a 2→64→2 tanh MLP with plain full-batch SGD on seeded two spirals must
//! reach ≥ 95% training accuracy. One tape per step, parameters outside the tape.

use gslab::nn::data::{accuracy, two_spirals};
use gslab::nn::linear::Linear;
use gslab::{Params, Tape};
use std::time::Instant;

const STEPS: usize = 2000;
const LR: f64 = 0.5;

#[test]
fn mlp_learns_two_spirals() {
    let data = two_spirals::<f64>(100, 1.0, 0.02, 0).unwrap();
    let mut l1 = Linear::<f64>::seeded(2, 64, 1);
    let mut l2 = Linear::<f64>::seeded(64, 2, 2);
    let start = Instant::now();
    let mut first_loss = None;
    let mut loss = f64::NAN;
    for _ in 0..STEPS {
        let tape = Tape::new();
        let x = tape.constant(data.x.clone());
        let (h, v1) = l1.forward(&tape, x);
        let (logits, v2) = l2.forward(&tape, h.tanh());
        let l = logits.softmax_cross_entropy(&data.labels);
        loss = l.value().item();
        first_loss.get_or_insert(loss);
        let grads = tape.backward(l);
        for (p, v) in l1.params_mut().into_iter().zip(v1.as_array()) {
            p.axpy(-LR, &grads.wrt(v));
        }
        for (p, v) in l2.params_mut().into_iter().zip(v2.as_array()) {
            p.axpy(-LR, &grads.wrt(v));
        }
    }
    let tape = Tape::new();
    let x = tape.constant(data.x.clone());
    let (h, _) = l1.forward(&tape, x);
    let (logits, _) = l2.forward(&tape, h.tanh());
    let acc = accuracy(&logits.value(), &data.labels);
    println!(
        "spirals: {STEPS} SGD steps (lr {LR}) in {:.2?}: loss {:.4} -> {loss:.4}, train accuracy {:.1}%",
        start.elapsed(),
        first_loss.unwrap(),
        100.0 * acc
    );
    assert!(acc >= 0.95, "training accuracy {acc} < 0.95 (loss {loss})");
}
