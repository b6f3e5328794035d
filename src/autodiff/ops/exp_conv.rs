//! The truncated convolution exponential [`Var::exp_conv`] (Definition 6.1, SOC):
//! `y = T_t(L) x = Σ_{i=0}^{t} L^{⋆i} x / i!`, one coarse tape node for the whole series (the
//! kernels of [`crate::kernels::conv`], which run it per image panel in cache).
//!
//! ```
//! use gslab::{Tape, Tensor};
//! use rand::{SeedableRng, rngs::StdRng};
//! let mut rng = StdRng::seed_from_u64(0);
//! let tape = Tape::<f64>::new();
//! let x = tape.leaf(Tensor::randn(&[2, 4, 5, 5], 1.0, &mut rng));
//! let l = tape.leaf(Tensor::randn(&[4, 4, 3, 3], 0.05, &mut rng));
//! // the same value as three convolutions on the tape
//! let y = x.exp_conv(l, 1, 3);
//! let (mut u, mut z) = (x, x);
//! for i in 1..=3 {
//!     u = u.conv2d(l, 1).div_scalar(i as f64);
//!     z = z.add(u);
//! }
//! assert!(y.value().sub(&z.value()).max_abs() < 1e-12);
//! ```

use crate::autodiff::tape::Var;
use crate::kernels::conv::{
    ConvGeom, exp_conv_backward_into, exp_conv_forward, exp_conv_forward_saved,
};
use crate::real::Real;
use crate::tensor::Tensor;
use faer::Par;

impl<'t, T: Real> Var<'t, T> {
    /// `y = T_t(L) x = Σ_{i=0}^{terms} L^{⋆i} x / i!` for `x` of shape `(batch, c, h, w)` and a
    /// square grouped kernel `l` of shape `(c, c/groups, k, k)` (odd `k`), where `L^{⋆i}` applies
    /// [`Var::conv2d`]`(·, l, groups)` `i` times. For a kernel `L = M − convᵀ(M)` the convolution
    /// has a skew-symmetric Jacobian and `T_t(L)` approximates the orthogonal `exp(L)`
    /// (Definition 6.1); `terms = 0` gives `y = x`.
    ///
    /// Gradients (`u_i = L^{⋆i} x / i!`, `g_i = ∂/∂u_i`): `g_t = G`, `g_{i−1} = G + Lᵀ ⋆ g_i / i`,
    /// `dx = g_0 = T_t(Lᵀ) G` with `Lᵀ` the adjoint convolution (for a skew `L`, `Lᵀ = −L`: the
    /// adjoint of `T_t(L)` is `T_t(−L)`), and `dl = Σ_{i=1}^{t} (1/i)·dw(u_{i−1}, g_i)` with
    /// `dw` the kernel gradient of one convolution ([`Var::conv2d`]). The forward saves
    /// `u_1 … u_{t−1}` only if a parent needs a gradient.
    ///
    /// # Panics
    /// As [`Var::conv2d`], and if the kernel is not square (`c_out ≠ c_in`); the message names
    /// `exp_conv` and both shapes.
    pub fn exp_conv(self, l: Var<'t, T>, groups: usize, terms: usize) -> Var<'t, T> {
        let (xv, lv) = (self.value(), l.value());
        let g = ConvGeom::of("exp_conv", xv.shape(), lv.shape(), groups);
        assert!(
            g.c_in == g.c_out,
            "exp_conv: the exponential needs a square kernel (c, c/groups, k, k): input of shape {:?}, kernel of shape {:?}, groups {groups}",
            xv.shape(),
            lv.shape()
        );
        let tape = self.tape();
        if !self.requires_grad() && !l.requires_grad() {
            let y = exp_conv_forward(&xv, &lv, groups, terms, Par::rayon(0));
            return tape.push_op(y, &[self, l], |_, _| Vec::new());
        }
        let (y, saved) = exp_conv_forward_saved(&xv, &lv, groups, terms, Par::rayon(0));
        tape.push_op(y, &[self, l], move |gr, needs| {
            let mut dx = needs[0].then(|| Tensor::zeros(xv.shape()));
            let mut dl = needs[1].then(|| Tensor::zeros(lv.shape()));
            exp_conv_backward_into(
                (&xv, &lv, groups, terms),
                &saved,
                gr,
                dx.as_mut(),
                dl.as_mut(),
                Par::rayon(0),
            );
            vec![dx, dl]
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::autodiff::gradcheck::gradcheck;
    use crate::autodiff::tape::{Tape, Var};
    use crate::kernels::conv::{conv_transpose_kernel, exp_conv_forward};
    use crate::tensor::Tensor;
    use faer::Par;
    use rand::{SeedableRng, rngs::StdRng};

    fn randn(shape: &[usize], std: f64, seed: u64) -> Tensor<f64> {
        Tensor::randn(shape, std, &mut StdRng::seed_from_u64(seed))
    }

    fn project<'t>(y: Var<'t, f64>, seed: u64) -> Var<'t, f64> {
        let r = y.tape().constant(randn(&y.shape(), 1.0, 1000 + seed));
        y.mul(r).sum()
    }

    /// The series as `terms` conv2d nodes on the tape.
    fn composed<'t>(x: Var<'t, f64>, l: Var<'t, f64>, groups: usize, terms: usize) -> Var<'t, f64> {
        let (mut u, mut y) = (x, x);
        for i in 1..=terms {
            u = u.conv2d(l, groups).div_scalar(i as f64);
            y = y.add(u);
        }
        y
    }

    /// (batch, c, h, w, k, groups, terms)
    const CASES: [(usize, usize, usize, usize, usize, usize, usize); 4] = [
        (2, 4, 3, 5, 3, 1, 3),
        (3, 6, 4, 3, 3, 2, 5),
        (1, 4, 2, 2, 1, 4, 2),
        (2, 2, 3, 4, 5, 1, 4),
    ];

    #[test]
    fn gradients_equal_the_tape_composition_of_convolutions() {
        for (s, (b, c, h, w, k, g, t)) in CASES.into_iter().enumerate() {
            let x0 = randn(&[b, c, h, w], 1.0, s as u64);
            let l0 = randn(&[c, c / g, k, k], 0.2, 10 + s as u64);
            let run = |fused: bool| {
                let tape = Tape::new();
                let (x, l) = (tape.leaf(x0.clone()), tape.leaf(l0.clone()));
                let y = if fused {
                    x.exp_conv(l, g, t)
                } else {
                    composed(x, l, g, t)
                };
                let v = (*y.value()).clone();
                let grads = tape.backward(project(y, s as u64));
                (v, grads.wrt(x), grads.wrt(l))
            };
            let (a, b2) = (run(true), run(false));
            let scale = |t: &Tensor<f64>| t.max_abs().max(1.0);
            assert!(a.0.sub(&b2.0).max_abs() < 1e-13 * scale(&b2.0), "value {s}");
            assert!(a.1.sub(&b2.1).max_abs() < 1e-13 * scale(&b2.1), "dx {s}");
            assert!(a.2.sub(&b2.2).max_abs() < 1e-13 * scale(&b2.2), "dl {s}");
        }
    }

    #[test]
    fn gradcheck_on_several_shapes() {
        for (s, (b, c, h, w, k, g, t)) in CASES.into_iter().enumerate() {
            let inputs = [
                randn(&[b, c, h, w], 1.0, 20 + s as u64),
                randn(&[c, c / g, k, k], 0.2, 30 + s as u64),
            ];
            let r = gradcheck(
                |_, v| project(v[0].exp_conv(v[1], g, t), s as u64),
                &inputs,
                1e-6,
            );
            assert!(r.max_rel_err < 1e-7, "case {s}: {r}");
        }
    }

    #[test]
    fn input_gradient_of_a_skew_kernel_is_the_series_of_minus_l() {
        let m = randn(&[4, 2, 3, 3], 0.2, 40);
        let l = m.sub(&conv_transpose_kernel(&m, 2));
        let tape = Tape::new();
        let x = tape.leaf(randn(&[2, 4, 3, 4], 1.0, 41));
        let y = x.exp_conv(tape.constant(l.clone()), 2, 5);
        let dy = randn(&y.shape(), 1.0, 42);
        let dx = tape.backward_with(y, dy.clone()).wrt(x);
        let want = exp_conv_forward(&dy, &l.scale(-1.0), 2, 5, Par::Seq);
        assert!(dx.sub(&want).max_abs() < 1e-13);
    }

    #[test]
    #[should_panic(expected = "exp_conv: the exponential needs a square kernel")]
    fn rectangular_kernel_panics() {
        let tape = Tape::<f64>::new();
        let x = tape.constant(Tensor::zeros(&[1, 2, 3, 3]));
        x.exp_conv(tape.constant(Tensor::zeros(&[4, 2, 3, 3])), 1, 2);
    }
}
