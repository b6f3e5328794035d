//! The skew kernel `L = M − convᵀ(M)` of SOC (digest §5.1): with `convᵀ` the adjoint kernel
//! ([`conv_transpose_kernel`]: spatial flip, input and output channels swapped within each
//! group), the Jacobian of `x ↦ conv2d(x, L)` (zero padding `k/2`) is `J_M − J_Mᵀ`, exactly
//! skew-symmetric, so `exp(L)` (Definition 6.1) is orthogonal.
//!
//! The official code uses `½(M − convᵀ(M))`; the factor cancels in the spectral normalisation
//! `L / σ(L)` (up to the `ε = 10⁻¹²` added to `σ`), so this crate uses the paper's `M − convᵀ(M)`.

use crate::autodiff::tape::Var;
use crate::kernels::conv::conv_transpose_kernel;
use crate::real::Real;
use crate::tensor::Tensor;

/// `L = M − convᵀ(M)` for a square grouped kernel `M` of shape `(c, c/groups, k, k)`.
///
/// # Panics
/// If `m` is not 4-D with a square kernel, `groups` does not divide `c`, or the kernel is not
/// square per group (`c/groups ≠ m.shape()[1]`); the message names `skew_kernel` and the shape.
pub fn skew_kernel<T: Real>(m: &Tensor<T>, groups: usize) -> Tensor<T> {
    check("skew_kernel", m.shape(), groups);
    m.sub(&conv_transpose_kernel(m, groups))
}

/// [`skew_kernel`] on the tape: `L = M − convᵀ(M)`. `convᵀ` is a permutation of the kernel's
/// entries and an involution, so it is its own adjoint. Gradient: `dM = G − convᵀ(G)`.
///
/// # Panics
/// As [`skew_kernel`].
pub fn skew_kernel_var<'t, T: Real>(m: Var<'t, T>, groups: usize) -> Var<'t, T> {
    let l = skew_kernel(&m.value(), groups);
    m.tape().push_op(l, &[m], move |g, needs| {
        vec![needs[0].then(|| g.sub(&conv_transpose_kernel(g, groups)))]
    })
}

fn check(op: &str, s: &[usize], groups: usize) {
    let ok = matches!(s, [c, cg, k1, k2] if k1 == k2 && groups > 0 && *c == cg * groups);
    assert!(
        ok,
        "{op}: need a square grouped kernel (c, c/groups, k, k), got shape {s:?} with groups {groups}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autodiff::gradcheck::gradcheck;
    use crate::autodiff::tape::Tape;
    use crate::kernels::conv::conv2d_reference;
    use rand::{SeedableRng, rngs::StdRng};

    /// The dense Jacobian of `x ↦ conv2d(x, l)` on one `(c, h, w)` image.
    fn jacobian(l: &Tensor<f64>, groups: usize, (c, h, w): (usize, usize, usize)) -> Tensor<f64> {
        let n = c * h * w;
        let mut j = Tensor::zeros(&[n, n]);
        for q in 0..n {
            let e = Tensor::from_fn(&[1, c, h, w], |t| if t == q { 1.0 } else { 0.0 });
            for (p, &v) in conv2d_reference(&e, l, groups).data().iter().enumerate() {
                j.data_mut()[p * n + q] = v;
            }
        }
        j
    }

    #[test]
    fn jacobian_of_the_skew_kernel_is_skew_symmetric() {
        for (s, (c, h, w, k, g)) in [
            (3, 4, 5, 3, 1),
            (4, 3, 3, 3, 2),
            (2, 5, 4, 5, 1),
            (6, 2, 3, 1, 3),
        ]
        .into_iter()
        .enumerate()
        {
            let m =
                Tensor::<f64>::randn(&[c, c / g, k, k], 1.0, &mut StdRng::seed_from_u64(s as u64));
            let j = jacobian(&skew_kernel(&m, g), g, (c, h, w));
            let sym = j.add(&j.transpose()).max_abs();
            println!(
                "case {s} ({c} channels, {h}×{w}, k={k}, groups {g}): max |J + Jᵀ| = {sym:e}, max |J| = {:.3}",
                j.max_abs()
            );
            assert!(
                sym < 1e-15 * j.max_abs().max(1.0) * 8.0,
                "case {s}: ‖J + Jᵀ‖_max = {sym}"
            );
            assert!(j.max_abs() > 0.1, "not trivially zero");
            // and M alone is not skew
            let jm = jacobian(&m, g, (c, h, w));
            assert!(jm.add(&jm.transpose()).max_abs() > 0.1);
        }
    }

    #[test]
    fn tape_version_matches_and_gradchecks() {
        let m = Tensor::<f64>::randn(&[4, 2, 3, 3], 1.0, &mut StdRng::seed_from_u64(7));
        let tape = Tape::new();
        let l = skew_kernel_var(tape.constant(m.clone()), 2);
        assert_eq!(*l.value(), skew_kernel(&m, 2));
        let r = Tensor::randn(m.shape(), 1.0, &mut StdRng::seed_from_u64(8));
        let rep = gradcheck(
            |t, v| skew_kernel_var(v[0], 2).mul(t.constant(r.clone())).sum(),
            &[m],
            1e-6,
        );
        assert!(rep.max_rel_err < 1e-7, "{rep}");
    }

    #[test]
    #[should_panic(
        expected = "skew_kernel: need a square grouped kernel (c, c/groups, k, k), got shape [4, 2, 3, 3] with groups 1"
    )]
    fn rectangular_kernel_panics() {
        skew_kernel(&Tensor::<f64>::zeros(&[4, 2, 3, 3]), 1);
    }
}
