//! Upper bounds on the spectral norm of a convolution from its kernel (Singla & Feizi 2021,
//! "Fantastic Four"), their power-iteration estimates, and the spectral normalisation of SOC.
//!
//! **The bound.** For a `k × k` kernel block `K` of shape `(co, ci, k, k)`, let
//! - `R_1`: rows `(o, a)`, columns `(i, b)` (`co·k × ci·k`),
//! - `R_2`: rows `(o, b)`, columns `(i, a)` (`co·k × ci·k`),
//! - `R_3`: rows `o`, columns `(i, a, b)` (`co × ci·k²`),
//! - `R_4`: rows `i`, columns `(o, a, b)` (`ci × co·k²`),
//!
//! be the four reshapings of its entries `K[o, i, a, b]`. Then the Jacobian `J` of the stride-1
//! convolution with zero (or circular) padding satisfies `‖J‖₂ ≤ k · min_r ‖R_r‖₂` (Theorem 1
//! of the paper, `√(h·w)` for an `h × w` kernel). Proof sketch for `R_3`: every output pixel is
//! `R_3` times the input patch under the kernel, and every input pixel lies in at most `k²`
//! patches, so `‖y‖² ≤ ‖R_3‖² · k² · ‖x‖²`; `R_4` is `R_3` of the adjoint kernel, and `R_1`,
//! `R_2` split the kernel into `k` row (column) convolutions summed with Cauchy–Schwarz
//! (`√k · √k`). A grouped convolution has a block-diagonal Jacobian, so its norm is the
//! maximum of the groups' bounds. The tests check `bound ≥ ‖J‖₂` against dense Jacobians.
//!
//! **Estimates and exact values.** Training uses the official code's power iteration on each
//! `R_r` (vectors `u_r`, `v_r` per group, one step `v ← R u/‖R u‖`, `u ← Rᵀ v/‖Rᵀ v‖`), whose
//! bilinear form `σ_r = v_rᵀ R_r u_r ≤ ‖R_r‖₂` is a *lower* estimate. Certified values
//! ([`reshaped_norms`], [`spectral_bound`]) take the exact largest singular values, as square
//! roots of the largest eigenvalues of the smaller Gram matrices (faer, f64), with a rounding
//! margin.
//!
//! **Normalisation** ([`spectral_scale`], [`scaled_kernel`]): for every group,
//! `L_n = c · L / (f · min_r σ_r + ε)` with the correction `c`, `f = k` (the provable bound) or
//! `f = 1` (the official SOC code, which omits the `√(h·w)` factor), and `ε = 10⁻¹²` as in the
//! official code. Gradients flow through `σ_r` with `u_r`, `v_r` held fixed (spectral
//! normalisation in the style of Miyato et al., as the official code does).

use crate::autodiff::tape::Var;
use crate::error::{Error, Result};
use crate::real::Real;
use crate::tensor::Tensor;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// Number of reshapings in the bound.
pub const RESHAPINGS: usize = 4;

/// The `ε` added to the bound before dividing (as the official code).
pub const SCALE_EPS: f64 = 1e-12;

/// `(rows, cols)` of reshaping `r` of a `(co, ci, k, k)` block.
fn dims(r: usize, (co, ci, k): (usize, usize, usize)) -> (usize, usize) {
    match r {
        0 | 1 => (co * k, ci * k),
        2 => (co, ci * k * k),
        _ => (ci, co * k * k),
    }
}

/// Calls `f(value, row, col)` for every entry `K[o, i, a, b]` of a row-major `(co, ci, k, k)`
/// block, with its position in reshaping `r`.
fn for_each_entry<T: Real>(
    block: &[T],
    r: usize,
    (co, ci, k): (usize, usize, usize),
    mut f: impl FnMut(T, usize, usize),
) {
    let mut e = 0;
    for o in 0..co {
        for i in 0..ci {
            for a in 0..k {
                for b in 0..k {
                    let (row, col) = match r {
                        0 => (o * k + a, i * k + b),
                        1 => (o * k + b, i * k + a),
                        2 => (o, (i * k + a) * k + b),
                        _ => (i, (o * k + a) * k + b),
                    };
                    f(block[e], row, col);
                    e += 1;
                }
            }
        }
    }
}

/// `(groups, co, ci, k)` of a `(groups·co, ci, k, k)` kernel; panics naming `op` otherwise.
fn block_dims(op: &str, shape: &[usize], groups: usize) -> (usize, (usize, usize, usize)) {
    let &[c_out, ci, k, k2] = shape else {
        panic!("{op}: need a 4-D kernel (c_out, c_in/groups, k, k), got shape {shape:?}")
    };
    assert!(
        k == k2 && groups > 0 && c_out.is_multiple_of(groups),
        "{op}: kernel of shape {shape:?} with groups {groups} (need a square kernel and groups dividing c_out)"
    );
    (groups, (c_out / groups, ci, k))
}

/// Reshaping `r` of one group block as an f64 matrix.
fn reshaped<T: Real>(block: &[T], r: usize, d: (usize, usize, usize)) -> Mat<f64> {
    let (rows, cols) = dims(r, d);
    let mut m = Mat::<f64>::zeros(rows, cols);
    for_each_entry(block, r, d, |v, row, col| m[(row, col)] = v.to_f64());
    m
}

/// `λ_max(G)` for the smaller Gram matrix `G` of `r` (`r·rᵀ` or `rᵀ·r`), by faer's self-adjoint
/// eigenvalues in f64: `‖r‖₂²` up to rounding (cheaper than an SVD of `r`).
fn top_gram_eigenvalue(r: &Mat<f64>) -> std::result::Result<f64, String> {
    let (m, n) = (r.nrows(), r.ncols());
    let p = m.min(n);
    if p == 0 {
        return Ok(0.0);
    }
    let mut g = Mat::<f64>::zeros(p, p);
    let par = Par::rayon(0);
    if m <= n {
        matmul(
            g.as_mut(),
            Accum::Replace,
            r.as_ref(),
            r.transpose(),
            1.0,
            par,
        );
    } else {
        matmul(
            g.as_mut(),
            Accum::Replace,
            r.transpose(),
            r.as_ref(),
            1.0,
            par,
        );
    }
    let ev = g
        .self_adjoint_eigenvalues(faer::Side::Lower)
        .map_err(|e| format!("{e:?}"))?;
    Ok(ev.last().copied().unwrap_or(0.0).max(0.0))
}

/// A relative bound on the rounding of [`top_gram_eigenvalue`] for an `m × n` matrix: with
/// `p = min(m, n)`, `q = max(m, n)`, forming the Gram matrix perturbs it by at most
/// `q·eps·‖|R||R|ᵀ‖₂ ≤ q·p·eps·‖R‖₂²` and the symmetric eigensolver by `O(p·eps)·‖G‖₂`; this
/// returns `(p·q + 64·p)·eps`, so `‖R‖₂² ≤ λ̂ / (1 − margin)`.
fn gram_margin(m: usize, n: usize) -> f64 {
    let (p, q) = (m.min(n) as f64, m.max(n) as f64);
    (p * q + 64.0 * p) * f64::EPSILON
}

/// The largest singular values `‖R_r‖₂` of the four reshapings of every group block of a
/// `(c_out, c_in/groups, k, k)` kernel, `out[g][r]`, as `√λ_max` of the smaller Gram matrix
/// (faer, f64); accurate to the rounding bounded in [`spectral_bound`].
///
/// Reshapings with the same singular values are computed once: for a 1×1 kernel
/// `R_1 = R_2 = R_3 = K` and `R_4 = Kᵀ`; for an exactly skew kernel (`convᵀ(L) = −L` entry by
/// entry, as `M − convᵀ(M)` and its multiples are in floating point) `L[o, i, a, b] =
/// −L[i, o, k−1−a, k−1−b]` makes `R_2` a signed permutation of `R_1ᵀ` and `R_4` one of `R_3`.
///
/// # Errors
/// [`Error::Numerical`] if an eigensolver does not converge (non-finite kernel entries).
///
/// # Panics
/// If the kernel is not 4-D and square or `groups` does not divide `c_out`.
pub fn reshaped_norms<T: Real>(l: &Tensor<T>, groups: usize) -> Result<Vec<[f64; RESHAPINGS]>> {
    let (groups, d) = block_dims("reshaped_norms", l.shape(), groups);
    let per = d.0 * d.1 * d.2 * d.2;
    // which reshaping's norm each one copies (itself when it is computed)
    let source: [usize; RESHAPINGS] = if d.2 == 1 {
        [2, 2, 2, 2]
    } else if exactly_skew(l, groups) {
        [0, 0, 2, 2]
    } else {
        [0, 1, 2, 3]
    };
    (0..groups)
        .map(|g| {
            let block = &l.data()[g * per..][..per];
            let mut out = [0.0; RESHAPINGS];
            for r in 0..RESHAPINGS {
                if source[r] != r {
                    continue;
                }
                let lam = top_gram_eigenvalue(&reshaped(block, r, d)).map_err(|e| {
                    Error::Numerical(format!(
                        "eigenvalues of the Gram matrix of reshaping {} of group {g}: {e}",
                        r + 1
                    ))
                })?;
                out[r] = lam.sqrt();
            }
            for r in 0..RESHAPINGS {
                out[r] = out[source[r]];
            }
            Ok(out)
        })
        .collect()
}

/// True if `l` is a square grouped kernel with `convᵀ(l) = −l` exactly.
fn exactly_skew<T: Real>(l: &Tensor<T>, groups: usize) -> bool {
    let s = l.shape();
    if s[0] != s[1] * groups {
        return false;
    }
    let t = crate::kernels::conv::conv_transpose_kernel(l, groups);
    t.data().iter().zip(l.data()).all(|(&a, &b)| a == -b)
}

/// The certified bound `max_g k · min_r ‖R_r(L_g)‖₂ ≥ ‖J‖₂` of the grouped convolution with
/// kernel `l` (module docs), from [`reshaped_norms`] with each `‖R_r‖₂` raised to cover its
/// rounding: `√(λ̂ / (1 − (p·q + 64·p)·eps))` for an `R_r` of `p × q` (`p ≤ q`; forming the Gram
/// matrix costs at most `q·p·eps` relative, the eigensolver `O(p·eps)`).
///
/// # Errors
/// As [`reshaped_norms`].
pub fn spectral_bound<T: Real>(l: &Tensor<T>, groups: usize) -> Result<f64> {
    let (_, d) = block_dims("spectral_bound", l.shape(), groups);
    let k = d.2 as f64;
    let norms = reshaped_norms(l, groups)?;
    Ok(norms
        .iter()
        .map(|n| {
            let certified = (0..RESHAPINGS).map(|r| {
                let (rows, cols) = dims(r, d);
                n[r] / (1.0 - gram_margin(rows, cols)).sqrt()
            });
            k * certified.fold(f64::INFINITY, f64::min)
        })
        .fold(0.0, f64::max))
}

/// The evaluation-time normalisation (module docs) and its certificate:
/// `L_n[g] = s_g · L[g]` with `s_g = correction / (f · min_r ‖R_r(L[g])‖₂ + ε)` from the exact
/// norms of [`reshaped_norms`], and a certified `σ ≥ max_g ‖J(L_{n,g})‖₂`.
///
/// The certificate reuses the norms of `L`: the stored kernel is `L_n = fl(s_g·L)` (entrywise
/// relative rounding at most `u`, the unit roundoff of `T`), so for every reshaping of rank at
/// most `p`, `‖R(L_n)‖₂ ≤ s_g·‖R(L)‖₂·(1 + u·√p)` (the rounding's Frobenius norm is at most
/// `u·‖s_g R(L)‖_F ≤ u·√p·s_g‖R(L)‖₂`), with `‖R(L)‖₂` raised by its margin as in
/// [`spectral_bound`]. Returns `(L_n, σ)` with `σ = max_g k·min_r` of those bounds.
///
/// # Errors
/// As [`reshaped_norms`].
///
/// # Panics
/// As [`reshaped_norms`].
pub fn normalized_kernel<T: Real>(
    l: &Tensor<T>,
    groups: usize,
    (correction, factor): (f64, f64),
) -> Result<(Tensor<T>, f64)> {
    let (groups, d) = block_dims("normalized_kernel", l.shape(), groups);
    let norms = reshaped_norms(l, groups)?;
    let per = l.numel() / groups;
    let unit = T::EPS.to_f64() / 2.0;
    let mut out = l.clone();
    let mut sigma = 0.0f64;
    for (g, n) in norms.iter().enumerate() {
        let m = n.iter().copied().fold(f64::INFINITY, f64::min);
        let s = T::from_f64(correction / (factor * m + SCALE_EPS));
        out.data_mut()[g * per..][..per]
            .iter_mut()
            .for_each(|v| *v *= s);
        let bound = (0..RESHAPINGS)
            .map(|r| {
                let (rows, cols) = dims(r, d);
                let p = rows.min(cols) as f64;
                let norm = n[r] / (1.0 - gram_margin(rows, cols)).sqrt();
                s.to_f64() * norm * (1.0 + unit * p.sqrt())
            })
            .fold(f64::INFINITY, f64::min);
        sigma = sigma.max(d.2 as f64 * bound);
    }
    Ok((out, sigma))
}

/// Singular vector pairs `(u_r, v_r)` of the four reshapings of every group block: `u[r]` has
/// shape `(groups, cols_r)` and `v[r]` `(groups, rows_r)`. Power iteration keeps them as state;
/// [`SpectralVectors::exact`] takes the top singular vectors from an SVD.
#[derive(Clone, Debug, PartialEq)]
pub struct SpectralVectors<T> {
    /// Right vectors (columns side), one `(groups, cols_r)` tensor per reshaping.
    pub u: [Tensor<T>; RESHAPINGS],
    /// Left vectors (rows side), one `(groups, rows_r)` tensor per reshaping.
    pub v: [Tensor<T>; RESHAPINGS],
}

impl<T: Real> SpectralVectors<T> {
    /// Random unit vectors (standard normal, normalised per group) for a kernel of shape
    /// `(c_out, c_in/groups, k, k)`.
    ///
    /// # Panics
    /// If the kernel shape is not 4-D and square or `groups` does not divide `c_out`.
    pub fn random<R: Rng + ?Sized>(kernel_shape: &[usize], groups: usize, rng: &mut R) -> Self {
        let (groups, d) = block_dims("SpectralVectors::random", kernel_shape, groups);
        let mut unit = |n: usize| {
            let mut t = Tensor::from_fn(&[groups, n], |_| {
                let z: f64 = StandardNormal.sample(rng);
                T::from_f64(z)
            });
            for row in t.data_mut().chunks_exact_mut(n.max(1)) {
                normalize(row);
            }
            t
        };
        let u = std::array::from_fn(|r| unit(dims(r, d).1));
        let v = std::array::from_fn(|r| unit(dims(r, d).0));
        Self { u, v }
    }

    /// The top singular vectors of every reshaping of every group block (exact, faer SVD in
    /// f64), so that `v_rᵀ R_r u_r = ‖R_r‖₂` up to rounding.
    ///
    /// # Errors
    /// [`Error::Numerical`] if an SVD does not converge.
    ///
    /// # Panics
    /// As [`reshaped_norms`].
    pub fn exact(l: &Tensor<T>, groups: usize) -> Result<Self> {
        let (groups, d) = block_dims("SpectralVectors::exact", l.shape(), groups);
        let per = d.0 * d.1 * d.2 * d.2;
        let mut u: [Tensor<T>; RESHAPINGS] =
            std::array::from_fn(|r| Tensor::zeros(&[groups, dims(r, d).1]));
        let mut v: [Tensor<T>; RESHAPINGS] =
            std::array::from_fn(|r| Tensor::zeros(&[groups, dims(r, d).0]));
        for g in 0..groups {
            let block = &l.data()[g * per..][..per];
            for r in 0..RESHAPINGS {
                let (rows, cols) = dims(r, d);
                let svd = reshaped(block, r, d).thin_svd().map_err(|e| {
                    Error::Numerical(format!("SVD of reshaping {} of group {g}: {e:?}", r + 1))
                })?;
                for j in 0..cols {
                    u[r].data_mut()[g * cols + j] = T::from_f64(svd.V()[(j, 0)]);
                }
                for j in 0..rows {
                    v[r].data_mut()[g * rows + j] = T::from_f64(svd.U()[(j, 0)]);
                }
            }
        }
        Ok(Self { u, v })
    }

    /// `iters` power-iteration steps on every reshaping of every group block of `l`, as the
    /// official code: `v ← R u / ‖R u‖`, then `u ← Rᵀ v / ‖Rᵀ v‖` (norms floored at `10⁻¹²`).
    ///
    /// # Panics
    /// If `l` does not have the kernel shape the vectors were made for.
    pub fn iterate(&mut self, l: &Tensor<T>, groups: usize, iters: usize) {
        let (groups, d) = block_dims("SpectralVectors::iterate", l.shape(), groups);
        self.check(groups, d, "SpectralVectors::iterate");
        let per = d.0 * d.1 * d.2 * d.2;
        let (rows, cols): (Vec<usize>, Vec<usize>) = (0..RESHAPINGS).map(|r| dims(r, d)).unzip();
        for g in 0..groups {
            if iters == 0 {
                break;
            }
            let block = tap_planes(&l.data()[g * per..][..per], d);
            let block = &block[..];
            for _ in 0..iters {
                {
                    let u: [&[T]; RESHAPINGS] =
                        std::array::from_fn(|r| &self.u[r].data()[g * cols[r]..][..cols[r]]);
                    let mut v = self
                        .v
                        .iter_mut()
                        .enumerate()
                        .map(|(r, t)| &mut t.data_mut()[g * rows[r]..][..rows[r]]);
                    let v: [&mut [T]; RESHAPINGS] =
                        std::array::from_fn(|_| v.next().expect("four"));
                    apply_all(block, d, u, v);
                }
                for (r, t) in self.v.iter_mut().enumerate() {
                    normalize(&mut t.data_mut()[g * rows[r]..][..rows[r]]);
                }
                {
                    let v: [&[T]; RESHAPINGS] =
                        std::array::from_fn(|r| &self.v[r].data()[g * rows[r]..][..rows[r]]);
                    let mut u = self
                        .u
                        .iter_mut()
                        .enumerate()
                        .map(|(r, t)| &mut t.data_mut()[g * cols[r]..][..cols[r]]);
                    let u: [&mut [T]; RESHAPINGS] =
                        std::array::from_fn(|_| u.next().expect("four"));
                    apply_all_t(block, d, v, u);
                }
                for (r, t) in self.u.iter_mut().enumerate() {
                    normalize(&mut t.data_mut()[g * cols[r]..][..cols[r]]);
                }
            }
        }
    }

    /// `σ[g][r] = v_rᵀ R_r(L_g) u_r` (no factor `k`): the power-iteration estimate of `‖R_r‖₂`.
    ///
    /// # Panics
    /// If `l` does not have the kernel shape the vectors were made for.
    pub fn estimates(&self, l: &Tensor<T>, groups: usize) -> Vec<[T; RESHAPINGS]> {
        let (groups, d) = block_dims("SpectralVectors::estimates", l.shape(), groups);
        self.check(groups, d, "SpectralVectors::estimates");
        let per = d.0 * d.1 * d.2 * d.2;
        (0..groups)
            .map(|g| {
                let u: [&[T]; RESHAPINGS] = std::array::from_fn(|r| {
                    let c = dims(r, d).1;
                    &self.u[r].data()[g * c..][..c]
                });
                let v: [&[T]; RESHAPINGS] = std::array::from_fn(|r| {
                    let c = dims(r, d).0;
                    &self.v[r].data()[g * c..][..c]
                });
                bilinear_all(&tap_planes(&l.data()[g * per..][..per], d), d, u, v)
            })
            .collect()
    }

    /// Panics unless the vectors fit `groups` blocks of dimensions `d`.
    fn check(&self, groups: usize, d: (usize, usize, usize), op: &str) {
        for r in 0..RESHAPINGS {
            let (rows, cols) = dims(r, d);
            assert!(
                self.u[r].shape() == [groups, cols] && self.v[r].shape() == [groups, rows],
                "{op}: vectors of shapes {:?} / {:?} for reshaping {} of a kernel needing ({groups}, {cols}) / ({groups}, {rows})",
                self.u[r].shape(),
                self.v[r].shape(),
                r + 1
            );
        }
    }
}

/// `Σ a_i b_i` over two slices of the same length.
fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    a.iter().zip(b).fold(T::zero(), |s, (&x, &y)| s + x * y)
}

/// One `(co, ci, k, k)` block as its `k²` tap planes: plane `t = a·k + b` is the `co × ci`
/// matrix `P_t[o, i] = K[o, i, a, b]` (row-major), so every product with a reshaping is a sum of
/// `k²` faer products with these planes: `R_1 u = [Σ_b P_{ab} u[:, b]]_a`, `R_2 u =
/// [Σ_a P_{ab} u[:, a]]_b`, `R_3 u = Σ_t P_t u[:, t]`, `R_4 u = Σ_t P_tᵀ u[:, t]` (vectors viewed
/// as row-major matrices: `u_1`, `u_2` as `ci × k`, `u_3` as `ci × k²`, `u_4` as `co × k²`,
/// `v_1`, `v_2` as `co × k`).
fn tap_planes<T: Real>(block: &[T], (co, ci, k): (usize, usize, usize)) -> Vec<T> {
    let kk = k * k;
    let n = co * ci;
    let mut planes = vec![T::zero(); block.len()];
    for (q, taps) in block.chunks_exact(kk).enumerate() {
        for (t, &x) in taps.iter().enumerate() {
            planes[t * n + q] = x;
        }
    }
    planes
}

/// Plane `t` as a faer matrix.
fn plane<T: Real>(planes: &[T], t: usize, (co, ci): (usize, usize)) -> MatRef<'_, T> {
    MatRef::from_row_major_slice(&planes[t * co * ci..][..co * ci], co, ci)
}

/// `Y = op(P_t) · [x_0 x_1 x_2]` into the column-major `(rows, 3)` buffer `y`, where the columns
/// `x_j` are strided entries of the vectors (`xs[j] = (slice, start, stride)`).
fn three_columns<T: Real>(
    p: MatRef<'_, T>,
    xs: [(&[T], usize, usize); 3],
    rhs: &mut [T],
    y: &mut [T],
) {
    let n = p.ncols();
    for (j, (v, start, stride)) in xs.into_iter().enumerate() {
        for (q, r) in rhs[j * n..][..n].iter_mut().enumerate() {
            *r = v[start + q * stride];
        }
    }
    let rhs = MatRef::from_column_major_slice(&rhs[..3 * n], n, 3);
    let m = p.nrows();
    let dst = MatMut::from_column_major_slice_mut(&mut y[..3 * m], m, 3);
    matmul(dst, Accum::Replace, p, rhs, T::one(), Par::Seq);
}

/// `y = op(P_t) · x_{start + q·stride}` (one column) into `y`.
fn one_column<T: Real>(
    p: MatRef<'_, T>,
    (v, start, stride): (&[T], usize, usize),
    rhs: &mut [T],
    y: &mut [T],
) {
    let n = p.ncols();
    for (q, r) in rhs[..n].iter_mut().enumerate() {
        *r = v[start + q * stride];
    }
    let m = p.nrows();
    let dst = MatMut::from_column_major_slice_mut(&mut y[..m], m, 1);
    matmul(
        dst,
        Accum::Replace,
        p,
        MatRef::from_column_major_slice(&rhs[..n], n, 1),
        T::one(),
        Par::Seq,
    );
}

/// `v_r ← R_r u_r` for the four reshapings of one block given as tap planes.
fn apply_all<T: Real>(
    planes: &[T],
    (co, ci, k): (usize, usize, usize),
    u: [&[T]; RESHAPINGS],
    v: [&mut [T]; RESHAPINGS],
) {
    let kk = k * k;
    let [u1, u2, u3, u4] = u;
    let [v1, v2, v3, v4] = v;
    for x in [&mut *v1, &mut *v2, &mut *v3, &mut *v4] {
        x.fill(T::zero());
    }
    let (mut rhs, mut y) = (
        vec![T::zero(); 3 * co.max(ci)],
        vec![T::zero(); 3 * co.max(ci)],
    );
    for t in 0..kk {
        let (a, b) = (t / k, t % k);
        let p = plane(planes, t, (co, ci));
        three_columns(p, [(u1, b, k), (u2, a, k), (u3, t, kk)], &mut rhs, &mut y);
        for o in 0..co {
            v1[o * k + a] += y[o];
            v2[o * k + b] += y[co + o];
            v3[o] += y[2 * co + o];
        }
        one_column(p.transpose(), (u4, t, kk), &mut rhs, &mut y);
        v4.iter_mut().zip(&y[..ci]).for_each(|(s, &x)| *s += x);
    }
}

/// `u_r ← R_rᵀ v_r` for the four reshapings of one block given as tap planes.
fn apply_all_t<T: Real>(
    planes: &[T],
    (co, ci, k): (usize, usize, usize),
    v: [&[T]; RESHAPINGS],
    u: [&mut [T]; RESHAPINGS],
) {
    let kk = k * k;
    let [v1, v2, v3, v4] = v;
    let [u1, u2, u3, u4] = u;
    u1.fill(T::zero());
    u2.fill(T::zero());
    let (mut rhs, mut y) = (
        vec![T::zero(); 3 * co.max(ci)],
        vec![T::zero(); 3 * co.max(ci)],
    );
    for t in 0..kk {
        let (a, b) = (t / k, t % k);
        let p = plane(planes, t, (co, ci));
        three_columns(
            p.transpose(),
            [(v1, a, k), (v2, b, k), (v3, 0, 1)],
            &mut rhs,
            &mut y,
        );
        for i in 0..ci {
            u1[i * k + b] += y[i];
            u2[i * k + a] += y[ci + i];
            u3[i * kk + t] = y[2 * ci + i];
        }
        one_column(p, (v4, 0, 1), &mut rhs, &mut y);
        for o in 0..co {
            u4[o * kk + t] = y[o];
        }
    }
}

/// `σ_r = v_rᵀ R_r u_r` for the four reshapings of one block given as tap planes.
fn bilinear_all<T: Real>(
    planes: &[T],
    (co, ci, k): (usize, usize, usize),
    u: [&[T]; RESHAPINGS],
    v: [&[T]; RESHAPINGS],
) -> [T; RESHAPINGS] {
    let kk = k * k;
    let [u1, u2, u3, u4] = u;
    let [v1, v2, v3, v4] = v;
    let mut s = [T::zero(); RESHAPINGS];
    let (mut rhs, mut y) = (
        vec![T::zero(); 3 * co.max(ci)],
        vec![T::zero(); 3 * co.max(ci)],
    );
    for t in 0..kk {
        let (a, b) = (t / k, t % k);
        let p = plane(planes, t, (co, ci));
        three_columns(p, [(u1, b, k), (u2, a, k), (u3, t, kk)], &mut rhs, &mut y);
        for o in 0..co {
            s[0] += v1[o * k + a] * y[o];
            s[1] += v2[o * k + b] * y[co + o];
        }
        s[2] += dot(v3, &y[2 * co..3 * co]);
        one_column(p.transpose(), (u4, t, kk), &mut rhs, &mut y);
        s[3] += dot(v4, &y[..ci]);
    }
    s
}

/// `x ← x / max(‖x‖, 10⁻¹²)`.
fn normalize<T: Real>(x: &mut [T]) {
    let n = x
        .iter()
        .map(|&v| v * v)
        .sum::<T>()
        .sqrt()
        .max(T::from_f64(1e-12));
    x.iter_mut().for_each(|v| *v /= n);
}

/// The normalised kernel and, per group, the divisor `f · min_r σ_r + ε` and the minimizing
/// reshaping: `L_n[g] = correction · L[g] / divisor_g` (module docs).
///
/// # Panics
/// If the vectors do not fit the kernel.
pub fn scaled_kernel<T: Real>(
    l: &Tensor<T>,
    groups: usize,
    vectors: &SpectralVectors<T>,
    (correction, factor): (f64, f64),
) -> (Tensor<T>, Vec<(T, usize)>) {
    let est = vectors.estimates(l, groups);
    let per = l.numel() / groups.max(1);
    let mut out = l.clone();
    let dens: Vec<(T, usize)> = est
        .iter()
        .map(|s| {
            let (r, m) = s.iter().enumerate().fold(
                (0, s[0]),
                |(ri, m), (r, &v)| if v < m { (r, v) } else { (ri, m) },
            );
            (T::from_f64(factor) * m + T::from_f64(SCALE_EPS), r)
        })
        .collect();
    for (g, &(den, _)) in dens.iter().enumerate() {
        let s = T::from_f64(correction) / den;
        out.data_mut()[g * per..][..per]
            .iter_mut()
            .for_each(|v| *v *= s);
    }
    (out, dens)
}

/// [`scaled_kernel`] on the tape: `L_n[g] = c · L[g] / δ_g` with `δ_g = f · σ_{g,r*} + ε`,
/// `σ_{g,r} = v_rᵀ R_r(L[g]) u_r`, `r*` the minimizing reshaping, `u`, `v` held fixed.
/// Gradient per group: `dL = (c/δ)·G − (c/δ²)·⟨G, L⟩·f·∂σ_{r*}/∂L` with
/// `∂σ_r/∂L[o, i, a, b] = v_r[row] · u_r[col]` at the entry's position in `R_r`.
///
/// # Panics
/// If the kernel is not 4-D and square, `groups` does not divide `c_out`, or the vectors do not
/// fit (the message names `spectral_scale` and the shapes).
pub fn spectral_scale<'t, T: Real>(
    l: Var<'t, T>,
    groups: usize,
    vectors: &SpectralVectors<T>,
    (correction, factor): (f64, f64),
) -> Var<'t, T> {
    let lv = l.value();
    let (groups, d) = block_dims("spectral_scale", lv.shape(), groups);
    let (y, dens) = scaled_kernel(&lv, groups, vectors, (correction, factor));
    let vecs = vectors.clone();
    let per = lv.numel() / groups;
    l.tape().push_op(y, &[l], move |g, needs| {
        vec![needs[0].then(|| {
            let (c, f) = (T::from_f64(correction), T::from_f64(factor));
            let mut dl = Tensor::zeros(lv.shape());
            for (grp, &(den, r)) in dens.iter().enumerate() {
                let lb = &lv.data()[grp * per..][..per];
                let gb = &g.data()[grp * per..][..per];
                let dot: T = lb.iter().zip(gb).map(|(&a, &b)| a * b).sum();
                let (rows, cols) = dims(r, d);
                let u = &vecs.u[r].data()[grp * cols..][..cols];
                let v = &vecs.v[r].data()[grp * rows..][..rows];
                let db = &mut dl.data_mut()[grp * per..][..per];
                let coef = c * dot * f / (den * den);
                let mut e = 0;
                for_each_entry(lb, r, d, |_, row, col| {
                    db[e] = c / den * gb[e] - coef * v[row] * u[col];
                    e += 1;
                });
            }
            dl
        })]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autodiff::gradcheck::gradcheck;
    use crate::kernels::conv::conv2d_reference;
    use rand::{SeedableRng, rngs::StdRng};

    /// The dense Jacobian (`numel(x) × numel(x)` for one image) of `x ↦ conv2d(x, w)`.
    fn jacobian(w: &Tensor<f64>, groups: usize, (c_in, h, wd): (usize, usize, usize)) -> Mat<f64> {
        let n_in = c_in * h * wd;
        let n_out = w.shape()[0] * h * wd;
        let mut j = Mat::<f64>::zeros(n_out, n_in);
        for q in 0..n_in {
            let e = Tensor::from_fn(&[1, c_in, h, wd], |t| if t == q { 1.0 } else { 0.0 });
            let col = conv2d_reference(&e, w, groups);
            for (p, &v) in col.data().iter().enumerate() {
                j[(p, q)] = v;
            }
        }
        j
    }

    #[test]
    fn bound_dominates_the_exact_jacobian_norm() {
        // (c_out, c_in, h, w, k, groups)
        for (s, (co, ci, h, w, k, g)) in [
            (3, 2, 4, 5, 3, 1),
            (4, 4, 3, 3, 3, 2),
            (2, 3, 5, 4, 5, 1),
            (6, 6, 4, 3, 1, 3),
            (4, 2, 6, 6, 3, 2),
            (2, 2, 2, 7, 3, 1),
        ]
        .into_iter()
        .enumerate()
        {
            let wt = Tensor::<f64>::randn(
                &[co, ci / g, k, k],
                1.0,
                &mut StdRng::seed_from_u64(s as u64),
            );
            let exact = jacobian(&wt, g, (ci, h, w)).singular_values().unwrap()[0];
            let bound = spectral_bound(&wt, g).unwrap();
            println!(
                "case {s} ({co}←{ci}, {h}×{w}, k={k}, groups {g}): bound {bound:.4}, exact ‖J‖₂ {exact:.4}, ratio {:.3}",
                bound / exact
            );
            assert!(bound >= exact, "case {s}: bound {bound} < ‖J‖ {exact}");
            // and the bound is not vacuous: within k² of the truth here
            assert!(
                bound < (k * k) as f64 * exact + 1e-12,
                "case {s}: bound {bound}, ‖J‖ {exact}"
            );
            // each single reshaping is a bound too (the minimum is taken per group)
            let k_f = k as f64;
            for (gi, n) in reshaped_norms(&wt, g).unwrap().iter().enumerate() {
                let per = (co / g) * (ci / g) * k * k;
                let mut blk = Tensor::zeros(&[co / g, ci / g, k, k]);
                blk.data_mut()
                    .copy_from_slice(&wt.data()[gi * per..][..per]);
                let jg = jacobian(&blk, 1, (ci / g, h, w)).singular_values().unwrap()[0];
                assert!(
                    n.iter().all(|&x| k_f * x >= jg * (1.0 - 1e-12)),
                    "case {s} group {gi}"
                );
            }
        }
    }

    #[test]
    fn power_iteration_approaches_the_exact_norms_from_below() {
        let mut rng = StdRng::seed_from_u64(9);
        let l = Tensor::<f64>::randn(&[6, 3, 3, 3], 1.0, &mut rng);
        let exact = reshaped_norms(&l, 2).unwrap();
        let mut vecs = SpectralVectors::random(l.shape(), 2, &mut rng);
        vecs.iterate(&l, 2, 1);
        let early = vecs.estimates(&l, 2);
        vecs.iterate(&l, 2, 200);
        let late = vecs.estimates(&l, 2);
        for g in 0..2 {
            for r in 0..RESHAPINGS {
                assert!(
                    early[g][r] <= exact[g][r] * (1.0 + 1e-12)
                        && late[g][r] <= exact[g][r] * (1.0 + 1e-12)
                );
                assert!(
                    (late[g][r] - exact[g][r]).abs() < 1e-6 * exact[g][r],
                    "g {g} r {r}"
                );
            }
        }
        // exact vectors reproduce the norms
        let ex = SpectralVectors::exact(&l, 2).unwrap().estimates(&l, 2);
        for g in 0..2 {
            for r in 0..RESHAPINGS {
                assert!((ex[g][r] - exact[g][r]).abs() < 1e-12 * exact[g][r]);
            }
        }
    }

    #[test]
    fn scale_op_gradcheck() {
        let mut rng = StdRng::seed_from_u64(4);
        let l = Tensor::<f64>::randn(&[4, 2, 3, 3], 1.0, &mut rng);
        let mut vecs = SpectralVectors::random(l.shape(), 2, &mut rng);
        vecs.iterate(&l, 2, 3);
        let rproj = Tensor::randn(l.shape(), 1.0, &mut rng);
        for factor in [3.0, 1.0] {
            let r = gradcheck(
                |t, v| {
                    spectral_scale(v[0], 2, &vecs, (0.7, factor))
                        .mul(t.constant(rproj.clone()))
                        .sum()
                },
                std::slice::from_ref(&l),
                1e-6,
            );
            assert!(r.max_rel_err < 1e-7, "{r}");
        }
    }

    #[test]
    fn shared_norms_of_skew_and_pointwise_kernels_match_every_reshaping() {
        let mut rng = StdRng::seed_from_u64(6);
        let m = Tensor::<f64>::randn(&[6, 3, 3, 3], 1.0, &mut rng);
        let skew = m.sub(&crate::kernels::conv::conv_transpose_kernel(&m, 2));
        let pointwise = Tensor::<f64>::randn(&[6, 2, 1, 1], 1.0, &mut rng);
        for (l, k) in [(&skew, 3), (&pointwise, 1)] {
            let shared = reshaped_norms(l, 2).unwrap();
            let per = l.numel() / 2;
            for (g, n) in shared.iter().enumerate() {
                let d = (l.shape()[0] / 2, l.shape()[1], k);
                let block = &l.data()[g * per..][..per];
                for (r, &nr) in n.iter().enumerate() {
                    let sv = reshaped(block, r, d).singular_values().unwrap()[0];
                    assert!(
                        (nr - sv).abs() < 1e-12 * sv,
                        "k={k} g={g} r={r}: {nr} vs {sv}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_normalised_kernels_certificate_covers_its_exact_norm() {
        let mut rng = StdRng::seed_from_u64(12);
        let m = Tensor::<f32>::randn(&[8, 4, 3, 3], 1.0, &mut rng);
        let l = m.sub(&crate::kernels::conv::conv_transpose_kernel(&m, 2));
        let (ln, sigma) = normalized_kernel(&l, 2, (0.7, 3.0)).unwrap();
        let direct = spectral_bound(&ln, 2).unwrap();
        assert!(sigma >= direct, "{sigma} < {direct}");
        assert!(sigma <= direct * (1.0 + 1e-5), "{sigma} vs {direct}");
        assert!((sigma - 0.7).abs() < 1e-5);
    }

    #[test]
    fn scaled_kernel_with_exact_vectors_meets_the_correction() {
        let mut rng = StdRng::seed_from_u64(5);
        let l = Tensor::<f64>::randn(&[6, 2, 3, 3], 1.0, &mut rng);
        let vecs = SpectralVectors::exact(&l, 3).unwrap();
        let (ln, _) = scaled_kernel(&l, 3, &vecs, (0.7, 3.0));
        let b = spectral_bound(&ln, 3).unwrap();
        assert!((b - 0.7).abs() < 1e-12, "{b}");
    }
}
