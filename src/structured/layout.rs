//! [`ChainLayout`]: the shape of a product `A = P_{m+1} B_m P_m ⋯ B_1 P_1` (Definition 5.1),
//! without values, and the slow reference product used to check every fast kernel.
//!
//! Every structured operator of the crate (block-diagonal, GS, GS chains, Monarch, the BOFT
//! butterfly) is such a chain. Factor `i` (0-based here, `B_{i+1}` in the paper) is
//! block-diagonal with `k` blocks of `b1 × b2`, stored as a `(k, b1, b2)` row-major tensor; it maps
//! a vector of length `k·b2` to one of length `k·b1`. `perms[0]` is P_1 (applied to the input),
//! `perms[i]` sits before factor `i`, and `perms[m]` is P_{m+1} (applied last). Permutations
//! use the gather convention of [`Perm`].

use crate::error::{Error, Result};
use crate::kernels::plan::PlanCache;
use crate::perm::Perm;
use crate::real::Real;
use crate::tensor::Tensor;

/// Shape of one block-diagonal factor: `k` blocks of `b1 × b2` (rows × columns).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockShape {
    /// Number of blocks.
    pub k: usize,
    /// Rows per block.
    pub b1: usize,
    /// Columns per block.
    pub b2: usize,
}

impl BlockShape {
    /// `k` blocks of `b1 × b2`.
    pub fn new(k: usize, b1: usize, b2: usize) -> Self {
        Self { k, b1, b2 }
    }

    /// `k` square blocks of `b × b`.
    pub fn square(k: usize, b: usize) -> Self {
        Self { k, b1: b, b2: b }
    }

    /// Output length `k·b1`.
    pub fn n_out(&self) -> usize {
        self.k * self.b1
    }

    /// Input length `k·b2`.
    pub fn n_in(&self) -> usize {
        self.k * self.b2
    }

    /// Entries `k·b1·b2`.
    pub fn numel(&self) -> usize {
        self.k * self.b1 * self.b2
    }

    /// The tensor shape `[k, b1, b2]` of the factor's blocks.
    pub fn tensor_shape(&self) -> [usize; 3] {
        [self.k, self.b1, self.b2]
    }
}

/// The sizes and permutations of `P_{m+1} B_m P_m ⋯ B_1 P_1`, validated at construction.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainLayout {
    factors: Vec<BlockShape>,
    perms: Vec<Perm>,
    /// The kernels' execution plans for this layout, built on first use (derived data).
    plans: PlanCache,
}

impl ChainLayout {
    /// Builds and validates a chain: `factors.len() = m ≥ 1`, `perms.len() = m + 1`,
    /// `|P_1| = n_in(B_1)`, `|P_{i+1}| = n_out(B_i) = n_in(B_{i+1})` (Definition 5.1:
    /// `b_i¹·k_i = b_{i+1}²·k_{i+1}`) and `|P_{m+1}| = n_out(B_m)`.
    ///
    /// # Errors
    /// [`Error::BlockMismatch`] naming the factor and the sizes that do not chain, or an empty
    /// block shape.
    pub fn new(factors: Vec<BlockShape>, perms: Vec<Perm>) -> Result<Self> {
        if factors.is_empty() || perms.len() != factors.len() + 1 {
            return Err(Error::BlockMismatch(format!(
                "a chain of m factors needs m >= 1 and m + 1 permutations, got {} factors and {} permutations",
                factors.len(),
                perms.len()
            )));
        }
        for (i, f) in factors.iter().enumerate() {
            if f.k == 0 || f.b1 == 0 || f.b2 == 0 {
                return Err(Error::BlockMismatch(format!(
                    "factor {i} has an empty block shape {f:?}"
                )));
            }
            let want = f.n_in();
            let got = perms[i].len();
            if want != got {
                return Err(Error::BlockMismatch(format!(
                    "factor {i} ({} blocks of {}x{}) takes length {want} but the permutation before it has size {got}",
                    f.k, f.b1, f.b2
                )));
            }
        }
        let last = factors[factors.len() - 1];
        if perms[factors.len()].len() != last.n_out() {
            return Err(Error::BlockMismatch(format!(
                "the last factor outputs length {} but the output permutation has size {}",
                last.n_out(),
                perms[factors.len()].len()
            )));
        }
        Ok(Self {
            factors,
            perms,
            plans: PlanCache::default(),
        })
    }

    /// Number of block-diagonal factors `m`.
    pub fn m(&self) -> usize {
        self.factors.len()
    }

    /// The factor shapes, `B_1` first.
    pub fn factors(&self) -> &[BlockShape] {
        &self.factors
    }

    /// The permutations `P_1, …, P_{m+1}`.
    pub fn perms(&self) -> &[Perm] {
        &self.perms
    }

    /// The chain kernels' cache of execution plans for this layout (see `kernels::plan`).
    pub(crate) fn plan_cache(&self) -> &PlanCache {
        &self.plans
    }

    /// Input length `n` (columns of A).
    pub fn n_in(&self) -> usize {
        self.factors[0].n_in()
    }

    /// Output length (rows of A).
    pub fn n_out(&self) -> usize {
        self.factors[self.m() - 1].n_out()
    }

    /// Entries of all blocks, `Σ k_i·b_i¹·b_i²`.
    pub fn param_count(&self) -> usize {
        self.factors.iter().map(BlockShape::numel).sum()
    }

    /// Multiply-adds of one matrix-vector product, `Σ k_i·b_i¹·b_i²` (permutations are free).
    pub fn macs_per_vector(&self) -> usize {
        self.param_count()
    }

    /// Checks that `blocks` has one `(k, b1, b2)` tensor per factor.
    ///
    /// # Errors
    /// [`Error::BlockMismatch`] naming the first factor whose tensor has the wrong shape.
    pub fn check_blocks<T: Real>(&self, blocks: &[Tensor<T>]) -> Result<()> {
        if blocks.len() != self.m() {
            return Err(Error::BlockMismatch(format!(
                "{} block tensors for a chain of {} factors",
                blocks.len(),
                self.m()
            )));
        }
        for (i, (b, f)) in blocks.iter().zip(&self.factors).enumerate() {
            if b.shape() != f.tensor_shape() {
                return Err(Error::BlockMismatch(format!(
                    "factor {i} needs blocks of shape {:?}, got {:?}",
                    f.tensor_shape(),
                    b.shape()
                )));
            }
        }
        Ok(())
    }
}

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

    #[test]
    fn size_rules_are_checked_with_named_sizes() {
        let id = |n| Perm::identity(n);
        // B_1: 4 blocks of 2x3 maps 12 -> 8; B_2 must take 8.
        let ok = ChainLayout::new(
            vec![BlockShape::new(4, 2, 3), BlockShape::new(2, 5, 4)],
            vec![id(12), id(8), id(10)],
        )
        .unwrap();
        assert_eq!((ok.n_in(), ok.n_out(), ok.param_count()), (12, 10, 24 + 40));
        let err = ChainLayout::new(
            vec![BlockShape::new(4, 2, 3), BlockShape::new(3, 5, 3)],
            vec![id(12), id(8), id(15)],
        )
        .unwrap_err();
        assert!(err.to_string().contains("factor 1"), "{err}");
        assert!(ChainLayout::new(vec![BlockShape::new(4, 2, 3)], vec![id(12)]).is_err());
        assert!(ChainLayout::new(vec![BlockShape::new(0, 2, 3)], vec![id(0), id(0)]).is_err());
    }

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
