//! The define-by-run tape: an append-only list of nodes (a Wengert list).
//!
//! Each node holds its value and, for an operation, a backward rule over its parents. Parents
//! always have smaller indices, so one reverse scan is a reverse topological order. Ops are
//! coarse (a whole batched block product, a whole Cayley map over all blocks), so the per-node
//! overhead never matters. Trainable parameters live outside the tape: enter them with
//! [`Tape::leaf`] each step, read their gradients from [`Grads`], drop the tape.
//!
//! ```
//! use gslab::{Tape, Tensor};
//! let tape = Tape::<f64>::new();
//! let x = tape.leaf(Tensor::from_vec(&[2], vec![3.0, 4.0]).unwrap());
//! let y = tape.push_op(x.value().map(|v| v * v), &[x], move |g, _needs| {
//!     // d(x²)/dx = 2x, captured values are moved into the rule
//!     vec![Some(g.zip_map(&Tensor::from_vec(&[2], vec![6.0, 8.0]).unwrap(), "sq", |a, b| a * b))]
//! });
//! let grads = tape.backward_with(y, Tensor::ones(&[2]));
//! assert_eq!(grads.get(x).unwrap().data(), &[6.0, 8.0]);
//! ```

use crate::real::Real;
use crate::tensor::Tensor;
use std::cell::RefCell;
use std::rc::Rc;

/// A backward rule: given the gradient of the node's output and, for each parent, whether that
/// parent needs a gradient, returns one optional gradient per parent (same shape as the parent).
pub type BackwardFn<T> = Box<dyn Fn(&Tensor<T>, &[bool]) -> Vec<Option<Tensor<T>>>>;

struct Node<T: Real> {
    value: Rc<Tensor<T>>,
    parents: Vec<usize>,
    backward: Option<BackwardFn<T>>,
    requires_grad: bool,
}

/// An append-only list of nodes; see the module docs.
pub struct Tape<T: Real> {
    nodes: RefCell<Vec<Node<T>>>,
}

/// A handle to one node of a [`Tape`]; cheap to copy. Operations are methods on `Var`.
#[derive(Clone, Copy)]
pub struct Var<'t, T: Real> {
    tape: &'t Tape<T>,
    id: usize,
}

impl<T: Real> Default for Tape<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Real> Tape<T> {
    /// An empty tape.
    pub fn new() -> Self {
        Self {
            nodes: RefCell::new(Vec::new()),
        }
    }

    /// Number of nodes recorded so far.
    pub fn len(&self) -> usize {
        self.nodes.borrow().len()
    }

    /// True if nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(&self, node: Node<T>) -> Var<'_, T> {
        let mut nodes = self.nodes.borrow_mut();
        nodes.push(node);
        Var {
            tape: self,
            id: nodes.len() - 1,
        }
    }

    /// Enters a value that needs a gradient (a trainable parameter or an input of interest).
    pub fn leaf(&self, value: Tensor<T>) -> Var<'_, T> {
        self.push(Node {
            value: Rc::new(value),
            parents: vec![],
            backward: None,
            requires_grad: true,
        })
    }

    /// Enters a constant: no gradient flows to it.
    pub fn constant(&self, value: Tensor<T>) -> Var<'_, T> {
        self.push(Node {
            value: Rc::new(value),
            parents: vec![],
            backward: None,
            requires_grad: false,
        })
    }

    /// Records an operation with output `value`, inputs `parents` and backward rule `backward`.
    /// If no parent needs a gradient the rule is dropped and the result is a constant. This is
    /// the one entry point every op uses.
    pub fn push_op<'t>(
        &'t self,
        value: Tensor<T>,
        parents: &[Var<'t, T>],
        backward: impl Fn(&Tensor<T>, &[bool]) -> Vec<Option<Tensor<T>>> + 'static,
    ) -> Var<'t, T> {
        let requires_grad = {
            let nodes = self.nodes.borrow();
            parents.iter().any(|p| {
                assert!(
                    std::ptr::eq(p.tape, self),
                    "push_op: a parent belongs to another tape"
                );
                nodes[p.id].requires_grad
            })
        };
        self.push(Node {
            value: Rc::new(value),
            parents: parents.iter().map(|p| p.id).collect(),
            backward: requires_grad.then(|| Box::new(backward) as BackwardFn<T>),
            requires_grad,
        })
    }

    /// Reverse-mode sweep from a scalar `loss` (seed gradient 1).
    ///
    /// # Panics
    /// If `loss` does not hold exactly one element.
    pub fn backward(&self, loss: Var<'_, T>) -> Grads<T> {
        let shape = loss.value().shape().to_vec();
        assert!(
            loss.value().numel() == 1,
            "backward: loss must be a scalar, got shape {shape:?}"
        );
        self.backward_with(loss, Tensor::ones(&shape))
    }

    /// Reverse-mode sweep from `out` with seed gradient `seed` (a vector-Jacobian product).
    ///
    /// # Panics
    /// If `seed` does not have the shape of `out`.
    pub fn backward_with(&self, out: Var<'_, T>, seed: Tensor<T>) -> Grads<T> {
        let nodes = self.nodes.borrow();
        seed.assert_same_shape(&nodes[out.id].value, "backward_with");
        let mut grads: Vec<Option<Tensor<T>>> = (0..nodes.len()).map(|_| None).collect();
        grads[out.id] = Some(seed);
        for id in (0..=out.id).rev() {
            let node = &nodes[id];
            let (Some(rule), Some(g)) = (&node.backward, &grads[id]) else {
                continue;
            };
            let needs: Vec<bool> = node
                .parents
                .iter()
                .map(|&p| nodes[p].requires_grad)
                .collect();
            let parent_grads = rule(g, &needs);
            for (&p, pg) in node.parents.iter().zip(parent_grads) {
                let Some(pg) = pg else { continue };
                if !nodes[p].requires_grad {
                    continue;
                }
                pg.assert_same_shape(&nodes[p].value, "backward (gradient vs parent)");
                match &mut grads[p] {
                    Some(acc) => acc.add_assign(&pg),
                    slot => *slot = Some(pg),
                }
            }
            if !node.parents.is_empty() {
                grads[id] = None; // intermediate gradients are not kept
            }
        }
        Grads { grads }
    }
}

impl<'t, T: Real> Var<'t, T> {
    /// The node's value (shared, no copy).
    pub fn value(&self) -> Rc<Tensor<T>> {
        Rc::clone(&self.tape.nodes.borrow()[self.id].value)
    }

    /// The node's shape.
    pub fn shape(&self) -> Vec<usize> {
        self.tape.nodes.borrow()[self.id].value.shape().to_vec()
    }

    /// The tape this variable lives on.
    pub fn tape(&self) -> &'t Tape<T> {
        self.tape
    }

    /// The node index on its tape.
    pub fn id(&self) -> usize {
        self.id
    }

    /// True if gradients flow to this node.
    pub fn requires_grad(&self) -> bool {
        self.tape.nodes.borrow()[self.id].requires_grad
    }
}

/// Gradients of one backward sweep, looked up per leaf variable.
pub struct Grads<T> {
    grads: Vec<Option<Tensor<T>>>,
}

impl<T: Real> Grads<T> {
    /// The gradient with respect to a leaf `v`, or `None` if no path reaches it (or `v` is an
    /// intermediate node, whose gradients are not kept).
    pub fn get(&self, v: Var<'_, T>) -> Option<&Tensor<T>> {
        self.grads.get(v.id).and_then(|g| g.as_ref())
    }

    /// The gradient with respect to `v`, zeros of `v`'s shape if none flowed.
    pub fn wrt(&self, v: Var<'_, T>) -> Tensor<T> {
        self.get(v)
            .cloned()
            .unwrap_or_else(|| Tensor::zeros(&v.shape()))
    }

    /// Takes the gradient of `v` out, leaving `None`.
    pub fn take(&mut self, v: Var<'_, T>) -> Option<Tensor<T>> {
        self.grads.get_mut(v.id).and_then(|g| g.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autodiff::ops::test_util::{check, randn, t};

    fn square(x: Var<'_, f64>) -> Var<'_, f64> {
        let v = x.value();
        let out = v.map(|a| a * a);
        x.tape().push_op(out, &[x], move |g, _| {
            vec![Some(g.zip_map(&v, "square", |gi, xi| 2.0 * gi * xi))]
        })
    }

    fn sum(x: Var<'_, f64>) -> Var<'_, f64> {
        let shape = x.shape();
        let s = Tensor::scalar(x.value().sum());
        x.tape().push_op(s, &[x], move |g, _| {
            vec![Some(Tensor::full(&shape, g.item()))]
        })
    }

    #[test]
    fn reverse_scan_accumulates_over_shared_parents() {
        // f(x) = Σ x² + Σ x² (x used twice): df/dx = 4x
        let tape = Tape::new();
        let x = tape.leaf(Tensor::from_vec(&[3], vec![1.0, -2.0, 0.5]).unwrap());
        let a = sum(square(x));
        let b = sum(square(x));
        let two = {
            let (va, vb) = (a.value(), b.value());
            tape.push_op(Tensor::scalar(va.item() + vb.item()), &[a, b], |g, _| {
                vec![Some(g.clone()), Some(g.clone())]
            })
        };
        let grads = tape.backward(two);
        assert_eq!(grads.get(x).unwrap().data(), &[4.0, -8.0, 2.0]);
    }

    #[test]
    fn constants_get_no_gradient_and_drop_their_rules() {
        let tape = Tape::new();
        let c = tape.constant(Tensor::from_vec(&[2], vec![1.0, 2.0]).unwrap());
        let y = sum(square(c));
        assert!(!y.requires_grad());
        let grads = tape.backward(y);
        assert!(grads.get(c).is_none());
    }

    #[test]
    #[should_panic(expected = "backward: loss must be a scalar")]
    fn backward_from_non_scalar_panics() {
        let tape = Tape::<f64>::new();
        let x = tape.leaf(Tensor::zeros(&[2]));
        tape.backward(square(x));
    }

    #[test]
    fn gradcheck_of_a_correct_rule_is_tight_and_of_a_wrong_rule_is_not() {
        use crate::autodiff::gradcheck::gradcheck;
        let x = Tensor::from_vec(&[3], vec![0.3, -1.2, 2.0]).unwrap();
        let good = gradcheck(|_, v| sum(square(v[0])), std::slice::from_ref(&x), 1e-6);
        assert!(good.max_rel_err < 1e-8, "{good}");
        let bad = gradcheck(
            |t, v| {
                let x = v[0];
                let val = x.value();
                let out = Tensor::scalar(val.data().iter().map(|a| a * a).sum());
                // wrong rule: gradient x instead of 2x
                t.push_op(out, &[x], move |g, _| vec![Some(val.scale(g.item()))])
            },
            &[x],
            1e-6,
        );
        assert!(bad.max_rel_err > 0.1, "{bad}");
    }

    // ------------------------------------------------ the tape over the real ops of `ops`

    #[test]
    fn grad_composite_mlp() {
        // x·W1ᵀ + b1 → tanh → ·W2ᵀ + b2 → cross-entropy: the chain the training test relies on.
        let labels = [0, 1, 1];
        let x = randn(&[3, 2], 45);
        check(
            "mlp",
            move |tape, v| {
                let xc = tape.constant(x.clone());
                let h = xc.matmul_t(false, v[0], true).add_row(v[1]).tanh();
                h.matmul_t(false, v[2], true)
                    .add_row(v[3])
                    .softmax_cross_entropy(&labels)
            },
            &[
                randn(&[5, 2], 46),
                randn(&[5], 47),
                randn(&[2, 5], 48),
                randn(&[2], 49),
            ],
        );
    }

    /// One MLP step: loss and the gradient of the first weight.
    fn mlp_step<T: Real>(xs: &Tensor<f64>, ws: &[Tensor<f64>]) -> (f64, Vec<f64>) {
        let tape = Tape::<T>::new();
        let x = tape.constant(xs.cast());
        let v: Vec<_> = ws.iter().map(|w| tape.leaf(w.cast())).collect();
        let h = x.matmul_t(false, v[0], true).add_row(v[1]).sigmoid();
        let h = h.mul_row(v[2]).relu().exp().log();
        let out = h.matmul_t(false, v[3], true);
        let loss = out
            .softmax_cross_entropy(&[1, 0, 2, 1])
            .add(out.square().mean());
        let g = tape.backward(loss);
        let gw = g
            .get(v[0])
            .unwrap()
            .data()
            .iter()
            .map(|&a| Real::to_f64(a))
            .collect();
        (Real::to_f64(loss.value().item()), gw)
    }

    #[test]
    fn f32_forward_and_backward_agree_with_f64() {
        let x = randn(&[4, 3], 50);
        let ws = [
            randn(&[6, 3], 51),
            randn(&[6], 52),
            randn(&[6], 53),
            randn(&[3, 6], 54),
        ];
        let (l64, g64) = mlp_step::<f64>(&x, &ws);
        let (l32, g32) = mlp_step::<f32>(&x, &ws);
        println!("loss f64 {l64:.10}, f32 {l32:.10}");
        assert!(
            (l64 - l32).abs() <= 1e-5 * l64.abs().max(1.0),
            "{l64} vs {l32}"
        );
        let scale = g64.iter().fold(1f64, |m, v| m.max(v.abs()));
        for (a, b) in g64.iter().zip(&g32) {
            assert!((a - b).abs() <= 1e-5 * scale, "gradient {a} vs {b}");
        }
    }

    #[test]
    fn constant_gets_no_gradient() {
        let tape = Tape::<f64>::new();
        let x = tape.leaf(t(&[2], &[1.0, 2.0]));
        let c = tape.constant(t(&[2], &[3.0, 4.0]));
        let cc = c.exp().mul(c); // only constants upstream: a constant, no backward rule kept
        assert!(!cc.requires_grad());
        let loss = x.mul(c).add(cc).sum();
        let g = tape.backward(loss);
        assert!(g.get(c).is_none());
        assert_eq!(g.get(x).unwrap().data(), &[3.0, 4.0]);
    }
}
