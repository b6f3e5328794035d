//! One BOFT rule: every entry point accepts or rejects the same `(n, b, m)` (PEFT's rule,
//! `check_peft_butterfly`), including sizes where the old structured operator and the layers
//! disagreed (block counts that are not powers of 2, odd block sizes).

use gslab::kernels::layout::{ChainLayout, check_peft_butterfly, peft_butterfly_max_factors};
use gslab::orthogonal::adapters::{DenseLinear, OrthoAdapter};
use gslab::orthogonal::{OrthoButterfly, OrthoMap};
use gslab::structured::Butterfly;
use gslab::structured::pattern::{boft_formula, support_growth_boft};
use gslab::{BlockRule, Blocks, Tensor};

#[test]
fn every_entry_point_agrees_with_peft_rule() {
    let (mut accepted, mut rejected) = (0, 0);
    for n in [8usize, 12, 16, 24, 48, 96] {
        for b in (1..=n).filter(|b| n % b == 0) {
            let blocks = Blocks::size(n, b).unwrap();
            for m in 0..=6 {
                let ok = check_peft_butterfly(blocks, m).is_ok();
                let what = format!("n={n} b={b} m={m}");
                assert_eq!(
                    ChainLayout::peft_butterfly(blocks, m).is_ok(),
                    ok,
                    "layout {what}"
                );
                assert_eq!(
                    Butterfly::<f64>::new(blocks, m).is_ok(),
                    ok,
                    "structured {what}"
                );
                let layer = OrthoButterfly::<f64>::new(blocks, m, OrthoMap::Cayley);
                assert_eq!(layer.is_ok(), ok, "layer {what}");
                let base = DenseLinear::new(Tensor::<f64>::zeros(&[3, n]), None).unwrap();
                let adapter =
                    OrthoAdapter::boft(base, BlockRule::Size(b), m, OrthoMap::Cayley, true);
                assert_eq!(adapter.is_ok(), ok, "adapter {what}");
                if m >= 1 {
                    // The support study builds as many factors as the rule allows.
                    let steps = support_growth_boft(blocks, m).unwrap();
                    assert_eq!(steps.len() == m, ok, "support_growth_boft {what}");
                }
                if ok {
                    accepted += 1;
                } else {
                    rejected += 1;
                }
            }
            // The density formula is only returned when it can be built.
            if let Ok(m) = boft_formula(blocks) {
                assert!(
                    m <= peft_butterfly_max_factors(blocks),
                    "formula n={n} b={b}"
                );
            }
        }
    }
    assert!(
        accepted > 50 && rejected > 50,
        "{accepted} accepted, {rejected} rejected"
    );
    // The example: n = 96, blocks of 4 (r = 24) cannot reach 1 + ⌈log₂ 24⌉ = 6 factors.
    let e = boft_formula(Blocks::size(96, 4).unwrap()).unwrap_err();
    assert!(
        e.to_string().contains("r=24 is not a multiple of 2^5"),
        "{e}"
    );
}
