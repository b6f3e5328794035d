//! CLI tests of the `lipconv` experiment on small runs (a few hundred digits, 1–3 epochs, a
//! subset of the variants).
//!
//! Checks: the output files and the exact `results.csv` header; the certified accuracies
//! recomputed from `points.csv` (margin, prediction and label) and the reported bound `L`
//! with the certificate's own formula `margin/(√2·L) > ε`; no certified point broken by the PGD
//! attack and no measured `‖f(x) − f(x')‖/‖x − x'‖` above `L` (either would be a wrong
//! certificate); the attack is real (it stays in the ball and lowers the accuracy); the built
//! full-size LipConvnet-15 parameter tallies equal the paper's printed Table 3 values; same seed →
//! same numbers; an interrupted run resumed with `--resume` ends bitwise where an uninterrupted
//! one does; a non-finite loss names the variant, epoch and step; bad input exits 2 with one line.

mod common;
mod records;

use records::{Record, num, records, without};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const HEADER: &str = "variant,groups,activation,paired,params,train_s_per_epoch,speedup,clean_acc,\
                      cert_0_5,cert_1_0,cert_1_58,pgd_1_58,lipschitz_bound";

/// A small configuration: 256 digits, 64 test points, 5 PGD steps (`--table3` and `--ablation`
/// are given by each test: repeated, they add up).
const SMALL: [&str; 7] = [
    "--quick",
    "--train-count",
    "256",
    "--test-count",
    "64",
    "--pgd-steps",
    "5",
];

/// The columns of the CSV files that are timings.
const TIMINGS: &[&str] = &["train_s_per_epoch", "speedup", "seconds"];

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gslab-lipconv-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lipconv"))
        .args(args)
        .output()
        .expect("the lipconv binary runs")
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "lipconv {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn with(extra: &[&str], out: &Path) -> Vec<String> {
    SMALL
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .chain(["--out".to_string(), out.to_str().unwrap().to_string()])
        .collect()
}

fn ok_with(extra: &[&str], out: &Path) -> String {
    let args = with(extra, out);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn small_run_outputs_certificates_and_attack() {
    let out = tmp("small");
    let said = ok_with(
        &["--epochs", "2", "--table3", "soc,4", "--ablation", "4"],
        &out,
    );
    assert!(
        said.contains("soc") && said.contains("gs4_mmp_paired"),
        "{said}"
    );
    for f in [
        "results.csv",
        "params_full.csv",
        "epochs.csv",
        "cert_curve.csv",
        "points.csv",
        "summary.json",
        "cert_curve.png",
        "acc_vs_params.png",
        "ablation.png",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    common::check_figures_json(&out);
    let text = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(text.lines().next(), Some(HEADER));
    let rows = records(&out.join("results.csv"));
    let names: Vec<&str> = rows.iter().map(|r| r["variant"].as_str()).collect();
    assert_eq!(
        names,
        [
            "soc",
            "gs4_mmp_paired",
            "gs4_mm_plain",
            "gs4_mm_paired",
            "gs4_mmp_plain"
        ]
    );
    assert_eq!(rows[0]["groups"], "-");
    assert_eq!(rows[1]["groups"], "(4,-)");
    assert_eq!(rows[1]["activation"], "MaxMinPermuted");
    assert_eq!(rows[1]["paired"], "true");
    assert_eq!(num(&rows[0], "speedup"), 1.0);
    // GS-SOC (4, −) has fewer parameters than SOC at the same width, whatever its activation
    // and shuffles.
    for r in &rows[1..] {
        assert_eq!(r["groups"], "(4,-)");
        assert_eq!(r["params"], rows[1]["params"]);
    }
    assert!(num(&rows[1], "params") < num(&rows[0], "params"));

    let points = records(&out.join("points.csv"));
    assert_eq!(points.len(), 5 * 64);
    let sqrt2 = std::f64::consts::SQRT_2;
    for row in &rows {
        let v = &row["variant"];
        let l = num(row, "lipschitz_bound");
        // The bound is ≥ 1 (orthogonal layers) and its excess is the Taylor truncation bound
        // of the 5 layers at 12 terms, σ ≤ 2.1: far below 1e-3.
        assert!((1.0..1.0 + 1e-3).contains(&l), "{v}: L = {l}");
        let mine: Vec<&Record> = points.iter().filter(|p| &p["variant"] == v).collect();
        assert_eq!(mine.len(), 64);
        let n = mine.len() as f64;
        let correct = |p: &Record| p["pred"] == p["label"];
        // The certificate, recomputed from the margin: correct and margin/(√2·L) > ε.
        for (col, eps) in [("cert_0_5", 0.5), ("cert_1_0", 1.0), ("cert_1_58", 1.58)] {
            let k = mine
                .iter()
                .filter(|p| correct(p) && num(p, "margin") / (sqrt2 * l) > eps)
                .count();
            assert_eq!(num(row, col), k as f64 / n, "{v} {col}");
        }
        let clean = mine.iter().filter(|p| correct(p)).count() as f64 / n;
        assert_eq!(num(row, "clean_acc"), clean, "{v}");
        let robust = mine
            .iter()
            .filter(|p| correct(p) && p["pgd_pred"] == p["label"])
            .count() as f64
            / n;
        assert_eq!(num(row, "pgd_1_58"), robust, "{v}");
        // Certified ⊆ PGD-robust ⊆ correct.
        assert!(num(row, "cert_1_58") <= robust && robust <= clean, "{v}");
        for p in &mine {
            let margin = num(p, "margin");
            let certified = correct(p) && margin / (sqrt2 * l) > 1.58;
            if certified {
                assert_eq!(
                    p["pgd_pred"], p["label"],
                    "{v}: PGD broke test point {} certified at eps = 1.58: the certificate is wrong",
                    p["index"]
                );
            }
            assert_eq!(
                p["attacked"] == "true",
                correct(p),
                "{v}: only correct points"
            );
            if p["attacked"] == "true" {
                assert!(num(p, "pgd_dist") <= 1.58, "{v}: {p:?} left the ball");
            }
            if !p["ratio"].is_empty() {
                let r = num(p, "ratio");
                assert!(
                    r <= l,
                    "{v}: measured ||f(x) - f(x')|| / ||x - x'|| = {r} above the bound {l}"
                );
            }
        }
        // The attack is real: after 2 epochs on 256 digits most correct points have margins
        // far below √2·1.58, and 5 PGD steps break some of them.
        assert!(
            robust < clean,
            "{v}: PGD broke nothing ({robust} = {clean})"
        );
    }
    // The built full-size LipConvnet-15 tallies are the paper's printed Table 3 values.
    let full = records(&out.join("params_full.csv"));
    let printed = [
        ("-", 24.1e6, 0.05e6),
        ("(4,-)", 6.81e6, 0.005e6),
        ("(4,1)", 8.91e6, 0.005e6),
        ("(4,2)", 7.86e6, 0.005e6),
        ("(4,4)", 7.3e6, 0.05e6),
    ];
    assert_eq!(full.len(), printed.len());
    for (row, (g, paper, half_unit)) in full.iter().zip(printed) {
        assert_eq!(row["groups"], g);
        let p = num(row, "params");
        assert_eq!(p, num(row, "formula"), "{g}");
        assert!(
            (p - paper).abs() <= half_unit,
            "{g}: built {p}, paper {paper}"
        );
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    for r in summary["runs"].as_array().unwrap() {
        assert_eq!(r["certified_flipped"], 0, "{r}");
        assert_eq!(r["ratio_violations"], 0, "{r}");
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn same_seed_same_numbers_and_resume_is_bitwise() {
    let (a, b, c) = (tmp("seed-a"), tmp("seed-b"), tmp("seed-c"));
    // Three epochs in one go, twice.
    ok_with(
        &["--epochs", "3", "--table3", "4/2", "--ablation", "none"],
        &a,
    );
    ok_with(
        &["--epochs", "3", "--table3", "4/2", "--ablation", "none"],
        &b,
    );
    for f in ["results.csv", "points.csv", "cert_curve.csv", "epochs.csv"] {
        assert_eq!(
            without(&a.join(f), TIMINGS),
            without(&b.join(f), TIMINGS),
            "{f}"
        );
    }
    // Two epochs, interrupted; then resumed for the third.
    let said = ok_with(
        &[
            "--epochs",
            "3",
            "--table3",
            "4/2",
            "--ablation",
            "none",
            "--stop-after",
            "2",
        ],
        &c,
    );
    assert!(said.contains("continue with --resume"), "{said}");
    assert!(!c.join("results.csv").exists());
    assert!(
        c.join("checkpoints/gs4x2_mmp_paired_s0.safetensors")
            .is_file()
    );
    ok_with(
        &[
            "--epochs",
            "3",
            "--table3",
            "4/2",
            "--ablation",
            "none",
            "--resume",
        ],
        &c,
    );
    for f in ["results.csv", "points.csv", "cert_curve.csv", "epochs.csv"] {
        assert_eq!(
            without(&a.join(f), TIMINGS),
            without(&c.join(f), TIMINGS),
            "{f}"
        );
    }
    // Another seed gives other numbers.
    let d = tmp("seed-d");
    ok_with(
        &[
            "--epochs",
            "1",
            "--table3",
            "4/2",
            "--ablation",
            "none",
            "--seed",
            "7",
        ],
        &d,
    );
    let e = tmp("seed-e");
    ok_with(
        &["--epochs", "1", "--table3", "4/2", "--ablation", "none"],
        &e,
    );
    assert_ne!(
        without(&d.join("epochs.csv"), TIMINGS),
        without(&e.join("epochs.csv"), TIMINGS)
    );
    // A checkpoint written by another configuration is refused, naming the setting.
    let args = with(
        &[
            "--epochs",
            "3",
            "--table3",
            "4/2",
            "--ablation",
            "none",
            "--lr",
            "0.5",
            "--resume",
        ],
        &c,
    );
    let o = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("lr = 0.01 in the checkpoint, 0.5 now"),
        "{err}"
    );
    for d in [a, b, c, d, e] {
        let _ = std::fs::remove_dir_all(d);
    }
}

fn assert_error(args: &[&str], code: i32, needles: &[&str]) {
    let o = run(args);
    assert_eq!(o.status.code(), Some(code), "{args:?} must exit {code}");
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
fn non_finite_loss_names_the_variant_epoch_and_step() {
    let out = tmp("nan");
    // 256 digits in batches of 64: global step 5 is step 1 of epoch 2 of the first variant.
    let args = with(
        &[
            "--table3",
            "4",
            "--ablation",
            "none",
            "--inject-nan-step",
            "5",
        ],
        &out,
    );
    let o = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    for n in [
        "variant gs4_mmp_paired",
        "epoch 2 of 2",
        "step 1 of the epoch",
        "NaN",
    ] {
        assert!(err.contains(n), "{err:?} lacks {n:?}");
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    let out = tmp("bad");
    let o = out.to_str().unwrap();
    assert_error(&["--quick", "--bogus"], 2, &["--bogus"]);
    assert_error(
        &["--quick", "--out", o, "--depth", "7"],
        2,
        &["--depth", "7"],
    );
    assert_error(&["--quick", "--out", o, "--epochs", "0"], 2, &["--epochs"]);
    assert_error(&["--quick", "--out", o, "--lr", "-1"], 2, &["--lr", "-1"]);
    assert_error(
        &["--quick", "--out", o, "--table3", "soc,3/x"],
        2,
        &["--table3", "3/x"],
    );
    assert_error(
        &["--quick", "--out", o, "--ablation", "soc"],
        2,
        &["--ablation"],
    );
    assert_error(
        &["--quick", "--out", o, "--table3", "3", "--ablation", "none"],
        2,
        &["gs3_mmp_paired", "--init-channels 4"],
    );
    assert_error(
        &["--quick", "--out", o, "--test-count", "2001"],
        2,
        &["--test-count", "2001"],
    );
    assert_error(&["--quick", "--optimizer", "lbfgs"], 2, &["lbfgs"]);
    assert!(
        !out.exists(),
        "nothing is written before the arguments are checked"
    );
}
