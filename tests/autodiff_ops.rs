//! Every autodiff op: a gradcheck in f64 (central differences, max_rel_err < 1e-6), forward
//! values against hand-worked numbers, f32 vs f64 agreement, and the panics on mismatched shapes.

use gslab::{Perm, Real, Tape, Tensor, Var, gradcheck};
use rand::{SeedableRng, rngs::StdRng};

const H: f64 = 1e-6;
const TOL: f64 = 1e-6;

fn randn(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::randn(shape, 1.0, &mut StdRng::seed_from_u64(seed))
}

fn uniform(shape: &[usize], lo: f64, hi: f64, seed: u64) -> Tensor<f64> {
    Tensor::rand_uniform(shape, lo, hi, &mut StdRng::seed_from_u64(seed))
}

/// Entries bounded away from 0 (|x| ≥ 0.2), to stay off the kink of relu.
fn off_zero(shape: &[usize], seed: u64) -> Tensor<f64> {
    randn(shape, seed).map(|v| if v >= 0.0 { v + 0.2 } else { v - 0.2 })
}

/// `Σ y ⊙ W` with a fixed random `W`: turns any output into a scalar whose seed gradient
/// `W` is not uniform, so the whole vector-Jacobian product is checked.
fn project<'t>(y: Var<'t, f64>, seed: u64) -> Var<'t, f64> {
    let w = y.tape().constant(randn(&y.shape(), 1000 + seed));
    y.mul(w).sum()
}

fn check<F>(name: &str, f: F, inputs: &[Tensor<f64>])
where
    F: for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Var<'t, f64>,
{
    let r = gradcheck(f, inputs, H);
    println!("gradcheck {name}: {r}");
    assert!(r.checked > 0, "{name}: nothing checked");
    assert!(r.max_rel_err < TOL, "{name}: {r}");
}

fn close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol, "{a:?} vs {b:?}");
    }
}

fn t(shape: &[usize], data: &[f64]) -> Tensor<f64> {
    Tensor::from_vec(shape, data.to_vec()).unwrap()
}

// ---------------------------------------------------------------- gradchecks: elementwise

#[test]
fn grad_add() {
    check(
        "add",
        |_, v| project(v[0].add(v[1]), 1),
        &[randn(&[3, 4], 1), randn(&[3, 4], 2)],
    );
}

#[test]
fn grad_sub() {
    check(
        "sub",
        |_, v| project(v[0].sub(v[1]), 2),
        &[randn(&[3, 4], 3), randn(&[3, 4], 4)],
    );
}

#[test]
fn grad_mul() {
    check(
        "mul",
        |_, v| project(v[0].mul(v[1]), 3),
        &[randn(&[3, 4], 5), randn(&[3, 4], 6)],
    );
}

#[test]
fn grad_div() {
    let y = uniform(&[3, 4], 0.5, 2.0, 8);
    check(
        "div",
        |_, v| project(v[0].div(v[1]), 4),
        &[randn(&[3, 4], 7), y],
    );
}

#[test]
fn grad_neg() {
    check("neg", |_, v| project(v[0].neg(), 5), &[randn(&[2, 3], 9)]);
}

#[test]
fn grad_scalar_ops() {
    let x = [randn(&[2, 3], 10)];
    check("add_scalar", |_, v| project(v[0].add_scalar(0.7), 6), &x);
    check("sub_scalar", |_, v| project(v[0].sub_scalar(0.7), 7), &x);
    check("mul_scalar", |_, v| project(v[0].mul_scalar(-1.3), 8), &x);
    check("div_scalar", |_, v| project(v[0].div_scalar(2.5), 9), &x);
}

#[test]
fn grad_powf() {
    let x = uniform(&[2, 3], 0.5, 2.0, 11);
    check("powf", |_, v| project(v[0].powf(1.7), 10), &[x]);
}

#[test]
fn grad_square() {
    check(
        "square",
        |_, v| project(v[0].square(), 11),
        &[randn(&[2, 3], 12)],
    );
}

#[test]
fn grad_exp() {
    check("exp", |_, v| project(v[0].exp(), 12), &[randn(&[2, 3], 13)]);
}

#[test]
fn grad_log() {
    let x = uniform(&[2, 3], 0.3, 3.0, 14);
    check("log", |_, v| project(v[0].log(), 13), &[x]);
}

#[test]
fn grad_std_operators() {
    let ins = [
        randn(&[2, 3], 15),
        randn(&[2, 3], 16),
        randn(&[2, 3], 17),
        uniform(&[2, 3], 0.5, 2.0, 18),
    ];
    check(
        "operators",
        |_, v| {
            project(
                -(v[0] + v[1] * v[2] - v[0] / v[3]) * 2.0 + 1.0 - 0.5 / 4.0,
                14,
            )
        },
        &ins,
    );
}

// ---------------------------------------------------------------- broadcast

#[test]
fn grad_add_row() {
    check(
        "add_row",
        |_, v| project(v[0].add_row(v[1]), 15),
        &[randn(&[4, 3], 19), randn(&[3], 20)],
    );
}

#[test]
fn grad_mul_row() {
    check(
        "mul_row",
        |_, v| project(v[0].mul_row(v[1]), 16),
        &[randn(&[4, 3], 21), randn(&[3], 22)],
    );
}

// ---------------------------------------------------------------- matmul

#[test]
fn grad_matmul() {
    check(
        "matmul",
        |_, v| project(v[0].matmul(v[1]), 17),
        &[randn(&[3, 4], 23), randn(&[4, 2], 24)],
    );
}

#[test]
fn grad_matmul_t_all_flags() {
    for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
        let a = if ta {
            randn(&[4, 3], 25)
        } else {
            randn(&[3, 4], 25)
        };
        let b = if tb {
            randn(&[2, 4], 26)
        } else {
            randn(&[4, 2], 26)
        };
        let name = format!("matmul_t({ta},{tb})");
        check(
            &name,
            move |_, v| project(v[0].matmul_t(ta, v[1], tb), 18),
            &[a, b],
        );
    }
}

#[test]
fn grad_bmm() {
    check(
        "bmm",
        |_, v| project(v[0].bmm(v[1]), 19),
        &[randn(&[2, 3, 4], 27), randn(&[2, 4, 2], 28)],
    );
}

#[test]
fn grad_bmm_t_all_flags() {
    for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
        let a = if ta {
            randn(&[2, 4, 3], 29)
        } else {
            randn(&[2, 3, 4], 29)
        };
        let b = if tb {
            randn(&[2, 2, 4], 30)
        } else {
            randn(&[2, 4, 2], 30)
        };
        let name = format!("bmm_t({ta},{tb})");
        check(
            &name,
            move |_, v| project(v[0].bmm_t(ta, v[1], tb), 20),
            &[a, b],
        );
    }
}

// ---------------------------------------------------------------- shape

#[test]
fn grad_transpose() {
    check(
        "transpose 2-D",
        |_, v| project(v[0].transpose(), 21),
        &[randn(&[3, 4], 31)],
    );
    check(
        "transpose 3-D",
        |_, v| project(v[0].transpose(), 22),
        &[randn(&[2, 3, 4], 32)],
    );
}

#[test]
fn grad_reshape() {
    check(
        "reshape",
        |_, v| project(v[0].reshape(&[2, 6]), 23),
        &[randn(&[3, 4], 33)],
    );
}

#[test]
fn grad_gather_last() {
    // repeated (1 twice) and missing (3) indices
    let idx = [2, 1, 0, 1, 4];
    check(
        "gather_last",
        move |_, v| project(v[0].gather_last(&idx), 24),
        &[randn(&[3, 5], 34)],
    );
}

#[test]
fn grad_permute_last() {
    let perm = Perm::shuffle_gather(2, 6).unwrap();
    check(
        "permute_last",
        move |_, v| project(v[0].permute_last(&perm), 30),
        &[randn(&[3, 6], 55)],
    );
}

#[test]
fn forward_permute_last_matches_perm_apply_rows() {
    let perm = Perm::random(7, &mut StdRng::seed_from_u64(56));
    let x = randn(&[3, 7], 57);
    let tape = Tape::<f64>::new();
    let y = tape.constant(x.clone()).permute_last(&perm);
    assert_eq!(*y.value(), perm.apply_rows(&x));
}

#[test]
#[should_panic(expected = "permute_last: shape mismatch [2, 5] vs permutation of length 6")]
fn permute_last_mismatch_panics() {
    let tape = Tape::<f64>::new();
    let _ = tape
        .leaf(Tensor::zeros(&[2, 5]))
        .permute_last(&Perm::identity(6));
}

// ---------------------------------------------------------------- reduce

#[test]
fn grad_sum_mean() {
    check(
        "sum",
        |_, v| v[0].sum().mul_scalar(1.5),
        &[randn(&[3, 4], 35)],
    );
    check(
        "mean",
        |_, v| v[0].mean().mul_scalar(1.5),
        &[randn(&[3, 4], 36)],
    );
}

#[test]
fn grad_sum_mean_axis() {
    for axis in 0..2 {
        check(
            "sum_axis",
            move |_, v| project(v[0].sum_axis(axis), 25),
            &[randn(&[3, 4], 37)],
        );
        check(
            "mean_axis",
            move |_, v| project(v[0].mean_axis(axis), 26),
            &[randn(&[3, 4], 38)],
        );
    }
}

// ---------------------------------------------------------------- activations

#[test]
fn grad_relu() {
    check(
        "relu",
        |_, v| project(v[0].relu(), 27),
        &[off_zero(&[3, 4], 39)],
    );
}

#[test]
fn grad_tanh() {
    check(
        "tanh",
        |_, v| project(v[0].tanh(), 28),
        &[randn(&[3, 4], 40)],
    );
}

#[test]
fn grad_sigmoid() {
    let x = randn(&[3, 4], 41).scale(3.0); // both branches of the stable formula
    check("sigmoid", |_, v| project(v[0].sigmoid(), 29), &[x]);
}

// ---------------------------------------------------------------- losses

#[test]
fn grad_softmax_cross_entropy() {
    let labels = [2, 0, 1, 2];
    let z = randn(&[4, 3], 42).scale(2.0);
    check(
        "softmax_cross_entropy",
        move |_, v| v[0].softmax_cross_entropy(&labels),
        &[z],
    );
}

#[test]
fn grad_mse() {
    check(
        "mse",
        |_, v| v[0].mse(v[1]),
        &[randn(&[3, 4], 43), randn(&[3, 4], 44)],
    );
}

#[test]
fn grad_composite_mlp() {
    // x·W1ᵀ + b1 → tanh → ·W2ᵀ + b2 → cross-entropy: the chain the training test relies on.
    let labels = [0, 1, 1];
    let x = randn(&[3, 2], 45);
    check(
        "mlp",
        move |tape, v| {
            let xc = tape.constant(x.clone());
            let h = xc.matmul_t(false, v[0], true).add_row(v[1]).tanh();
            h.matmul_t(false, v[2], true)
                .add_row(v[3])
                .softmax_cross_entropy(&labels)
        },
        &[
            randn(&[5, 2], 46),
            randn(&[5], 47),
            randn(&[2, 5], 48),
            randn(&[2], 49),
        ],
    );
}

// ---------------------------------------------------------------- forward values (hand-worked)

#[test]
fn forward_matmul_and_variants() {
    let tape = Tape::<f64>::new();
    let a = tape.constant(t(&[2, 2], &[1.0, 2.0, 3.0, 4.0]));
    let b = tape.constant(t(&[2, 2], &[5.0, 6.0, 7.0, 8.0]));
    assert_eq!(a.matmul(b).value().data(), &[19.0, 22.0, 43.0, 50.0]);
    // A·Bᵀ = [[1·5+2·6, 1·7+2·8], [3·5+4·6, 3·7+4·8]]
    assert_eq!(
        a.matmul_t(false, b, true).value().data(),
        &[17.0, 23.0, 39.0, 53.0]
    );
    // Aᵀ·B = [[1·5+3·7, 1·6+3·8], [2·5+4·7, 2·6+4·8]]
    assert_eq!(
        a.matmul_t(true, b, false).value().data(),
        &[26.0, 30.0, 38.0, 44.0]
    );
    let a3 = tape.constant(t(&[2, 1, 2], &[1.0, 2.0, 3.0, 4.0]));
    let b3 = tape.constant(t(&[2, 2, 1], &[5.0, 6.0, 7.0, 8.0]));
    // [1,2]·[5,6]ᵀ = 17, [3,4]·[7,8]ᵀ = 53
    assert_eq!(a3.bmm(b3).value().data(), &[17.0, 53.0]);
}

#[test]
fn forward_reductions_and_broadcast() {
    let tape = Tape::<f64>::new();
    let x = tape.constant(t(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    assert_eq!(x.sum().value().item(), 21.0);
    assert_eq!(x.mean().value().item(), 3.5);
    assert_eq!(x.sum().shape(), Vec::<usize>::new());
    assert_eq!(x.sum_axis(0).value().data(), &[5.0, 7.0, 9.0]);
    assert_eq!(x.sum_axis(1).value().data(), &[6.0, 15.0]);
    assert_eq!(x.mean_axis(0).value().data(), &[2.5, 3.5, 4.5]);
    assert_eq!(x.mean_axis(1).value().data(), &[2.0, 5.0]);
    let r = tape.constant(t(&[3], &[10.0, 20.0, 30.0]));
    assert_eq!(
        x.add_row(r).value().data(),
        &[11.0, 22.0, 33.0, 14.0, 25.0, 36.0]
    );
    assert_eq!(
        x.mul_row(r).value().data(),
        &[10.0, 40.0, 90.0, 40.0, 100.0, 180.0]
    );
    assert_eq!(
        x.transpose().value().data(),
        &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
    );
    assert_eq!(x.transpose().shape(), vec![3, 2]);
}

#[test]
fn forward_gather_last_and_scatter_add_backward() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(t(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    let y = x.gather_last(&[2, 0, 2, 2]);
    assert_eq!(y.shape(), vec![2, 4]);
    assert_eq!(y.value().data(), &[3.0, 1.0, 3.0, 3.0, 6.0, 4.0, 6.0, 6.0]);
    let grads = tape.backward(y.sum());
    // index 0 gathered once, 1 never, 2 three times
    assert_eq!(
        grads.get(x).unwrap().data(),
        &[1.0, 0.0, 3.0, 1.0, 0.0, 3.0]
    );
}

#[test]
fn forward_activations() {
    let tape = Tape::<f64>::new();
    let ln2 = 2f64.ln();
    let ln3 = 3f64.ln();
    let x = tape.constant(t(&[5], &[-1.5, 0.0, ln2, ln3, -1000.0]));
    assert_eq!(x.relu().value().data(), &[0.0, 0.0, ln2, ln3, 0.0]);
    // NaN is propagated, not replaced by 0 (a NaN state must reach the loss).
    let nan = tape.constant(t(&[3], &[f64::NAN, -1.0, 2.0]));
    let r = nan.relu().value();
    assert!(r.data()[0].is_nan());
    assert_eq!(&r.data()[1..], &[0.0, 2.0]);
    // tanh(ln 2) = (2 − 1/2)/(2 + 1/2) = 0.6; tanh(ln 3) = (3 − 1/3)/(3 + 1/3) = 0.8
    let th = x.tanh().value();
    close(&th.data()[1..4], &[0.0, 0.6, 0.8], 1e-15);
    // σ(0) = 1/2, σ(ln 2) = 2/3, σ(ln 3) = 3/4, σ(−1000) = 0 without overflow
    let sg = x.sigmoid().value();
    close(&sg.data()[1..], &[0.5, 2.0 / 3.0, 0.75, 0.0], 1e-15);
    // e^(ln 3) = 3, ln(e^x) = x
    close(&[x.exp().value().data()[3]], &[3.0], 1e-15);
    let p = tape.constant(t(&[3], &[1.0, 4.0, 0.25]));
    close(p.log().value().data(), &[0.0, 2.0 * ln2, -2.0 * ln2], 1e-15);
    close(p.powf(0.5).value().data(), &[1.0, 2.0, 0.5], 1e-15);
    assert_eq!(p.square().value().data(), &[1.0, 16.0, 0.0625]);
}

#[test]
fn forward_losses() {
    let tape = Tape::<f64>::new();
    // row 0: softmax(0, ln 3) = (1/4, 3/4), label 0 → ln 4
    // row 1: logits (1000, 1000): softmax (1/2, 1/2), label 1 → ln 2 (stable at huge logits)
    let z = tape.leaf(t(&[2, 2], &[0.0, 3f64.ln(), 1000.0, 1000.0]));
    let loss = z.softmax_cross_entropy(&[0, 1]);
    close(&[loss.value().item()], &[1.5 * 2f64.ln()], 1e-13);
    // dz = (softmax − onehot)/b = [(1/4 − 1)/2, (3/4)/2, (1/2)/2, (1/2 − 1)/2]
    let g = tape.backward(loss);
    close(
        g.get(z).unwrap().data(),
        &[-0.375, 0.375, 0.25, -0.25],
        1e-15,
    );

    let x = tape.leaf(t(&[3], &[1.0, 2.0, 3.0]));
    let y = tape.constant(t(&[3], &[1.0, 0.0, 0.0]));
    let m = x.mse(y);
    close(&[m.value().item()], &[13.0 / 3.0], 1e-15); // (0 + 4 + 9)/3
    let g = tape.backward(m);
    close(g.get(x).unwrap().data(), &[0.0, 4.0 / 3.0, 2.0], 1e-15); // 2(x − t)/3
}

// ---------------------------------------------------------------- f32 vs f64

/// One MLP step: loss and the gradient of the first weight.
fn mlp_step<T: Real>(xs: &Tensor<f64>, ws: &[Tensor<f64>]) -> (f64, Vec<f64>) {
    let tape = Tape::<T>::new();
    let x = tape.constant(xs.cast());
    let v: Vec<_> = ws.iter().map(|w| tape.leaf(w.cast())).collect();
    let h = x.matmul_t(false, v[0], true).add_row(v[1]).sigmoid();
    let h = h.mul_row(v[2]).relu().exp().log();
    let out = h.matmul_t(false, v[3], true);
    let loss = out
        .softmax_cross_entropy(&[1, 0, 2, 1])
        .add(out.square().mean());
    let g = tape.backward(loss);
    let gw = g
        .get(v[0])
        .unwrap()
        .data()
        .iter()
        .map(|&a| Real::to_f64(a))
        .collect();
    (Real::to_f64(loss.value().item()), gw)
}

#[test]
fn f32_forward_and_backward_agree_with_f64() {
    let x = randn(&[4, 3], 50);
    let ws = [
        randn(&[6, 3], 51),
        randn(&[6], 52),
        randn(&[6], 53),
        randn(&[3, 6], 54),
    ];
    let (l64, g64) = mlp_step::<f64>(&x, &ws);
    let (l32, g32) = mlp_step::<f32>(&x, &ws);
    println!("loss f64 {l64:.10}, f32 {l32:.10}");
    assert!(
        (l64 - l32).abs() <= 1e-5 * l64.abs().max(1.0),
        "{l64} vs {l32}"
    );
    let scale = g64.iter().fold(1f64, |m, v| m.max(v.abs()));
    for (a, b) in g64.iter().zip(&g32) {
        assert!((a - b).abs() <= 1e-5 * scale, "gradient {a} vs {b}");
    }
}

// ---------------------------------------------------------------- errors, panics, constants

#[test]
fn from_vec_wrong_length_is_an_error_naming_both_sizes() {
    let err = Tensor::<f64>::from_vec(&[2, 3], vec![0.0; 5]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("needs 6") && msg.contains("5 were given"),
        "{msg}"
    );
}

#[test]
#[should_panic(expected = "add: shape mismatch [2, 3] vs [3, 2]")]
fn add_mismatch_panics() {
    let tape = Tape::<f64>::new();
    let _ = tape.leaf(Tensor::zeros(&[2, 3])) + tape.leaf(Tensor::zeros(&[3, 2]));
}

#[test]
#[should_panic(expected = "mul: shape mismatch [2] vs [3]")]
fn mul_mismatch_panics() {
    let tape = Tape::<f64>::new();
    let _ = tape.leaf(Tensor::zeros(&[2])) * tape.leaf(Tensor::zeros(&[3]));
}

#[test]
#[should_panic(expected = "matmul: shape mismatch [2, 3] vs [2, 3]")]
fn matmul_mismatch_panics() {
    let tape = Tape::<f64>::new();
    let a = tape.leaf(Tensor::zeros(&[2, 3]));
    let _ = a.matmul(a);
}

#[test]
#[should_panic(expected = "bmm: shape mismatch [2, 3, 4] vs [3, 4, 2]")]
fn bmm_batch_mismatch_panics() {
    let tape = Tape::<f64>::new();
    let _ = tape
        .leaf(Tensor::zeros(&[2, 3, 4]))
        .bmm(tape.leaf(Tensor::zeros(&[3, 4, 2])));
}

#[test]
#[should_panic(expected = "add_row: shape mismatch [4, 3] vs [4]")]
fn add_row_mismatch_panics() {
    let tape = Tape::<f64>::new();
    let _ = tape
        .leaf(Tensor::zeros(&[4, 3]))
        .add_row(tape.leaf(Tensor::zeros(&[4])));
}

#[test]
#[should_panic(expected = "reshape: shape mismatch [2, 3] vs [4]")]
fn reshape_mismatch_panics() {
    let tape = Tape::<f64>::new();
    let _ = tape.leaf(Tensor::zeros(&[2, 3])).reshape(&[4]);
}

#[test]
#[should_panic(expected = "gather_last: index 3 out of range")]
fn gather_out_of_range_panics() {
    let tape = Tape::<f64>::new();
    let _ = tape.leaf(Tensor::zeros(&[2, 3])).gather_last(&[0, 3]);
}

#[test]
#[should_panic(expected = "softmax_cross_entropy: shape mismatch [2, 3] vs labels of length 3")]
fn cross_entropy_label_count_panics() {
    let tape = Tape::<f64>::new();
    let _ = tape
        .leaf(Tensor::zeros(&[2, 3]))
        .softmax_cross_entropy(&[0, 1, 2]);
}

#[test]
#[should_panic(expected = "mse: shape mismatch [3] vs [1, 3]")]
fn mse_mismatch_panics() {
    let tape = Tape::<f64>::new();
    let _ = tape
        .leaf(Tensor::zeros(&[3]))
        .mse(tape.constant(Tensor::zeros(&[1, 3])));
}

#[test]
fn constant_gets_no_gradient() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(t(&[2], &[1.0, 2.0]));
    let c = tape.constant(t(&[2], &[3.0, 4.0]));
    let cc = c.exp().mul(c); // only constants upstream: a constant, no backward rule kept
    assert!(!cc.requires_grad());
    let loss = x.mul(c).add(cc).sum();
    let g = tape.backward(loss);
    assert!(g.get(c).is_none());
    assert_eq!(g.get(x).unwrap().data(), &[3.0, 4.0]);
}
