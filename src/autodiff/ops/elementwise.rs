//! Elementwise binary ops (`add`, `sub`, `mul`, `div`), negation, scalar ops, `exp`, `log`,
//! `square`, and the `std::ops` operators for [`Var`].
//!
//! Every binary op requires both operands to have the same shape (no implicit broadcasting; see
//! [`broadcast`](super::broadcast) for the explicit row broadcast). Gradients are written for an
//! upstream gradient `G` of the output's shape; `⊙` and `⊘` are the elementwise product and quotient.

use crate::autodiff::tape::Var;
use crate::real::Real;
use crate::tensor::Tensor;
use std::cell::OnceCell;
use std::rc::Rc;

/// Records a unary op `y = f(x)` whose backward rule `dx = rule(G, x)` reads the input.
pub(crate) fn unary_from_input<'t, T: Real>(
    x: Var<'t, T>,
    value: Tensor<T>,
    rule: impl Fn(&Tensor<T>, &Tensor<T>) -> Tensor<T> + 'static,
) -> Var<'t, T> {
    let xv = x.value();
    x.tape().push_op(value, &[x], move |g, needs| {
        vec![needs[0].then(|| rule(g, &xv))]
    })
}

/// Records a unary op `y = f(x)` whose backward rule `dx = rule(G, y)` reads the output; the
/// output is shared with the tape node (no copy).
pub(crate) fn unary_from_output<'t, T: Real>(
    x: Var<'t, T>,
    value: Tensor<T>,
    rule: impl Fn(&Tensor<T>, &Tensor<T>) -> Tensor<T> + 'static,
) -> Var<'t, T> {
    let cell: Rc<OnceCell<Rc<Tensor<T>>>> = Rc::new(OnceCell::new());
    let out_cell = Rc::clone(&cell);
    let out = x.tape().push_op(value, &[x], move |g, needs| {
        let y = out_cell.get().expect("unary op: output not recorded");
        vec![needs[0].then(|| rule(g, y))]
    });
    let _ = cell.set(out.value());
    out
}

/// Panics unless `a` and `b` have the same shape, naming `op` and both shapes.
fn same_shape<T: Real>(a: &Var<'_, T>, b: &Var<'_, T>, op: &str) {
    let (sa, sb) = (a.shape(), b.shape());
    assert!(sa == sb, "{op}: shape mismatch {sa:?} vs {sb:?}");
}

// The `std::ops` traits are implemented below and forward to these methods; the inherent
// methods exist so that chains like `x.mul(y).sum()` need no trait import.
#[allow(clippy::should_implement_trait)]
impl<'t, T: Real> Var<'t, T> {
    /// Elementwise sum `z = x + y`. Gradients: `dx = G`, `dy = G`.
    ///
    /// # Panics
    /// If the shapes differ; the message names `add` and both shapes.
    pub fn add(self, other: Var<'t, T>) -> Var<'t, T> {
        same_shape(&self, &other, "add");
        let value = self.value().add(&other.value());
        self.tape().push_op(value, &[self, other], |g, needs| {
            vec![needs[0].then(|| g.clone()), needs[1].then(|| g.clone())]
        })
    }

    /// Elementwise difference `z = x − y`. Gradients: `dx = G`, `dy = −G`.
    ///
    /// # Panics
    /// If the shapes differ; the message names `sub` and both shapes.
    pub fn sub(self, other: Var<'t, T>) -> Var<'t, T> {
        same_shape(&self, &other, "sub");
        let value = self.value().sub(&other.value());
        self.tape().push_op(value, &[self, other], |g, needs| {
            vec![needs[0].then(|| g.clone()), needs[1].then(|| g.map(|v| -v))]
        })
    }

    /// Elementwise product `z = x ⊙ y`. Gradients: `dx = G ⊙ y`, `dy = G ⊙ x`.
    ///
    /// # Panics
    /// If the shapes differ; the message names `mul` and both shapes.
    ///
    /// # Example
    /// ```
    /// # let tape = gslab::Tape::<f64>::new();
    /// let x = tape.leaf(gslab::Tensor::from_vec(&[2], vec![1.0, 2.0])?);
    /// let y = tape.leaf(gslab::Tensor::from_vec(&[2], vec![3.0, 4.0])?);
    /// assert_eq!((x * y).value().data(), &[3.0, 8.0]);
    /// # Ok::<(), gslab::Error>(())
    /// ```
    pub fn mul(self, other: Var<'t, T>) -> Var<'t, T> {
        same_shape(&self, &other, "mul");
        let (xv, yv) = (self.value(), other.value());
        let value = xv.mul(&yv);
        self.tape().push_op(value, &[self, other], move |g, needs| {
            vec![needs[0].then(|| g.mul(&yv)), needs[1].then(|| g.mul(&xv))]
        })
    }

    /// Elementwise quotient `z = x ⊘ y`. Gradients: `dx = G ⊘ y`, `dy = −G ⊙ x ⊘ y²`.
    ///
    /// # Panics
    /// If the shapes differ; the message names `div` and both shapes.
    pub fn div(self, other: Var<'t, T>) -> Var<'t, T> {
        same_shape(&self, &other, "div");
        let (xv, yv) = (self.value(), other.value());
        let value = xv.div(&yv);
        self.tape().push_op(value, &[self, other], move |g, needs| {
            let dx = needs[0].then(|| g.div(&yv));
            let dy = needs[1].then(|| {
                let gx = g.mul(&xv);
                gx.zip_map(&yv, "div backward", |a, b| -a / (b * b))
            });
            vec![dx, dy]
        })
    }

    /// Negation `z = −x`. Gradient: `dx = −G`.
    pub fn neg(self) -> Var<'t, T> {
        let value = self.value().map(|v| -v);
        unary_from_input(self, value, |g, _| g.map(|v| -v))
    }

    /// Adds a scalar, `z = x + s`. Gradient: `dx = G`.
    pub fn add_scalar(self, s: T) -> Var<'t, T> {
        let value = self.value().map(|v| v + s);
        unary_from_input(self, value, |g, _| g.clone())
    }

    /// Subtracts a scalar, `z = x − s`. Gradient: `dx = G`.
    pub fn sub_scalar(self, s: T) -> Var<'t, T> {
        let value = self.value().map(|v| v - s);
        unary_from_input(self, value, |g, _| g.clone())
    }

    /// Multiplies by a scalar, `z = s·x`. Gradient: `dx = s·G`.
    pub fn mul_scalar(self, s: T) -> Var<'t, T> {
        let value = self.value().scale(s);
        unary_from_input(self, value, move |g, _| g.scale(s))
    }

    /// Divides by a scalar, `z = x / s`. Gradient: `dx = G / s`.
    pub fn div_scalar(self, s: T) -> Var<'t, T> {
        let value = self.value().map(|v| v / s);
        unary_from_input(self, value, move |g, _| g.map(|v| v / s))
    }

    /// Scalar power `z = x^p` (real exponent; `x > 0` unless `p` is an integer).
    /// Gradient: `dx = G ⊙ p·x^(p−1)`.
    pub fn powf(self, p: T) -> Var<'t, T> {
        let value = self.value().map(|v| v.powf(p));
        unary_from_input(self, value, move |g, x| {
            g.zip_map(x, "powf backward", |gi, xi| gi * p * xi.powf(p - T::one()))
        })
    }

    /// Square `z = x²`. Gradient: `dx = 2 G ⊙ x`.
    pub fn square(self) -> Var<'t, T> {
        let value = self.value().map(|v| v * v);
        let two = T::from_f64(2.0);
        unary_from_input(self, value, move |g, x| {
            g.zip_map(x, "square backward", |gi, xi| two * gi * xi)
        })
    }

    /// Exponential `z = eˣ`. Gradient: `dx = G ⊙ z` (the stored output, no recomputation).
    pub fn exp(self) -> Var<'t, T> {
        let value = self.value().map(|v| v.exp());
        unary_from_output(self, value, |g, y| g.mul(y))
    }

    /// Natural logarithm `z = ln x` (NaN / −∞ for `x ≤ 0`, as `f64::ln`). Gradient: `dx = G ⊘ x`.
    pub fn log(self) -> Var<'t, T> {
        let value = self.value().map(|v| v.ln());
        unary_from_input(self, value, |g, x| g.div(x))
    }
}

macro_rules! var_binop {
    ($tr:ident, $method:ident, $scalar:ident, $sym:literal) => {
        #[doc = concat!("`x ", $sym, " y` for two variables; see [`Var::", stringify!($method), "`].")]
        impl<'t, T: Real> std::ops::$tr<Var<'t, T>> for Var<'t, T> {
            type Output = Var<'t, T>;
            fn $method(self, rhs: Var<'t, T>) -> Var<'t, T> {
                Var::$method(self, rhs)
            }
        }

        #[doc = concat!("`x ", $sym, " s` for a scalar `s`; see [`Var::", stringify!($scalar), "`].")]
        impl<'t, T: Real> std::ops::$tr<T> for Var<'t, T> {
            type Output = Var<'t, T>;
            fn $method(self, rhs: T) -> Var<'t, T> {
                Var::$scalar(self, rhs)
            }
        }
    };
}

var_binop!(Add, add, add_scalar, "+");
var_binop!(Sub, sub, sub_scalar, "-");
var_binop!(Mul, mul, mul_scalar, "*");
var_binop!(Div, div, div_scalar, "/");

/// `−x`; see [`Var::neg`].
impl<'t, T: Real> std::ops::Neg for Var<'t, T> {
    type Output = Var<'t, T>;
    fn neg(self) -> Var<'t, T> {
        Var::neg(self)
    }
}

#[cfg(test)]
mod tests {
    use crate::autodiff::ops::test_util::{check, close, project, randn, t, uniform};
    use crate::autodiff::tape::Tape;
    use crate::tensor::Tensor;

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

    /// The `exp`, `log`, `powf` and `square` part of the hand-worked activation values
    /// (the `relu`, `tanh`, `sigmoid` part is `activation::tests::forward_activations`).
    #[test]
    fn forward_exp_log_powf_square() {
        let tape = Tape::<f64>::new();
        let ln2 = 2f64.ln();
        let ln3 = 3f64.ln();
        let x = tape.constant(t(&[5], &[-1.5, 0.0, ln2, ln3, -1000.0]));
        // e^(ln 3) = 3, ln(e^x) = x
        close(&[x.exp().value().data()[3]], &[3.0], 1e-15);
        let p = tape.constant(t(&[3], &[1.0, 4.0, 0.25]));
        close(p.log().value().data(), &[0.0, 2.0 * ln2, -2.0 * ln2], 1e-15);
        close(p.powf(0.5).value().data(), &[1.0, 2.0, 0.5], 1e-15);
        assert_eq!(p.square().value().data(), &[1.0, 16.0, 0.0625]);
    }

    /// The arithmetic ops on small integers, exact in binary: a gradcheck would not notice a
    /// forward pass that is wrong in the same way as its backward rule.
    #[test]
    fn forward_arithmetic_by_hand() {
        let tape = Tape::<f64>::new();
        let a = tape.constant(t(&[3], &[1.0, -2.0, 6.0]));
        let b = tape.constant(t(&[3], &[4.0, 0.5, -3.0]));
        assert_eq!(a.add(b).value().data(), &[5.0, -1.5, 3.0]);
        assert_eq!(a.sub(b).value().data(), &[-3.0, -2.5, 9.0]);
        assert_eq!(a.mul(b).value().data(), &[4.0, -1.0, -18.0]);
        assert_eq!(a.div(b).value().data(), &[0.25, -4.0, -2.0]);
        assert_eq!(a.neg().value().data(), &[-1.0, 2.0, -6.0]);
        assert_eq!(a.add_scalar(1.5).value().data(), &[2.5, -0.5, 7.5]);
        assert_eq!(a.sub_scalar(1.0).value().data(), &[0.0, -3.0, 5.0]);
        assert_eq!(a.mul_scalar(-2.0).value().data(), &[-2.0, 4.0, -12.0]);
        assert_eq!(a.div_scalar(4.0).value().data(), &[0.25, -0.5, 1.5]);
    }

    #[test]
    #[should_panic(expected = "sub: shape mismatch [2] vs [3]")]
    fn sub_mismatch_panics() {
        let tape = Tape::<f64>::new();
        let _ = tape
            .leaf(Tensor::zeros(&[2]))
            .sub(tape.leaf(Tensor::zeros(&[3])));
    }

    #[test]
    #[should_panic(expected = "div: shape mismatch [2] vs [3]")]
    fn div_mismatch_panics() {
        let tape = Tape::<f64>::new();
        let _ = tape
            .leaf(Tensor::zeros(&[2]))
            .div(tape.leaf(Tensor::zeros(&[3])));
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
}
