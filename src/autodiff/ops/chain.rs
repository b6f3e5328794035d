//! Tape op for structured chain products: `Y = X·Aᵀ` with
//! `A = P_{m+1} B_m P_m ⋯ B_1 P_1` (Definition 5.1), differentiable in `X` and in every block
//! tensor `B_i`. The forward and backward passes are the batched kernels of
//! [`crate::kernels::chain`].

use crate::autodiff::tape::Var;
use crate::kernels::chain::{chain_backward, chain_forward, chain_forward_saved};
use crate::kernels::layout::ChainLayout;
use crate::real::Real;
use crate::tensor::Tensor;
use faer::Par;
use std::rc::Rc;
use std::sync::Arc;

/// `Y = X·Aᵀ` for `x` of shape `(batch, n_in)` and `blocks[i]` of shape `(k_i, b_i¹, b_i²)`,
/// with `A = P_{m+1} B_m P_m ⋯ B_1 P_1` given by `layout`. Output shape `(batch, n_out)`.
///
/// Gradients: `dX = dY·A` and `dB_i[j] = Σ_s dZ_{i,j}[:, s] · U_{i,j}[:, s]ᵀ`, where `U_i` is the
/// input and `dZ_i` the output gradient of factor `i` (computed by the transposed chain). The
/// forward pass saves the factor inputs only if some parent needs a gradient.
///
/// # Panics
/// If `x` is not 2-D with `n_in` columns, or `blocks` does not hold one tensor of shape
/// `(k_i, b_i¹, b_i²)` per factor; the message names `chain_apply` and the shapes.
///
/// # Example
/// ```
/// # use gslab::autodiff::ops::chain::chain_apply;
/// # use gslab::{Tape, Tensor, blocks::BlockShape, kernels::layout::ChainLayout};
/// # use std::sync::Arc;
/// // A = diag(2, 3): one block-diagonal factor of two 1×1 blocks.
/// let layout = Arc::new(ChainLayout::block_diag(BlockShape::new(2, 1, 1))?);
/// let tape = Tape::<f64>::new();
/// let x = tape.leaf(Tensor::from_vec(&[1, 2], vec![1.0, -1.0])?);
/// let b = tape.leaf(Tensor::from_vec(&[2, 1, 1], vec![2.0, 3.0])?);
/// assert_eq!(chain_apply(x, &[b], &layout).value().data(), &[2.0, -3.0]);
/// # Ok::<(), gslab::Error>(())
/// ```
pub fn chain_apply<'t, T: Real>(
    x: Var<'t, T>,
    blocks: &[Var<'t, T>],
    layout: &Arc<ChainLayout>,
) -> Var<'t, T> {
    let xv = x.value();
    let xs = xv.shape();
    assert!(
        xs.len() == 2 && xs[1] == layout.n_in(),
        "chain_apply: input of shape {xs:?} for a chain of shape ({}, {}) needing (batch, {})",
        layout.n_out(),
        layout.n_in(),
        layout.n_in()
    );
    assert!(
        blocks.len() == layout.m(),
        "chain_apply: {} block tensors for a chain of {} factors",
        blocks.len(),
        layout.m()
    );
    let bv: Vec<Rc<Tensor<T>>> = blocks.iter().map(Var::value).collect();
    for (i, (b, f)) in bv.iter().zip(layout.factors()).enumerate() {
        assert!(
            b.shape() == f.tensor_shape(),
            "chain_apply: factor {i} needs blocks of shape {:?}, got {:?}",
            f.tensor_shape(),
            b.shape()
        );
    }
    let mut parents = Vec::with_capacity(blocks.len() + 1);
    parents.push(x);
    parents.extend_from_slice(blocks);
    let tape = x.tape();
    if !parents.iter().any(Var::requires_grad) {
        let y = chain_forward(layout, &bv, &xv, Par::rayon(0));
        return tape.push_op(y, &parents, |_, _| Vec::new());
    }
    let (y, saved) = chain_forward_saved(layout, &bv, &xv, Par::rayon(0));
    let layout = Arc::clone(layout);
    tape.push_op(y, &parents, move |g, needs| {
        let (dx, dbs) = chain_backward(&layout, &bv, (&xv, &saved), g, Par::rayon(0));
        let mut out = Vec::with_capacity(needs.len());
        out.push(needs[0].then_some(dx));
        out.extend(
            dbs.into_iter()
                .zip(&needs[1..])
                .map(|(d, &n)| n.then_some(d)),
        );
        out
    })
}

#[cfg(test)]
mod tests {
    use super::chain_apply;
    use crate::autodiff::ops::test_util::{check, project, randn};
    use crate::autodiff::tape::{Tape, Var};
    use crate::blocks::BlockShape;
    use crate::kernels::layout::ChainLayout;
    use crate::kernels::reference::reference_apply;
    use crate::tensor::Tensor;
    use std::sync::Arc;

    /// GSOFT's `Q = Pᵀ L P R` with `k = 3` blocks of `2 × 2` (`n = 6`, `P = P_(3,6)`), its
    /// blocks in application order `[R, L]`, and a `(2, 6)` input.
    fn tiny_gsoft() -> (Arc<ChainLayout>, Vec<Tensor<f64>>, Tensor<f64>) {
        let layout = ChainLayout::gsoft(BlockShape::square(3, 2), BlockShape::square(3, 2));
        let layout = Arc::new(layout.unwrap());
        let blocks = vec![randn(&[3, 2, 2], 61), randn(&[3, 2, 2], 62)];
        (layout, blocks, randn(&[2, 6], 63))
    }

    #[test]
    fn grad_chain_apply_gsoft() {
        let (layout, blocks, x) = tiny_gsoft();
        let mut inputs = vec![x];
        inputs.extend(blocks);
        // inputs: X, B_R, B_L; every entry of each is checked
        check(
            "chain_apply gsoft",
            |_, v| project(chain_apply(v[0], &v[1..], &layout), 31),
            &inputs,
        );
    }

    /// [`Tape::constant`] or [`Tape::leaf`].
    type Make = for<'a> fn(&'a Tape<f64>, Tensor<f64>) -> Var<'a, f64>;

    /// Both forward paths (constants only, and leaves with saved factor inputs) against the naive
    /// `reference_apply`, row by row.
    #[test]
    fn forward_chain_apply_matches_reference_apply() {
        let (layout, blocks, x) = tiny_gsoft();
        let mut want = Vec::new();
        for row in x.data().chunks_exact(6) {
            want.extend(reference_apply(&layout, &blocks, row));
        }
        let tol = 1e-13 * (1.0 + want.iter().fold(0f64, |m, v| m.max(v.abs())));
        let tape = Tape::<f64>::new();
        let paths: [(bool, Make); 2] = [(false, Tape::constant), (true, Tape::leaf)];
        for (grad, make) in paths {
            let xv = make(&tape, x.clone());
            let bv: Vec<Var<'_, f64>> = blocks.iter().map(|b| make(&tape, b.clone())).collect();
            let y = chain_apply(xv, &bv, &layout);
            assert_eq!(y.requires_grad(), grad);
            assert_eq!(y.shape(), vec![2, 6]);
            for (a, b) in y.value().data().iter().zip(&want) {
                assert!((a - b).abs() <= tol, "{:?} vs {want:?}", y.value().data());
            }
        }
    }
}
