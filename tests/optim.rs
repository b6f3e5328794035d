//! Optimizers, clipping, schedules and the training loop: hand-worked updates, convergence on
//! quadratics, and the non-finite-loss error.

use gslab::Params;
use gslab::nn::optim::{Adam, Optimizer, Sgd, clip_grad_norm, global_norm};
use gslab::nn::schedule::Schedule;
use gslab::nn::train::{TrainConfig, fit};
use gslab::{Error, Tape, Tensor, Var};

fn t1(v: &[f64]) -> Tensor<f64> {
    Tensor::from_vec(&[v.len()], v.to_vec()).unwrap()
}

/// First Adam step: m̂ = g and v̂ = g², so p ← p − η·g/(|g| + ε).
#[test]
fn adam_first_step_is_signed_learning_rate() {
    let mut p = t1(&[1.0, -2.0, 0.5]);
    let g = t1(&[2.0, -0.5, 0.0]);
    let mut opt = Adam::new(0.1);
    opt.step(&mut [&mut p], std::slice::from_ref(&g));
    let want = [
        1.0 - 0.1 * 2.0 / (2.0 + 1e-8),
        -2.0 + 0.1 * 0.5 / (0.5 + 1e-8),
        0.5,
    ];
    for (a, b) in p.data().iter().zip(want) {
        assert!((a - b).abs() < 1e-15, "{a} vs {b}");
    }
}

/// Second Adam step by hand: m = 0.09 g₁ + 0.1 g₂, v = 0.000999 g₁² + 0.001 g₂²,
/// bias corrections 1 − 0.9² = 0.19 and 1 − 0.999² = 0.001999.
#[test]
fn adam_second_step_by_hand() {
    let mut p = t1(&[0.0]);
    let mut opt = Adam::new(0.01);
    opt.step(&mut [&mut p], &[t1(&[1.0])]);
    let p1 = p.data()[0];
    opt.step(&mut [&mut p], &[t1(&[3.0])]);
    let m = 0.09 * 1.0 + 0.1 * 3.0;
    let v: f64 = 0.000999 * 1.0 + 0.001 * 9.0;
    let want = p1 - 0.01 * (m / 0.19) / ((v / 0.001999).sqrt() + 1e-8);
    assert!(
        (p.data()[0] - want).abs() < 1e-15,
        "{} vs {want}",
        p.data()[0]
    );
    assert_eq!(opt.steps(), 2);
}

/// AdamW decays decoupled: with a zero gradient, p ← p(1 − ηλ) exactly and the Adam part is 0.
/// Adam's L2 decay instead feeds λp into the moments: the first step moves by η·sign(p).
#[test]
fn adamw_decouples_weight_decay() {
    let mut p = t1(&[2.0, -4.0]);
    let mut opt = Adam::adamw(0.1, 0.5);
    opt.step(&mut [&mut p], &[t1(&[0.0, 0.0])]);
    assert_eq!(p.data(), &[2.0 * (1.0 - 0.05), -4.0 * (1.0 - 0.05)]);
    let mut q = t1(&[2.0, -4.0]);
    let mut adam = Adam::new(0.1);
    adam.weight_decay = 0.5;
    adam.step(&mut [&mut q], &[t1(&[0.0, 0.0])]);
    assert!((q.data()[0] - 1.9).abs() < 1e-8 && (q.data()[1] + 3.9).abs() < 1e-8);
}

/// SGD with momentum on f(p) = p², p₀ = 1, η = 0.1, μ = 0.9:
/// v₁ = 2, p₁ = 0.8; g₂ = 1.6, v₂ = 0.9·2 + 1.6 = 3.4, p₂ = 0.8 − 0.34 = 0.46.
#[test]
fn sgd_momentum_by_hand() {
    let mut p = t1(&[1.0]);
    let mut opt = Sgd::new(0.1, 0.9);
    for _ in 0..2 {
        let g = p.scale(2.0);
        opt.step(&mut [&mut p], &[g]);
    }
    assert!((p.data()[0] - 0.46).abs() < 1e-15, "{}", p.data()[0]);
    // Weight decay λ adds λp to the gradient: one plain step from p = 1 with g = 0, λ = 0.5.
    let mut p = t1(&[1.0]);
    let mut opt = Sgd::new(0.1, 0.0).with_weight_decay(0.5);
    opt.step(&mut [&mut p], &[t1(&[0.0])]);
    assert!((p.data()[0] - 0.95).abs() < 1e-15);
}

#[test]
fn clip_grad_norm_rescales_globally() {
    let mut g = vec![t1(&[3.0]), t1(&[0.0, 4.0])];
    assert_eq!(global_norm(&g), 5.0);
    let n = clip_grad_norm(&mut g, 1.0);
    assert_eq!(n, 5.0);
    // 3·(1/5) and 4·(1/5) in floating point: within one ulp of 0.6 and 0.8.
    assert!(
        (g[0].data()[0] - 0.6).abs() <= f64::EPSILON
            && (g[1].data()[1] - 0.8).abs() <= f64::EPSILON
    );
    let mut h = vec![t1(&[0.3, 0.4])];
    assert_eq!(clip_grad_norm(&mut h, 1.0), 0.5);
    assert_eq!(
        h[0].data(),
        &[0.3, 0.4],
        "below the threshold nothing changes"
    );
}

#[test]
fn schedules_by_hand() {
    assert_eq!(Schedule::Constant.factor_at(1234), 1.0);
    let c = Schedule::cosine(0.0, 10, 0);
    assert!((c.factor_at(0) - 1.0).abs() < 1e-15);
    assert!((c.factor_at(5) - 0.5).abs() < 1e-15);
    assert!(c.factor_at(10).abs() < 1e-15 && c.factor_at(50).abs() < 1e-15);
    let w = Schedule::cosine(0.1, 10, 2);
    assert_eq!(w.factor_at(0), 0.5);
    assert_eq!(w.factor_at(1), 1.0);
    assert!((w.factor_at(2) - 1.0).abs() < 1e-15);
    // u = (6 − 2)/(10 − 2) = 1/2: 0.1 + 0.9·(1 + cos(π/2))/2 = 0.55.
    assert!((w.factor_at(6) - 0.55).abs() < 1e-15);
    let m = Schedule::multi_step(vec![2, 4], 0.5);
    let f: Vec<f64> = (0..6).map(|t| m.factor_at(t)).collect();
    assert_eq!(f, [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]);
}

/// `fit` keeps the optimizer's learning rate and scales it by the schedule: on f(p) = p²
/// (gradient 2p) with SGD η = 0.1 and factors 1, 1, 0.5, 0.5, the steps multiply p by
/// 1 − 2·0.1·factor = 0.8, 0.8, 0.9, 0.9.
#[test]
fn fit_scales_the_optimizers_learning_rate_and_keeps_it() {
    let mut params = vec![t1(&[1.0])];
    let mut opt = Sgd::new(0.1, 0.0);
    let cfg = TrainConfig::new(4).with_schedule(Schedule::multi_step(vec![2], 0.5));
    fit(
        &mut params,
        &mut opt,
        &cfg,
        |_, _: &Vec<Tensor<f64>>, _tape, leaves| leaves[0].mul(leaves[0]).sum(),
        |_, _, _| {},
    )
    .unwrap();
    let want = 0.8 * 0.8 * 0.9 * 0.9;
    assert!(
        (params[0].data()[0] - want).abs() < 1e-15,
        "{:?}",
        params[0]
    );
    assert_eq!(
        opt.lr(),
        0.1,
        "the optimizer's learning rate is never replaced"
    );
    assert_eq!(opt.lr_factor(), 0.5);
}

/// An optimizer restored from the state of another after 5 steps continues bitwise like it.
#[test]
fn optimizer_state_restores_bitwise() {
    fn check<O: Optimizer<f64> + Clone>(fresh: O, name: &str) {
        let (a, b, _) = quadratic_problem();
        let grad = |p: &Tensor<f64>| {
            let tape = Tape::new();
            let v = tape.leaf(p.clone());
            tape.backward(quadratic(&a, &b, v)).wrt(v)
        };
        let mut p = vec![Tensor::<f64>::zeros(&[8, 1])];
        let mut opt = fresh.clone();
        for _ in 0..5 {
            let g = grad(&p[0]);
            opt.step(&mut p.params_mut(), &[g]);
        }
        let saved = opt.state();
        let mut resumed = fresh.clone();
        resumed.set_state(saved.clone()).unwrap();
        let mut q = p.clone();
        for _ in 0..5 {
            let g = grad(&p[0]);
            opt.step(&mut p.params_mut(), &[g]);
            let g = grad(&q[0]);
            resumed.step(&mut q.params_mut(), &[g]);
        }
        assert!(p == q, "{name}: resumed run differs");
        assert_eq!(saved.steps, 5, "{name}");
        let mut bad = saved;
        bad.tensors.push(("extra.0".into(), Tensor::zeros(&[1])));
        assert!(
            fresh.clone().set_state(bad).is_err(),
            "{name}: unknown tensor accepted"
        );
    }
    check(Sgd::new(0.1, 0.5), "sgd");
    check(Adam::new(0.05), "adam");
    check(Adam::adamw(0.05, 0.01), "adamw");
}

/// f(p) = ½ pᵀAp − bᵀp with A = diag(1, …, 8): minimizer p* = A⁻¹b.
fn quadratic<'t>(a: &Tensor<f64>, b: &Tensor<f64>, p: Var<'t, f64>) -> Var<'t, f64> {
    let tape = p.tape();
    let ap = tape.constant(a.clone()).matmul(p);
    let quad = p.mul(ap).sum().mul_scalar(0.5);
    quad.sub(p.mul(tape.constant(b.clone())).sum())
}

fn quadratic_problem() -> (Tensor<f64>, Tensor<f64>, Vec<f64>) {
    let n = 8;
    let a = Tensor::from_fn(&[n, n], |i| {
        if i / n == i % n {
            (i / n + 1) as f64
        } else {
            0.0
        }
    });
    let b = Tensor::from_fn(&[n, 1], |i| (i as f64 - 3.5) / 2.0);
    let star = (0..n).map(|i| b.data()[i] / (i + 1) as f64).collect();
    (a, b, star)
}

fn converges<O: Optimizer<f64>>(mut opt: O, cfg: TrainConfig, tol: f64, name: &str) {
    let (a, b, star) = quadratic_problem();
    let mut params = vec![Tensor::<f64>::zeros(&[8, 1])];
    let log = fit(
        &mut params,
        &mut opt,
        &cfg,
        |_, _: &Vec<Tensor<f64>>, _tape, leaves| quadratic(&a, &b, leaves[0]),
        |_, _, _| {},
    )
    .unwrap();
    let err = params[0]
        .data()
        .iter()
        .zip(&star)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    assert!(
        err < tol,
        "{name}: |p − p*| = {err:e}, loss {:?}",
        log.losses.last()
    );
    assert!(log.losses.last() < log.losses.first());
}

#[test]
fn optimizers_converge_on_a_quadratic() {
    // SGD with momentum: contraction for η < 2(1+μ)/λ_max; η = 0.1, μ = 0.5, λ_max = 8.
    converges(Sgd::new(0.1, 0.5), TrainConfig::new(400), 1e-10, "sgd");
    // Adam with a cosine decay to a small learning rate.
    // η = 0.05 decaying to 1e-6 = 2e-5·η.
    let cfg = TrainConfig::new(3000)
        .with_schedule(Schedule::cosine(2e-5, 3000, 50))
        .with_clip(10.0);
    converges(Adam::new(0.05), cfg.clone(), 1e-6, "adam");
    converges(Adam::adamw(0.05, 0.0), cfg, 1e-6, "adamw (λ = 0)");
}

/// A loss that becomes NaN at step 3 stops training with an error naming step 3, after exactly
/// three updates.
#[test]
fn non_finite_loss_names_the_step() {
    let mut params = vec![t1(&[1.0])];
    let mut opt = Sgd::new(0.1, 0.0);
    let mut seen = Vec::new();
    let res = fit(
        &mut params,
        &mut opt,
        &TrainConfig::new(10),
        |step, _: &Vec<Tensor<f64>>, tape: &Tape<f64>, leaves| {
            let base = leaves[0].mul(leaves[0]).sum();
            if step == 3 {
                base.add(tape.constant(Tensor::scalar(f64::NAN)))
            } else {
                base
            }
        },
        |step, _, _| seen.push(step),
    );
    match res {
        Err(Error::NonFiniteLoss { step, loss, .. }) => {
            assert_eq!(step, 3);
            assert!(loss.is_nan());
            assert!(format!("{}", res.unwrap_err()).contains("step 3"));
        }
        other => panic!("expected NonFiniteLoss, got {other:?}"),
    }
    assert_eq!(seen, vec![0, 1, 2]);
    // Three plain steps of p ← p − 0.1·2p = 0.8p.
    assert!((params[0].data()[0] - 0.512).abs() < 1e-15);
}

/// Divergence to infinity: SGD on p² with η = 10 multiplies p by −19 each step; the loss
/// overflows at the first step k with 19^(2k) > f64::MAX, i.e. k = ⌈log(MAX)/(2 log 19)⌉ = 121.
#[test]
fn diverging_training_reports_overflow_step() {
    let mut params = vec![t1(&[1.0])];
    let mut opt = Sgd::new(10.0, 0.0);
    let res = fit(
        &mut params,
        &mut opt,
        &TrainConfig::new(1000),
        |_, _: &Vec<Tensor<f64>>, _tape, leaves| leaves[0].mul(leaves[0]).sum(),
        |_, _, _| {},
    );
    let want = (f64::MAX.ln() / (2.0 * 19f64.ln())).ceil() as usize;
    assert_eq!(want, 121);
    match res {
        Err(Error::NonFiniteLoss { step, loss, .. }) => {
            assert_eq!(step, want);
            assert_eq!(loss, f64::INFINITY);
        }
        other => panic!("expected NonFiniteLoss, got {other:?}"),
    }
    assert_eq!(params.num_params(), 1);
}
