//! The workloads of the sweep: one operation at one size with its data, built once and run for
//! every pool and pass, writing into outputs allocated once.

use super::{Op, Pass, Point};
use crate::Result;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use gslab::count::{
    cayley_flops, chain_flops, conv2d_flops, dense_flops, fwd_bwd_flops, orthogs_step_flops,
};
use gslab::kernels::chain::{chain_backward_into, chain_forward_into, chain_forward_saved_into};
use gslab::kernels::conv::{ConvGeom, conv2d_backward_into, conv2d_forward_into};
use gslab::nn::optim::{Adam, Optimizer};
use gslab::orthogonal::OrthoMap;
use gslab::orthogonal::adapters::{Adapter, DenseLinear, Lora, OrthoAdapter};
use gslab::orthogonal::cayley::{cayley_backward_into, cayley_with_inverse_into, skew_dim};
use gslab::orthogonal::conv::{GsSoc, Mode, Soc, SocSettings};
use gslab::orthogonal::{OrthoGs, OrthoLayer};
use gslab::structured::pattern::boft_formula;
use gslab::structured::{
    BlockDiag, BlockShape, Butterfly, ChainLayout, Gs, GsChain, LinearOp, Monarch,
};
use gslab::{BlockRule, Blocks, Params};
use gslab::{Real, Tape, Tensor};
use rand::rngs::StdRng;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;

/// A workload with its data, built once per `(op, point, dtype)` and timed on every pool.
pub(super) enum Work<T: Real> {
    /// A chain operator with its inputs and caller-provided outputs (`Y`, `dX`, `dB_i`), written
    /// in place by the `_into` kernels as the dense baseline writes its preallocated matrices.
    Chain {
        layout: Arc<ChainLayout>,
        blocks: Vec<Tensor<T>>,
        x: Tensor<T>,
        dy: Tensor<T>,
        y: Tensor<T>,
        dx: Tensor<T>,
        dbs: Vec<Tensor<T>>,
    },
    Dense {
        w: Mat<T>,
        x: Mat<T>,
        dy: Mat<T>,
        y: Mat<T>,
        dx: Mat<T>,
        dw: Mat<T>,
    },
    /// The Cayley kernels with caller-provided outputs (`Q`, the inverses `N`, `∂ℓ/∂θ`), as the
    /// chain ops; the tape's own overhead is part of `orthogs_step`.
    Cayley {
        theta: Tensor<T>,
        g: Tensor<T>,
        b: usize,
        q: Tensor<T>,
        inv: Tensor<T>,
        dtheta: Tensor<T>,
    },
    Step {
        /// The initial state (the fingerprint always starts from it).
        init: OrthoGs<T>,
        /// The timed state, updated by every timed step.
        layer: OrthoGs<T>,
        adam: Adam<T>,
        x: Tensor<T>,
        g: Tensor<T>,
    },
    /// One training step of an adapter on a frozen `n → n/2` layer (`speed` module docs).
    AdapterStep {
        /// The initial state (the fingerprint always starts from it).
        init: Box<StepAdapter<T>>,
        /// The timed state, updated by every timed step.
        layer: Box<StepAdapter<T>>,
        adam: Adam<T>,
        x: Tensor<T>,
        g: Tensor<T>,
        /// Whether the gradient reaches the input (a layer inside a network).
        dx: bool,
        /// FLOPs of one step (module docs of `speed`).
        flops: f64,
    },
    /// `conv2d` with one group: input, kernel and output gradient, and the caller-provided
    /// outputs (`Y`, `dX`, `dW`) written by the `_into` kernels.
    Conv {
        x: Tensor<T>,
        w: Tensor<T>,
        dy: Tensor<T>,
        y: Tensor<T>,
        dx: Tensor<T>,
        dw: Tensor<T>,
        /// FLOPs of one forward ([`conv2d_flops`]).
        flops: f64,
    },
    /// The im2col-equivalent GEMM of [`Work::Conv`]: `C = A·B` (`A`: `c_out × c_in·k²`, `B`:
    /// `c_in·k² × batch·h·w`), with backward `dA = dC·Bᵀ`, `dB = Aᵀ·dC` (as `benches/conv.rs`).
    Gemm {
        a: Mat<T>,
        b: Mat<T>,
        dc: Mat<T>,
        c: Mat<T>,
        da: Mat<T>,
        db: Mat<T>,
    },
    /// One training forward+backward of a SOC / GS-SOC layer (`speed` module docs).
    Layer {
        /// The initial state (the fingerprint always starts from it).
        init: Box<GsSoc<T>>,
        /// The timed state: its power iteration advances with every timed call.
        layer: Box<GsSoc<T>>,
        x: Tensor<T>,
        /// The fixed projection `P` of the loss `Σ Y ⊙ P`.
        proj: Tensor<T>,
        /// FLOPs of one call (module docs of `speed`).
        flops: f64,
    },
}

/// The adapter of an [`Work::AdapterStep`].
#[derive(Clone)]
pub(super) enum StepAdapter<T: Real> {
    Lora(Lora<T>),
    Ortho(OrthoAdapter<T>),
}

impl<T: Real> StepAdapter<T> {
    fn params_mut(&mut self) -> Vec<&mut Tensor<T>> {
        match self {
            StepAdapter::Lora(a) => a.params_mut(),
            StepAdapter::Ortho(a) => a.params_mut(),
        }
    }
    fn params(&self) -> Vec<&Tensor<T>> {
        match self {
            StepAdapter::Lora(a) => a.params(),
            StepAdapter::Ortho(a) => a.params(),
        }
    }
}

const ADAM_LR: f64 = 1e-3;

/// Standard deviation of the random skew parameters (a generic, non-identity Cayley input).
const THETA_STD: f64 = 0.1;

fn randn<T: Real>(shape: &[usize], rng: &mut StdRng) -> Tensor<T> {
    Tensor::randn(shape, 1.0, rng)
}

fn randn_mat<T: Real>(rows: usize, cols: usize, rng: &mut StdRng) -> Mat<T> {
    randn::<T>(&[rows, cols], rng).to_mat()
}

fn chain_work<T: Real, O: LinearOp<T>>(op: &O, batch: usize, rng: &mut StdRng) -> Work<T> {
    let (n_out, n_in) = op.shape();
    let layout = Arc::clone(op.layout_arc());
    let dbs = layout
        .factors()
        .iter()
        .map(|f| Tensor::zeros(&f.tensor_shape()))
        .collect();
    Work::Chain {
        layout,
        blocks: op.blocks().to_vec(),
        x: randn(&[batch, n_in], rng),
        dy: randn(&[batch, n_out], rng),
        y: Tensor::zeros(&[batch, n_out]),
        dx: Tensor::zeros(&[batch, n_in]),
        dbs,
    }
}

impl<T: Real> Work<T> {
    pub(super) fn build(op: Op, p: Point, rng: &mut StdRng) -> Result<Self> {
        let Point { n, b, batch } = p;
        let k = n / b;
        let blocks = Blocks::size(n, b)?;
        Ok(match op {
            Op::Gs => chain_work(&Gs::<T>::gsoft_random(blocks, rng)?, batch, rng),
            Op::GsChain3 => {
                let f = [BlockShape::square(k, b); 3];
                chain_work(&GsChain::<T>::random_shuffled(&f, rng)?, batch, rng)
            }
            // R: k blocks of b × b, L: b blocks of k × k (b = k = √n in the sweep).
            Op::Monarch => {
                let l = Blocks::count(n, b)?; // L: b blocks of k, R: k blocks of b
                chain_work(&Monarch::<T>::random_square(l, rng)?, batch, rng)
            }
            Op::Boft => chain_work(
                &Butterfly::<T>::random(blocks, boft_formula(blocks)?, rng)?,
                batch,
                rng,
            ),
            Op::BlockDiag => chain_work(&BlockDiag::<T>::random(blocks.shape(), rng)?, batch, rng),
            Op::Dense => Work::Dense {
                w: randn_mat(n, n, rng),
                x: randn_mat(batch, n, rng),
                dy: randn_mat(batch, n, rng),
                y: Mat::zeros(batch, n),
                dx: Mat::zeros(batch, n),
                dw: Mat::zeros(n, n),
            },
            Op::Cayley => Work::Cayley {
                theta: Tensor::randn(&[k, skew_dim(b)], THETA_STD, rng),
                g: randn(&[k, b, b], rng),
                b,
                q: Tensor::zeros(&[k, b, b]),
                inv: Tensor::zeros(&[k, b, b]),
                dtheta: Tensor::zeros(&[k, skew_dim(b)]),
            },
            Op::LoraStep
            | Op::GsoftStep
            | Op::BoftStep
            | Op::LoraStepFirst
            | Op::GsoftStepFirst
            | Op::BoftStepFirst => adapter_work(op, p, rng)?,
            Op::Conv2d => {
                let geom = conv_geom(p, CONV_KERNEL, 1)?;
                let x = randn(&geom.input_shape(batch), rng);
                Work::Conv {
                    w: Tensor::randn(&geom.kernel_shape(), 0.1, rng),
                    dy: randn(&geom.output_shape(batch), rng),
                    y: Tensor::zeros(&geom.output_shape(batch)),
                    dx: Tensor::zeros(x.shape()),
                    dw: Tensor::zeros(&geom.kernel_shape()),
                    flops: conv2d_flops(&geom, batch),
                    x,
                }
            }
            Op::ConvGemm => {
                let (m, kk, cols) = (n, n * CONV_KERNEL * CONV_KERNEL, batch * b * b);
                Work::Gemm {
                    a: randn_mat(m, kk, rng),
                    b: randn_mat(kk, cols, rng),
                    dc: randn_mat(m, cols, rng),
                    c: Mat::zeros(m, cols),
                    da: Mat::zeros(m, kk),
                    db: Mat::zeros(kk, cols),
                }
            }
            Op::Soc | Op::GsSoc4 | Op::GsSoc4x2 => {
                let groups = op.conv_layer_groups().expect("a layer op has its groups");
                let layer = GsSoc::<T>::new(
                    (n, n),
                    (CONV_KERNEL, 1),
                    groups,
                    groups.0 > 1,
                    SocSettings::default(),
                    rng,
                )?;
                let socs = std::iter::once(layer.first()).chain(layer.second());
                let flops = socs.map(|s| layer_conv_flops(s, p)).sum::<Result<f64>>()?;
                Work::Layer {
                    init: Box::new(layer.clone()),
                    layer: Box::new(layer),
                    x: randn(&[batch, n, b, b], rng),
                    proj: randn(&[batch, n, b, b], rng),
                    flops,
                }
            }
            Op::OrthoGsStep => {
                let mut layer = OrthoGs::<T>::new(blocks, OrthoMap::Cayley)?;
                let params = (0..2)
                    .map(|_| Tensor::randn(&[k, skew_dim(b)], THETA_STD, rng))
                    .collect();
                layer.set_params(params)?;
                Work::Step {
                    init: layer.clone(),
                    layer,
                    adam: Adam::new(ADAM_LR),
                    x: randn(&[batch, n], rng),
                    g: randn(&[batch, n], rng),
                }
            }
        })
    }

    /// Runs one pass. With `keep`, returns every output as a flat vector (forward: `Y`;
    /// forward+backward: `Y`, `dX` and the weight gradients; a training step: the parameters
    /// after one step from the initial state, leaving the timed state untouched; a layer: `Y`,
    /// `dX` and the parameter gradients of one call from the initial state, likewise).
    pub(super) fn run(&mut self, pass: Pass, par: Par, keep: bool) -> Option<Vec<T>> {
        match self {
            Work::Chain {
                layout,
                blocks,
                x,
                dy,
                y,
                dx,
                dbs,
            } => {
                match pass {
                    Pass::Fwd => chain_forward_into(layout, blocks, x, y, par),
                    Pass::FwdBwd => {
                        let saved = chain_forward_saved_into(layout, blocks, x, y, par);
                        chain_backward_into(layout, blocks, (x, &saved), dy, (dx, dbs), par);
                    }
                }
                keep.then(|| match pass {
                    Pass::Fwd => y.data().to_vec(),
                    Pass::FwdBwd => {
                        let all = [&*y, &*dx].into_iter().chain(dbs.iter());
                        all.flat_map(|t| t.data().iter().copied()).collect()
                    }
                })
            }
            Work::Dense {
                w,
                x,
                dy,
                y,
                dx,
                dw,
            } => {
                let one = T::one();
                matmul(
                    y.as_mut(),
                    Accum::Replace,
                    x.as_ref(),
                    w.transpose(),
                    one,
                    par,
                );
                let mut mats = vec![&*y];
                if pass == Pass::FwdBwd {
                    matmul(
                        dx.as_mut(),
                        Accum::Replace,
                        dy.as_ref(),
                        w.as_ref(),
                        one,
                        par,
                    );
                    matmul(
                        dw.as_mut(),
                        Accum::Replace,
                        dy.transpose(),
                        x.as_ref(),
                        one,
                        par,
                    );
                    mats.extend([&*dx, &*dw]);
                }
                black_box(&mats);
                keep.then(|| mats.iter().flat_map(|m| mat_values(m)).collect())
            }
            Work::Cayley {
                theta,
                g,
                b,
                q,
                inv,
                dtheta,
            } => {
                cayley_with_inverse_into(theta, *b, q, inv);
                if pass == Pass::FwdBwd {
                    cayley_backward_into(g, inv, *b, dtheta);
                }
                keep.then(|| match pass {
                    Pass::Fwd => q.data().to_vec(),
                    Pass::FwdBwd => dtheta.data().to_vec(),
                })
            }
            Work::AdapterStep {
                init,
                layer,
                adam,
                x,
                g,
                dx,
                ..
            } => {
                if keep {
                    let mut l = (**init).clone();
                    adapter_step(&mut l, &mut Adam::new(ADAM_LR), x, g, *dx);
                    let ps: Vec<Tensor<T>> = l.params().into_iter().cloned().collect();
                    Some(flatten(&ps))
                } else {
                    adapter_step(layer, adam, x, g, *dx);
                    None
                }
            }
            Work::Conv {
                x,
                w,
                dy,
                y,
                dx,
                dw,
                ..
            } => {
                conv2d_forward_into(x, w, 1, y, par);
                if pass == Pass::FwdBwd {
                    conv2d_backward_into((x, w, 1), dy, Some(dx), Some(dw), par);
                }
                black_box((&*y, &*dx, &*dw));
                keep.then(|| match pass {
                    Pass::Fwd => y.data().to_vec(),
                    Pass::FwdBwd => [&*y, &*dx, &*dw]
                        .into_iter()
                        .flat_map(|t| t.data().iter().copied())
                        .collect(),
                })
            }
            Work::Gemm {
                a,
                b,
                dc,
                c,
                da,
                db,
            } => {
                let one = T::one();
                matmul(c.as_mut(), Accum::Replace, a.as_ref(), b.as_ref(), one, par);
                let mut mats = vec![&*c];
                if pass == Pass::FwdBwd {
                    matmul(
                        da.as_mut(),
                        Accum::Replace,
                        dc.as_ref(),
                        b.transpose(),
                        one,
                        par,
                    );
                    matmul(
                        db.as_mut(),
                        Accum::Replace,
                        a.transpose(),
                        dc.as_ref(),
                        one,
                        par,
                    );
                    mats.extend([&*da, &*db]);
                }
                black_box(&mats);
                keep.then(|| mats.iter().flat_map(|m| mat_values(m)).collect())
            }
            Work::Layer {
                init,
                layer,
                x,
                proj,
                ..
            } => {
                if keep {
                    let (y, grads) = layer_call(&mut (**init).clone(), x, proj);
                    let y = y.data().iter().copied();
                    Some(y.chain(flatten(&grads)).collect())
                } else {
                    black_box(layer_call(layer, x, proj));
                    None
                }
            }
            Work::Step {
                init,
                layer,
                adam,
                x,
                g,
            } => {
                if keep {
                    let mut l = init.clone();
                    ortho_step(&mut l, &mut Adam::new(ADAM_LR), x, g);
                    let ps: Vec<Tensor<T>> = l.params().into_iter().cloned().collect();
                    Some(flatten(&ps))
                } else {
                    ortho_step(layer, adam, x, g);
                    None
                }
            }
        }
    }

    /// FLOPs of one pass, in the convention of `gslab::count` (module docs).
    pub(super) fn flops(&self, p: Point, pass: Pass) -> f64 {
        let fb = |fwd: f64| match pass {
            Pass::Fwd => fwd,
            Pass::FwdBwd => fwd_bwd_flops(fwd),
        };
        match self {
            Work::Chain { layout, x, .. } => {
                fb(chain_flops(layout.macs_per_vector(), x.shape()[0]))
            }
            Work::Dense { .. } => fb(dense_flops(p.n, p.n, p.batch)),
            Work::Cayley { .. } => cayley_flops(p.n / p.b, p.b, pass == Pass::FwdBwd),
            Work::Step { .. } => {
                let blocks = Blocks::size(p.n, p.b).expect("the point was built with these blocks");
                orthogs_step_flops(blocks, p.batch)
            }
            Work::AdapterStep { flops, .. } => *flops,
            Work::Conv { flops, .. } => fb(*flops),
            Work::Gemm { a, b, .. } => fb(dense_flops(a.nrows(), a.ncols(), b.ncols())),
            Work::Layer { flops, .. } => *flops,
        }
    }
}

/// Kernel size of the convolution rows and layers (3×3).
pub(super) const CONV_KERNEL: usize = 3;

/// The geometry of a convolution row at `p` (module docs of `speed`: `n → n` channels, `b × b`
/// images) with a `k × k` kernel and `groups` groups.
fn conv_geom(p: Point, k: usize, groups: usize) -> Result<ConvGeom> {
    Ok(ConvGeom::new(p.n, p.n, p.b, p.b, k, groups)?)
}

/// FLOPs of one training forward+backward of one convolution of a layer at `p`: `terms`
/// convolutions forward, each with its data and kernel gradient (module docs of `speed`).
fn layer_conv_flops<T: Real>(s: &Soc<T>, p: Point) -> Result<f64> {
    let geom = conv_geom(p, s.kernel_size(), s.groups())?;
    Ok(fwd_bwd_flops(
        s.terms(Mode::Train) as f64 * conv2d_flops(&geom, p.batch),
    ))
}

/// One training forward+backward of a SOC / GS-SOC layer through the tape on the loss
/// `ℓ = Σ Y ⊙ P` (as `layer_case` of `benches/conv.rs`): returns `Y` and the gradients (`dX`,
/// then every parameter's). Advances the layer's power iteration.
fn layer_call<T: Real>(
    layer: &mut GsSoc<T>,
    x: &Tensor<T>,
    proj: &Tensor<T>,
) -> (Rc<Tensor<T>>, Vec<Tensor<T>>) {
    let tape = Tape::new();
    let xv = tape.leaf(x.clone());
    let (y, leaves) = layer.forward(&tape, xv, Mode::Train);
    let grads = tape.backward(y.mul(tape.constant(proj.clone())).sum());
    let mut out = vec![grads.wrt(xv)];
    out.extend(leaves.iter().map(|&v| grads.wrt(v)));
    (y.value(), out)
}

/// An adapter step workload at `p`: a frozen `n → n/2` layer (weight scaled by `1/√n`) with
/// LoRA of rank `b` (random `A` and `B`), GSOFT or BOFT with 2 factors of `b × b` blocks (random
/// skew parameters of standard deviation [`THETA_STD`], scale vector at 1), Cayley map.
fn adapter_work<T: Real>(op: Op, p: Point, rng: &mut StdRng) -> Result<Work<T>> {
    let Point { n, b, batch } = p;
    let out = n / 2;
    let w = Tensor::randn(&[out, n], 1.0 / (n as f64).sqrt(), rng);
    let base = DenseLinear::new(w, Some(Tensor::randn(&[out], 0.1, rng)))?;
    let dx = matches!(op, Op::LoraStep | Op::GsoftStep | Op::BoftStep);
    let rule = BlockRule::Size(b);
    let mut layer = match op {
        Op::LoraStep | Op::LoraStepFirst => StepAdapter::Lora(Lora::new(base, b, b as f64, rng)?),
        Op::GsoftStep | Op::GsoftStepFirst => {
            StepAdapter::Ortho(OrthoAdapter::gsoft(base, rule, OrthoMap::Cayley, true)?)
        }
        _ => StepAdapter::Ortho(OrthoAdapter::boft(base, rule, 2, OrthoMap::Cayley, true)?),
    };
    let is_lora = matches!(layer, StepAdapter::Lora(_));
    for t in layer.params_mut() {
        let std = if is_lora { 0.05 } else { THETA_STD };
        if is_lora || t.ndim() == 2 {
            *t = Tensor::randn(t.shape(), std, rng);
        }
    }
    // FLOPs of the products performed (module docs of `speed`).
    let gemm = dense_flops(out, n, batch);
    let flops = if is_lora {
        let r = b;
        // x·W₀ᵀ, x·Aᵀ, (xAᵀ)·Bᵀ; dB, d(xAᵀ), dA; with dx: G·W₀ and d(xAᵀ)·A.
        let lora = |a: usize, c: usize| 2.0 * (batch * a * c) as f64;
        gemm + lora(n, r)
            + lora(r, out)
            + 2.0 * lora(out, r)
            + lora(r, n)
            + if dx { gemm + lora(r, n) } else { 0.0 }
    } else {
        let m = 2;
        let chain = chain_flops(m * n * b, batch);
        // chain forward, GEMM, the GEMM's data gradient G·W₀ (the rotation's gradient needs it),
        // the chain's weight gradients and, with dx, its data gradient; Cayley of m·n/b blocks.
        chain + 2.0 * gemm + chain + if dx { chain } else { 0.0 } + cayley_flops(m * n / b, b, true)
    };
    Ok(Work::AdapterStep {
        init: Box::new(layer.clone()),
        layer: Box::new(layer),
        adam: Adam::new(ADAM_LR),
        x: randn(&[batch, n], rng),
        g: randn(&[batch, out], rng),
        dx,
        flops,
    })
}

/// One training step of an adapter on the loss `ℓ = ⟨Y, G⟩`: forward through the tape (the
/// input a leaf when `dx`, so its gradient is computed), backward, one Adam update.
fn adapter_step<T: Real>(
    a: &mut StepAdapter<T>,
    adam: &mut Adam<T>,
    x: &Tensor<T>,
    g: &Tensor<T>,
    dx: bool,
) {
    let grads = {
        let tape = Tape::new();
        let leaves = match &*a {
            StepAdapter::Lora(l) => l.leaves(&tape),
            StepAdapter::Ortho(o) => o.leaves(&tape),
        };
        let xv = if dx {
            tape.leaf(x.clone())
        } else {
            tape.constant(x.clone())
        };
        let y = match &*a {
            StepAdapter::Lora(l) => l.forward_with(xv, &leaves),
            StepAdapter::Ortho(o) => o.forward_with(xv, &leaves),
        };
        let mut grads = tape.backward_with(y, g.clone());
        if dx {
            black_box(grads.take(xv).expect("the input leaf gets a gradient"));
        }
        leaves
            .iter()
            .map(|l| {
                grads
                    .take(*l)
                    .expect("every parameter leaf gets a gradient")
            })
            .collect::<Vec<_>>()
    };
    adam.step(&mut a.params_mut(), &grads);
}

/// One training step of an `OrthoGs` layer on the loss `ℓ = ⟨Y, G⟩`: Cayley map of both
/// factors, the GS product, backward through both, one Adam update.
fn ortho_step<T: Real>(layer: &mut OrthoGs<T>, adam: &mut Adam<T>, x: &Tensor<T>, g: &Tensor<T>) {
    let grads = {
        let tape = Tape::new();
        let leaves = layer.leaves(&tape);
        let xv = tape.constant(x.clone());
        let y = layer.forward_with(xv, &leaves);
        let mut grads = tape.backward_with(y, g.clone());
        leaves
            .iter()
            .map(|l| {
                grads
                    .take(*l)
                    .expect("every parameter leaf gets a gradient")
            })
            .collect::<Vec<_>>()
    };
    adam.step(&mut layer.params_mut(), &grads);
}

fn flatten<T: Real>(ts: &[Tensor<T>]) -> Vec<T> {
    ts.iter().flat_map(|t| t.data().iter().copied()).collect()
}

fn mat_values<T: Real>(m: &Mat<T>) -> Vec<T> {
    (0..m.ncols())
        .flat_map(|j| (0..m.nrows()).map(move |i| m[(i, j)]))
        .collect()
}

/// Bitwise equality of two output vectors (f32 → f64 is exact, so comparing the f64 bits
/// compares the original bits of every non-NaN value).
pub(super) fn bitwise_equal<T: Real>(a: &[T], b: &[T]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(&x, &y)| Real::to_f64(x).to_bits() == Real::to_f64(y).to_bits())
}
