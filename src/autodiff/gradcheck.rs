//! [`gradcheck`]: compares every reverse-mode gradient of a scalar function of several inputs
//! with central finite differences in f64.

use crate::autodiff::tape::{Tape, Var};
use crate::tensor::Tensor;

/// Where the worst disagreement was found and how large it is.
#[derive(Clone, Debug)]
pub struct GradcheckReport {
    /// Worst relative error `|g_ad − g_fd| / max(1, |g_ad|, |g_fd|)` over all entries.
    pub max_rel_err: f64,
    /// Input index of the worst entry.
    pub input: usize,
    /// Flat index inside that input.
    pub index: usize,
    /// Reverse-mode value at the worst entry.
    pub analytic: f64,
    /// Finite-difference value at the worst entry.
    pub numeric: f64,
    /// Number of entries compared.
    pub checked: usize,
}

impl std::fmt::Display for GradcheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "max rel err {:.3e} at input {} index {} (analytic {:.12e}, numeric {:.12e}, {} entries)",
            self.max_rel_err, self.input, self.index, self.analytic, self.numeric, self.checked
        )
    }
}

/// Checks the gradient of `f: (inputs on a tape) → scalar` at `inputs` against central
/// differences `(f(x + h e_i) − f(x − h e_i)) / 2h` with step `h`, for every entry of every input.
///
/// The relative error is `|g_ad − g_fd| / max(1, |g_ad|, |g_fd|)`, so tiny gradients are compared
/// absolutely. A typical call uses `h = 1e-6`; the truncation error is O(h²) and the rounding
/// error O(eps/h), about 1e-10 for smooth functions of moderate size.
///
/// # Panics
/// If `f` does not return a scalar.
pub fn gradcheck<F>(f: F, inputs: &[Tensor<f64>], h: f64) -> GradcheckReport
where
    F: for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Var<'t, f64>,
{
    let eval = |xs: &[Tensor<f64>]| -> f64 {
        let tape = Tape::new();
        let vars: Vec<_> = xs.iter().map(|x| tape.constant(x.clone())).collect();
        f(&tape, &vars).value().item()
    };
    let tape = Tape::new();
    let vars: Vec<_> = inputs.iter().map(|x| tape.leaf(x.clone())).collect();
    let out = f(&tape, &vars);
    let grads = tape.backward(out);
    let mut report = GradcheckReport {
        max_rel_err: 0.0,
        input: 0,
        index: 0,
        analytic: 0.0,
        numeric: 0.0,
        checked: 0,
    };
    let mut xs = inputs.to_vec();
    for (k, v) in vars.iter().enumerate() {
        let g = grads.wrt(*v);
        for i in 0..xs[k].numel() {
            let x0 = xs[k].data()[i];
            xs[k].data_mut()[i] = x0 + h;
            let fp = eval(&xs);
            xs[k].data_mut()[i] = x0 - h;
            let fm = eval(&xs);
            xs[k].data_mut()[i] = x0;
            let numeric = (fp - fm) / (2.0 * h);
            let analytic = g.data()[i];
            let rel = (analytic - numeric).abs() / 1f64.max(analytic.abs()).max(numeric.abs());
            report.checked += 1;
            if rel > report.max_rel_err || rel.is_nan() {
                report = GradcheckReport {
                    max_rel_err: if rel.is_nan() { f64::INFINITY } else { rel },
                    input: k,
                    index: i,
                    analytic,
                    numeric,
                    checked: report.checked,
                };
            }
        }
    }
    report
}
