//! Parameter and FLOP accounting per adapter method and per model, from layer shapes
//! (paper Tables 1–3; digest §3.6, §3.7, §4.3, §6 and claims T4, T12–T15).
//!
//! # Conventions
//! - [`Convention::Paper`]: a b×b Cayley block counts **b²** parameters, because the code stores a
//!   full matrix `A` and uses the skew part `½(A − Aᵀ)` (paper §7.1). All tables use this.
//! - [`Convention::Free`]: a b×b Cayley block counts its **b(b−1)/2** free parameters (the strict
//!   upper triangle of the skew generator), as this crate stores them.
//!
//! # Per adapted linear layer `in → out` (`b` = block size, `r` = number of blocks)
//! | method | paper convention | free convention |
//! |---|---|---|
//! | full fine-tuning | in·out + bias | same |
//! | LoRA rank ρ | ρ·(in + out) | same |
//! | OFT (PEFT BOFT, 1 factor) | in·b + out | in·(b−1)/2 + out |
//! | BOFT, m factors | m·in·b + out | m·in·(b−1)/2 + out |
//! | GSOFT (Q = Pᵀ L P R) | 2·in·b + out = 2·in²/r + out | 2·in·(b−1)/2 + out |
//! | Double GSOFT | 2·in·b_in + 2·out·b_out + out = 2·in²/r + 2·out²/r + out | analogous |
//! | GS chain, m factors | m·in·b + out | m·in·(b−1)/2 + out |
//!
//! The `+ out` is the magnitude (scale) vector; `in·b = (in/b)·b²` is one block-diagonal factor.
//!
//! # Cost per token (one input row through one adapted layer), in multiply-adds
//! A multiplication with or without an accumulation counts as one multiply-add; FLOPs ≈ 2×.
//! - merged (the adapter folded into the frozen weight): in·out, the dense layer;
//! - unmerged: in·out plus the adapter's own product: ρ·(in + out) for LoRA, m·in·b for m
//!   block-diagonal factors, `out` for the scale vector. (Permutations are free index maps.)
//!
//! Structured matvecs (claims T4, T15): an m-factor GS or BOFT product with b×b blocks on
//! n = r·b costs m·n·b multiply-adds; a dense one n². Density needs m = 1 + ⌈log_b r⌉ GS factors
//! and 1 + ⌈log₂ r⌉ BOFT factors (Theorem 2: [`gs_formula`](crate::structured::pattern::gs_formula),
//! [`boft_formula`](crate::structured::pattern::boft_formula)).
//!
//! # FLOPs of the kernels (2 FLOPs per multiply-add; permutations are free)
//! The one convention used by the `speed` experiment and the criterion benchmarks:
//! - chain product `A = P_{m+1} B_m ⋯ B_1 P_1` on `batch` rows: [`chain_flops`] =
//!   `2·macs·batch` with `macs = Σ_i k_i·b_i¹·b_i²` multiply-adds per row;
//! - dense GEMM `Y = X·Wᵀ` with `W` of `n_out × n_in`: [`dense_flops`] = `2·n_out·n_in·batch`;
//! - forward+backward of either: [`fwd_bwd_flops`] = 3× forward (the backward computes the data
//!   and the weight gradient, each costing one forward);
//! - Cayley map of `k` blocks of `b × b`: [`cayley_flops`], forward `k·(8/3)·b³` (the FLOPs of an
//!   LU of `I − K`, `(2/3)·b³`, and `b` right-hand sides, `2·b³`), forward+backward `k·(20/3)·b³`
//!   (the backward's two products `2·Nᵀ G Nᵀ`, `4·b³`);
//! - one `OrthoGs` training step: [`orthogs_step_flops`], the GS product's forward+backward plus
//!   the Cayley forward+backward of its `2·n/b` blocks (the optimizer's `O(params)` work not
//!   counted).
//! - grouped convolution `conv2d` (stride 1, zero padding `k/2`) on `batch` images:
//!   [`conv2d_flops`] = `2·batch·h·w·c_out·(c_in/g)·k²`, the FLOPs of its im2col-equivalent GEMM
//!   (taps on the zero padding counted as full multiply-adds); forward+backward (data and kernel
//!   gradients) 3× forward ([`fwd_bwd_flops`]).

use crate::blocks::{BlockRule, Blocks};
use crate::error::{Error, Result};
use crate::kernels::conv::ConvGeom;
use serde::Serialize;

/// How an orthogonal b×b Cayley block is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Convention {
    /// b² per block (the paper's tables; the code stores a full matrix).
    Paper,
    /// b(b−1)/2 per block (free parameters of the skew generator).
    Free,
}

/// Parameters of one b×b Cayley block: b² ([`Convention::Paper`]) or b(b−1)/2 ([`Convention::Free`]).
pub fn block_params(b: u64, conv: Convention) -> u64 {
    match conv {
        Convention::Paper => b * b,
        Convention::Free => b * b.saturating_sub(1) / 2,
    }
}

/// An adaptation method for a linear layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Method {
    /// Full fine-tuning: every weight and bias is trained.
    Full,
    /// LoRA with the given rank.
    Lora {
        /// Rank ρ.
        rank: u64,
    },
    /// OFT: one block-diagonal orthogonal factor on the input dimension, plus the scale vector.
    Oft {
        /// Blocks of the factor.
        blocks: BlockRule,
    },
    /// BOFT: `factors` butterfly factors on the input dimension, plus the scale vector.
    Boft {
        /// Blocks of each factor.
        blocks: BlockRule,
        /// Number of factors m.
        factors: u64,
    },
    /// GSOFT: Q = Pᵀ L P R (two block-diagonal factors) on the input, plus the scale vector.
    Gsoft {
        /// Blocks of L and R.
        blocks: BlockRule,
    },
    /// Double GSOFT: GS rotations on the input and on the output, one scale vector.
    DoubleGsoft {
        /// Blocks of each GS matrix (resolved per dimension).
        blocks: BlockRule,
    },
    /// An orthogonal GS chain of `factors` block-diagonal factors on the input dimension, plus
    /// the scale vector (the ablation over the number of factors: `m = 1` is OFT's class,
    /// `m = 2` is GSOFT).
    GsChain {
        /// Blocks of each factor.
        blocks: BlockRule,
        /// Number of factors m.
        factors: u64,
    },
}

impl Method {
    /// Short name used in tables ("LoRA", "GSOFT", ...).
    pub fn name(&self) -> &'static str {
        match self {
            Method::Full => "FT",
            Method::Lora { .. } => "LoRA",
            Method::Oft { .. } => "OFT",
            Method::Boft { .. } => "BOFT",
            Method::Gsoft { .. } => "GSOFT",
            Method::DoubleGsoft { .. } => "Double GSOFT",
            Method::GsChain { .. } => "GS chain",
        }
    }

    /// Configuration in the paper's notation, e.g. `b=8`, `r=32,m=4`, `rank=8`.
    pub fn config(&self) -> String {
        let blk = |b: &BlockRule| b.to_string();
        match self {
            Method::Full => "-".into(),
            Method::Lora { rank } => format!("rank={rank}"),
            Method::Oft { blocks } | Method::Gsoft { blocks } | Method::DoubleGsoft { blocks } => {
                blk(blocks)
            }
            Method::Boft { blocks, factors } | Method::GsChain { blocks, factors } => {
                format!("{},m={factors}", blk(blocks))
            }
        }
    }
}

/// Shape of a linear layer `in → out`, and how many identical copies the model has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinearShape {
    /// Module name (PEFT-style dotted suffix, e.g. `attention.self.query`).
    pub name: String,
    /// Input features.
    pub in_features: u64,
    /// Output features.
    pub out_features: u64,
    /// Whether the layer has a bias.
    pub bias: bool,
    /// Number of copies in the model.
    pub count: u64,
}

impl LinearShape {
    /// A layer `name: in → out` (with or without bias) occurring `count` times.
    pub fn new(name: &str, in_features: u64, out_features: u64, bias: bool, count: u64) -> Self {
        Self {
            name: name.to_string(),
            in_features,
            out_features,
            bias,
            count,
        }
    }

    /// Weights and bias of one copy: in·out + out (the `+ out` only with a bias).
    pub fn dense_params(&self) -> u64 {
        self.in_features * self.out_features + if self.bias { self.out_features } else { 0 }
    }
}

/// Trainable parameters of `method` on one copy of `layer` (table in the module docs).
///
/// # Errors
/// [`Error::InvalidArgument`] if a block size or count does not divide the dimension.
pub fn layer_params(method: Method, layer: &LinearShape, conv: Convention) -> Result<u64> {
    let (i, o) = (layer.in_features, layer.out_features);
    // One block-diagonal factor on dimension n with block size b: (n/b) blocks.
    let factor = |n: u64, blocks: BlockRule| -> Result<u64> {
        let b = blocks.on(n as usize)?.b() as u64;
        Ok((n / b) * block_params(b, conv))
    };
    Ok(match method {
        Method::Full => layer.dense_params(),
        Method::Lora { rank } => rank * (i + o),
        Method::Oft { blocks } => factor(i, blocks)? + o,
        Method::Boft { blocks, factors } => factors * factor(i, blocks)? + o,
        Method::Gsoft { blocks } => 2 * factor(i, blocks)? + o,
        Method::DoubleGsoft { blocks } => 2 * factor(i, blocks)? + 2 * factor(o, blocks)? + o,
        Method::GsChain { blocks, factors } => factors * factor(i, blocks)? + o,
    })
}

/// Multiply-adds per token through one copy of `layer` with `method` applied unmerged:
/// in·out for the frozen weight plus the adapter's products (module docs). Merged, every method
/// costs in·out.
///
/// # Errors
/// As [`layer_params`].
pub fn layer_macs_unmerged(method: Method, layer: &LinearShape) -> Result<u64> {
    let (i, o) = (layer.in_features, layer.out_features);
    let factor =
        |n: u64, blocks: BlockRule| -> Result<u64> { Ok(n * blocks.on(n as usize)?.b() as u64) };
    let adapter = match method {
        Method::Full => 0,
        Method::Lora { rank } => rank * (i + o),
        Method::Oft { blocks } => factor(i, blocks)? + o,
        Method::Boft { blocks, factors } => factors * factor(i, blocks)? + o,
        Method::Gsoft { blocks } => 2 * factor(i, blocks)? + o,
        Method::DoubleGsoft { blocks } => 2 * factor(i, blocks)? + 2 * factor(o, blocks)? + o,
        Method::GsChain { blocks, factors } => factors * factor(i, blocks)? + o,
    };
    Ok(i * o + adapter)
}

/// A model as the list of its linear layers plus the count of its other parameters
/// (embeddings, norms; relevant only to full fine-tuning of the whole model).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelShapes {
    /// Model name.
    pub name: String,
    /// All linear layers.
    pub linears: Vec<LinearShape>,
    /// Parameters outside the linear layers.
    pub other_params: u64,
}

/// Which linear layers of a model an adapter wraps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// Every linear layer (the official GSOFT code wraps every `nn.Linear`, pooler included).
    All,
    /// Layers whose name equals one of these or ends with `.` + one of these (PEFT matching).
    Named(Vec<String>),
}

impl Targets {
    /// PEFT-style target list from string slices.
    pub fn named(names: &[&str]) -> Self {
        Targets::Named(names.iter().map(|s| s.to_string()).collect())
    }

    /// Whether the layer called `name` is wrapped.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Targets::All => true,
            Targets::Named(ts) => ts
                .iter()
                .any(|t| name == t || name.ends_with(&format!(".{t}"))),
        }
    }
}

impl ModelShapes {
    /// Every parameter of the model: Σ count·(in·out + bias) + other.
    pub fn total_params(&self) -> u64 {
        self.linears
            .iter()
            .map(|l| l.count * l.dense_params())
            .sum::<u64>()
            + self.other_params
    }

    /// Trainable parameters of `method` on the `targets` layers (Σ count · [`layer_params`]).
    ///
    /// # Errors
    /// As [`layer_params`].
    pub fn params(&self, method: Method, targets: &Targets, conv: Convention) -> Result<u64> {
        self.targeted(targets)
            .map(|l| Ok(l.count * layer_params(method, l, conv)?))
            .sum()
    }

    /// Multiply-adds per token through the `targets` layers: `(merged, unmerged)`.
    ///
    /// # Errors
    /// As [`layer_params`].
    pub fn macs(&self, method: Method, targets: &Targets) -> Result<(u64, u64)> {
        let mut merged = 0;
        let mut unmerged = 0;
        for l in self.targeted(targets) {
            merged += l.count * l.in_features * l.out_features;
            unmerged += l.count * layer_macs_unmerged(method, l)?;
        }
        Ok((merged, unmerged))
    }

    fn targeted<'a>(&'a self, targets: &'a Targets) -> impl Iterator<Item = &'a LinearShape> + 'a {
        self.linears
            .iter()
            .filter(move |l| targets.matches(&l.name))
    }
}

/// RoBERTa-base: 12 layers of q, k, v, attention-output (768→768), intermediate (768→3072) and
/// output (3072→768), all with bias, plus the pooler (768→768). Other parameters: word
/// (50265×768), position (514×768) and token-type (1×768) embeddings, and the embedding
/// LayerNorm and two LayerNorms per layer (2·768 each).
pub fn roberta_base() -> ModelShapes {
    let h = 768;
    let linears = vec![
        LinearShape::new("attention.self.query", h, h, true, 12),
        LinearShape::new("attention.self.key", h, h, true, 12),
        LinearShape::new("attention.self.value", h, h, true, 12),
        LinearShape::new("attention.output.dense", h, h, true, 12),
        LinearShape::new("intermediate.dense", h, 4 * h, true, 12),
        LinearShape::new("output.dense", 4 * h, h, true, 12),
        LinearShape::new("pooler.dense", h, h, true, 1),
    ];
    let embeddings = (50265 + 514 + 1) * h;
    let norms = (1 + 2 * 12) * 2 * h;
    ModelShapes {
        name: "RoBERTa-base".into(),
        linears,
        other_params: embeddings + norms,
    }
}

/// PEFT target list of the paper's LoRA / OFT / BOFT GLUE runs (pooler not included).
pub const ROBERTA_PEFT_TARGETS: [&str; 5] = [
    "query",
    "key",
    "value",
    "output.dense",
    "intermediate.dense",
];

/// Trainable parameters of the GLUE classification head (Linear h→h, ReLU, Dropout,
/// Linear h→classes): h² + h + h·classes + classes (592,130 for h = 768, 2 classes).
pub fn roberta_head_params(hidden: u64, classes: u64) -> u64 {
    hidden * hidden + hidden + hidden * classes + classes
}

/// Attention projections of the Stable Diffusion 2 base UNet: for every transformer block of
/// width w (5 at 320, 5 at 640, 6 at 1280), self-attention `attn1` (to_q, to_k, to_v: w→w, no
/// bias; to_out.0: w→w with bias) and cross-attention `attn2` (to_q: w→w; to_k, to_v: 1024→w;
/// to_out.0: w→w with bias).
pub fn sd2_unet_attention() -> ModelShapes {
    let ctx = 1024;
    let mut linears = Vec::new();
    for (w, n) in [(320, 5), (640, 5), (1280, 6)] {
        let l = |name: &str, i: u64, bias: bool| {
            LinearShape::new(&format!("w{w}.{name}"), i, w, bias, n)
        };
        linears.extend([
            l("attn1.to_q", w, false),
            l("attn1.to_k", w, false),
            l("attn1.to_v", w, false),
            l("attn1.to_out.0", w, true),
            l("attn2.to_q", w, false),
            l("attn2.to_k", ctx, false),
            l("attn2.to_v", ctx, false),
            l("attn2.to_out.0", w, true),
        ]);
    }
    ModelShapes {
        name: "SD-2-base UNet attention".into(),
        linears,
        other_params: 0,
    }
}

/// One SOC convolution of LipConvnet: `in → out` channels, k×k kernel, stride 1 or 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SocShape {
    /// Input channels (before the stride-2 space-to-depth).
    pub in_channels: u64,
    /// Output channels.
    pub out_channels: u64,
    /// Kernel size k.
    pub kernel: u64,
    /// Stride (2 = space-to-depth, input channels ×4).
    pub stride: u64,
}

impl SocShape {
    /// Channels the SOC filter acts on: c = max(out, in·stride²) (inputs are zero-padded).
    pub fn channels(&self) -> u64 {
        self.out_channels
            .max(self.in_channels * self.stride * self.stride)
    }
}

/// Parameters of a (grouped) SOC convolution with bias: c²·k²/g + out (filter of shape
/// (g, c/g, c/g, k, k), c = [`SocShape::channels`]).
///
/// # Errors
/// [`Error::InvalidArgument`] if `groups` is zero or does not divide c.
pub fn soc_params(s: SocShape, groups: u64) -> Result<u64> {
    let c = s.channels();
    if groups == 0 || !c.is_multiple_of(groups) {
        return Err(Error::InvalidArgument(format!(
            "SOC with {c} channels cannot be split into {groups} groups"
        )));
    }
    Ok(c * c / groups * s.kernel * s.kernel + s.out_channels)
}

/// The 15 convolutions of LipConvnet-15 (init_channels 32, block_size 3) in order: 5 stages of
/// 3 convolutions, the last one of each stage stride 2 (channels ×2), all 3×3 except the last
/// of stage 5 (1×1): 3→32→32→64, 64→64→64→128, …, 512→512→512→1024.
pub fn lipconvnet15_convs(init_channels: u64) -> Vec<SocShape> {
    let mut convs = Vec::new();
    let mut in_c = 3;
    let mut planes = init_channels;
    for stage in 0..5 {
        for j in 0..3 {
            let stride = if j == 2 { 2 } else { 1 };
            let kernel = if stage == 4 && j == 2 { 1 } else { 3 };
            let out = planes * stride;
            convs.push(SocShape {
                in_channels: in_c,
                out_channels: out,
                kernel,
                stride,
            });
            in_c = out;
        }
        planes = in_c;
    }
    convs
}

/// Convolution layer variant of Table 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ConvVariant {
    /// Plain SOC (groups = 1).
    Soc,
    /// `permuted_soc`: ChShuffle + SOC with g groups; the "(g, −)" rows.
    PermutedSoc {
        /// Groups g.
        groups: u64,
    },
    /// `gs_soc_accelerated`: ChShuffle(g₁) → SOC k×k with g₁ groups → ChShuffle(g₂) → SOC 1×1
    /// (out → out) with g₂ groups; the "(g₁, g₂)" rows.
    GsSoc {
        /// Groups g₁ of the k×k convolution.
        g1: u64,
        /// Groups g₂ of the 1×1 convolution.
        g2: u64,
    },
}

impl ConvVariant {
    /// Table 3 "Groups" column: `-`, `(4, -)`, `(4, 2)`.
    pub fn groups_label(&self) -> String {
        match self {
            ConvVariant::Soc => "-".into(),
            ConvVariant::PermutedSoc { groups } => format!("({groups}, -)"),
            ConvVariant::GsSoc { g1, g2 } => format!("({g1}, {g2})"),
        }
    }
}

/// Trainable parameters (filters + biases) of LipConvnet-15 with the given layer variant and
/// `classes` outputs: the 15 convolutions of [`lipconvnet15_convs`] in the variant, plus the
/// ungrouped SOC 1×1 classifier (final channels → classes).
///
/// # Errors
/// As [`soc_params`].
pub fn lipconvnet15_params(init_channels: u64, classes: u64, variant: ConvVariant) -> Result<u64> {
    let convs = lipconvnet15_convs(init_channels);
    let mut total = 0;
    for s in &convs {
        total += match variant {
            ConvVariant::Soc => soc_params(*s, 1)?,
            ConvVariant::PermutedSoc { groups } => soc_params(*s, groups)?,
            ConvVariant::GsSoc { g1, g2 } => {
                let pointwise = SocShape {
                    in_channels: s.out_channels,
                    out_channels: s.out_channels,
                    kernel: 1,
                    stride: 1,
                };
                soc_params(*s, g1)? + soc_params(pointwise, g2)?
            }
        };
    }
    let last_c = convs.last().map_or(3, |s| s.out_channels);
    let head = SocShape {
        in_channels: last_c,
        out_channels: classes,
        kernel: 1,
        stride: 1,
    };
    Ok(total + soc_params(head, 1)?)
}

/// Multiply-adds of one matvec through m block-diagonal factors of b×b blocks on n: m·n·b
/// (also the paper-convention parameter count of those factors).
pub fn structured_matvec_macs(n: u64, b: u64, m: u64) -> u64 {
    m * n * b
}

/// Multiply-adds of a dense n×n matvec: n².
pub fn dense_matvec_macs(n: u64) -> u64 {
    n * n
}

/// FLOPs of a chain product on `batch` rows: `2·macs·batch`, with `macs` the multiply-adds per
/// row (`Σ_i k_i·b_i¹·b_i²`, [`ChainLayout::macs_per_vector`](crate::structured::ChainLayout::macs_per_vector)).
pub fn chain_flops(macs: usize, batch: usize) -> f64 {
    2.0 * macs as f64 * batch as f64
}

/// FLOPs of a dense GEMM `Y = X·Wᵀ` on `batch` rows with `W` of `n_out × n_in`:
/// `2·n_out·n_in·batch`.
pub fn dense_flops(n_out: usize, n_in: usize, batch: usize) -> f64 {
    2.0 * (batch * n_out * n_in) as f64
}

/// FLOPs of a forward+backward pass whose forward costs `fwd`: `3·fwd` (data gradient and weight
/// gradient each cost one forward).
pub fn fwd_bwd_flops(fwd: f64) -> f64 {
    3.0 * fwd
}

/// FLOPs of the Cayley map of `k` blocks of `b × b`: `k·(8/3)·b³` forward (LU of `I − K` and `b`
/// right-hand sides); with `backward`, `k·(20/3)·b³` (plus the two products of `2·Nᵀ G Nᵀ`).
pub fn cayley_flops(k: usize, b: usize, backward: bool) -> f64 {
    let per_block = if backward { 20.0 / 3.0 } else { 8.0 / 3.0 };
    k as f64 * per_block * (b as f64).powi(3)
}

/// FLOPs of one forward `conv2d` of geometry `geom` over `batch` images, counted as its
/// im2col-equivalent GEMM `(c_out/g × (c_in/g)·k²)·((c_in/g)·k² × batch·h·w)` per group:
/// `2·batch·h·w·c_out·(c_in/g)·k²` (taps that fall on the zero padding counted as full
/// multiply-adds).
pub fn conv2d_flops(geom: &ConvGeom, batch: usize) -> f64 {
    2.0 * (batch * geom.hw() * geom.c_out) as f64 * geom.col_rows() as f64
}

/// FLOPs of one training step of an `OrthoGs` layer with the `r` blocks of `b × b` of `blocks`
/// per factor (`n = r·b`) and `batch` rows: the forward+backward of its two-factor GS product
/// (`macs = 2·n·b` per row) plus the Cayley forward+backward of its `2·r` blocks.
pub fn orthogs_step_flops(blocks: Blocks, batch: usize) -> f64 {
    let (n, b) = (blocks.n(), blocks.b());
    fwd_bwd_flops(chain_flops(2 * n * b, batch)) + cayley_flops(2 * blocks.r(), b, true)
}
