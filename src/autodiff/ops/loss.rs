//! Losses reducing to a 0-D scalar: softmax cross-entropy with integer labels
//! ([`Var::softmax_cross_entropy`]) and mean-squared error ([`Var::mse`]).

use crate::autodiff::tape::Var;
use crate::real::Real;
use crate::tensor::Tensor;

/// Row-wise softmax `p_ij = exp(z_ij − m_i) / s_i`, `s_i = Σ_j exp(z_ij − m_i)`, `m_i = max_j z_ij`,
/// and the stable log-sum-exp `lse_i = m_i + ln s_i` of `(b, c)` logits; returns `(p, lse)`.
fn softmax_rows<T: Real>(z: &Tensor<T>, c: usize) -> (Tensor<T>, Vec<T>) {
    let mut p = z.clone();
    let mut lse = Vec::with_capacity(z.numel() / c.max(1));
    for row in p.data_mut().chunks_exact_mut(c.max(1)) {
        let m = row.iter().copied().fold(T::neg_infinity(), T::max);
        row.iter_mut().for_each(|v| *v = (*v - m).exp());
        let s: T = row.iter().copied().sum();
        // p = e^(z − m) / s rather than e^(z − lse): no rounding of lse at large |m|
        row.iter_mut().for_each(|v| *v /= s);
        lse.push(m + s.ln());
    }
    (p, lse)
}

impl<'t, T: Real> Var<'t, T> {
    /// Softmax cross-entropy of `(b, c)` logits `z` against integer labels `y ∈ {0..c−1}^b`,
    /// averaged over the batch:
    /// `L = (1/b) Σ_i (lse_i − z[i, y_i])`, `lse_i = m_i + ln Σ_j exp(z_ij − m_i)`,
    /// `m_i = max_j z_ij` (stable for any logit magnitude).
    /// Gradient: `dz[i, j] = (G / b)·(softmax(z_i)_j − 1[j = y_i])`.
    ///
    /// # Panics
    /// If `z` is not 2-D, `labels.len() ≠ b`, or a label is `≥ c`; the message names
    /// `softmax_cross_entropy` and the offending sizes.
    pub fn softmax_cross_entropy(self, labels: &[usize]) -> Var<'t, T> {
        let shape = self.shape();
        let [b, c] = shape[..] else {
            panic!(
                "softmax_cross_entropy: logits must be 2-D (batch, classes), got shape {shape:?}"
            )
        };
        assert!(
            labels.len() == b,
            "softmax_cross_entropy: shape mismatch {shape:?} vs labels of length {}",
            labels.len()
        );
        if let Some(&bad) = labels.iter().find(|&&y| y >= c) {
            panic!("softmax_cross_entropy: label {bad} out of range for {c} classes");
        }
        let z = self.value();
        let (p, lse) = softmax_rows(&z, c);
        let total: T = (0..b).map(|i| lse[i] - z.data()[i * c + labels[i]]).sum();
        let inv_b = T::one() / T::from_usize(b.max(1));
        let value = Tensor::scalar(total * inv_b);
        let labels = labels.to_vec();
        self.tape().push_op(value, &[self], move |g, needs| {
            vec![needs[0].then(|| {
                let s = g.item() * inv_b;
                let mut dz = p.scale(s);
                for (i, &y) in labels.iter().enumerate() {
                    dz.data_mut()[i * c + y] -= s;
                }
                dz
            })]
        })
    }

    /// Mean-squared error `L = (1/N) Σ_k (x_k − t_k)²` over all `N` elements.
    /// Gradients: `dx = (2G/N)(x − t)`, `dt = −(2G/N)(x − t)`.
    ///
    /// # Panics
    /// If the shapes differ; the message names `mse` and both shapes.
    ///
    /// # Example
    /// ```
    /// # let tape = gslab::Tape::<f64>::new();
    /// let x = tape.leaf(gslab::Tensor::from_vec(&[2], vec![1.0, 3.0])?);
    /// let t = tape.constant(gslab::Tensor::from_vec(&[2], vec![1.0, 1.0])?);
    /// assert_eq!(x.mse(t).value().item(), 2.0); // (0² + 2²) / 2
    /// # Ok::<(), gslab::Error>(())
    /// ```
    pub fn mse(self, target: Var<'t, T>) -> Var<'t, T> {
        let (sx, st) = (self.shape(), target.shape());
        assert!(sx == st, "mse: shape mismatch {sx:?} vs {st:?}");
        let diff = self.value().sub(&target.value());
        let n = T::from_usize(diff.numel().max(1));
        let value = Tensor::scalar(diff.data().iter().map(|&d| d * d).sum::<T>() / n);
        self.tape()
            .push_op(value, &[self, target], move |g, needs| {
                let s = T::from_f64(2.0) * g.item() / n;
                let dx = needs[0].then(|| diff.scale(s));
                let dt = needs[1].then(|| diff.scale(-s));
                vec![dx, dt]
            })
    }
}

#[cfg(test)]
mod tests {
    use crate::autodiff::ops::test_util::{check, close, randn, t};
    use crate::autodiff::tape::Tape;
    use crate::tensor::Tensor;

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
    #[should_panic(expected = "softmax_cross_entropy: label 3 out of range for 3 classes")]
    fn cross_entropy_label_out_of_range_panics() {
        let tape = Tape::<f64>::new();
        let _ = tape
            .leaf(Tensor::zeros(&[2, 3]))
            .softmax_cross_entropy(&[0, 3]);
    }

    #[test]
    #[should_panic(
        expected = "softmax_cross_entropy: logits must be 2-D (batch, classes), got shape [6]"
    )]
    fn cross_entropy_needs_2d_logits_panics() {
        let tape = Tape::<f64>::new();
        let _ = tape.leaf(Tensor::zeros(&[6])).softmax_cross_entropy(&[0]);
    }
}
