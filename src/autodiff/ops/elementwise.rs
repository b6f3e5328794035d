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
