//! The adaptation methods compared (a miniature of the paper's Table 1 plus the m-ablation), their
//! names in the CSV files, their parameter counts in `gslab::count`'s terms and their
//! learning-rate grids.

use gslab::BlockRule;
use gslab::count::{self, Convention, LinearShape};

/// One adaptation method with its configuration (the `method` and `config` columns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spec {
    /// Only the head is trained (a linear probe of the frozen features): the floor every
    /// adapter should beat.
    Head,
    /// Full fine-tuning of every weight and bias of the adapted layers.
    Full,
    /// LoRA of rank `r` with `α = r` (PEFT's GLUE setting, so the factor `α/r` is 1).
    Lora {
        /// Rank.
        r: usize,
    },
    /// OFT: one block-diagonal orthogonal factor of `b × b` blocks on the input (PEFT's BOFT
    /// with one factor).
    Oft {
        /// Block size.
        b: usize,
    },
    /// BOFT: `m` butterfly factors of `b × b` blocks on the input, PEFT's permutations.
    Boft {
        /// Block size.
        b: usize,
        /// Number of factors.
        m: usize,
    },
    /// GSOFT: `Q = Pᵀ L P R` with `b × b` blocks on the input.
    Gsoft {
        /// Block size.
        b: usize,
    },
    /// Double GSOFT: GS rotations with `b × b` blocks on the input and on the output.
    DoubleGsoft {
        /// Block size (both sides).
        b: usize,
    },
    /// An orthogonal GS chain of `m` factors of `b × b` blocks on the input (the m-ablation;
    /// `m = 1` is OFT's class, `m = 2` is GSOFT, which the ablation takes from those rows).
    GsChain {
        /// Block size.
        b: usize,
        /// Number of factors.
        m: usize,
    },
}

impl Spec {
    /// The `method` column: `head`, `full`, `lora`, `oft`, `boft`, `gsoft`, `double_gsoft`,
    /// `gs_chain`.
    pub fn method(&self) -> &'static str {
        match self {
            Spec::Head => "head",
            Spec::Full => "full",
            Spec::Lora { .. } => "lora",
            Spec::Oft { .. } => "oft",
            Spec::Boft { .. } => "boft",
            Spec::Gsoft { .. } => "gsoft",
            Spec::DoubleGsoft { .. } => "double_gsoft",
            Spec::GsChain { .. } => "gs_chain",
        }
    }

    /// The `config` column: `-`, `r=8`, `b=16`, `b=8,m=2`.
    pub fn config(&self) -> String {
        match *self {
            Spec::Head | Spec::Full => "-".into(),
            Spec::Lora { r } => format!("r={r}"),
            Spec::Oft { b } | Spec::Gsoft { b } | Spec::DoubleGsoft { b } => format!("b={b}"),
            Spec::Boft { b, m } | Spec::GsChain { b, m } => format!("b={b},m={m}"),
        }
    }

    /// `method config`, e.g. `gsoft b=8`.
    pub fn label(&self) -> String {
        match self {
            Spec::Head | Spec::Full => self.method().into(),
            _ => format!("{} {}", self.method(), self.config()),
        }
    }

    /// Whether the adapter is an orthogonal rotation (with the scale vector): OFT, BOFT, GSOFT,
    /// Double GSOFT and GS chains.
    pub fn is_orthogonal(&self) -> bool {
        !matches!(self, Spec::Head | Spec::Full | Spec::Lora { .. })
    }

    /// The method in `gslab::count`'s terms (`None` for [`Spec::Head`], which adapts no layer).
    pub fn count_method(&self) -> Option<count::Method> {
        let blocks = |b: usize| BlockRule::Size(b);
        Some(match *self {
            Spec::Head => return None,
            Spec::Full => count::Method::Full,
            Spec::Lora { r } => count::Method::Lora { rank: r as u64 },
            Spec::Oft { b } => count::Method::Oft { blocks: blocks(b) },
            Spec::Boft { b, m } => count::Method::Boft {
                blocks: blocks(b),
                factors: m as u64,
            },
            Spec::Gsoft { b } => count::Method::Gsoft { blocks: blocks(b) },
            Spec::DoubleGsoft { b } => count::Method::DoubleGsoft { blocks: blocks(b) },
            Spec::GsChain { b, m } => count::Method::GsChain {
                blocks: blocks(b),
                factors: m as u64,
            },
        })
    }

    /// Trainable parameters of the adapted layers (the head excluded, as in the paper's
    /// "# Params") from `gslab::count`'s formulas, in convention `conv`.
    ///
    /// # Errors
    /// If a block size does not divide a layer's width.
    pub fn count_params(&self, layers: &[LinearShape], conv: Convention) -> gslab::Result<u64> {
        match self.count_method() {
            None => Ok(0),
            Some(m) => layers.iter().map(|l| count::layer_params(m, l, conv)).sum(),
        }
    }

    /// The learning-rate grid (Adam) searched on the validation split, before `--lr-scale`, in
    /// steps of about 3: `1e-4 … 1e-2` for full fine-tuning, `1e-3 … 1e-1` for LoRA, `3e-3 … 3e-1`
    /// for the orthogonal adapters and the head (which train best at larger rates). Every
    /// trainable tensor of a run, head included, uses the one learning rate, as in the paper,
    /// which tunes only the learning rate.
    pub fn lr_grid(&self) -> [f64; 5] {
        match self {
            Spec::Full => [1e-4, 3e-4, 1e-3, 3e-3, 1e-2],
            Spec::Lora { .. } => [1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
            _ => [3e-3, 1e-2, 3e-2, 1e-1, 3e-1],
        }
    }

    /// The family a figure colours this method by (index into [`FAMILIES`]).
    pub fn family(&self) -> usize {
        FAMILIES
            .iter()
            .position(|f| *f == self.method())
            .expect("every method is a family")
    }
}

/// Method names in figure-colour order.
pub const FAMILIES: [&str; 8] = [
    "full",
    "lora",
    "oft",
    "boft",
    "gsoft",
    "double_gsoft",
    "gs_chain",
    "head",
];

/// The default list: the head-only floor; full fine-tuning; LoRA r ∈ {1, 2, 4, 8, 16}; OFT
/// b ∈ {4, 8, 16, 32}; BOFT (b, m) ∈ {(8, 2), (4, 4), (16, 2)}; GSOFT b ∈ {4, 8, 16, 32};
/// Double GSOFT b ∈ {8, 16}; GS chains with m ∈ {3, 4} at b ∈ {4, 8} and m = 5 at b = 4, where
/// Theorem 2 makes the chain dense (the m-ablation's m = 1 and m = 2 are the OFT and GSOFT rows of
/// the same b).
pub fn default_specs() -> Vec<Spec> {
    let mut v = vec![Spec::Head, Spec::Full];
    v.extend([1, 2, 4, 8, 16].map(|r| Spec::Lora { r }));
    v.extend([4, 8, 16, 32].map(|b| Spec::Oft { b }));
    v.extend([(8, 2), (4, 4), (16, 2)].map(|(b, m)| Spec::Boft { b, m }));
    v.extend([4, 8, 16, 32].map(|b| Spec::Gsoft { b }));
    v.extend([8, 16].map(|b| Spec::DoubleGsoft { b }));
    for b in ABLATION_BS {
        v.extend([3, 4].map(|m| Spec::GsChain { b, m }));
    }
    v.push(Spec::GsChain { b: 4, m: 5 });
    v
}

/// Largest number of factors of the m-ablation (reached at b = 4 only).
pub const ABLATION_MAX_M: usize = 5;

/// `--quick`: one configuration of every kind (the m-ablation at b = 8 only).
pub fn quick_specs() -> Vec<Spec> {
    vec![
        Spec::Head,
        Spec::Full,
        Spec::Lora { r: 4 },
        Spec::Oft { b: 8 },
        Spec::Boft { b: 8, m: 2 },
        Spec::Gsoft { b: 8 },
        Spec::DoubleGsoft { b: 8 },
        Spec::GsChain { b: 8, m: 3 },
    ]
}

/// Block sizes of the m-ablation.
pub const ABLATION_BS: [usize; 2] = [4, 8];

/// The specification of the m-ablation point `(b, m)`: OFT for `m = 1`, GSOFT for `m = 2`, the
/// GS chain otherwise.
pub fn ablation_spec(b: usize, m: usize) -> Spec {
    match m {
        1 => Spec::Oft { b },
        2 => Spec::Gsoft { b },
        _ => Spec::GsChain { b, m },
    }
}

/// Parses a `--methods` entry: a method name (every configuration of it) — checked against
/// [`FAMILIES`].
pub fn parse_method(s: &str) -> Result<String, String> {
    if FAMILIES.contains(&s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "unknown method '{s}' (expected one of {})",
            FAMILIES.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_counts() {
        let layers = [
            LinearShape::new("l1", 1024, 512, true, 1),
            LinearShape::new("l2", 512, 512, true, 1),
        ];
        let p = |s: Spec| s.count_params(&layers, Convention::Paper).unwrap();
        // GSOFT b=8: 2·1024·8 + 512 + 2·512·8 + 512 = 25,600 (by hand).
        assert_eq!(p(Spec::Gsoft { b: 8 }), 25_600);
        assert_eq!(p(Spec::Lora { r: 8 }), 8 * 1536 + 8 * 1024);
        assert_eq!(p(Spec::Head), 0);
        assert_eq!(Spec::Boft { b: 8, m: 2 }.config(), "b=8,m=2");
        assert_eq!(Spec::DoubleGsoft { b: 8 }.label(), "double_gsoft b=8");
        // 1 head + 1 full + 5 LoRA + 4 OFT + 3 BOFT + 4 GSOFT + 2 Double GSOFT + 5 GS chains.
        assert_eq!(default_specs().len(), 25);
        assert!(parse_method("lora").is_ok() && parse_method("loRA").is_err());
        assert_eq!(ablation_spec(8, 2), Spec::Gsoft { b: 8 });
    }
}
