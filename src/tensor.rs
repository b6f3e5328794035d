//! [`Tensor`]: a shape plus row-major storage, with zero-copy faer views for the heavy kernels.
//!
//! Conventions: a 2-D tensor `(rows, cols)` is stored row-major, `data[i * cols + j]`; a 3-D
//! tensor `(batch, rows, cols)` is `batch` such matrices one after the other. Elementwise
//! operations on mismatched shapes panic with a message naming the operation and both shapes.

use crate::error::{Error, Result};
use crate::real::Real;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal, Uniform};
use rayon::prelude::*;

/// Products with at least this many multiply-adds let faer use all rayon threads; smaller ones
/// run sequentially, where thread start-up would cost more than it saves.
pub const PAR_MATMUL_MIN_FLOPS: usize = 1 << 21;

/// A dense tensor: `shape` and row-major `data` with `data.len() == shape.iter().product()`.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor<T> {
    shape: Vec<usize>,
    data: Vec<T>,
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl<T: Real> Tensor<T> {
    /// Builds a tensor from row-major data.
    ///
    /// # Errors
    /// [`Error::InvalidShape`] naming the shape, the element count it needs and `data.len()`.
    pub fn from_vec(shape: &[usize], data: Vec<T>) -> Result<Self> {
        let expected = numel(shape);
        if expected != data.len() {
            return Err(Error::InvalidShape {
                shape: shape.to_vec(),
                expected,
                got: data.len(),
            });
        }
        Ok(Self {
            shape: shape.to_vec(),
            data,
        })
    }

    /// A tensor filled with `value`.
    pub fn full(shape: &[usize], value: T) -> Self {
        Self {
            shape: shape.to_vec(),
            data: vec![value; numel(shape)],
        }
    }

    /// All zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Self::full(shape, T::zero())
    }

    /// All ones.
    pub fn ones(shape: &[usize]) -> Self {
        Self::full(shape, T::one())
    }

    /// A 0-dimensional tensor holding one value.
    pub fn scalar(value: T) -> Self {
        Self {
            shape: vec![],
            data: vec![value],
        }
    }

    /// The `n × n` identity matrix.
    pub fn eye(n: usize) -> Self {
        let mut t = Self::zeros(&[n, n]);
        for i in 0..n {
            t.data[i * n + i] = T::one();
        }
        t
    }

    /// Builds a tensor whose element at flat row-major index `i` is `f(i)`.
    pub fn from_fn(shape: &[usize], f: impl FnMut(usize) -> T) -> Self {
        Self {
            shape: shape.to_vec(),
            data: (0..numel(shape)).map(f).collect(),
        }
    }

    /// Independent standard normal entries drawn from `rng`, scaled by `std`.
    pub fn randn<R: Rng + ?Sized>(shape: &[usize], std: f64, rng: &mut R) -> Self {
        Self::from_fn(shape, |_| {
            let z: f64 = StandardNormal.sample(rng);
            T::from_f64(std * z)
        })
    }

    /// Independent uniform entries in `[lo, hi)` drawn from `rng`.
    ///
    /// # Panics
    /// If `lo >= hi` or either bound is not finite.
    pub fn rand_uniform<R: Rng + ?Sized>(shape: &[usize], lo: f64, hi: f64, rng: &mut R) -> Self {
        let dist = Uniform::new(lo, hi).expect("rand_uniform: need finite lo < hi");
        Self::from_fn(shape, |_| T::from_f64(dist.sample(rng)))
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of axes.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The row-major storage.
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// The row-major storage, mutable.
    pub fn data_mut(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// Consumes the tensor and returns its storage.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }

    /// The single value of a one-element tensor.
    ///
    /// # Panics
    /// If the tensor does not hold exactly one element.
    pub fn item(&self) -> T {
        assert!(
            self.data.len() == 1,
            "item: tensor of shape {:?} is not a scalar",
            self.shape
        );
        self.data[0]
    }

    /// Element `(i, j)` of a 2-D tensor.
    pub fn at2(&self, i: usize, j: usize) -> T {
        self.data[i * self.shape[1] + j]
    }

    /// Same data, new shape.
    ///
    /// # Errors
    /// [`Error::InvalidShape`] if the element counts differ.
    pub fn reshape(self, shape: &[usize]) -> Result<Self> {
        Self::from_vec(shape, self.data)
    }

    /// Transpose of a 2-D tensor, or of the last two axes of a 3-D tensor.
    ///
    /// # Panics
    /// If the tensor is not 2-D or 3-D.
    pub fn transpose(&self) -> Self {
        let (b, r, c) = self.as_batch("transpose");
        let mut out = vec![T::zero(); self.data.len()];
        for k in 0..b {
            let src = &self.data[k * r * c..(k + 1) * r * c];
            let dst = &mut out[k * r * c..(k + 1) * r * c];
            for i in 0..r {
                for j in 0..c {
                    dst[j * r + i] = src[i * c + j];
                }
            }
        }
        let mut shape = self.shape.clone();
        let nd = shape.len();
        shape.swap(nd - 2, nd - 1);
        Self { shape, data: out }
    }

    /// `(batch, rows, cols)` of a 2-D (batch 1) or 3-D tensor.
    ///
    /// # Panics
    /// If the tensor is not 2-D or 3-D; the message names `op`.
    pub fn as_batch(&self, op: &str) -> (usize, usize, usize) {
        match self.shape.as_slice() {
            [r, c] => (1, *r, *c),
            [b, r, c] => (*b, *r, *c),
            s => panic!("{op}: expected a 2-D or 3-D tensor, got shape {s:?}"),
        }
    }

    /// Asserts that `self` and `other` have the same shape.
    ///
    /// # Panics
    /// With a message naming `op` and both shapes.
    pub fn assert_same_shape(&self, other: &Self, op: &str) {
        assert!(
            self.shape == other.shape,
            "{op}: shape mismatch {:?} vs {:?}",
            self.shape,
            other.shape
        );
    }

    /// Applies `f` to every element.
    pub fn map(&self, f: impl Fn(T) -> T) -> Self {
        Self {
            shape: self.shape.clone(),
            data: self.data.iter().map(|&x| f(x)).collect(),
        }
    }

    /// Combines two same-shape tensors elementwise.
    ///
    /// # Panics
    /// If the shapes differ; the message names `op` and both shapes.
    pub fn zip_map(&self, other: &Self, op: &str, f: impl Fn(T, T) -> T) -> Self {
        self.assert_same_shape(other, op);
        Self {
            shape: self.shape.clone(),
            data: self
                .data
                .iter()
                .zip(&other.data)
                .map(|(&a, &b)| f(a, b))
                .collect(),
        }
    }

    /// `self += other`, elementwise.
    ///
    /// # Panics
    /// If the shapes differ.
    pub fn add_assign(&mut self, other: &Self) {
        self.assert_same_shape(other, "add_assign");
        self.data
            .iter_mut()
            .zip(&other.data)
            .for_each(|(a, &b)| *a += b);
    }

    /// `self += alpha * other`, elementwise.
    ///
    /// # Panics
    /// If the shapes differ.
    pub fn axpy(&mut self, alpha: T, other: &Self) {
        self.assert_same_shape(other, "axpy");
        self.data
            .iter_mut()
            .zip(&other.data)
            .for_each(|(a, &b)| *a += alpha * b);
    }

    /// Elementwise sum `self + other`.
    pub fn add(&self, other: &Self) -> Self {
        self.zip_map(other, "add", |a, b| a + b)
    }

    /// Elementwise difference `self - other`.
    pub fn sub(&self, other: &Self) -> Self {
        self.zip_map(other, "sub", |a, b| a - b)
    }

    /// Elementwise product `self ⊙ other`.
    pub fn mul(&self, other: &Self) -> Self {
        self.zip_map(other, "mul", |a, b| a * b)
    }

    /// Elementwise quotient `self ⊘ other`.
    pub fn div(&self, other: &Self) -> Self {
        self.zip_map(other, "div", |a, b| a / b)
    }

    /// `s · self`.
    pub fn scale(&self, s: T) -> Self {
        self.map(|x| x * s)
    }

    /// Sum of all elements.
    pub fn sum(&self) -> T {
        self.data.iter().copied().sum()
    }

    /// Mean of all elements.
    pub fn mean(&self) -> T {
        self.sum() / T::from_usize(self.data.len().max(1))
    }

    /// `max |x_i|` (0 for an empty tensor).
    pub fn max_abs(&self) -> T {
        self.data
            .iter()
            .fold(T::zero(), |m, &x| if x.abs() > m { x.abs() } else { m })
    }

    /// Frobenius norm `sqrt(Σ x_i²)`, accumulated in f64.
    pub fn norm(&self) -> f64 {
        self.data
            .iter()
            .map(|&x| x.to_f64() * x.to_f64())
            .sum::<f64>()
            .sqrt()
    }

    /// True if every element is finite.
    pub fn is_finite(&self) -> bool {
        self.data.iter().all(|x| x.is_finite())
    }

    /// Converts the element type (f32 ↔ f64).
    pub fn cast<U: Real>(&self) -> Tensor<U> {
        Tensor {
            shape: self.shape.clone(),
            data: self.data.iter().map(|&x| U::from_f64(x.to_f64())).collect(),
        }
    }

    /// Zero-copy faer view of a 2-D tensor (row-major, so a transposed-layout view).
    ///
    /// # Panics
    /// If the tensor is not 2-D.
    pub fn mat(&self) -> MatRef<'_, T> {
        let [r, c] = self.shape[..] else {
            panic!("mat: expected a 2-D tensor, got shape {:?}", self.shape)
        };
        MatRef::from_row_major_slice(&self.data, r, c)
    }

    /// Mutable zero-copy faer view of a 2-D tensor.
    ///
    /// # Panics
    /// If the tensor is not 2-D.
    pub fn mat_mut(&mut self) -> MatMut<'_, T> {
        let [r, c] = self.shape[..] else {
            panic!("mat_mut: expected a 2-D tensor, got shape {:?}", self.shape)
        };
        MatMut::from_row_major_slice_mut(&mut self.data, r, c)
    }

    /// Copies a faer matrix into a new 2-D tensor.
    pub fn from_mat(m: MatRef<'_, T>) -> Self {
        let (r, c) = (m.nrows(), m.ncols());
        Self::from_fn(&[r, c], |idx| m[(idx / c, idx % c)])
    }

    /// Copies into an owned faer matrix.
    pub fn to_mat(&self) -> faer::Mat<T> {
        self.mat().to_owned()
    }

    /// Matrix product of 2-D tensors, `(m, k) · (k, n) → (m, n)`, through faer. Large products
    /// use all rayon threads (see [`PAR_MATMUL_MIN_FLOPS`]).
    ///
    /// # Panics
    /// If either operand is not 2-D or the inner sizes differ; names both shapes.
    pub fn matmul(&self, other: &Self) -> Self {
        self.matmul_t(false, other, false)
    }

    /// `op(self) · op(other)` for 2-D tensors, where `op` transposes when the flag is set.
    /// Transposes are free views; no copy is made.
    ///
    /// # Panics
    /// If either operand is not 2-D or the inner sizes differ; names both shapes.
    pub fn matmul_t(&self, ta: bool, other: &Self, tb: bool) -> Self {
        assert!(
            self.ndim() == 2 && other.ndim() == 2,
            "matmul: expected 2-D operands, got {:?} and {:?}",
            self.shape,
            other.shape
        );
        let a = if ta {
            self.mat().transpose()
        } else {
            self.mat()
        };
        let b = if tb {
            other.mat().transpose()
        } else {
            other.mat()
        };
        assert!(
            a.ncols() == b.nrows(),
            "matmul: inner sizes differ for {:?}{} and {:?}{}",
            self.shape,
            if ta { "ᵀ" } else { "" },
            other.shape,
            if tb { "ᵀ" } else { "" }
        );
        let (m, n) = (a.nrows(), b.ncols());
        let mut out = Self::zeros(&[m, n]);
        let par = if m * n * a.ncols() >= PAR_MATMUL_MIN_FLOPS {
            Par::rayon(0)
        } else {
            Par::Seq
        };
        matmul(out.mat_mut(), Accum::Replace, a, b, T::one(), par);
        out
    }

    /// Batched product of 3-D tensors, `(B, m, k) · (B, k, n) → (B, m, n)`, with optional
    /// transposes of each operand's matrices. Rayon runs over the batch; each product is
    /// sequential.
    ///
    /// # Panics
    /// If the operands are not 3-D, the batch sizes differ or the inner sizes differ.
    pub fn bmm_t(&self, ta: bool, other: &Self, tb: bool) -> Self {
        assert!(
            self.ndim() == 3 && other.ndim() == 3 && self.shape[0] == other.shape[0],
            "bmm: expected 3-D operands with equal batch, got {:?} and {:?}",
            self.shape,
            other.shape
        );
        let (bsz, r1, c1) = self.as_batch("bmm");
        let (_, r2, c2) = other.as_batch("bmm");
        let (m, k1) = if ta { (c1, r1) } else { (r1, c1) };
        let (k2, n) = if tb { (c2, r2) } else { (r2, c2) };
        assert!(
            k1 == k2,
            "bmm: inner sizes differ for {:?} and {:?}",
            self.shape,
            other.shape
        );
        let mut out = Self::zeros(&[bsz, m, n]);
        if m * n == 0 {
            return out;
        }
        out.data
            .par_chunks_mut(m * n)
            .enumerate()
            .for_each(|(i, dst)| {
                let a = MatRef::from_row_major_slice(&self.data[i * r1 * c1..][..r1 * c1], r1, c1);
                let b = MatRef::from_row_major_slice(&other.data[i * r2 * c2..][..r2 * c2], r2, c2);
                let a = if ta { a.transpose() } else { a };
                let b = if tb { b.transpose() } else { b };
                let d = MatMut::from_row_major_slice_mut(dst, m, n);
                matmul(d, Accum::Replace, a, b, T::one(), Par::Seq);
            });
        out
    }

    /// Batched product `(B, m, k) · (B, k, n) → (B, m, n)`.
    ///
    /// # Panics
    /// See [`Tensor::bmm_t`].
    pub fn bmm(&self, other: &Self) -> Self {
        self.bmm_t(false, other, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn from_vec_wrong_length_names_both_sizes() {
        let err = Tensor::<f64>::from_vec(&[2, 3], vec![0.0; 5]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("6") && msg.contains("5") && msg.contains("[2, 3]"),
            "{msg}"
        );
    }

    #[test]
    fn from_vec_wrong_length_is_an_error_naming_both_sizes() {
        let err = Tensor::<f64>::from_vec(&[2, 3], vec![0.0; 5]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("needs 6") && msg.contains("5 were given"),
            "{msg}"
        );
    }

    #[test]
    fn matmul_matches_hand_values() {
        let a = Tensor::from_vec(&[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let b = Tensor::from_vec(&[3, 2], vec![7.0, 8.0, 9.0, 10.0, 11.0, 12.0]).unwrap();
        assert_eq!(a.matmul(&b).data(), &[58.0, 64.0, 139.0, 154.0]);
        // aᵀ·a computed with a transposed view equals the explicit transpose product
        let ata = a.matmul_t(true, &a, false);
        assert_eq!(ata, a.transpose().matmul(&a));
        assert_eq!(ata.data()[0], 1.0 + 16.0);
    }

    #[test]
    fn bmm_matches_per_batch_matmul() {
        let mut rng = StdRng::seed_from_u64(1);
        let a = Tensor::<f64>::randn(&[3, 4, 5], 1.0, &mut rng);
        let b = Tensor::<f64>::randn(&[3, 6, 5], 1.0, &mut rng);
        let c = a.bmm_t(false, &b, true);
        for k in 0..3 {
            let ak = Tensor::from_vec(&[4, 5], a.data()[k * 20..(k + 1) * 20].to_vec()).unwrap();
            let bk = Tensor::from_vec(&[6, 5], b.data()[k * 30..(k + 1) * 30].to_vec()).unwrap();
            let ck = ak.matmul_t(false, &bk, true);
            assert_eq!(ck.data(), &c.data()[k * 24..(k + 1) * 24]);
        }
    }

    #[test]
    fn large_matmul_parallel_path_agrees_with_naive() {
        let mut rng = StdRng::seed_from_u64(2);
        let (m, k, n) = (96, 160, 140); // above PAR_MATMUL_MIN_FLOPS
        assert!(m * k * n >= PAR_MATMUL_MIN_FLOPS);
        let a = Tensor::<f64>::randn(&[m, k], 1.0, &mut rng);
        let b = Tensor::<f64>::randn(&[k, n], 1.0, &mut rng);
        let c = a.matmul(&b);
        for i in (0..m).step_by(7) {
            for j in (0..n).step_by(11) {
                let naive: f64 = (0..k).map(|t| a.at2(i, t) * b.at2(t, j)).sum();
                assert!((naive - c.at2(i, j)).abs() < 1e-12);
            }
        }
    }

    #[test]
    #[should_panic(expected = "matmul: inner sizes differ")]
    fn matmul_mismatch_panics_naming_op() {
        let a = Tensor::<f32>::zeros(&[2, 3]);
        a.matmul(&a);
    }

    #[test]
    #[should_panic(expected = "add: shape mismatch [2] vs [3]")]
    fn elementwise_mismatch_panics_naming_op_and_shapes() {
        Tensor::<f64>::zeros(&[2]).add(&Tensor::zeros(&[3]));
    }

    #[test]
    fn transpose_3d_and_reshape() {
        let t = Tensor::<f64>::from_fn(&[2, 2, 3], |i| i as f64);
        let tt = t.transpose();
        assert_eq!(tt.shape(), &[2, 3, 2]);
        assert_eq!(tt.data()[..6], [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        assert!(t.clone().reshape(&[4, 4]).is_err());
        assert_eq!(t.reshape(&[12]).unwrap().shape(), &[12]);
    }

    #[test]
    fn seeded_random_is_reproducible() {
        let a = Tensor::<f32>::randn(&[10], 1.0, &mut StdRng::seed_from_u64(7));
        let b = Tensor::<f32>::randn(&[10], 1.0, &mut StdRng::seed_from_u64(7));
        assert_eq!(a, b);
        let u = Tensor::<f64>::rand_uniform(&[100], -1.0, 2.0, &mut StdRng::seed_from_u64(7));
        assert!(u.data().iter().all(|&x| (-1.0..2.0).contains(&x)));
    }
}
