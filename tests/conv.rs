//! The fast convolution kernels against their slow naive references (fly-style), the adjoint
//! identities, and bitwise thread-count independence.

use faer::Par;
use gslab::Tensor;
use gslab::kernels::conv::{
    conv_transpose_kernel, conv2d_backward, conv2d_backward_into, conv2d_forward,
    conv2d_forward_into, conv2d_reference, exp_conv_backward, exp_conv_backward_into,
    exp_conv_forward, exp_conv_forward_into, exp_conv_forward_saved, exp_conv_reference,
};
use rand::{SeedableRng, rngs::StdRng};

/// (batch, c_in, c_out, h, w, k, groups): groups > 1, k ∈ {1, 3, 5}, non-square images, images
/// smaller than the kernel, multi-image panels with a short last panel, 1×1 maps.
const SHAPES: [(usize, usize, usize, usize, usize, usize, usize); 9] = [
    (1, 1, 1, 3, 4, 3, 1),
    (2, 4, 6, 5, 3, 3, 2),
    (3, 6, 6, 4, 7, 5, 3),
    (5, 4, 8, 2, 3, 1, 4),
    (2, 3, 2, 1, 2, 3, 1),
    (9, 4, 4, 8, 8, 3, 1),
    (7, 6, 4, 5, 6, 3, 2),
    (300, 2, 4, 1, 1, 1, 2),
    (4, 2, 2, 2, 2, 5, 1),
];

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn rel_err(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    a.sub(b).max_abs() / b.max_abs().max(1.0)
}

fn dot(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    a.data().iter().zip(b.data()).map(|(x, y)| x * y).sum()
}

fn case(
    s: (usize, usize, usize, usize, usize, usize, usize),
    seed: u64,
) -> (Tensor<f64>, Tensor<f64>, usize) {
    let (b, ci, co, h, w, k, g) = s;
    let mut r = rng(seed);
    let x = Tensor::randn(&[b, ci, h, w], 1.0, &mut r);
    let wt = Tensor::randn(&[co, ci / g, k, k], 1.0, &mut r);
    (x, wt, g)
}

#[test]
fn forward_matches_the_naive_reference() {
    for (i, &s) in SHAPES.iter().enumerate() {
        let (x, w, g) = case(s, i as u64);
        let want = conv2d_reference(&x, &w, g);
        for par in [Par::Seq, Par::rayon(0)] {
            let got = conv2d_forward(&x, &w, g, par);
            assert!(
                rel_err(&got, &want) < 1e-13,
                "{s:?}: {}",
                rel_err(&got, &want)
            );
        }
        // the _into entry point overwrites stale contents
        let mut y = Tensor::full(want.shape(), f64::NAN);
        conv2d_forward_into(&x, &w, g, &mut y, Par::rayon(0));
        assert!(rel_err(&y, &want) < 1e-13, "{s:?}");
    }
}

#[test]
fn f32_forward_matches_the_reference() {
    let (x, w, g) = case((6, 8, 8, 5, 6, 3, 2), 40);
    let want = conv2d_reference(&x, &w, g);
    let got = conv2d_forward(&x.cast::<f32>(), &w.cast::<f32>(), g, Par::rayon(0)).cast::<f64>();
    assert!(rel_err(&got, &want) < 1e-5, "{}", rel_err(&got, &want));
}

/// The kernel gradient of a linear map by its definition: `dw_j = ⟨dy, conv(x, E_j)⟩`.
fn reference_kernel_grad(
    x: &Tensor<f64>,
    w: &Tensor<f64>,
    g: usize,
    dy: &Tensor<f64>,
) -> Tensor<f64> {
    Tensor::from_fn(w.shape(), |j| {
        let e = Tensor::from_fn(w.shape(), |q| if q == j { 1.0 } else { 0.0 });
        dot(&conv2d_reference(x, &e, g), dy)
    })
}

#[test]
fn backward_matches_the_adjoint_and_the_definition() {
    for (i, &s) in SHAPES.iter().enumerate() {
        if s.0 > 50 {
            continue; // the definition-based reference is quadratic; covered by the next test
        }
        let (x, w, g) = case(s, 100 + i as u64);
        let dy = Tensor::randn(conv2d_reference(&x, &w, g).shape(), 1.0, &mut rng(7));
        let (dx, dw) = conv2d_backward(&x, &w, g, &dy, Par::rayon(0));
        // dx = conv(dy, convᵀ(w)), and ⟨conv(x, w), dy⟩ = ⟨x, dx⟩ (the adjoint)
        let want_dx = conv2d_reference(&dy, &conv_transpose_kernel(&w, g), g);
        assert!(rel_err(&dx, &want_dx) < 1e-13, "{s:?} dx");
        let lhs = dot(&conv2d_reference(&x, &w, g), &dy);
        assert!(
            (lhs - dot(&x, &dx)).abs() < 1e-11 * lhs.abs().max(1.0),
            "{s:?} adjoint"
        );
        let want_dw = reference_kernel_grad(&x, &w, g, &dy);
        assert!(
            rel_err(&dw, &want_dw) < 1e-13,
            "{s:?} dw {}",
            rel_err(&dw, &want_dw)
        );
    }
}

#[test]
fn backward_into_skips_and_overwrites() {
    // 300 images of 1×1 pixels: panels of 256 and one reduction chunk per panel
    let (x, w, g) = case(SHAPES[7], 9);
    let dy = Tensor::randn(&[300, 4, 1, 1], 1.0, &mut rng(10));
    let (dx, dw) = conv2d_backward(&x, &w, g, &dy, Par::Seq);
    let mut dw2 = Tensor::full(w.shape(), f64::NAN);
    conv2d_backward_into((&x, &w, g), &dy, None, Some(&mut dw2), Par::rayon(0));
    assert_eq!(dw2, dw);
    let mut dx2 = Tensor::full(x.shape(), f64::NAN);
    conv2d_backward_into((&x, &w, g), &dy, Some(&mut dx2), None, Par::rayon(0));
    assert_eq!(dx2, dx);
    // dw by the definition, with the batch sum written out
    let mut want = Tensor::zeros(w.shape());
    for n in 0..300 {
        let xn = Tensor::from_vec(&[1, 2, 1, 1], x.data()[2 * n..2 * n + 2].to_vec()).unwrap();
        let dyn_ = Tensor::from_vec(&[1, 4, 1, 1], dy.data()[4 * n..4 * n + 4].to_vec()).unwrap();
        want.add_assign(&reference_kernel_grad(&xn, &w, g, &dyn_));
    }
    assert!(rel_err(&dw, &want) < 1e-13);
}

#[test]
fn exp_forward_matches_repeated_reference_convolutions() {
    for (i, &(b, c, _, h, w, k, g)) in SHAPES.iter().enumerate() {
        if b > 50 {
            continue;
        }
        let (x, l, g) = case((b, c, c, h, w, k, g), 200 + i as u64);
        let l = l.scale(0.3);
        for terms in [0, 1, 4] {
            let want = exp_conv_reference(&x, &l, g, terms);
            let got = exp_conv_forward(&x, &l, g, terms, Par::rayon(0));
            assert!(
                rel_err(&got, &want) < 1e-13,
                "({b},{c},{h},{w},{k},{g}) t={terms}"
            );
            let (ys, _) = exp_conv_forward_saved(&x, &l, g, terms, Par::Seq);
            assert_eq!(ys, got, "saving does not change the values");
            let mut y = Tensor::full(x.shape(), f64::NAN);
            exp_conv_forward_into(&x, &l, g, terms, &mut y, Par::rayon(0));
            assert_eq!(y, got);
        }
    }
}

#[test]
fn exp_backward_matches_the_chain_of_reference_adjoints() {
    for (i, &(b, c, _, h, w, k, g)) in SHAPES.iter().enumerate() {
        if b > 50 {
            continue;
        }
        let (x, l, g) = case((b, c, c, h, w, k, g), 300 + i as u64);
        let l = l.scale(0.3);
        let terms = 3;
        let dy = Tensor::randn(x.shape(), 1.0, &mut rng(11));
        let (_, saved) = exp_conv_forward_saved(&x, &l, g, terms, Par::rayon(0));
        let (dx, dl) = exp_conv_backward((&x, &l, g, terms), &saved, &dy, Par::rayon(0));
        // u_i by the reference, g_t = dy, g_{i−1} = dy + convᵀ(l) ⋆ g_i / i
        let lt = conv_transpose_kernel(&l, g);
        let mut u = vec![x.clone()];
        for j in 1..terms {
            u.push(conv2d_reference(&u[j - 1], &l, g).scale(1.0 / j as f64));
        }
        let mut gi = dy.clone();
        let mut want_dl = Tensor::zeros(l.shape());
        for j in (1..=terms).rev() {
            want_dl.axpy(
                1.0 / j as f64,
                &reference_kernel_grad(&u[j - 1], &l, g, &gi),
            );
            gi = dy.add(&conv2d_reference(&gi, &lt, g).scale(1.0 / j as f64));
        }
        assert!(rel_err(&dx, &gi) < 1e-12, "dx ({b},{c},{h},{w},{k},{g})");
        assert!(
            rel_err(&dl, &want_dl) < 1e-12,
            "dl ({b},{c},{h},{w},{k},{g})"
        );
        // dx = T_t(Lᵀ) dy
        assert!(rel_err(&dx, &exp_conv_reference(&dy, &lt, g, terms)) < 1e-12);
        let mut dl2 = Tensor::full(l.shape(), f64::NAN);
        exp_conv_backward_into(
            (&x, &l, g, terms),
            &saved,
            &dy,
            None,
            Some(&mut dl2),
            Par::Seq,
        );
        assert_eq!(dl2, dl, "skipping dx does not change dl");
    }
}

/// Runs `f` in a fresh rayon pool of `threads` workers.
fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn one_and_two_threads_give_bitwise_identical_results() {
    // several panels, reduction chunks and groups, in f32
    for (b, c, h, w, k, g) in [
        (37, 8, 6, 5, 3, 2),
        (20, 6, 16, 16, 3, 1),
        (600, 4, 1, 1, 1, 4),
    ] {
        let mut r = rng(b as u64);
        let x = Tensor::<f32>::randn(&[b, c, h, w], 1.0, &mut r);
        let l = Tensor::<f32>::randn(&[c, c / g, k, k], 0.2, &mut r);
        let dy = Tensor::<f32>::randn(&[b, c, h, w], 1.0, &mut r);
        let run = || {
            let y = conv2d_forward(&x, &l, g, Par::rayon(0));
            let (dx, dw) = conv2d_backward(&x, &l, g, &dy, Par::rayon(0));
            let (e, saved) = exp_conv_forward_saved(&x, &l, g, 5, Par::rayon(0));
            let (ex, el) = exp_conv_backward((&x, &l, g, 5), &saved, &dy, Par::rayon(0));
            [y, dx, dw, e, ex, el]
        };
        let one = in_pool(1, run);
        let two = in_pool(2, run);
        assert!(one == two, "({b},{c},{h},{w},{k},{g})");
        // and Par::Seq on the calling thread
        let seq = conv2d_forward(&x, &l, g, Par::Seq);
        assert!(seq == one[0]);
    }
}

#[test]
#[should_panic(expected = "conv2d_forward: kernel input channels times groups differ")]
fn mismatched_channels_panic_naming_op_and_shapes() {
    conv2d_forward(
        &Tensor::<f64>::zeros(&[1, 4, 3, 3]),
        &Tensor::zeros(&[4, 3, 3, 3]),
        1,
        Par::Seq,
    );
}

#[test]
#[should_panic(expected = "groups=3 must divide c_in=6 and c_out=4")]
fn groups_not_dividing_panic() {
    conv2d_forward(
        &Tensor::<f64>::zeros(&[1, 6, 3, 3]),
        &Tensor::zeros(&[4, 2, 3, 3]),
        3,
        Par::Seq,
    );
}

#[test]
#[should_panic(expected = "kernel size k=2 must be odd")]
fn even_kernels_panic() {
    conv2d_forward(
        &Tensor::<f64>::zeros(&[1, 2, 3, 3]),
        &Tensor::zeros(&[2, 2, 2, 2]),
        1,
        Par::Seq,
    );
}

#[test]
#[should_panic(expected = "exp_conv_forward: the exponential needs a square kernel")]
fn exp_of_a_non_square_kernel_panics() {
    exp_conv_forward(
        &Tensor::<f64>::zeros(&[1, 2, 3, 3]),
        &Tensor::zeros(&[4, 2, 3, 3]),
        1,
        2,
        Par::Seq,
    );
}

#[test]
#[should_panic(
    expected = "conv2d_backward_into: kernel gradient of shape [1] where [2, 2, 1, 1] is needed"
)]
fn wrong_gradient_buffers_panic() {
    let x = Tensor::<f64>::zeros(&[1, 2, 3, 3]);
    let w = Tensor::zeros(&[2, 2, 1, 1]);
    conv2d_backward_into(
        (&x, &w, 1),
        &x,
        None,
        Some(&mut Tensor::zeros(&[1])),
        Par::Seq,
    );
}

// ---------------------------------------------------------------------------------------------
// SOC / GS-SOC layers: exactness in f64 with the evaluation terms, certified bounds, state.

use gslab::nn::lipconvnet::{Activation, ConvKind, LipConvnet, LipConvnetConfig};
use gslab::nn::optim::{Optimizer, Sgd};
use gslab::orthogonal::conv::spectral::spectral_bound;
use gslab::orthogonal::conv::{
    BoundScaling, GsSoc, GsSocEval, Mode, Soc, SocSettings, truncation_bound,
};
use gslab::{Params, Tape};

/// `f(e_i) − f(0)` for every basis image `e_i` of one `(c, h, w)` input: the dense Jacobian of an
/// affine layer, column by column (`(n_out, n_in)`).
fn dense_jacobian(
    f: impl Fn(&Tensor<f64>) -> Tensor<f64>,
    (c, h, w): (usize, usize, usize),
) -> Tensor<f64> {
    let n = c * h * w;
    let f0 = f(&Tensor::zeros(&[1, c, h, w]));
    let m = f0.numel();
    let mut j = Tensor::zeros(&[m, n]);
    for q in 0..n {
        let e = Tensor::from_fn(&[1, c, h, w], |t| if t == q { 1.0 } else { 0.0 });
        let col = f(&e).sub(&f0);
        for (p, &v) in col.data().iter().enumerate() {
            j.data_mut()[p * n + q] = v;
        }
    }
    j
}

/// max |(JᵀJ − I)_ij|.
fn orthogonality_defect(j: &Tensor<f64>) -> f64 {
    let n = j.shape()[1];
    j.matmul_t(true, j, false).sub(&Tensor::eye(n)).max_abs()
}

/// Worst `|‖f(x) − f(y)‖ / ‖x − y‖ − 1|` and `|‖f(x) − f(0)‖ / ‖x‖ − 1|` over random pairs, and the
/// largest ratio.
fn isometry_defects(
    f: impl Fn(&Tensor<f64>) -> Tensor<f64>,
    shape: &[usize],
    seed: u64,
) -> (f64, f64, f64) {
    let mut r = rng(seed);
    let f0 = f(&Tensor::zeros(shape));
    let (mut worst_pair, mut worst_norm, mut max_ratio) = (0.0f64, 0.0f64, 0.0f64);
    for _ in 0..4 {
        let x = Tensor::randn(shape, 1.0, &mut r);
        let y = Tensor::randn(shape, 1.0, &mut r);
        let ratio = f(&x).sub(&f(&y)).norm() / x.sub(&y).norm();
        worst_pair = worst_pair.max((ratio - 1.0).abs());
        max_ratio = max_ratio.max(ratio);
        worst_norm = worst_norm.max((f(&x).sub(&f0).norm() / x.norm() - 1.0).abs());
    }
    (worst_pair, worst_norm, max_ratio)
}

fn settings() -> SocSettings {
    SocSettings::default()
}

/// SOC and GS-SOC layers (stride 1, `c → c`): (label, layer) on 8 channels.
fn square_layers(k: usize) -> Vec<(String, GsSoc<f64>)> {
    let mut r = rng(50 + k as u64);
    let mut out = vec![(
        "SOC".to_string(),
        GsSoc::soc((8, 8), (k, 1), settings(), &mut r).unwrap(),
    )];
    for (g1, g2) in [
        (1, None),
        (2, None),
        (4, None),
        (4, Some(1)),
        (4, Some(2)),
        (4, Some(4)),
    ] {
        for paired in [false, true] {
            let layer = GsSoc::new((8, 8), (k, 1), (g1, g2), paired, settings(), &mut r).unwrap();
            out.push((format!("{} paired={paired}", layer.groups_label()), layer));
        }
    }
    out
}

#[test]
fn soc_and_gs_soc_layers_are_isometries_to_1e9_in_evaluation() {
    for k in [1, 3, 5] {
        for (label, layer) in square_layers(k) {
            let ev: GsSocEval<f64> = layer.eval().unwrap();
            let (pair, norm, max_ratio) = isometry_defects(|x| ev.apply(x), &[2, 8, 5, 6], 60);
            println!(
                "k={k} {label}: |ratio − 1| ≤ {pair:.2e}, |‖f(x) − f(0)‖/‖x‖ − 1| ≤ {norm:.2e}, Lipschitz bound − 1 = {:.2e}",
                ev.lipschitz_bound() - 1.0
            );
            assert!(
                pair < 1e-9 && norm < 1e-9,
                "k={k} {label}: {pair:e} {norm:e}"
            );
            assert!(
                max_ratio <= ev.lipschitz_bound(),
                "k={k} {label}: ratio {max_ratio} above the bound"
            );
            for s in ev.socs() {
                // σ ≤ correction (0.7 for k > 1, 1 for 1×1) with the provable scaling
                assert!(s.sigma() <= if s.kernel().shape()[2] > 1 { 0.7 } else { 1.0 } + 1e-12);
            }
            assert!(
                ev.lipschitz_bound() - 1.0 < 1e-9,
                "{label}: {}",
                ev.lipschitz_bound()
            );
        }
    }
}

#[test]
fn dense_jacobians_are_orthogonal_to_1e9() {
    let mut r = rng(70);
    let soc = GsSoc::<f64>::soc((4, 4), (3, 1), settings(), &mut r).unwrap();
    let gs = GsSoc::<f64>::new((8, 8), (3, 1), (4, Some(2)), true, settings(), &mut r).unwrap();
    let gs1 = GsSoc::<f64>::new((8, 8), (3, 1), (2, None), false, settings(), &mut r).unwrap();
    for (label, layer, c) in [
        ("SOC", &soc, 4),
        ("GS-SOC (4, 2) paired", &gs, 8),
        ("GS-SOC (2, -)", &gs1, 8),
    ] {
        let ev = layer.eval().unwrap();
        let j = dense_jacobian(|x| ev.apply(x), (c, 4, 3));
        let d = orthogonality_defect(&j);
        println!(
            "{label}: dense Jacobian {:?}, max |JᵀJ − I| = {d:.2e}",
            j.shape()
        );
        assert!(d < 1e-9, "{label}: {d:e}");
        assert!(
            j.sub(&Tensor::eye(c * 12)).max_abs() > 1e-3,
            "{label}: not the identity"
        );
    }
}

#[test]
fn eval_mode_on_the_tape_matches_the_evaluated_layer_and_gradchecks() {
    let mut r = rng(80);
    let layer = GsSoc::<f64>::new((4, 4), (3, 1), (2, Some(2)), true, settings(), &mut r).unwrap();
    let x = Tensor::randn(&[2, 4, 3, 4], 1.0, &mut r);
    let want = layer.eval().unwrap().apply(&x);
    let tape = Tape::new();
    let (y, _) = layer
        .clone()
        .forward(&tape, tape.constant(x.clone()), Mode::Eval);
    assert!(y.value().sub(&want).max_abs() < 1e-12);
    // In evaluation the normalisation uses exact singular vectors, so its gradient is the
    // gradient of the exact bound: a finite-difference check of the whole layer.
    let mut inputs = vec![x];
    inputs.extend(layer.params().into_iter().cloned());
    let proj = Tensor::randn(&[2, 4, 3, 4], 1.0, &mut r);
    let rep = gslab::gradcheck(
        |t, v| {
            let mut l = layer.clone();
            l.forward_with(v[0], &v[1..], Mode::Eval)
                .mul(t.constant(proj.clone()))
                .sum()
        },
        &inputs,
        1e-6,
    );
    assert!(rep.max_rel_err < 1e-6, "{rep}");
}

#[test]
fn strided_and_channel_changing_layers_respect_their_bounds() {
    let mut r = rng(90);
    // stride 2 with channel growth (c = max(out, 4·in)), channel padding, truncation
    for (cin, cout, k, s, groups) in [
        (2, 4, 3, 2, (2, Some(2))),
        (4, 6, 3, 1, (2, None)),
        (6, 2, 1, 1, (1, None)),
    ] {
        let layer =
            GsSoc::<f64>::new((cin, cout), (k, s), groups, false, settings(), &mut r).unwrap();
        let ev = layer.eval().unwrap();
        let (_, _, max_ratio) = isometry_defects(|x| ev.apply(x), &[2, cin, 4, 6], 91);
        assert!(
            max_ratio <= ev.lipschitz_bound(),
            "{cin}→{cout}: {max_ratio}"
        );
        if cout >= cin * s * s {
            // an isometric embedding followed by an orthogonal map: norms are kept
            let (pair, _, _) = isometry_defects(|x| ev.apply(x), &[2, cin, 4, 6], 92);
            assert!(pair < 1e-9, "{cin}→{cout}: {pair:e}");
        }
    }
}

#[test]
fn truncation_bound_values() {
    // σ^{t+1}/(t+1)!·e^σ at σ = 0.7
    let e07 = 0.7f64.exp();
    assert!((truncation_bound(0.7, 5) - 0.7f64.powi(6) / 720.0 * e07).abs() < 1e-18);
    assert!((truncation_bound(0.7, 12) - 0.7f64.powi(13) / 6_227_020_800.0 * e07).abs() < 1e-25);
    println!(
        "σ = 0.7: t = 5 → {:.3e}, t = 12 → {:.3e}; σ = 1: t = 5 → {:.3e}, t = 12 → {:.3e}; σ = 2.1: t = 5 → {:.3e}, t = 12 → {:.3e}",
        truncation_bound(0.7, 5),
        truncation_bound(0.7, 12),
        truncation_bound(1.0, 5),
        truncation_bound(1.0, 12),
        truncation_bound(2.1, 5),
        truncation_bound(2.1, 12)
    );
}

#[test]
fn official_scaling_is_looser_and_the_certificate_follows_the_kernel() {
    let mut r = rng(95);
    let official = SocSettings {
        scaling: BoundScaling::OfficialSoc,
        ..settings()
    };
    let prov = Soc::<f64>::new((8, 8), 3, 1, 1, settings(), &mut r).unwrap();
    let off = {
        // same weights, official scaling
        let mut o = Soc::<f64>::new((8, 8), 3, 1, 1, official, &mut rng(95)).unwrap();
        *o.params_mut()[0] = prov.weight().clone();
        o
    };
    let (ep, eo) = (prov.eval().unwrap(), off.eval().unwrap());
    let jac = |ev: &gslab::orthogonal::conv::SocEval<f64>| {
        let kernel = ev.kernel().clone();
        dense_jacobian(|x| conv2d_reference(x, &kernel, 1), (8, 6, 6))
    };
    let exact = |ev: &gslab::orthogonal::conv::SocEval<f64>| {
        let j = jac(ev);
        j.to_mat().singular_values().unwrap()[0]
    };
    let (np, no) = (exact(&ep), exact(&eo));
    println!(
        "‖L_n‖₂ on 6×6 images: provable scaling {np:.4} (σ = {:.4}), official scaling {no:.4} (σ = {:.4})",
        ep.sigma(),
        eo.sigma()
    );
    assert!(np <= ep.sigma() && no <= eo.sigma());
    assert!((ep.sigma() - 0.7).abs() < 1e-12 && (eo.sigma() - 2.1).abs() < 1e-12);
    assert!(no > np * 2.9, "the official kernel is k = 3 times larger");
    // Training-mode terms (5) with the official scaling: how far from orthogonal the layer is.
    for (label, ev, kernel) in [
        ("provable", &ep, ep.kernel().clone()),
        ("official", &eo, eo.kernel().clone()),
    ] {
        let j = dense_jacobian(|x| exp_conv_forward(x, &kernel, 1, 5, Par::Seq), (8, 6, 6));
        let sv = j.to_mat().singular_values().unwrap();
        let dev = sv.iter().map(|s| (s - 1.0).abs()).fold(0.0, f64::max);
        println!(
            "{label} scaling, 5 terms: max |s_i(T_5(L_n)) − 1| = {dev:.3e} (bound {:.3e})",
            truncation_bound(ev.sigma(), 5)
        );
        assert!(dev <= truncation_bound(ev.sigma(), 5));
    }
    // the certificate agrees with the bound recomputed from the kernel actually applied
    let direct = spectral_bound(ep.kernel(), 1).unwrap();
    assert!(
        (direct - ep.sigma()).abs() < 1e-12 * direct,
        "{direct} vs {}",
        ep.sigma()
    );
}

#[test]
fn saving_and_restoring_the_spectral_state_gives_bitwise_the_same_next_steps() {
    let cfg = LipConvnetConfig {
        depth: 5,
        init_channels: 4,
        in_channels: 3,
        input_size: 32,
        classes: 5,
        conv: ConvKind::GsSoc { g1: 2, g2: Some(2) },
        activation: Activation::MaxMinPermuted(gslab::autodiff::ops::maxmin::MaxMinOrder::MinFirst),
        paired: true,
        settings: SocSettings {
            update_freq: 3,
            init_iters: 4,
            ..settings()
        },
    };
    let x = Tensor::<f32>::randn(&[2, 3, 32, 32], 1.0, &mut rng(100));
    let labels = [1usize, 3];
    let step = |net: &mut LipConvnet<f32>, opt: &mut Sgd<f32>| -> Tensor<f32> {
        let tape = Tape::new();
        let (logits, leaves) = net.forward(&tape, tape.constant(x.clone()), Mode::Train);
        let out = (*logits.value()).clone();
        let grads = tape.backward(logits.softmax_cross_entropy(&labels));
        let g: Vec<Tensor<f32>> = leaves.iter().map(|&v| grads.wrt(v)).collect();
        opt.step(&mut net.params_mut(), &g);
        out
    };
    let mut a = LipConvnet::<f32>::new(cfg, &mut rng(101)).unwrap();
    let mut opt_a = Sgd::new(0.05, 0.0);
    for _ in 0..2 {
        step(&mut a, &mut opt_a);
    }
    // checkpoint: parameters + spectral state, into a network built from another seed
    let (params, state) = (
        a.params().into_iter().cloned().collect::<Vec<_>>(),
        a.state(),
    );
    let mut b = LipConvnet::<f32>::new(cfg, &mut rng(999)).unwrap();
    let mut c = LipConvnet::<f32>::new(cfg, &mut rng(999)).unwrap();
    for (net, with_state) in [(&mut b, true), (&mut c, false)] {
        for (p, v) in net.params_mut().into_iter().zip(&params) {
            *p = v.clone();
        }
        if with_state {
            net.set_state(&state).unwrap();
        }
    }
    let (mut opt_b, mut opt_c) = (Sgd::new(0.05, 0.0), Sgd::new(0.05, 0.0));
    let mut restored_differs = false;
    for _ in 0..4 {
        let ya = step(&mut a, &mut opt_a);
        let yb = step(&mut b, &mut opt_b);
        let yc = step(&mut c, &mut opt_c);
        assert!(ya == yb, "restored state: not bitwise the same");
        restored_differs |= ya != yc;
    }
    assert!(
        restored_differs,
        "without the state the next steps differ (the test can fail)"
    );
    assert!(a.state() == b.state());
    // and evaluation agrees bitwise too
    assert!(a.eval().unwrap().apply(&x) == b.eval().unwrap().apply(&x));
}

#[test]
fn bad_state_entries_are_named() {
    let mut r = rng(110);
    let mut soc = Soc::<f64>::new((4, 4), 3, 1, 1, settings(), &mut r).unwrap();
    let mut st = soc.state();
    st.tensors.retain(|(n, _)| n != "u3");
    let e = soc.set_state(&st).unwrap_err().to_string();
    assert!(e.contains("'u3'"), "{e}");
    let mut st = soc.state();
    st.tensors[0].1 = Tensor::zeros(&[2]);
    assert!(
        soc.set_state(&st)
            .unwrap_err()
            .to_string()
            .contains("'u1' has shape [2]")
    );
    let mut st = soc.state();
    st.counters.push(("extra".into(), 1));
    assert!(
        soc.set_state(&st)
            .unwrap_err()
            .to_string()
            .contains("unknown entry 'extra'")
    );
}

#[test]
fn constructors_name_bad_values() {
    let mut r = rng(120);
    let err = |e: gslab::Error| e.to_string();
    let e = err(Soc::<f64>::new((4, 4), 2, 1, 1, settings(), &mut r).unwrap_err());
    assert!(e.contains("kernel=2"), "{e}");
    let e = err(Soc::<f64>::new((4, 6), 3, 1, 4, settings(), &mut r).unwrap_err());
    assert!(e.contains("groups=4") && e.contains("6 channels"), "{e}");
    let e = err(Soc::<f64>::new((4, 4), 3, 3, 1, settings(), &mut r).unwrap_err());
    assert!(e.contains("stride=3"), "{e}");
    let bad = SocSettings {
        update_iters: 0,
        ..settings()
    };
    assert!(
        err(Soc::<f64>::new((4, 4), 3, 1, 1, bad, &mut r).unwrap_err()).contains("update_iters=0")
    );
    // paired shuffle of 12 channels in 4 groups (needs 8 | 12)
    let e =
        err(GsSoc::<f64>::new((12, 12), (3, 1), (4, None), true, settings(), &mut r).unwrap_err());
    assert!(e.contains("12 channels") && e.contains("paired"), "{e}");
    // the 3 input channels of LipConvnet skip the shuffle, as the official code
    let first = GsSoc::<f64>::new((3, 32), (3, 1), (4, Some(2)), true, settings(), &mut r).unwrap();
    assert!(first.first_shuffle().is_none());
    let second =
        GsSoc::<f64>::new((32, 32), (3, 1), (4, Some(2)), true, settings(), &mut r).unwrap();
    assert!(second.first_shuffle().is_some());
    let mut cfg = LipConvnetConfig::table3(ConvKind::Soc);
    cfg.input_size = 40;
    assert!(err(LipConvnet::<f32>::new(cfg, &mut r).unwrap_err()).contains("input_size=40"));
    cfg = LipConvnetConfig::table3(ConvKind::GsSoc { g1: 3, g2: None });
    let e = err(LipConvnet::<f32>::new(cfg, &mut r).unwrap_err());
    assert!(
        e.contains("block 0") && e.contains("3 channels into 3 groups (paired)"),
        "{e}"
    );
}

#[test]
#[should_panic(
    expected = "Soc::forward: input of shape [1, 3, 4, 4] for a layer with 4 input channels"
)]
fn layer_forward_on_the_wrong_channels_panics() {
    let mut soc = Soc::<f64>::new((4, 4), 3, 1, 1, settings(), &mut rng(130)).unwrap();
    let tape = Tape::new();
    soc.forward(
        &tape,
        tape.constant(Tensor::zeros(&[1, 3, 4, 4])),
        Mode::Train,
    );
}

/// Table 3: the built LipConvnet-15's own parameter tally equals the counts module's formulas
/// and the exact numbers behind the printed 24.1M, 6.81M, 8.91M, 7.86M, 7.3M.
#[test]
fn lipconvnet15_parameter_tallies_match_table3() {
    use gslab::count::{ConvVariant, lipconvnet15_params};
    let cases = [
        (ConvKind::Soc, ConvVariant::Soc, 24_066_020u64),
        (
            ConvKind::GsSoc { g1: 4, g2: None },
            ConvVariant::PermutedSoc { groups: 4 },
            6_805_988,
        ),
        (
            ConvKind::GsSoc { g1: 4, g2: Some(1) },
            ConvVariant::GsSoc { g1: 4, g2: 1 },
            8_905_060,
        ),
        (
            ConvKind::GsSoc { g1: 4, g2: Some(2) },
            ConvVariant::GsSoc { g1: 4, g2: 2 },
            7_857_508,
        ),
        (
            ConvKind::GsSoc { g1: 4, g2: Some(4) },
            ConvVariant::GsSoc { g1: 4, g2: 4 },
            7_333_732,
        ),
    ];
    for (kind, variant, want) in cases {
        let mut cfg = LipConvnetConfig::table3(kind);
        cfg.settings.zero_init = true; // the tally does not depend on the values
        let net = LipConvnet::<f32>::new(cfg, &mut rng(140)).unwrap();
        let tally = net.num_params() as u64;
        println!(
            "{kind:?}: built model {tally}, counts {}",
            lipconvnet15_params(32, 100, variant).unwrap()
        );
        assert_eq!(tally, want, "{kind:?}");
        assert_eq!(
            tally,
            lipconvnet15_params(32, 100, variant).unwrap(),
            "{kind:?}"
        );
        assert_eq!(net.blocks().len(), 15);
    }
}

#[test]
fn small_lipconvnet_certified_bound_and_tape_agreement() {
    let cfg = LipConvnetConfig {
        depth: 5,
        init_channels: 4,
        in_channels: 3,
        input_size: 64,
        classes: 10,
        conv: ConvKind::GsSoc { g1: 2, g2: None },
        activation: Activation::MaxMinPermuted(gslab::autodiff::ops::maxmin::MaxMinOrder::MaxFirst),
        paired: true,
        settings: settings(),
    };
    let net = LipConvnet::<f64>::new(cfg, &mut rng(150)).unwrap();
    let ev = net.eval().unwrap();
    let lip = ev.lipschitz_bound();
    let (_, _, max_ratio) = isometry_defects(|x| ev.apply(x), &[2, 3, 64, 64], 151);
    println!("small LipConvnet: certified bound {lip:.15}, largest measured ratio {max_ratio:.6}");
    assert!(max_ratio <= lip && lip < 1.0 + 1e-9);
    let x = Tensor::randn(&[2, 3, 64, 64], 1.0, &mut rng(152));
    let tape = Tape::new();
    let (y, _) = net
        .clone()
        .forward(&tape, tape.constant(x.clone()), Mode::Eval);
    assert_eq!(y.shape(), vec![2, 10]);
    assert!(y.value().sub(&ev.apply(&x)).max_abs() < 1e-12);
    // directional derivative of a loss in the input against central differences
    let proj = Tensor::randn(&[2, 10], 1.0, &mut rng(153));
    let dir = Tensor::randn(x.shape(), 1.0, &mut rng(154));
    let tape = Tape::new();
    let xv = tape.leaf(x.clone());
    let (y, _) = net.clone().forward(&tape, xv, Mode::Eval);
    let g = tape
        .backward(y.mul(tape.constant(proj.clone())).sum())
        .wrt(xv);
    let analytic: f64 = g.data().iter().zip(dir.data()).map(|(a, b)| a * b).sum();
    let f = |t: f64| ev.apply(&x.add(&dir.scale(t))).mul(&proj).sum();
    let h = 1e-5;
    let numeric = (f(h) - f(-h)) / (2.0 * h);
    assert!(
        (analytic - numeric).abs() < 1e-6 * analytic.abs().max(1.0),
        "{analytic} vs {numeric}"
    );
}

#[test]
fn evaluated_network_on_the_tape_matches_apply_and_gradchecks_in_the_input() {
    // Strided, channel-changing GS-SOC (2, 2) blocks with a 1×1 second convolution, MaxMin on
    // channel halves, and the classifier: every branch of `LipConvnetEval::forward`.
    let cfg = LipConvnetConfig {
        depth: 5,
        init_channels: 4,
        in_channels: 1,
        input_size: 32,
        classes: 10,
        conv: ConvKind::GsSoc { g1: 2, g2: Some(2) },
        activation: Activation::MaxMin(gslab::autodiff::ops::maxmin::MaxMinOrder::MinFirst),
        paired: false,
        settings: settings(),
    };
    let net = LipConvnet::<f64>::new(cfg, &mut rng(160)).unwrap();
    let ev = net.eval().unwrap();
    let x = Tensor::rand_uniform(&[3, 1, 32, 32], 0.0, 1.0, &mut rng(161));
    let tape = Tape::new();
    let y = ev.forward(tape.constant(x.clone()));
    assert_eq!(y.shape(), vec![3, 10]);
    let want = ev.apply(&x);
    assert!(y.value().sub(&want).max_abs() < 1e-14, "tape vs apply");
    // Input gradient against central differences, on one image (every pixel).
    let x1 = Tensor::from_vec(&[1, 1, 32, 32], x.data()[..1024].to_vec()).unwrap();
    let proj = Tensor::randn(&[1, 10], 1.0, &mut rng(162));
    let rep = gslab::gradcheck(
        |t, v| ev.forward(v[0]).mul(t.constant(proj.clone())).sum(),
        &[x1],
        1e-6,
    );
    assert!(rep.max_rel_err < 1e-7, "{rep}");
}
