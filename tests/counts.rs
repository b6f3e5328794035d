//! Parameter / FLOP formulas of `gslab::count` against the digest's printed numbers and
//! hand-worked integers (the paper's tables built from them are tested in `experiments/`).
//!
//! Independent sources: the integers the digest derives (592,130; 196,608; 65,536; 1,048,576;
//! Theorem 2 thresholds of claim T1), and closed forms worked out by hand in the comments below
//! (not from the code under test).

use gslab::count::{
    self, ConvVariant, Convention, LinearShape, Method, Targets, block_params, layer_params,
};
use gslab::kernels::conv::ConvGeom;
use gslab::structured::pattern::{boft_formula, gs_formula};
use gslab::{BlockRule, Blocks};

#[test]
fn cayley_block_conventions() {
    assert_eq!(block_params(8, Convention::Paper), 64);
    assert_eq!(block_params(8, Convention::Free), 28);
    assert_eq!(block_params(16, Convention::Free), 120);
    assert_eq!(block_params(1, Convention::Free), 0);
}

#[test]
fn per_layer_formulas_by_hand() {
    let l = LinearShape::new("intermediate.dense", 768, 3072, true, 1);
    let p = |m| layer_params(m, &l, Convention::Paper).unwrap();
    let f = |m| layer_params(m, &l, Convention::Free).unwrap();
    assert_eq!(p(Method::Full), 768 * 3072 + 3072);
    assert_eq!(p(Method::Lora { rank: 8 }), 8 * (768 + 3072)); // 30,720
    // OFT b=16: in·16 + out = 12,288 + 3,072; free: 48 blocks · 120 + 3,072.
    assert_eq!(
        p(Method::Oft {
            blocks: BlockRule::Size(16)
        }),
        15_360
    );
    assert_eq!(
        f(Method::Oft {
            blocks: BlockRule::Size(16)
        }),
        48 * 120 + 3072
    );
    // BOFT b=8 m=2 and GSOFT b=8 both cost 2·in·8 + out = 15,360.
    assert_eq!(
        p(Method::Boft {
            blocks: BlockRule::Size(8),
            factors: 2
        }),
        15_360
    );
    assert_eq!(
        p(Method::Gsoft {
            blocks: BlockRule::Size(8)
        }),
        15_360
    );
    assert_eq!(
        f(Method::Gsoft {
            blocks: BlockRule::Size(8)
        }),
        2 * 96 * 28 + 3072
    );
    // Double GSOFT with r = 96 blocks: b_in = 8, b_out = 32: 2·768·8 + 2·3072·32 + 3072.
    assert_eq!(
        p(Method::DoubleGsoft {
            blocks: BlockRule::Count(96)
        }),
        12_288 + 196_608 + 3072
    );
    // A GS chain of m = 3 factors with b = 8: 3·in·8 + out = 18,432 + 3,072; free: 3·96·28 + out.
    let chain = Method::GsChain {
        blocks: BlockRule::Size(8),
        factors: 3,
    };
    assert_eq!(p(chain), 21_504);
    assert_eq!(f(chain), 3 * 96 * 28 + 3072);
    assert_eq!(
        (chain.name(), chain.config().as_str()),
        ("GS chain", "b=8,m=3")
    );
    // GSOFT by block count r: 2·in²/r + out.
    let sq = LinearShape::new("q", 320, 320, false, 1);
    assert_eq!(
        layer_params(
            Method::Gsoft {
                blocks: BlockRule::Count(32)
            },
            &sq,
            Convention::Paper
        )
        .unwrap(),
        2 * 320 * 320 / 32 + 320
    );
    // A block size that does not divide the width is rejected, naming both numbers.
    let err = layer_params(
        Method::Oft {
            blocks: BlockRule::Size(48),
        },
        &sq,
        Convention::Paper,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("48") && msg.contains("320"), "{msg}");
}

#[test]
fn peft_target_matching() {
    let t = Targets::named(&count::ROBERTA_PEFT_TARGETS);
    assert!(t.matches("attention.output.dense"));
    assert!(t.matches("output.dense"));
    assert!(t.matches("attention.self.query"));
    assert!(!t.matches("pooler.dense"));
    assert!(Targets::All.matches("pooler.dense"));
}

#[test]
fn roberta_head_params_by_hand() {
    // Classification head for 2 classes (digest §6.1).
    assert_eq!(count::roberta_head_params(768, 2), 592_130);
}

#[test]
fn lipconvnet15_shapes() {
    let convs = count::lipconvnet15_convs(32);
    assert_eq!(convs.len(), 15);
    let chans: Vec<(u64, u64)> = convs
        .iter()
        .map(|c| (c.in_channels, c.out_channels))
        .collect();
    assert_eq!(&chans[..3], &[(3, 32), (32, 32), (32, 64)]);
    assert_eq!(chans[14], (512, 1024));
    assert_eq!(
        (convs[14].kernel, convs[14].stride, convs[13].kernel),
        (1, 2, 3)
    );
    assert!(count::lipconvnet15_params(32, 100, ConvVariant::PermutedSoc { groups: 3 }).is_err());
}

#[test]
fn t4_t15_matvec_costs() {
    // T4: at n = 1024, b = 32 BOFT needs 6 factors, GS 2 (Theorem 2's formulas live in
    // `structured::pattern`).
    assert_eq!(boft_formula(Blocks::size(1024, 32).unwrap()).unwrap(), 6);
    assert_eq!(gs_formula(Blocks::size(1024, 32).unwrap()).unwrap(), 2);
    assert_eq!(count::structured_matvec_macs(1024, 32, 6), 196_608);
    assert_eq!(count::structured_matvec_macs(1024, 32, 2), 65_536);
    assert_eq!(count::dense_matvec_macs(1024), 1_048_576);
    // T1 density thresholds (n, b) -> m, and T3 BOFT thresholds.
    for (n, b, m) in [
        (1024, 32, 2),
        (768, 8, 4),
        (64, 4, 3),
        (64, 8, 2),
        (256, 16, 2),
        (12, 3, 3),
        (320, 10, 3),
        (640, 20, 3),
        (1280, 40, 2),
        (1024, 16, 3),
        (512, 8, 3),
        (4096, 64, 2),
    ] {
        assert_eq!(
            gs_formula(Blocks::size(n, b).unwrap()).unwrap(),
            m,
            "n={n} b={b}"
        );
    }
    for (n, b, m) in [(1024, 32, 6), (64, 4, 5), (4096, 64, 7)] {
        assert_eq!(
            boft_formula(Blocks::size(n, b).unwrap()).unwrap(),
            m,
            "n={n} b={b}"
        );
    }
    // (12, 3): 1 + ⌈log₂ 4⌉ = 3 factors, but PEFT's rule rejects the odd block size 3 for m ≥ 2.
    let e = boft_formula(Blocks::size(12, 3).unwrap()).unwrap_err();
    assert!(e.to_string().contains("even block size, got b=3"), "{e}");
}

#[test]
fn flops_per_token() {
    let l = LinearShape::new("q", 768, 768, true, 1);
    assert_eq!(
        count::layer_macs_unmerged(Method::Lora { rank: 8 }, &l).unwrap(),
        589_824 + 12_288
    );
    assert_eq!(
        count::layer_macs_unmerged(
            Method::Gsoft {
                blocks: BlockRule::Size(8)
            },
            &l
        )
        .unwrap(),
        589_824 + 2 * 768 * 8 + 768
    );
}

#[test]
fn flop_model_by_hand() {
    // GS m = 2 at n = 1024, b = 32, batch 256: 2 factors of 32 blocks of 32×32 = 65,536
    // multiply-adds per row, 2·65,536·256 = 33,554,432 FLOPs forward, 3× with backward.
    assert_eq!(count::chain_flops(65_536, 256), 33_554_432.0);
    assert_eq!(count::fwd_bwd_flops(33_554_432.0), 100_663_296.0);
    // Dense 1024 × 1024 on 256 rows: 2·1024²·256 = 536,870,912; rectangular 3072 × 768 on 1 row.
    assert_eq!(count::dense_flops(1024, 1024, 256), 536_870_912.0);
    assert_eq!(count::dense_flops(3072, 768, 1), 4_718_592.0);
    // Cayley of 32 blocks of 32×32: 32·(8/3)·32768 = 2,796,202.67 forward, 32·(20/3)·32768 =
    // 6,990,506.67 with backward.
    assert!((count::cayley_flops(32, 32, false) - 2_796_202.666_666_7).abs() < 1e-6);
    assert!((count::cayley_flops(32, 32, true) - 6_990_506.666_666_7).abs() < 1e-6);
    // OrthoGs step at n = 1024, b = 32, batch 256: 100,663,296 + Cayley of 64 blocks with backward
    // (13,981,013.33).
    let step = count::orthogs_step_flops(Blocks::size(1024, 32).unwrap(), 256);
    assert!(
        (step - (100_663_296.0 + 13_981_013.333_333_3)).abs() < 1e-6,
        "{step}"
    );
    // conv2d 3×3, 64 → 64 channels, 16×16 images, batch 128, one group: each of the
    // 128·256 = 32,768 output pixels of each of the 64 output channels takes 64·9 = 576
    // multiply-adds, 2·32,768·64·576 = 2,415,919,104 FLOPs. With 4 groups a channel sees 16 input
    // channels (144 multiply-adds): one image costs 2·256·64·144 = 4,718,592. A 1×1 convolution
    // 256 → 256 with 2 groups on 8×8, batch 2: 2·128·256·128 = 8,388,608.
    let geom = |c_in, c_out, side, k, g| ConvGeom::new(c_in, c_out, side, side, k, g).unwrap();
    assert_eq!(
        count::conv2d_flops(&geom(64, 64, 16, 3, 1), 128),
        2_415_919_104.0
    );
    assert_eq!(count::conv2d_flops(&geom(64, 64, 16, 3, 4), 1), 4_718_592.0);
    assert_eq!(
        count::conv2d_flops(&geom(256, 256, 8, 1, 2), 2),
        8_388_608.0
    );
    // Rectangular channels: 8 → 16, 5×5 on 6×6 (36 pixels), batch 3: 2·3·36·16·(8·25) = 691,200.
    assert_eq!(count::conv2d_flops(&geom(8, 16, 6, 5, 1), 3), 691_200.0);
}
