//! CLI tests of the `finetune` experiment in `--quick` mode (hidden width 128, 30 steps, 2
//! seeds, a few hundred digits).
//!
//! Checks: the output files and the exact `results.csv` header; every accuracy in [0, 1]; the
//! parameter counts against `gslab::count`'s formulas for the two adapted layers (both
//! conventions); the learning-rate choice is the best validation accuracy of the grid; the merged
//! model predicts the same classes as the adapted one with logits within 1e-4 relative; the
//! neuron Gram matrix of the one-sided orthogonal adapters at rounding level (against
//! `diag(s)·W₀W₀ᵀ·diag(s)` with the scale vector, against `W₀W₀ᵀ` without), while LoRA and full
//! fine-tuning move it; Double GSOFT's spectrum kept; block orthogonality within `10·b·eps`; the
//! rotation task is a real shift; same seed → same numbers; an interrupted run resumed with
//! `--resume` ends bitwise where an uninterrupted one does; a non-finite loss names the run and
//! the step; bad input exits 2 with one line.

mod common;
mod records;

use gslab::BlockRule;
use gslab::count::{self, Convention, LinearShape, Method};
use records::{Record, num, records, without};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const HEADER: &str =
    "task,method,config,params_free,params_paper,seed,lr,target_acc,source_acc,step_ms";

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gslab-finetune-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_finetune"))
        .args(args)
        .output()
        .expect("the finetune binary runs")
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "finetune {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The method of `count` for a `(method, config)` pair of the CSV (None for `head`).
fn count_method(method: &str, config: &str) -> Option<Method> {
    let kv: BTreeMap<&str, u64> = config
        .split(',')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k, v.parse().unwrap()))
        .collect();
    let b = || BlockRule::Size(kv["b"] as usize);
    Some(match method {
        "head" => return None,
        "full" => Method::Full,
        "lora" => Method::Lora { rank: kv["r"] },
        "oft" => Method::Oft { blocks: b() },
        "boft" => Method::Boft {
            blocks: b(),
            factors: kv["m"],
        },
        "gsoft" => Method::Gsoft { blocks: b() },
        "double_gsoft" => Method::DoubleGsoft { blocks: b() },
        "gs_chain" => Method::GsChain {
            blocks: b(),
            factors: kv["m"],
        },
        other => panic!("unknown method {other}"),
    })
}

fn is_orthogonal(method: &str) -> bool {
    !["head", "full", "lora"].contains(&method)
}

#[test]
fn quick_run_outputs_counts_choice_and_checks() {
    let out = tmp("main");
    let o = out.to_str().unwrap();
    ok(&["--quick", "--seed", "5", "--out", o]);
    for f in [
        "results.csv",
        "grid.csv",
        "table.csv",
        "mablation.csv",
        "checks.csv",
        "base.csv",
        "summary.json",
        "base_new_classes.safetensors",
        "base_rotation.safetensors",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    for stem in ["acc_vs_params", "acc_vs_time", "mablation", "forgetting"] {
        for ext in ["png", "svg"] {
            let len = std::fs::metadata(out.join(format!("{stem}.{ext}")))
                .map(|m| m.len())
                .unwrap_or(0);
            assert!(len > 1000, "{stem}.{ext} missing or tiny");
        }
    }
    common::check_figures_json(&out);
    let text = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(text.lines().next(), Some(HEADER));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let h = summary["config"]["hidden"].as_u64().unwrap();
    let layers = [
        LinearShape::new("l1", 1024, h, true, 1),
        LinearShape::new("l2", h, h, true, 1),
    ];
    let results = records(&out.join("results.csv"));
    // 8 configurations of --quick × 2 tasks × 2 seeds.
    assert_eq!(results.len(), 8 * 2 * 2);
    for r in &results {
        for k in ["target_acc", "source_acc"] {
            let v = num(r, k);
            assert!((0.0..=1.0).contains(&v), "{k} = {v} in {r:?}");
        }
        assert!(num(r, "step_ms") > 0.0);
        let (method, config) = (r["method"].as_str(), r["config"].as_str());
        let want = |conv| match count_method(method, config) {
            None => 0,
            Some(m) => layers
                .iter()
                .map(|l| count::layer_params(m, l, conv).unwrap())
                .sum::<u64>(),
        };
        assert_eq!(
            num(r, "params_paper") as u64,
            want(Convention::Paper),
            "{method} {config} paper-convention parameters"
        );
        assert_eq!(
            num(r, "params_free") as u64,
            want(Convention::Free),
            "{method} {config} free parameters"
        );
    }
    // The chosen learning rate of each configuration is the grid's best validation accuracy
    // (ties to the smaller rate), and the first seed's result is that grid run.
    let grid = records(&out.join("grid.csv"));
    let mut by_cfg: BTreeMap<(String, String, String), Vec<&Record>> = BTreeMap::new();
    for g in &grid {
        by_cfg
            .entry((g["task"].clone(), g["method"].clone(), g["config"].clone()))
            .or_default()
            .push(g);
    }
    assert_eq!(by_cfg.len(), 16);
    for ((task, method, config), rows) in &by_cfg {
        assert_eq!(rows.len(), 5, "{task} {method} {config}: a 5-point grid");
        let best = rows
            .iter()
            .copied()
            .reduce(|a, b| {
                if num(b, "val_acc") > num(a, "val_acc") {
                    b
                } else {
                    a
                }
            })
            .unwrap();
        let chosen: Vec<_> = rows.iter().filter(|g| g["chosen"] == "true").collect();
        assert_eq!(chosen.len(), 1);
        assert_eq!(chosen[0]["lr"], best["lr"], "{task} {method} {config}");
        let first = results
            .iter()
            .find(|r| {
                r["task"] == *task
                    && r["method"] == *method
                    && r["config"] == *config
                    && r["seed"] == "5"
            })
            .unwrap();
        assert_eq!(first["lr"], best["lr"]);
        assert_eq!(first["target_acc"], best["target_acc"]);
    }
    // Checks on every final run.
    let checks = records(&out.join("checks.csv"));
    assert_eq!(checks.len(), results.len());
    for c in &checks {
        let m = c["method"].as_str();
        assert_eq!(c["merge_disagree"], "0", "merged predictions differ: {c:?}");
        let rel = num(c, "merge_max_rel");
        assert!(rel <= 1e-4, "merged logits differ by {rel:e}: {c:?}");
        let (g1, g2) = (num(c, "gram_dev_l1"), num(c, "gram_dev_l2"));
        if is_orthogonal(m) {
            assert!(num(c, "ortho_err") <= num(c, "ortho_bound"), "{c:?}");
            assert!(
                num(c, "ortho_err") > 0.0,
                "rounding shows after training: {c:?}"
            );
        } else {
            assert!(num(c, "ortho_err").is_nan());
        }
        match m {
            "double_gsoft" => {
                // Two-sided: the Gram matrix is conjugated (moves), its spectrum is kept.
                assert!(g1 > 1e-3 && g2 > 1e-3, "{c:?}");
                assert!(
                    num(c, "gram_eig_dev_l1") <= num(c, "gram_bound_l1"),
                    "{c:?}"
                );
                assert!(
                    num(c, "gram_eig_dev_l2") <= num(c, "gram_bound_l2"),
                    "{c:?}"
                );
            }
            _ if is_orthogonal(m) => {
                assert!(g1 <= num(c, "gram_bound_l1"), "{c:?}");
                assert!(g2 <= num(c, "gram_bound_l2"), "{c:?}");
            }
            // LoRA and full fine-tuning change the angles between neurons.
            "lora" | "full" => assert!(g1 > 1e-3 && g2 > 1e-3, "{c:?}"),
            _ => {}
        }
    }
    assert_eq!(
        summary["checks"]["gram_reference"],
        "diag(s) W0 W0^T diag(s)"
    );
    // The rotation task is a real shift for the pretrained model.
    let base = records(&out.join("base.csv"));
    let rot = base.iter().find(|b| b["task"] == "rotation").unwrap();
    assert!(
        num(rot, "target_test_acc_before") < num(rot, "source_test_acc") - 0.2,
        "{rot:?}"
    );
    // The m-ablation rows reuse OFT (m = 1) and GSOFT (m = 2) with Theorem 2's thresholds
    // 1 + ⌈log_8 r⌉: 4 for n = 1024 (r = 128) and 3 for n = 128 (r = 16).
    let mab = records(&out.join("mablation.csv"));
    let from: Vec<&str> = mab.iter().map(|r| r["from"].as_str()).collect();
    assert_eq!(
        from,
        [
            "oft b=8",
            "gsoft b=8",
            "gs_chain b=8,m=3",
            "oft b=8",
            "gsoft b=8",
            "gs_chain b=8,m=3"
        ]
    );
    assert!(
        mab.iter()
            .all(|r| r["dense_threshold_l1"] == "4" && r["dense_threshold_l2"] == "3")
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn without_the_scale_the_neuron_gram_matrix_is_kept() {
    let out = tmp("noscale");
    let o = out.to_str().unwrap();
    ok(&[
        "--quick",
        "--no-scale",
        "--tasks",
        "rotation",
        "--seeds",
        "1",
        "--methods",
        "oft,boft,gsoft,gs_chain,double_gsoft,lora",
        "--out",
        o,
    ]);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["checks"]["gram_reference"], "W0 W0^T");
    for c in records(&out.join("checks.csv")) {
        let (g1, g2) = (num(&c, "gram_dev_l1"), num(&c, "gram_dev_l2"));
        match c["method"].as_str() {
            "lora" | "double_gsoft" => assert!(g1 > 1e-3 && g2 > 1e-3, "{c:?}"),
            _ => {
                assert!(g1 <= num(&c, "gram_bound_l1"), "{c:?}");
                assert!(g2 <= num(&c, "gram_bound_l2"), "{c:?}");
            }
        }
    }
    // Without the scale vector the adapters have only the rotations' free parameters.
    for r in records(&out.join("results.csv")) {
        if r["method"] == "gsoft" {
            // 2 factors x (1024/8 + 128/8) blocks x 28 free parameters.
            assert_eq!(r["params_free"], (2 * (128 + 16) * 28).to_string());
        }
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn same_seed_same_numbers() {
    let args = |o: &str, seed: &str| {
        vec![
            "--quick".to_string(),
            "--seed".into(),
            seed.into(),
            "--methods".into(),
            "lora,gsoft,boft".into(),
            "--out".into(),
            o.to_string(),
        ]
    };
    let (a, b, c) = (tmp("seed-a"), tmp("seed-b"), tmp("seed-c"));
    for (d, s) in [(&a, "11"), (&b, "11"), (&c, "12")] {
        let v = args(d.to_str().unwrap(), s);
        ok(&v.iter().map(String::as_str).collect::<Vec<_>>());
    }
    for f in ["results.csv", "grid.csv", "checks.csv"] {
        assert_eq!(
            without(&a.join(f), &["step_ms"]),
            without(&b.join(f), &["step_ms"]),
            "{f}"
        );
    }
    let acc = |d: &Path| {
        records(&d.join("grid.csv"))
            .iter()
            .map(|r| r["target_acc"].clone())
            .collect::<Vec<_>>()
    };
    assert_ne!(acc(&a), acc(&c), "another seed must give other numbers");
    for d in [a, b, c] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn resume_ends_bitwise_where_an_uninterrupted_run_ends() {
    let (a, b) = (tmp("resume-a"), tmp("resume-b"));
    let (oa, ob) = (a.to_str().unwrap(), b.to_str().unwrap());
    let common = [
        "--quick",
        "--seeds",
        "2",
        "--methods",
        "full,lora,gsoft,double_gsoft",
    ];
    let with = |extra: &[&str], o: &str| {
        let mut v: Vec<&str> = common.to_vec();
        v.extend_from_slice(extra);
        v.extend(["--out", o]);
        ok(&v)
    };
    // Two epochs of every grid run (of three), saved; then resumed for the last one.
    let said = with(&["--interrupt-after-epochs", "2"], oa);
    assert!(said.contains("continue with --resume"), "{said}");
    assert!(!a.join("results.csv").exists());
    let ck = std::fs::read_dir(a.join("checkpoints")).unwrap().count();
    assert_eq!(ck, 4 * 2 * 5, "one checkpoint per grid run");
    with(&["--resume"], oa);
    // Three epochs in one go.
    with(&[], ob);
    for f in ["results.csv", "grid.csv", "checks.csv"] {
        assert_eq!(
            without(&a.join(f), &["step_ms"]),
            without(&b.join(f), &["step_ms"]),
            "{f}"
        );
    }
    // Resuming a finished run reads its results back.
    with(&["--resume"], ob);
    let before = without(&a.join("results.csv"), &["step_ms"]);
    assert_eq!(without(&b.join("results.csv"), &["step_ms"]), before);
    // A checkpoint written with other settings is refused, naming it.
    let o = run(&[
        "--quick",
        "--methods",
        "gsoft",
        "--steps",
        "20",
        "--resume",
        "--out",
        oa,
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("other settings") && err.contains(".safetensors"),
        "{err}"
    );
    for d in [a, b] {
        let _ = std::fs::remove_dir_all(d);
    }
}

fn assert_usage_error(args: &[&str], needles: &[&str]) {
    let o = run(args);
    assert_eq!(o.status.code(), Some(2), "{args:?} must exit 2");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: stderr {err:?}"
    );
    for n in needles {
        assert!(err.contains(n), "{args:?}: stderr {err:?} lacks {n:?}");
    }
}

#[test]
fn non_finite_loss_names_the_run_and_the_step() {
    let out = tmp("nan");
    let o = out.to_str().unwrap();
    // The hidden hook puts a NaN pixel into the batch of step 7 of every run; the first run in
    // order (rotation, gsoft b=8, the smallest learning rate of its grid) reports it.
    assert_usage_error(
        &[
            "--quick",
            "--methods",
            "gsoft",
            "--tasks",
            "rotation",
            "--nan-at-step",
            "7",
            "--out",
            o,
        ],
        &[
            "non-finite loss NaN at step 7",
            "task rotation",
            "method gsoft",
            "config b=8",
            "lr 3e-3",
        ],
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    let out = tmp("bad");
    let o = out.to_str().unwrap();
    assert_usage_error(&["--quick", "--bogus"], &["--bogus"]);
    assert_usage_error(&["--quick", "--out", o, "--steps", "0"], &["--steps"]);
    assert_usage_error(
        &["--quick", "--out", o, "--epoch-steps", "7"],
        &["--epoch-steps 7", "--steps 30"],
    );
    assert_usage_error(
        &["--quick", "--out", o, "--lr-scale", "-1"],
        &["--lr-scale"],
    );
    assert_usage_error(&["--quick", "--methods", "adam"], &["adam"]);
    assert_usage_error(&["--quick", "--tasks", "cifar"], &["cifar"]);
    assert_usage_error(&["--quick", "--map", "qr"], &["qr"]);
    assert_usage_error(
        &["--quick", "--out", o, "--target-train", "3"],
        &["--target-train"],
    );
    assert_usage_error(
        &["--quick", "--out", o, "--hidden", "100"],
        &["--hidden 100", "b = 8"],
    );
    assert!(
        !out.exists(),
        "nothing is written before the arguments are checked"
    );
}
