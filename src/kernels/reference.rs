//! The slow reference product of a chain `A = P_{m+1} B_m P_m ⋯ B_1 P_1`: naive index loops and
//! explicit permuted copies, written for clarity, not speed. Every fast kernel of the crate is
//! tested against it.

use crate::blocks::BlockShape;
use crate::kernels::layout::ChainLayout;
use crate::real::Real;
use crate::tensor::Tensor;

/// `B x` for one block-diagonal factor with naive index loops:
/// `y[j·b1 + u] = Σ_t B_j[u][t] · x[j·b2 + t]`.
pub fn reference_block_diag<T: Real>(shape: BlockShape, blocks: &Tensor<T>, x: &[T]) -> Vec<T> {
    let BlockShape { k, b1, b2 } = shape;
    let w = blocks.data();
    let mut y = vec![T::zero(); k * b1];
    for j in 0..k {
        for u in 0..b1 {
            let mut acc = T::zero();
            for t in 0..b2 {
                acc += w[(j * b1 + u) * b2 + t] * x[j * b2 + t];
            }
            y[j * b1 + u] = acc;
        }
    }
    y
}

/// The slow reference product `A x = P_{m+1} B_m P_m ⋯ B_1 P_1 x` for one vector, with naive
/// loops and explicit permuted copies. Every fast kernel is tested against it.
///
/// # Panics
/// If the blocks do not match the layout or `x.len() != n_in`.
pub fn reference_apply<T: Real>(layout: &ChainLayout, blocks: &[Tensor<T>], x: &[T]) -> Vec<T> {
    layout.check_blocks(blocks).expect("reference_apply");
    assert!(
        x.len() == layout.n_in(),
        "reference_apply: vector of length {} for n_in = {}",
        x.len(),
        layout.n_in()
    );
    let mut z = x.to_vec();
    for (i, f) in layout.factors().iter().enumerate() {
        z = layout.perms()[i].apply(&z);
        z = reference_block_diag(*f, &blocks[i], &z);
    }
    layout.perms()[layout.m()].apply(&z)
}

/// The dense matrix `A` (shape `(n_out, n_in)`) of a chain, column by column through
/// [`reference_apply`]. For tests and small examples only: it costs `n_in` reference products.
pub fn reference_dense<T: Real>(layout: &ChainLayout, blocks: &[Tensor<T>]) -> Tensor<T> {
    let (n_out, n_in) = (layout.n_out(), layout.n_in());
    let mut a = Tensor::zeros(&[n_out, n_in]);
    let mut e = vec![T::zero(); n_in];
    for j in 0..n_in {
        e[j] = T::one();
        let col = reference_apply(layout, blocks, &e);
        e[j] = T::zero();
        for (i, v) in col.into_iter().enumerate() {
            a.data_mut()[i * n_in + j] = v;
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perm::Perm;

    #[test]
    fn reference_of_single_block_is_plain_matvec() {
        let layout = ChainLayout::new(
            vec![BlockShape::new(1, 2, 3)],
            vec![Perm::identity(3), Perm::identity(2)],
        )
        .unwrap();
        let w = Tensor::from_vec(&[1, 2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        assert_eq!(
            reference_apply(&layout, &[w], &[1.0, 0.0, -1.0]),
            vec![-2.0, -2.0]
        );
    }

    #[test]
    fn reference_dense_of_permutations_only() {
        // 1 block 3x3 identity between P_1 and P_2: A = P_2 P_1, a permutation matrix
        let p1 = Perm::from_vec(vec![2, 0, 1]).unwrap();
        let p2 = Perm::from_vec(vec![1, 2, 0]).unwrap();
        let layout =
            ChainLayout::new(vec![BlockShape::square(1, 3)], vec![p1.clone(), p2.clone()]).unwrap();
        let a = reference_dense(
            &layout,
            &[Tensor::<f64>::eye(3).reshape(&[1, 3, 3]).unwrap()],
        );
        let p = p2.compose(&p1);
        for i in 0..3 {
            for j in 0..3 {
                assert_eq!(a.at2(i, j), if p.get(i) == j { 1.0 } else { 0.0 });
            }
        }
    }
}
