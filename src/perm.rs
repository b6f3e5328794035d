//! [`Perm`]: a permutation stored as an index map, never as a matrix.
//!
//! **Convention (gather).** A `Perm` with map σ acts on a vector by `(P x)[i] = x[σ(i)]`, so its
//! matrix has `P[i, σ(i)] = 1`. The paper's P_(k,n) appears in two readings (digest §2.2); both
//! have named constructors:
//! - [`Perm::shuffle_gather`]`(k, n)`: `(P x)[i] = x[σ_(k,n)(i)]`, the prose of Definition 5.2;
//! - [`Perm::shuffle_scatter`]`(k, n)`: `(P x)[σ_(k,n)(i)] = x[i]`, the official code's reading
//!   (`channel_shuffle`, `BlockdiagButterflyMultiply`), whose gather map is σ_(k,n)⁻¹ = σ_(n/k,n).
//!
//! with σ_(k,n)(i) = (i mod k)·(n/k) + ⌊i/k⌋.

use crate::error::{Error, Result};
use crate::real::Real;
use crate::tensor::Tensor;
use rand::Rng;
use rand::seq::SliceRandom;

/// A permutation of `{0, …, n−1}` stored as its gather map σ: `(P x)[i] = x[σ(i)]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Perm {
    map: Vec<usize>,
}

/// σ_(k,n)(i) = (i mod k)·(n/k) + ⌊i/k⌋ (Definition 5.2), validated.
fn sigma_kn(k: usize, n: usize) -> Result<Vec<usize>> {
    if k == 0 || n == 0 || !n.is_multiple_of(k) {
        return Err(Error::InvalidArgument(format!(
            "P_(k,n) needs 0 < k dividing n > 0, got k={k}, n={n}"
        )));
    }
    Ok((0..n).map(|i| (i % k) * (n / k) + i / k).collect())
}

/// σ^paired_(k,n)(i) = (⌊i/2⌋ mod k)·(n/k) + 2·⌊i/(2k)⌋ + (i mod 2) (digest §5.2), validated.
fn sigma_paired(k: usize, n: usize) -> Result<Vec<usize>> {
    if k == 0 || n == 0 || !n.is_multiple_of(2 * k) {
        return Err(Error::InvalidArgument(format!(
            "paired shuffle needs 0 < 2k dividing n > 0, got k={k}, n={n}"
        )));
    }
    Ok((0..n)
        .map(|i| ((i / 2) % k) * (n / k) + 2 * (i / (2 * k)) + i % 2)
        .collect())
}

impl Perm {
    /// Builds a permutation from its gather map σ (`(P x)[i] = x[σ(i)]`).
    ///
    /// # Errors
    /// [`Error::NotAPermutation`] naming the first out-of-range or repeated index, or the first
    /// missing one.
    pub fn from_vec(map: Vec<usize>) -> Result<Self> {
        let n = map.len();
        let mut seen = vec![false; n];
        for (i, &s) in map.iter().enumerate() {
            if s >= n {
                return Err(Error::NotAPermutation {
                    n,
                    reason: format!("index {s} at position {i} is out of range"),
                });
            }
            if seen[s] {
                return Err(Error::NotAPermutation {
                    n,
                    reason: format!("index {s} is repeated (again at position {i})"),
                });
            }
            seen[s] = true;
        }
        // n entries, all in range and distinct: nothing can be missing.
        Ok(Self { map })
    }

    /// The identity on `n` elements.
    pub fn identity(n: usize) -> Self {
        Self {
            map: (0..n).collect(),
        }
    }

    /// P_(k,n) in the gather reading: `(P x)[i] = x[σ_(k,n)(i)]`.
    ///
    /// # Errors
    /// If `k` is 0 or does not divide `n`.
    pub fn shuffle_gather(k: usize, n: usize) -> Result<Self> {
        Ok(Self {
            map: sigma_kn(k, n)?,
        })
    }

    /// P_(k,n) in the scatter reading of the official code: `(P x)[σ_(k,n)(i)] = x[i]`, i.e.
    /// `P[σ(i), i] = 1`. This is `channel_shuffle(x, groups=k)`.
    ///
    /// # Errors
    /// If `k` is 0 or does not divide `n`.
    pub fn shuffle_scatter(k: usize, n: usize) -> Result<Self> {
        Ok(Self::scatter_of(&sigma_kn(k, n)?))
    }

    /// The paired shuffle in the scatter reading, `(P x)[σ^paired_(k,n)(i)] = x[i]`: it moves
    /// channel pairs (2j, 2j+1) together (`channel_shuffle(x, k, paired=True)`).
    ///
    /// # Errors
    /// If `2k` does not divide `n`.
    pub fn paired_shuffle_scatter(k: usize, n: usize) -> Result<Self> {
        Ok(Self::scatter_of(&sigma_paired(k, n)?))
    }

    /// The paired shuffle in the gather reading, `(P x)[i] = x[σ^paired_(k,n)(i)]`.
    ///
    /// # Errors
    /// If `2k` does not divide `n`.
    pub fn paired_shuffle_gather(k: usize, n: usize) -> Result<Self> {
        Ok(Self {
            map: sigma_paired(k, n)?,
        })
    }

    /// PEFT's `block_butterfly_perm(n, nb, r_half)` (digest §2.5), whose matrix is built by
    /// `perm2mat` as `P[i, perm[i]] = 1`, so the returned map is a gather map. `[0, n)` is cut
    /// into `nb` chunks of size `n/nb`; inside each chunk the sub-blocks of size `r_half` are
    /// reordered as the even-numbered ones (0, 2, 4, …) followed by the odd ones.
    ///
    /// # Errors
    /// If `nb` or `r_half` is 0, `nb` does not divide `n`, `r_half` does not divide `n/nb`, or
    /// `2·nb·r_half > n` (PEFT's "Invalid number of blocks").
    pub fn block_butterfly(n: usize, nb: usize, r_half: usize) -> Result<Self> {
        if nb == 0
            || r_half == 0
            || !n.is_multiple_of(nb)
            || !(n / nb).is_multiple_of(r_half)
            || 2 * nb * r_half > n
        {
            return Err(Error::InvalidArgument(format!(
                "block_butterfly_perm needs nb | n, r_half | n/nb and 2·nb·r_half <= n, got n={n}, nb={nb}, r_half={r_half}"
            )));
        }
        let bs = n / nb;
        let steps = bs / r_half;
        let order: Vec<usize> = (0..steps).step_by(2).chain((1..steps).step_by(2)).collect();
        let mut map = Vec::with_capacity(n);
        for chunk in 0..nb {
            for &pos in &order {
                map.extend((0..r_half).map(|t| chunk * bs + pos * r_half + t));
            }
        }
        Ok(Self { map })
    }

    /// A uniformly random permutation drawn from `rng`.
    pub fn random<R: Rng + ?Sized>(n: usize, rng: &mut R) -> Self {
        let mut map: Vec<usize> = (0..n).collect();
        map.shuffle(rng);
        Self { map }
    }

    /// The permutation whose matrix has `P[σ(i), i] = 1` for the given σ (the scatter reading);
    /// its gather map is σ⁻¹.
    fn scatter_of(sigma: &[usize]) -> Self {
        let mut map = vec![0; sigma.len()];
        for (i, &s) in sigma.iter().enumerate() {
            map[s] = i;
        }
        Self { map }
    }

    /// Number of elements `n`.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True for the permutation of the empty set.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The gather map σ.
    pub fn as_slice(&self) -> &[usize] {
        &self.map
    }

    /// σ(i): the source index of output `i`.
    pub fn get(&self, i: usize) -> usize {
        self.map[i]
    }

    /// True if σ(i) = i for all i.
    pub fn is_identity(&self) -> bool {
        self.map.iter().enumerate().all(|(i, &s)| i == s)
    }

    /// The inverse permutation, `P⁻¹ = Pᵀ`: its map is σ⁻¹.
    pub fn inverse(&self) -> Self {
        Self::scatter_of(&self.map)
    }

    /// The matrix product `self · other` as a permutation: `(A B x)[i] = x[σ_B(σ_A(i))]`.
    ///
    /// # Panics
    /// If the sizes differ.
    pub fn compose(&self, other: &Self) -> Self {
        assert!(
            self.len() == other.len(),
            "compose: permutation sizes differ, {} vs {}",
            self.len(),
            other.len()
        );
        Self {
            map: self.map.iter().map(|&s| other.map[s]).collect(),
        }
    }

    /// `P x` for one vector: `y[i] = x[σ(i)]`.
    ///
    /// # Panics
    /// If `x.len() != n`.
    pub fn apply<T: Copy>(&self, x: &[T]) -> Vec<T> {
        assert!(
            x.len() == self.len(),
            "Perm::apply: vector of length {} for a permutation of {}",
            x.len(),
            self.len()
        );
        self.map.iter().map(|&s| x[s]).collect()
    }

    /// Applies P to every row of a `(batch, n)` tensor: `Y[b, i] = X[b, σ(i)]`, i.e. `Y = X Pᵀ`.
    ///
    /// # Panics
    /// If the tensor is not `(batch, n)`.
    pub fn apply_rows<T: Real>(&self, x: &Tensor<T>) -> Tensor<T> {
        let n = self.len();
        assert!(
            x.ndim() == 2 && x.shape()[1] == n,
            "Perm::apply_rows: expected shape (batch, {n}), got {:?}",
            x.shape()
        );
        let mut out = Tensor::zeros(x.shape());
        for (dst, src) in out
            .data_mut()
            .chunks_mut(n.max(1))
            .zip(x.data().chunks(n.max(1)))
        {
            for (d, &s) in dst.iter_mut().zip(&self.map) {
                *d = src[s];
            }
        }
        out
    }
}
