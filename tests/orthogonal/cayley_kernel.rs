//! The Cayley kernel: agreement with faer's partial-pivot LU, the dense gradient formula, and
//! thread-count independence.

use crate::common::randn;
use faer::Mat;
use faer::linalg::solvers::{DenseSolveCore, Solve};
use gslab::orthogonal::cayley::{cayley, cayley_with_inverse, skew_dim, skew_from_free};
use gslab::{Real, Tape, Tensor};

/// `I − K_j` of block `j` of the free parameters, as a faer matrix.
fn i_minus_k<T: Real>(theta: &Tensor<T>, b: usize, j: usize) -> Mat<T> {
    let k = skew_from_free(theta, b);
    let kj = &k.data()[j * b * b..(j + 1) * b * b];
    Mat::from_fn(b, b, |r, c| {
        let id = if r == c { T::one() } else { T::zero() };
        id - kj[r * b + c]
    })
}

fn agrees_with_partial_pivot_lu<T: Real>() {
    for (s, b) in [1usize, 2, 3, 7, 16, 33].into_iter().enumerate() {
        for std in [0.1, 1.0] {
            let theta = randn::<T>(&[3, skew_dim(b)], std, 300 + s as u64);
            let (q, n) = cayley_with_inverse(&theta, b);
            for j in 0..3 {
                let m = i_minus_k(&theta, b, j);
                // Independent: faer's partial-pivot LU, N = (I − K)⁻¹ by a solve against I.
                let want = m.partial_piv_lu().solve(Mat::<T>::identity(b, b));
                let inv = m.partial_piv_lu().inverse();
                let (mut err, mut err_inv, mut scale, mut err_q) = (0f64, 0f64, 0f64, 0f64);
                for r in 0..b {
                    for c in 0..b {
                        let got = n.data()[j * b * b + r * b + c].to_f64();
                        let w = want[(r, c)].to_f64();
                        err = err.max((got - w).abs());
                        err_inv = err_inv.max((got - inv[(r, c)].to_f64()).abs());
                        scale = scale.max(w.abs());
                        let id = if r == c { 1.0 } else { 0.0 };
                        let qw = 2.0 * w - id;
                        err_q = err_q.max((q.data()[j * b * b + r * b + c].to_f64() - qw).abs());
                    }
                }
                let tol = 20.0 * b as f64 * T::EPS.to_f64();
                let what = format!("{} b={b} std={std} block {j}", T::DTYPE);
                assert!(
                    err / scale <= tol,
                    "{what}: N vs LU solve {:e}",
                    err / scale
                );
                assert!(
                    err_inv / scale <= tol,
                    "{what}: N vs LU inverse {:e}",
                    err_inv / scale
                );
                // Q = 2N − I: one more rounding on the diagonal, twice the error of N.
                assert!(
                    err_q / scale <= 2.0 * tol + T::EPS.to_f64(),
                    "{what}: Q {err_q:e}"
                );
            }
        }
    }
}

/// The unpivoted Gauss–Jordan inverse of `I − K` agrees with faer's partial-pivot LU to
/// 20·b·eps relative, for b = 1, 2, 3, 7, 16, 33 in f32 and f64.
#[test]
fn cayley_inverse_matches_partial_pivot_lu() {
    agrees_with_partial_pivot_lu::<f64>();
    agrees_with_partial_pivot_lu::<f32>();
}

/// The tape gradient equals the projection of 2 Nᵀ G Nᵀ computed independently with faer's LU and
/// dense products, for sizes around the 16-column tile width.
#[test]
fn cayley_backward_matches_dense_formula() {
    for b in [3usize, 16, 20] {
        let k = 2;
        let theta = randn::<f64>(&[k, skew_dim(b)], 0.5, 60 + b as u64);
        let g = randn::<f64>(&[k, b, b], 1.0, 70 + b as u64);
        let tape = Tape::new();
        let t = tape.leaf(theta.clone());
        let q = cayley(t, b);
        let got = tape.backward_with(q, g.clone()).wrt(t);
        for j in 0..k {
            let nj = i_minus_k(&theta, b, j).partial_piv_lu().inverse();
            let gj = Mat::from_fn(b, b, |r, c| g.data()[j * b * b + r * b + c]);
            let x = nj.transpose() * &gj * nj.transpose() * 2.0;
            let mut idx = 0;
            for i in 0..b {
                for l in i + 1..b {
                    let want = x[(i, l)] - x[(l, i)];
                    let err = (got.data()[j * skew_dim(b) + idx] - want).abs();
                    assert!(
                        err <= 1e-12 * (1.0 + want.abs()),
                        "b={b} ({i},{l}): {err:e}"
                    );
                    idx += 1;
                }
            }
        }
    }
}

fn same_for_any_thread_count<T: Real>() {
    // k·b³ = 32·16³ is above PAR_MIN_BLOCK_WORK, so the 2-thread pool really splits the blocks.
    let (k, b) = (32usize, 16usize);
    let theta = randn::<T>(&[k, skew_dim(b)], 1.0, 80);
    let g = randn::<T>(&[k, b, b], 1.0, 81);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let tape = Tape::new();
            let t = tape.leaf(theta.clone());
            let q = cayley(t, b);
            let qv: Tensor<T> = (*q.value()).clone();
            (qv, tape.backward_with(q, g.clone()).wrt(t))
        })
    };
    let (q1, g1) = run(1);
    let (q2, g2) = run(2);
    assert!(
        q1 == q2,
        "{}: forward differs between 1 and 2 threads",
        T::DTYPE
    );
    assert!(
        g1 == g2,
        "{}: backward differs between 1 and 2 threads",
        T::DTYPE
    );
}

/// Forward and backward are bitwise identical with 1- and 2-thread rayon pools.
#[test]
fn cayley_bitwise_identical_across_thread_counts() {
    same_for_any_thread_count::<f32>();
    same_for_any_thread_count::<f64>();
}
