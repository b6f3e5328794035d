//! The fast convolution kernels against their slow naive references (fly-style), the adjoint
//! identities, and bitwise thread-count independence.

use faer::Par;
use gslab::Tensor;
use gslab::kernels::conv::{
    ConvGeom, conv_transpose_kernel, conv2d_backward, conv2d_backward_into, conv2d_forward,
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
        let dy = Tensor::randn(
            &conv2d_reference(&x, &w, g).shape().to_vec(),
            1.0,
            &mut rng(7),
        );
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

#[test]
fn geometry_flops_are_the_im2col_gemm() {
    let g = ConvGeom::new(64, 64, 16, 16, 3, 1).unwrap();
    assert_eq!(g.flops(128), 2 * 64 * 576 * 128 * 256);
    assert_eq!(
        ConvGeom::new(64, 64, 16, 16, 3, 4).unwrap().flops(1),
        2 * 64 * 144 * 256
    );
}
