//! Slow naive references for the convolution kernels: the defining sums, loop by loop. For tests
//! and small examples only.

use crate::kernels::conv::ConvGeom;
use crate::real::Real;
use crate::tensor::Tensor;

/// `conv2d(x, w, groups)` by its definition (module docs of [`crate::kernels::conv`]), with every
/// sum accumulated in f64: `y[n, o, r, s] = Σ_{i,a,b} w[o, i, a, b] · x[n, G(o)·c_in/g + i,
/// r + a − p, s + b − p]` (zero outside the image, `p = k/2`).
///
/// # Panics
/// As [`conv2d_forward`](crate::kernels::conv::conv2d_forward).
pub fn conv2d_reference<T: Real>(x: &Tensor<T>, w: &Tensor<T>, groups: usize) -> Tensor<T> {
    let g = ConvGeom::of("conv2d_reference", x.shape(), w.shape(), groups);
    let batch = x.shape()[0];
    let (cig, cog, k, p) = (g.cin_g(), g.cout_g(), g.k, g.pad() as isize);
    let (xd, wd) = (x.data(), w.data());
    let mut y = Tensor::zeros(&g.output_shape(batch));
    let yd = y.data_mut();
    for n in 0..batch {
        for o in 0..g.c_out {
            let grp = o / cog;
            for r in 0..g.h {
                for s in 0..g.w {
                    let mut acc = 0.0f64;
                    for i in 0..cig {
                        let ch = grp * cig + i;
                        for a in 0..k {
                            for b in 0..k {
                                let (rr, ss) =
                                    (r as isize + a as isize - p, s as isize + b as isize - p);
                                if rr < 0 || ss < 0 || rr >= g.h as isize || ss >= g.w as isize {
                                    continue;
                                }
                                let xv =
                                    xd[((n * g.c_in + ch) * g.h + rr as usize) * g.w + ss as usize];
                                let wv = wd[((o * cig + i) * k + a) * k + b];
                                acc += xv.to_f64() * wv.to_f64();
                            }
                        }
                    }
                    yd[((n * g.c_out + o) * g.h + r) * g.w + s] = T::from_f64(acc);
                }
            }
        }
    }
    y
}

/// The truncated convolution exponential by repeated [`conv2d_reference`]:
/// `Σ_{i=0}^{terms} u_i` with `u_0 = x`, `u_i = conv2d(u_{i−1}, l) / i` (Definition 6.1).
///
/// # Panics
/// As [`exp_conv_forward`](crate::kernels::conv::exp_conv_forward).
pub fn exp_conv_reference<T: Real>(
    x: &Tensor<T>,
    l: &Tensor<T>,
    groups: usize,
    terms: usize,
) -> Tensor<T> {
    let mut u = x.clone();
    let mut y = x.clone();
    for i in 1..=terms {
        u = conv2d_reference(&u, l, groups).scale(T::one() / T::from_usize(i));
        y.add_assign(&u);
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_3x3_on_a_2x2_image() {
        // one channel, 2×2 image [[1, 2], [3, 4]], kernel with 1 at the centre and 10 at (0, 0)
        let x = Tensor::from_vec(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let mut wv = vec![0.0; 9];
        wv[4] = 1.0;
        wv[0] = 10.0; // reads x[r − 1, s − 1]
        let w = Tensor::from_vec(&[1, 1, 3, 3], wv).unwrap();
        let y = conv2d_reference(&x, &w, 1);
        assert_eq!(y.data(), &[1.0, 2.0, 3.0, 4.0 + 10.0]);
    }

    #[test]
    fn groups_do_not_mix() {
        // 2 groups of one channel each; kernel picks the centre with weights 2 and 3
        let x = Tensor::from_vec(&[1, 2, 1, 2], vec![1.0, 2.0, 5.0, 7.0]).unwrap();
        let w = Tensor::from_vec(&[2, 1, 1, 1], vec![2.0, 3.0]).unwrap();
        assert_eq!(conv2d_reference(&x, &w, 2).data(), &[2.0, 4.0, 15.0, 21.0]);
    }
}
