//! # gslab: Group-and-Shuffle structured orthogonal matrices
//!
//! A pure-Rust research crate for the structured matrices of *Group and Shuffle: Efficient
//! Structured Orthogonal Parametrization* (Gorbunov et al., NeurIPS 2024).
//!
//! A GS matrix is `A = P_L (L P R) P_R` (Definition 3.1): `R` multiplies contiguous groups of the
//! input by small dense blocks ("group"), the permutation `P` redistributes the entries into new
//! groups ("shuffle"), and `L` multiplies the new groups by small dense blocks. With orthogonal
//! blocks (Cayley or matrix exponential of skew-symmetric generators) `A` is orthogonal, and two
//! factors reach the density that block butterflies (BOFT) need `1 + ⌈log₂ r⌉` factors for.
//!
//! The same group-and-shuffle idea on the channels of a convolution (§5 of the paper) gives the
//! GS orthogonal convolutions: [`kernels::conv`] (fast grouped convolutions and the convolution
//! exponential on NCHW tensors), [`orthogonal::conv`] (SOC and GS-SOC layers with certified
//! Lipschitz bounds) and [`nn::lipconvnet`] (the LipConvnet of Table 3).
//!
//! Conventions used everywhere:
//! - an operator acts on the rows of a `(batch, n)` tensor: `apply(X) = X·Aᵀ` (as `nn.Linear`);
//! - a [`Perm`] stores a gather map, `(P x)[i] = x[σ(i)]`;
//! - block-diagonal factors store their blocks as a `(k, b1, b2)` row-major tensor;
//! - blocks are given as a [`Blocks`] value naming what is given (`Blocks::count(n, r)` or
//!   `Blocks::size(n, b)`), never as a bare number;
//! - lists of factor blocks are in application order (`B_1` first, so `[R, L]` for a GS matrix);
//!   constructors that take named factors take them in the paper's order (`L` before `R`).
//!
//! The public API exposes types of [`faer`] (`Par`, matrix views) and [`rand`] (`Rng`): both are
//! re-exported here, so `gslab::faer` and `gslab::rand` are the versions the crate was built with.
//!
//! ## Example: structure, density, and one exactly orthogonal training step
//!
//! ```
//! use gslab::nn::optim::{Adam, Optimizer};
//! use gslab::orthogonal::{OrthoLayer, OrthoMap, OrthoGs, orthogonality_error};
//! use gslab::rand::{SeedableRng, rngs::StdRng};
//! use gslab::structured::{Gs, LinearOp};
//! use gslab::{Blocks, Params, Tape, Tensor};
//!
//! let mut rng = StdRng::seed_from_u64(0);
//! // GSOFT's Q = Pᵀ L P R with r = 8 blocks of 8×8 (n = 64), P = P_(r,n): never densified.
//! let blocks = Blocks::count(64, 8)?;
//! let gs = Gs::<f64>::gsoft_random(blocks, &mut rng)?;
//! let x = Tensor::randn(&[4, 64], 1.0, &mut rng);
//! let y = gs.apply(&x); // y = x·Aᵀ, through the batched block kernel
//! assert!(y.sub(&x.matmul_t(false, &gs.to_dense(), true)).max_abs() < 1e-12);
//! assert_eq!(gs.pattern().row_counts()[0], 64); // min(n, b²) nonzeros per row (Theorem 2)
//!
//! // A trainable orthogonal GS layer (Cayley blocks), one Adam step, still orthogonal.
//! let mut q = OrthoGs::<f64>::new(blocks, OrthoMap::Cayley)?;
//! let mut adam = Adam::new(0.1);
//! let tape = Tape::new();
//! let xv = tape.constant(x.clone());
//! let (yv, leaves) = q.forward(&tape, xv);
//! let loss = yv.mse(tape.constant(y.clone()));
//! let grads = tape.backward(loss);
//! let g: Vec<Tensor<f64>> = leaves.iter().map(|&v| grads.wrt(v)).collect();
//! adam.step(&mut q.params_mut(), &g);
//! assert!(orthogonality_error(&q.matrix()) < 10.0 * 64.0 * f64::EPSILON);
//! # Ok::<(), gslab::Error>(())
//! ```

pub mod autodiff;
pub mod blocks;
pub mod count;
pub mod error;
pub mod io;
pub mod kernels;
pub mod nn;
pub mod orthogonal;
pub mod perm;
pub mod real;
pub mod structured;
pub mod tensor;

pub use autodiff::gradcheck::{GradcheckReport, gradcheck};
pub use autodiff::params::Params;
pub use autodiff::tape::{Grads, Tape, Var};
pub use blocks::{BlockRule, Blocks};
pub use error::{Error, Result};
pub use perm::Perm;
pub use real::Real;
pub use tensor::Tensor;

pub use faer;
pub use rand;
