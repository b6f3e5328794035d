//! Convolutions of NCHW `(batch, channels, h, w)` variables: [`Var::conv2d`] (grouped, stride 1,
//! zero padding `k/2` that keeps the size) and [`Var::add_channel_bias`]. The forward and
//! backward passes are the kernels of [`crate::kernels::conv`].
//!
//! ```
//! use gslab::{Tape, Tensor};
//! let tape = Tape::<f64>::new();
//! // one 2×2 image with one channel; a 3×3 kernel reading the centre and the upper-left pixel
//! let x = tape.leaf(Tensor::from_vec(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0])?);
//! let mut k = vec![0.0; 9];
//! k[4] = 1.0; // centre
//! k[0] = 10.0; // x[r − 1, s − 1]
//! let w = tape.leaf(Tensor::from_vec(&[1, 1, 3, 3], k)?);
//! let b = tape.leaf(Tensor::from_vec(&[1], vec![0.5])?);
//! let y = x.conv2d(w, 1).add_channel_bias(b);
//! assert_eq!(y.value().data(), &[1.5, 2.5, 3.5, 14.5]);
//! let grads = tape.backward(y.sum());
//! // every output reads its own pixel once; pixel (0, 0) is also read by output (1, 1)
//! assert_eq!(grads.wrt(x).data(), &[11.0, 1.0, 1.0, 1.0]);
//! assert_eq!(grads.wrt(b).data(), &[4.0]);
//! # Ok::<(), gslab::Error>(())
//! ```

use crate::autodiff::tape::Var;
use crate::kernels::conv::{ConvGeom, conv2d_backward_into, conv2d_forward};
use crate::real::Real;
use crate::tensor::Tensor;
use faer::Par;

impl<'t, T: Real> Var<'t, T> {
    /// Grouped 2-D convolution (cross-correlation, as PyTorch's
    /// `F.conv2d(x, w, padding=k//2, groups=groups)`) of `x` of shape `(batch, c_in, h, w)` with a
    /// kernel `w` of shape `(c_out, c_in/groups, k, k)`, odd `k`, stride 1, zero padding `k/2`:
    /// `y[n, o, r, s] = Σ_{i,a,b} w[o, i, a, b] · x[n, G(o)·c_in/g + i, r + a − k/2, s + b − k/2]`
    /// with `G(o)` the group of `o`. Output `(batch, c_out, h, w)`.
    ///
    /// Gradients: `dx = conv2d(G, convᵀ(w))` (the adjoint convolution, see
    /// [`conv_transpose_kernel`](crate::kernels::conv::conv_transpose_kernel)) and
    /// `dw[o, i, a, b] = Σ_{n,r,s} G[n, o, r, s] · x[n, G(o)·c_in/g + i, r + a − k/2, s + b − k/2]`.
    ///
    /// # Panics
    /// If `x` or `w` is not 4-D, the kernel is not square or has an even size, `groups` does not
    /// divide both channel counts, or `w.shape()[1]·groups ≠ c_in`; the message names `conv2d`
    /// and both shapes.
    pub fn conv2d(self, w: Var<'t, T>, groups: usize) -> Var<'t, T> {
        let (xv, wv) = (self.value(), w.value());
        ConvGeom::of("conv2d", xv.shape(), wv.shape(), groups);
        let y = conv2d_forward(&xv, &wv, groups, Par::rayon(0));
        self.tape().push_op(y, &[self, w], move |g, needs| {
            let mut dx = needs[0].then(|| Tensor::zeros(xv.shape()));
            let mut dw = needs[1].then(|| Tensor::zeros(wv.shape()));
            conv2d_backward_into(
                (&xv, &wv, groups),
                g,
                dx.as_mut(),
                dw.as_mut(),
                Par::rayon(0),
            );
            vec![dx, dw]
        })
    }

    /// Adds a per-channel bias: `y[n, c, …] = x[n, c, …] + b[c]` for `x` of shape
    /// `(batch, c, …)` and `b` of shape `(c)`. Gradients: `dx = G`, `db[c] = Σ_{n,…} G[n, c, …]`.
    ///
    /// # Panics
    /// If `x` has fewer than 2 axes or `b` is not `(c)` with `c = x.shape()[1]`; the message names
    /// `add_channel_bias` and both shapes.
    pub fn add_channel_bias(self, b: Var<'t, T>) -> Var<'t, T> {
        let y = add_channel_bias(&self.value(), &b.value());
        let (c, inner) = (b.shape()[0], self.shape()[2..].iter().product::<usize>());
        self.tape().push_op(y, &[self, b], move |g, needs| {
            let db = needs[1].then(|| {
                let mut s = vec![T::zero(); c];
                if inner > 0 {
                    for (q, plane) in g.data().chunks_exact(inner).enumerate() {
                        s[q % c] += plane.iter().copied().sum::<T>();
                    }
                }
                Tensor::from_vec(&[c], s).expect("add_channel_bias: c entries")
            });
            vec![needs[0].then(|| g.clone()), db]
        })
    }
}

/// `y[n, c, …] = x[n, c, …] + b[c]` (the value of [`Var::add_channel_bias`]).
///
/// # Panics
/// As [`Var::add_channel_bias`].
pub fn add_channel_bias<T: Real>(x: &Tensor<T>, b: &Tensor<T>) -> Tensor<T> {
    let (xs, bs) = (x.shape(), b.shape());
    assert!(
        xs.len() >= 2 && bs == [xs[1]],
        "add_channel_bias: input of shape {xs:?} and bias of shape {bs:?} (need (batch, c, …) and (c))"
    );
    let c = xs[1];
    let inner: usize = xs[2..].iter().product();
    let mut y = x.clone();
    if inner > 0 {
        for (q, plane) in y.data_mut().chunks_exact_mut(inner).enumerate() {
            let bc = b.data()[q % c];
            plane.iter_mut().for_each(|v| *v += bc);
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use crate::autodiff::gradcheck::gradcheck;
    use crate::autodiff::tape::{Tape, Var};
    use crate::kernels::conv::conv2d_reference;
    use crate::tensor::Tensor;
    use rand::{SeedableRng, rngs::StdRng};

    fn randn(shape: &[usize], seed: u64) -> Tensor<f64> {
        Tensor::randn(shape, 1.0, &mut StdRng::seed_from_u64(seed))
    }

    /// `Σ y ⊙ R` with a fixed random `R`, so the whole vector-Jacobian product is checked.
    fn project<'t>(y: Var<'t, f64>, seed: u64) -> Var<'t, f64> {
        let r = y.tape().constant(randn(&y.shape(), 1000 + seed));
        y.mul(r).sum()
    }

    #[test]
    fn values_match_the_reference() {
        let (x, w) = (randn(&[2, 4, 5, 3], 1), randn(&[6, 2, 3, 3], 2));
        let tape = Tape::new();
        let y = tape.constant(x.clone()).conv2d(tape.constant(w.clone()), 2);
        assert!(y.value().sub(&conv2d_reference(&x, &w, 2)).max_abs() < 1e-13);
    }

    /// (batch, c_in, c_out, h, w, k, groups): groups > 1, k ∈ {1, 3, 5}, non-square, batch > 1.
    #[test]
    fn gradcheck_on_several_shapes() {
        for (seed, (b, ci, co, h, w, k, g)) in [
            (2, 3, 2, 4, 3, 3, 1),
            (2, 4, 6, 3, 5, 3, 2),
            (3, 6, 3, 2, 3, 1, 3),
            (1, 2, 4, 5, 4, 5, 2),
            (4, 4, 4, 3, 2, 3, 4),
        ]
        .into_iter()
        .enumerate()
        {
            let inputs = [
                randn(&[b, ci, h, w], seed as u64),
                randn(&[co, ci / g, k, k], 50 + seed as u64),
            ];
            let r = gradcheck(
                |_, v| project(v[0].conv2d(v[1], g), seed as u64),
                &inputs,
                1e-6,
            );
            assert!(r.max_rel_err < 1e-7, "({b},{ci},{co},{h},{w},{k},{g}): {r}");
        }
    }

    #[test]
    fn channel_bias_value_and_gradcheck() {
        let tape = Tape::new();
        let x = tape.constant(Tensor::zeros(&[2, 3, 1, 2]));
        let b = tape.constant(Tensor::from_vec(&[3], vec![1.0, 2.0, 3.0]).unwrap());
        let y = x.add_channel_bias(b);
        assert_eq!(
            y.value().data(),
            &[1., 1., 2., 2., 3., 3., 1., 1., 2., 2., 3., 3.]
        );
        let inputs = [randn(&[2, 3, 2, 3], 7), randn(&[3], 8)];
        let r = gradcheck(
            |_, v| project(v[0].add_channel_bias(v[1]), 9),
            &inputs,
            1e-6,
        );
        assert!(r.max_rel_err < 1e-8, "{r}");
    }

    #[test]
    #[should_panic(
        expected = "conv2d: kernel input channels times groups differ from the input channels: input of shape [1, 4, 3, 3], kernel of shape [2, 3, 3, 3]"
    )]
    fn conv2d_mismatch_panics_naming_op_and_shapes() {
        let tape = Tape::<f64>::new();
        let x = tape.constant(Tensor::zeros(&[1, 4, 3, 3]));
        x.conv2d(tape.constant(Tensor::zeros(&[2, 3, 3, 3])), 1);
    }

    #[test]
    #[should_panic(expected = "add_channel_bias: input of shape [1, 4, 3] and bias of shape [3]")]
    fn bias_mismatch_panics() {
        let tape = Tape::<f64>::new();
        let x = tape.constant(Tensor::zeros(&[1, 4, 3]));
        x.add_channel_bias(tape.constant(Tensor::zeros(&[3])));
    }
}
