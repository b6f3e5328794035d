//! The models: the base MLP `1024 → h → h → head` (ReLU; `h = 512` by default) that is pretrained
//! on the source task, and the adapted model, in which both hidden linear layers carry an adapter
//! (or are trained in full, or stay frozen for the head-only floor) and the head is trainable.
//!
//! Training goes through the tape with every adapter's `forward_with` (structured kernels, no
//! dense rotation); evaluation goes through the tape-free `apply` (again without forming any
//! rotation); [`Adapted::merged`] folds each adapter into a plain dense layer, the only
//! densification, done once after training.

use super::methods::Spec;
use crate::Result;
use gslab::autodiff::tape::Var;
use gslab::nn::linear::Linear;
use gslab::orthogonal::OrthoMap;
use gslab::orthogonal::adapters::{Adapter, DenseLinear, Lora, OrthoAdapter};
use gslab::{BlockRule, Params, Tensor};
use rand::Rng;

/// `max(x, 0)` elementwise with NaN propagated (as the tape's `relu`), without a tape.
fn relu(x: &Tensor<f32>) -> Tensor<f32> {
    x.map(|v| if v.is_nan() { v } else { v.max(0.0) })
}

/// The base MLP `x ↦ head(relu(l2(relu(l1(x)))))`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    /// First hidden layer, `1024 → h`.
    pub l1: Linear<f32>,
    /// Second hidden layer, `h → h`.
    pub l2: Linear<f32>,
    /// Classifier, `h → classes`.
    pub head: Linear<f32>,
}

impl Mlp {
    /// PyTorch-style initialisation ([`Linear::new`]) from `rng`.
    pub fn new<R: Rng + ?Sized>(inputs: usize, hidden: usize, classes: usize, rng: &mut R) -> Self {
        Self {
            l1: Linear::new(inputs, hidden, rng),
            l2: Linear::new(hidden, hidden, rng),
            head: Linear::new(hidden, classes, rng),
        }
    }

    /// Logits on the tape, the parameters given as leaves in [`Params`] order.
    ///
    /// # Panics
    /// If `x` is not `(batch, 1024)` or `leaves` does not hold six tensors.
    pub fn logits_on<'t>(&self, x: Var<'t, f32>, leaves: &[Var<'t, f32>]) -> Var<'t, f32> {
        let lin = |x: Var<'t, f32>, w: Var<'t, f32>, b: Var<'t, f32>| {
            x.matmul_t(false, w, true).add_row(b)
        };
        let h = lin(x, leaves[0], leaves[1]).relu();
        let h = lin(h, leaves[2], leaves[3]).relu();
        lin(h, leaves[4], leaves[5])
    }

    /// The hidden features `relu(l2(relu(l1(x))))`, without a tape.
    pub fn features(&self, x: &Tensor<f32>) -> Tensor<f32> {
        relu(&self.l2.apply(&relu(&self.l1.apply(x))))
    }

    /// Logits without a tape.
    pub fn apply(&self, x: &Tensor<f32>) -> Tensor<f32> {
        self.head.apply(&self.features(x))
    }
}

impl Params<f32> for Mlp {
    fn params(&self) -> Vec<&Tensor<f32>> {
        [&self.l1, &self.l2, &self.head]
            .into_iter()
            .flat_map(|l| l.params())
            .collect()
    }
    fn params_mut(&mut self) -> Vec<&mut Tensor<f32>> {
        let mut v = self.l1.params_mut();
        v.extend(self.l2.params_mut());
        v.extend(self.head.params_mut());
        v
    }
    fn param_names(&self) -> Vec<String> {
        ["l1", "l2", "head"]
            .iter()
            .flat_map(|l| [format!("{l}.weight"), format!("{l}.bias")])
            .collect()
    }
}

/// One hidden layer of the adapted model.
#[derive(Clone, Debug)]
pub enum Layer {
    /// Frozen (the head-only floor): no parameters.
    Frozen(DenseLinear<f32>),
    /// Every weight and bias trained.
    Full(Linear<f32>),
    /// LoRA on the frozen layer.
    Lora(Lora<f32>),
    /// An orthogonal adapter on the frozen layer.
    Ortho(OrthoAdapter<f32>),
}

impl Layer {
    /// `spec`'s adapter on the frozen `base`, with block map `map` and, for the orthogonal
    /// adapters, the scale vector if `scale` (LoRA's `A` is drawn from `rng`).
    ///
    /// # Errors
    /// If a block size does not fit the layer (the library's error names the adapter and width).
    pub fn build<R: Rng + ?Sized>(
        spec: Spec,
        base: &Linear<f32>,
        map: OrthoMap,
        scale: bool,
        rng: &mut R,
    ) -> Result<Self> {
        let frozen = DenseLinear::new(base.weight.clone(), Some(base.bias.clone()))?;
        let size = BlockRule::Size;
        Ok(match spec {
            Spec::Head => Layer::Frozen(frozen),
            Spec::Full => Layer::Full(base.clone()),
            Spec::Lora { r } => Layer::Lora(Lora::new(frozen, r, r as f64, rng)?),
            Spec::Oft { b } => Layer::Ortho(OrthoAdapter::oft(frozen, size(b), map, scale)?),
            Spec::Boft { b, m } => {
                Layer::Ortho(OrthoAdapter::boft(frozen, size(b), m, map, scale)?)
            }
            Spec::Gsoft { b } => Layer::Ortho(OrthoAdapter::gsoft(frozen, size(b), map, scale)?),
            Spec::DoubleGsoft { b } => Layer::Ortho(OrthoAdapter::double_gsoft(
                frozen,
                size(b),
                size(b),
                map,
                scale,
            )?),
            Spec::GsChain { b, m } => {
                Layer::Ortho(OrthoAdapter::gs_chain(frozen, size(b), m, map, scale)?)
            }
        })
    }

    fn params(&self) -> Vec<&Tensor<f32>> {
        match self {
            Layer::Frozen(_) => Vec::new(),
            Layer::Full(l) => l.params(),
            Layer::Lora(a) => a.params(),
            Layer::Ortho(a) => a.params(),
        }
    }

    fn params_mut(&mut self) -> Vec<&mut Tensor<f32>> {
        match self {
            Layer::Frozen(_) => Vec::new(),
            Layer::Full(l) => l.params_mut(),
            Layer::Lora(a) => a.params_mut(),
            Layer::Ortho(a) => a.params_mut(),
        }
    }

    fn param_names(&self) -> Vec<String> {
        match self {
            Layer::Frozen(_) => Vec::new(),
            Layer::Full(l) => l.param_names(),
            Layer::Lora(a) => a.param_names(),
            Layer::Ortho(a) => a.param_names(),
        }
    }

    /// `y = x W'ᵀ + bias` on the tape, the layer's parameters given as `leaves`.
    fn forward_with<'t>(&self, x: Var<'t, f32>, leaves: &[Var<'t, f32>]) -> Var<'t, f32> {
        match self {
            Layer::Frozen(d) => d.forward(x),
            Layer::Full(_) => x.matmul_t(false, leaves[0], true).add_row(leaves[1]),
            Layer::Lora(a) => a.forward_with(x, leaves),
            Layer::Ortho(a) => a.forward_with(x, leaves),
        }
    }

    /// `y = x W'ᵀ + bias` without a tape (structured kernels, no merged weight).
    fn apply(&self, x: &Tensor<f32>) -> Tensor<f32> {
        match self {
            Layer::Frozen(d) => d.apply(x),
            Layer::Full(l) => l.apply(x),
            Layer::Lora(a) => a.apply(x),
            Layer::Ortho(a) => a.apply(x),
        }
    }

    /// The plain dense layer `(W', bias)`.
    pub fn merged(&self) -> Linear<f32> {
        let d = match self {
            Layer::Frozen(d) => d.clone(),
            Layer::Full(l) => return l.clone(),
            Layer::Lora(a) => a.merge(),
            Layer::Ortho(a) => a.merge(),
        };
        Linear::from_tensors(d.weight, d.bias.expect("every layer has a bias"))
            .expect("a merged layer has matching shapes")
    }

    /// The orthogonal adapter, if this is one.
    pub fn ortho(&self) -> Option<&OrthoAdapter<f32>> {
        match self {
            Layer::Ortho(a) => Some(a),
            _ => None,
        }
    }

    /// Trainable scalars as stored (the free skew parameters for the orthogonal adapters).
    pub fn free_params(&self) -> usize {
        self.params().iter().map(|p| p.numel()).sum()
    }

    /// Trainable parameters in the paper's convention (`b²` per Cayley block).
    pub fn paper_params(&self) -> usize {
        match self {
            Layer::Ortho(a) => a.paper_param_count(),
            _ => self.free_params(),
        }
    }
}

/// The adapted model: two adapted hidden layers and a trainable head. Trainable tensors in
/// order: layer 1's, layer 2's, then the head's weight and bias.
#[derive(Clone, Debug)]
pub struct Adapted {
    /// The two hidden layers.
    pub layers: [Layer; 2],
    /// The classifier (trainable; not counted in "# Params").
    pub head: Linear<f32>,
}

impl Adapted {
    /// `spec` on both hidden layers of `base`, with `head` as the classifier.
    ///
    /// # Errors
    /// As [`Layer::build`].
    pub fn new<R: Rng + ?Sized>(
        spec: Spec,
        base: &Mlp,
        head: Linear<f32>,
        map: OrthoMap,
        scale: bool,
        rng: &mut R,
    ) -> Result<Self> {
        Ok(Self {
            layers: [
                Layer::build(spec, &base.l1, map, scale, rng)?,
                Layer::build(spec, &base.l2, map, scale, rng)?,
            ],
            head,
        })
    }

    /// Logits on the tape, the parameters given as leaves in [`Params`] order.
    ///
    /// # Panics
    /// If `x` is not `(batch, 1024)` or `leaves` does not match [`Params::params`].
    pub fn logits_on<'t>(&self, x: Var<'t, f32>, leaves: &[Var<'t, f32>]) -> Var<'t, f32> {
        let n0 = self.layers[0].params().len();
        let n1 = self.layers[1].params().len();
        assert!(
            leaves.len() == n0 + n1 + 2,
            "Adapted::logits_on: {} leaves for {} parameters",
            leaves.len(),
            n0 + n1 + 2
        );
        let h = self.layers[0].forward_with(x, &leaves[..n0]).relu();
        let h = self.layers[1].forward_with(h, &leaves[n0..n0 + n1]).relu();
        let (w, b) = (leaves[n0 + n1], leaves[n0 + n1 + 1]);
        h.matmul_t(false, w, true).add_row(b)
    }

    /// The hidden features after both adapted layers, without a tape.
    pub fn features(&self, x: &Tensor<f32>) -> Tensor<f32> {
        relu(&self.layers[1].apply(&relu(&self.layers[0].apply(x))))
    }

    /// Logits without a tape.
    pub fn apply(&self, x: &Tensor<f32>) -> Tensor<f32> {
        self.head.apply(&self.features(x))
    }

    /// The merged dense model (each adapter folded into its layer).
    pub fn merged(&self) -> Mlp {
        Mlp {
            l1: self.layers[0].merged(),
            l2: self.layers[1].merged(),
            head: self.head.clone(),
        }
    }

    /// Trainable scalars of the hidden layers as stored (head excluded).
    pub fn free_params(&self) -> usize {
        self.layers.iter().map(Layer::free_params).sum()
    }

    /// Trainable parameters of the hidden layers in the paper's convention (head excluded).
    pub fn paper_params(&self) -> usize {
        self.layers.iter().map(Layer::paper_params).sum()
    }
}

impl Params<f32> for Adapted {
    fn params(&self) -> Vec<&Tensor<f32>> {
        let mut v = self.layers[0].params();
        v.extend(self.layers[1].params());
        v.extend(self.head.params());
        v
    }
    fn params_mut(&mut self) -> Vec<&mut Tensor<f32>> {
        let [a, b] = &mut self.layers;
        let mut v = a.params_mut();
        v.extend(b.params_mut());
        v.extend(self.head.params_mut());
        v
    }
    fn param_names(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            v.extend(
                l.param_names()
                    .into_iter()
                    .map(|n| format!("l{}.{n}", i + 1)),
            );
        }
        v.extend(["head.weight".to_string(), "head.bias".to_string()]);
        v
    }
}
