//! The adapters on a frozen linear layer: identity at init, merging, gradients, counts, error
//! messages, tape-free evaluation and saving.

use crate::common::{max_abs_diff, probe, randn};
use crate::layers::randomize;
use gslab::io::{load_params, save_params};
use gslab::orthogonal::adapters::{Adapter, DenseLinear, Lora, OrthoAdapter};
use gslab::orthogonal::{OrthoChain, OrthoMap};
use gslab::{BlockRule, Params, Tape, Tensor, gradcheck};
use rand::{SeedableRng, rngs::StdRng};

const C2: BlockRule = BlockRule::Count(2);
const C3: BlockRule = BlockRule::Count(3);
const C4: BlockRule = BlockRule::Count(4);

fn base_layer(out: usize, inp: usize, bias: bool) -> DenseLinear<f64> {
    let w = randn::<f64>(&[out, inp], 0.5, 300);
    let b = bias.then(|| randn::<f64>(&[out], 0.5, 301));
    DenseLinear::new(w, b).unwrap()
}

fn ortho_adapters(bias: bool) -> Vec<(&'static str, OrthoAdapter<f64>)> {
    let (out, inp) = (12, 16);
    let m = OrthoMap::Cayley;
    vec![
        (
            "gsoft",
            OrthoAdapter::gsoft(base_layer(out, inp, bias), C4, m, true).unwrap(),
        ),
        (
            "gsoft_exp",
            OrthoAdapter::gsoft(base_layer(out, inp, bias), C4, OrthoMap::Exp, true).unwrap(),
        ),
        (
            "gsoft_out",
            OrthoAdapter::gsoft_output(base_layer(out, inp, bias), C3, m, true).unwrap(),
        ),
        (
            "double",
            OrthoAdapter::double_gsoft(base_layer(out, inp, bias), C4, C3, m, true).unwrap(),
        ),
        (
            "oft",
            OrthoAdapter::oft(base_layer(out, inp, bias), C4, m, true).unwrap(),
        ),
        (
            "boft",
            OrthoAdapter::boft(base_layer(out, inp, bias), C4, 3, m, true).unwrap(),
        ),
        (
            "gsoft_noscale",
            OrthoAdapter::gsoft(base_layer(out, inp, bias), C2, m, false).unwrap(),
        ),
        (
            "gs_chain3",
            OrthoAdapter::gs_chain(base_layer(out, inp, bias), BlockRule::Size(2), 3, m, true)
                .unwrap(),
        ),
    ]
}

/// Digest T6 / §8: every adapter equals the frozen base layer exactly at init.
#[test]
fn adapters_equal_base_layer_at_init_exactly() {
    let x = randn::<f64>(&[5, 16], 1.0, 310);
    for bias in [false, true] {
        let want = base_layer(12, 16, bias).apply(&x);
        for (name, a) in ortho_adapters(bias) {
            let tape = Tape::new();
            let (y, _) = a.forward(&tape, tape.constant(x.clone()));
            assert!(
                *y.value() == want,
                "{name} bias={bias}: output != base at init"
            );
            assert!(
                a.merge().weight == a.base().weight,
                "{name}: merged W' != W₀ at init"
            );
        }
        let lora = Lora::new(
            base_layer(12, 16, bias),
            4,
            4.0,
            &mut StdRng::seed_from_u64(1),
        )
        .unwrap();
        let tape = Tape::new();
        let (y, _) = lora.forward(&tape, tape.constant(x.clone()));
        assert!(
            *y.value() == want,
            "lora bias={bias}: output != base at init"
        );
        assert!(
            lora.merge().weight == lora.base().weight,
            "lora merge at init"
        );
    }
}

/// After random training-like parameters, the merged dense layer reproduces the unmerged
/// (structured) forward to rounding, and W' has the documented form.
#[test]
fn merged_adapters_match_unmerged() {
    let x = randn::<f64>(&[6, 16], 1.0, 320);
    for (name, mut a) in ortho_adapters(true) {
        randomize(&mut a, 0.7, 321);
        let tape = Tape::new();
        let (y, _) = a.forward(&tape, tape.constant(x.clone()));
        let merged = a.merge();
        let err = max_abs_diff(&y.value(), &merged.apply(&x)) / y.value().max_abs();
        assert!(err < 1e-14, "{name}: merged vs unmerged rel err {err:e}");
    }
    let mut lora = Lora::new(
        base_layer(12, 16, true),
        4,
        8.0,
        &mut StdRng::seed_from_u64(2),
    )
    .unwrap();
    randomize(&mut lora, 0.3, 322);
    let tape = Tape::new();
    let (y, _) = lora.forward(&tape, tape.constant(x.clone()));
    let err = max_abs_diff(&y.value(), &lora.merge().apply(&x));
    assert!(err < 1e-13, "lora merged vs unmerged {err:e}");
}

/// The merged weights have the documented forms, with Q taken from the layers' own dense
/// matrices: GSOFT W₀Q, output side QW₀, double Q_out W₀ Q_in, BOFT (PEFT) W₀Mᵀ; all times diag(s).
#[test]
fn merged_weight_forms() {
    for (name, mut a) in ortho_adapters(false) {
        randomize(&mut a, 0.4, 330);
        let w0 = a.base().weight.clone();
        let qi = a.input_chain().map(OrthoChain::matrix);
        let qo = a.output_chain().map(OrthoChain::matrix);
        let mut w = match (name, &qi) {
            ("oft" | "boft", Some(q)) => w0.matmul(&q.transpose()),
            (_, Some(q)) => w0.matmul(q),
            (_, None) => w0,
        };
        if let Some(q) = &qo {
            w = q.matmul(&w);
        }
        if let Some(s) = a.scale() {
            let d = Tensor::from_fn(&[12, 12], |i| {
                if i / 12 == i % 12 {
                    s.data()[i / 12]
                } else {
                    0.0
                }
            });
            w = d.matmul(&w);
        }
        let err = max_abs_diff(&a.merge().weight, &w);
        assert!(err < 1e-14, "{name}: {err:e}");
    }
}

#[test]
fn adapters_gradcheck() {
    let x = randn::<f64>(&[3, 16], 1.0, 340);
    let w = randn::<f64>(&[3, 12], 1.0, 341);
    for (name, mut a) in ortho_adapters(true) {
        randomize(&mut a, 0.5, 342);
        let inputs: Vec<Tensor<f64>> = a.params().into_iter().cloned().collect();
        let r = gradcheck(
            |tape, v| probe(a.forward_with(tape.constant(x.clone()), v), &w),
            &inputs,
            1e-6,
        );
        assert!(r.max_rel_err < 1e-6, "{name}: {r}");
    }
    let mut lora = Lora::new(
        base_layer(12, 16, true),
        4,
        4.0,
        &mut StdRng::seed_from_u64(3),
    )
    .unwrap();
    randomize(&mut lora, 0.5, 343);
    let inputs: Vec<Tensor<f64>> = lora.params().into_iter().cloned().collect();
    let r = gradcheck(
        |tape, v| probe(lora.forward_with(tape.constant(x.clone()), v), &w),
        &inputs,
        1e-6,
    );
    assert!(r.max_rel_err < 1e-6, "lora: {r}");
}

/// Parameter counts: GSOFT on 16 → 12 with r = 4 (b = 4): 2·4·6 free + 12 scale = 60, paper
/// 2·4·16 + 12 = 140; LoRA rank 4: 4·(16 + 12) = 112.
#[test]
fn adapter_parameter_counts() {
    let a = OrthoAdapter::gsoft(base_layer(12, 16, false), C4, OrthoMap::Cayley, true).unwrap();
    assert_eq!((a.free_param_count(), a.paper_param_count()), (60, 140));
    assert_eq!(a.num_params(), 60);
    let l = Lora::new(
        base_layer(12, 16, false),
        4,
        4.0,
        &mut StdRng::seed_from_u64(4),
    )
    .unwrap();
    assert_eq!(l.param_count(), 112);
}

/// Errors name the adapter and the dimension it acts on, not the inner layer type.
#[test]
fn adapter_errors_name_the_adapter_and_its_features() {
    let m = OrthoMap::Cayley;
    let e = OrthoAdapter::gsoft(base_layer(12, 16, false), C3, m, true).unwrap_err();
    let e = e.to_string();
    assert!(
        e.contains("GSOFT adapter on in_features = 16") && e.contains("r = 3"),
        "{e}"
    );
    let e = OrthoAdapter::gsoft(base_layer(12, 16, false), BlockRule::Size(5), m, true)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("GSOFT adapter on in_features = 16") && e.contains("b = 5"),
        "{e}"
    );
    let e = OrthoAdapter::boft(base_layer(12, 16, false), C4, 4, m, true).unwrap_err();
    let e = e.to_string();
    assert!(e.contains("BOFT (m=4) adapter on in_features = 16"), "{e}");
    assert!(
        e.contains("2^(m-1)") && !e.contains("OrthoButterfly"),
        "{e}"
    );
    let e = OrthoAdapter::double_gsoft(base_layer(12, 16, false), C4, BlockRule::Count(5), m, true)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("Double GSOFT adapter on out_features = 12"),
        "{e}"
    );
    let e = OrthoAdapter::gs_chain(base_layer(12, 16, false), C4, 0, m, true).unwrap_err();
    assert!(
        e.to_string()
            .contains("GS chain (m=0) adapter on in_features = 16"),
        "{e}"
    );
    let e = Lora::new(
        base_layer(12, 16, false),
        0,
        1.0,
        &mut StdRng::seed_from_u64(0),
    );
    let e = e.unwrap_err().to_string();
    assert!(e.contains("LoRA adapter on in_features = 16"), "{e}");
}

/// The tape-free `apply` of every adapter equals its tape forward bit for bit in value (the
/// same kernels in the same order) and the merged layer to rounding; the 2-factor GS chain
/// adapter is GSOFT.
#[test]
fn apply_matches_forward_and_merge() {
    let x = randn::<f64>(&[7, 16], 1.0, 360);
    for (name, mut a) in ortho_adapters(true) {
        randomize(&mut a, 0.6, 361);
        let tape = Tape::new();
        let (y, _) = a.forward(&tape, tape.constant(x.clone()));
        let got = a.apply(&x);
        assert!(
            max_abs_diff(&got, &y.value()) < 1e-14,
            "{name}: apply vs forward"
        );
        assert!(
            max_abs_diff(&got, &a.merge().apply(&x)) < 1e-13,
            "{name}: apply vs merge"
        );
    }
    let mut lora = Lora::new(
        base_layer(12, 16, true),
        4,
        4.0,
        &mut StdRng::seed_from_u64(5),
    )
    .unwrap();
    randomize(&mut lora, 0.5, 362);
    let tape = Tape::new();
    let (y, _) = lora.forward(&tape, tape.constant(x.clone()));
    assert!(max_abs_diff(&lora.apply(&x), &y.value()) < 1e-14, "lora");
    let mut g = OrthoAdapter::gsoft(base_layer(12, 16, true), C4, OrthoMap::Cayley, true).unwrap();
    let mut c =
        OrthoAdapter::gs_chain(base_layer(12, 16, true), C4, 2, OrthoMap::Cayley, true).unwrap();
    randomize(&mut g, 0.6, 363);
    randomize(&mut c, 0.6, 363);
    assert!(g.apply(&x) == c.apply(&x), "GS chain with m = 2 is GSOFT");
}

#[test]
fn save_and_load_params_roundtrip() {
    let dir = std::env::temp_dir().join(format!("gslab_ortho_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("double.safetensors");
    let (_, mut a) = ortho_adapters(true).remove(3);
    randomize(&mut a, 0.5, 350);
    save_params(&a, &path).unwrap();
    let (_, mut b) = ortho_adapters(true).remove(3);
    assert!(b.merge().weight != a.merge().weight);
    load_params(&mut b, &path).unwrap();
    for (p, q) in a.params().into_iter().zip(b.params()) {
        assert!(p == q, "parameters differ after the roundtrip");
    }
    // An f64 file does not load into an f32 model; a model of another shape is rejected too.
    let mut gs32 = OrthoAdapter::<f32>::double_gsoft(
        DenseLinear::new(Tensor::zeros(&[12, 16]), None).unwrap(),
        C4,
        C3,
        OrthoMap::Cayley,
        true,
    )
    .unwrap();
    assert!(matches!(
        load_params(&mut gs32, &path),
        Err(gslab::Error::Dtype { .. })
    ));
    let mut other =
        OrthoAdapter::gsoft(base_layer(12, 16, true), C2, OrthoMap::Cayley, true).unwrap();
    assert!(matches!(
        load_params(&mut other, &path),
        Err(gslab::Error::Format { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}
