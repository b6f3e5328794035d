//! The MaxMin activations of orthogonal convolutional networks (Anil et al., 2019; digest §5.2):
//! channels are paired and each pair `(a, b)` becomes `(max(a, b), min(a, b))` elementwise, a
//! permutation of the pair at every pixel, so the activation preserves norms and is 1-Lipschitz.
//!
//! - [`Var::maxmin`] (paper Def. F.1) pairs channel `c` with `c + C/2` (the two halves);
//! - [`Var::maxmin_permuted`] (paper Def. F.2) pairs channels `2i` and `2i + 1`, so pairs stay
//!   inside a GS convolution group under the paired shuffle.
//!
//! **Order.** The paper puts the max first (first half / even slot); the official code
//! (`MinMax`, `MinMaxPermuted` in `custom_activations.py`) puts the **min** first (digest §9
//! item 9). The two differ by a fixed channel permutation; [`MaxMinOrder`] selects one.
//!
//! ```
//! use gslab::autodiff::ops::maxmin::MaxMinOrder;
//! use gslab::{Tape, Tensor};
//! let tape = Tape::<f64>::new();
//! // 4 channels on one pixel: pairs (0, 2) and (1, 3) for maxmin, (0, 1) and (2, 3) permuted
//! let x = tape.constant(Tensor::from_vec(&[1, 4, 1, 1], vec![1.0, 5.0, 3.0, 2.0])?);
//! assert_eq!(x.maxmin(MaxMinOrder::MaxFirst).value().data(), &[3.0, 5.0, 1.0, 2.0]);
//! assert_eq!(x.maxmin(MaxMinOrder::MinFirst).value().data(), &[1.0, 2.0, 3.0, 5.0]);
//! assert_eq!(x.maxmin_permuted(MaxMinOrder::MaxFirst).value().data(), &[5.0, 1.0, 3.0, 2.0]);
//! assert_eq!(x.maxmin_permuted(MaxMinOrder::MinFirst).value().data(), &[1.0, 5.0, 2.0, 3.0]);
//! # Ok::<(), gslab::Error>(())
//! ```

use crate::autodiff::tape::Var;
use crate::real::Real;
use crate::tensor::Tensor;

/// Which element of a MaxMin pair goes to the pair's first slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MaxMinOrder {
    /// The paper's definitions: max in the first half / even slot, min in the other.
    MaxFirst,
    /// The official code (`MinMax`, `MinMaxPermuted`): min first, max second.
    MinFirst,
}

/// The channel pairs `(first, second)` of an activation on `c` channels.
fn pairs(c: usize, permuted: bool) -> Vec<(usize, usize)> {
    if permuted {
        (0..c / 2).map(|j| (2 * j, 2 * j + 1)).collect()
    } else {
        (0..c / 2).map(|j| (j, j + c / 2)).collect()
    }
}

impl<'t, T: Real> Var<'t, T> {
    /// MaxMin on the channel halves (paper Def. F.1): for `x` of shape `(batch, C, …)` with `C`
    /// even, channels `j` and `j + C/2` become `(max, min)` ([`MaxMinOrder::MaxFirst`], the
    /// paper) or `(min, max)` ([`MaxMinOrder::MinFirst`], the official code) at every pixel.
    /// Gradient: each output slot's gradient goes to the input that produced it (ties `a = b`
    /// send the max slot's gradient to the first channel of the pair).
    ///
    /// # Panics
    /// If `x` has fewer than 2 axes or an odd channel count; the message names `maxmin` and the
    /// shape.
    pub fn maxmin(self, order: MaxMinOrder) -> Var<'t, T> {
        self.pairwise_maxmin("maxmin", false, order)
    }

    /// MaxMinPermuted (paper Def. F.2): as [`Var::maxmin`] with the pairs `(2i, 2i + 1)`.
    ///
    /// # Panics
    /// If `x` has fewer than 2 axes or an odd channel count; the message names `maxmin_permuted`
    /// and the shape.
    pub fn maxmin_permuted(self, order: MaxMinOrder) -> Var<'t, T> {
        self.pairwise_maxmin("maxmin_permuted", true, order)
    }

    fn pairwise_maxmin(self, op: &'static str, permuted: bool, order: MaxMinOrder) -> Var<'t, T> {
        let x = self.value();
        let y = pairwise(&x, op, permuted, order);
        let shape = self.shape();
        let (b, c, q) = (shape[0], shape[1], shape[2..].iter().product::<usize>());
        let pr = pairs(c, permuted);
        let max_first = order == MaxMinOrder::MaxFirst;
        self.tape().push_op(y, &[self], move |g, needs| {
            vec![needs[0].then(|| {
                let (xd, gd) = (x.data(), g.data());
                let mut dx = Tensor::zeros(g.shape());
                let dd = dx.data_mut();
                for n in 0..b {
                    for &(f, s) in &pr {
                        for t in 0..q {
                            let (i, j) = ((n * c + f) * q + t, (n * c + s) * q + t);
                            // the slot holding the max and the one holding the min
                            let (g_max, g_min) = if max_first {
                                (gd[i], gd[j])
                            } else {
                                (gd[j], gd[i])
                            };
                            (dd[i], dd[j]) = if xd[i] >= xd[j] {
                                (g_max, g_min)
                            } else {
                                (g_min, g_max)
                            };
                        }
                    }
                }
                dx
            })]
        })
    }
}

/// The value of [`Var::maxmin`].
///
/// # Panics
/// As [`Var::maxmin`].
pub fn maxmin<T: Real>(x: &Tensor<T>, order: MaxMinOrder) -> Tensor<T> {
    pairwise(x, "maxmin", false, order)
}

/// The value of [`Var::maxmin_permuted`].
///
/// # Panics
/// As [`Var::maxmin_permuted`].
pub fn maxmin_permuted<T: Real>(x: &Tensor<T>, order: MaxMinOrder) -> Tensor<T> {
    pairwise(x, "maxmin_permuted", true, order)
}

/// Every channel pair `(f, s)` becomes `(max, min)` or `(min, max)` at every pixel.
fn pairwise<T: Real>(x: &Tensor<T>, op: &str, permuted: bool, order: MaxMinOrder) -> Tensor<T> {
    let shape = x.shape();
    assert!(
        shape.len() >= 2 && shape[1].is_multiple_of(2),
        "{op}: need a (batch, C, …) input with an even C, got shape {shape:?}"
    );
    let (b, c) = (shape[0], shape[1]);
    let q: usize = shape[2..].iter().product();
    let max_first = order == MaxMinOrder::MaxFirst;
    let mut y = Tensor::zeros(shape);
    let (xd, yd) = (x.data(), y.data_mut());
    for n in 0..b {
        for &(f, s) in &pairs(c, permuted) {
            for t in 0..q {
                let (i, j) = ((n * c + f) * q + t, (n * c + s) * q + t);
                let (hi, lo) = if xd[i] >= xd[j] {
                    (xd[i], xd[j])
                } else {
                    (xd[j], xd[i])
                };
                (yd[i], yd[j]) = if max_first { (hi, lo) } else { (lo, hi) };
            }
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autodiff::gradcheck::gradcheck;
    use crate::autodiff::tape::Tape;
    use rand::{SeedableRng, rngs::StdRng};

    fn randn(shape: &[usize], seed: u64) -> Tensor<f64> {
        Tensor::randn(shape, 1.0, &mut StdRng::seed_from_u64(seed))
    }

    fn project<'t>(y: Var<'t, f64>, seed: u64) -> Var<'t, f64> {
        let r = y.tape().constant(randn(&y.shape(), 1000 + seed));
        y.mul(r).sum()
    }

    #[test]
    fn values_on_images_and_norm_preservation() {
        let x0 = randn(&[2, 6, 3, 2], 1);
        let tape = Tape::new();
        let x = tape.constant(x0.clone());
        for order in [MaxMinOrder::MaxFirst, MaxMinOrder::MinFirst] {
            let y = x.maxmin(order).value();
            let yp = x.maxmin_permuted(order).value();
            assert!((y.norm() - x0.norm()).abs() < 1e-14 && (yp.norm() - x0.norm()).abs() < 1e-14);
            // image 1, pixel 4: pair (1, 4) of maxmin, pair (2, 3) of the permuted one
            let at = |t: &Tensor<f64>, ch: usize| t.data()[(6 + ch) * 6 + 4];
            let (a, b) = (at(&x0, 1), at(&x0, 4));
            let (first, second) = if order == MaxMinOrder::MaxFirst {
                (a.max(b), a.min(b))
            } else {
                (a.min(b), a.max(b))
            };
            assert_eq!((at(&y, 1), at(&y, 4)), (first, second));
            let (a, b) = (at(&x0, 2), at(&x0, 3));
            let (first, second) = if order == MaxMinOrder::MaxFirst {
                (a.max(b), a.min(b))
            } else {
                (a.min(b), a.max(b))
            };
            assert_eq!((at(&yp, 2), at(&yp, 3)), (first, second));
        }
    }

    #[test]
    fn gradchecks_off_ties() {
        // random inputs have no ties; both orders and both pairings
        for (s, order) in [MaxMinOrder::MaxFirst, MaxMinOrder::MinFirst]
            .into_iter()
            .enumerate()
        {
            let inputs = [randn(&[2, 4, 2, 3], 10 + s as u64)];
            let r = gradcheck(|_, v| project(v[0].maxmin(order), 1), &inputs, 1e-6);
            assert!(r.max_rel_err < 1e-8, "{r}");
            let r = gradcheck(
                |_, v| project(v[0].maxmin_permuted(order), 2),
                &inputs,
                1e-6,
            );
            assert!(r.max_rel_err < 1e-8, "{r}");
        }
    }

    #[test]
    #[should_panic(
        expected = "maxmin_permuted: need a (batch, C, …) input with an even C, got shape [2, 3, 4]"
    )]
    fn odd_channels_panic() {
        let tape = Tape::<f64>::new();
        tape.constant(Tensor::zeros(&[2, 3, 4]))
            .maxmin_permuted(MaxMinOrder::MinFirst);
    }
}
