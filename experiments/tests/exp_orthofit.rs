//! CLI test of the `orthofit` experiment in `--quick` mode (n = 16, f64 training).
//!
//! Checks: every output file; the exact CSV header; every logged `‖QᵀQ − I‖_max` below
//! `10·n·eps(f64)` (training is in f64); `Q = I` exactly at step 0 (T6: zero orthogonality error,
//! the same initial loss for every method); loss decreasing from the first to the last logged step
//! of every fit; the free parameter counts against hand-computed values; same seed → identical
//! numbers except `seconds`; bad arguments and a non-finite loss → exit 2 with one stderr line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const HEADER: &str = "method,map,target,params,step,seconds,loss,ortho_err";
const N: usize = 16;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gslab-orthofit-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orthofit"))
        .args(args)
        .output()
        .expect("the orthofit binary runs")
}

fn quick(out: &Path, seed: &str) -> String {
    let o = run(&["--quick", "--seed", seed, "--out", out.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "orthofit --quick failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read_to_string(out.join("orthofit.csv")).expect("orthofit.csv")
}

/// One parsed CSV row: (method, map, target) key, params, step, loss, ortho_err.
struct Row {
    key: (String, String, String),
    params: usize,
    step: usize,
    seconds: f64,
    loss: f64,
    ortho_err: f64,
}

fn parse(csv: &str) -> Vec<Row> {
    csv.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 8, "bad row {l:?}");
            Row {
                key: (f[0].into(), f[1].into(), f[2].into()),
                params: f[3].parse().unwrap(),
                step: f[4].parse().unwrap(),
                seconds: f[5].parse().unwrap(),
                loss: f[6].parse().unwrap(),
                ortho_err: f[7].parse().unwrap(),
            }
        })
        .collect()
}

/// The CSV without its `seconds` column (the only column allowed to vary between runs).
fn without_seconds(csv: &str) -> Vec<String> {
    csv.lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(',').collect();
            f.remove(5);
            f.join(",")
        })
        .collect()
}

#[test]
fn quick_run_outputs_orthogonality_and_convergence() {
    let out = tmp("main");
    let csv = quick(&out, "3");
    for f in [
        "orthofit.csv",
        "final.csv",
        "figures.json",
        "summary.json",
        "final_loss.png",
        "final_loss.svg",
        "loss_steps.png",
        "loss_steps.svg",
        "loss_seconds.png",
        "loss_seconds.svg",
        "ortho_err.png",
        "ortho_err.svg",
    ] {
        let len = std::fs::metadata(out.join(f)).map(|m| m.len()).unwrap_or(0);
        assert!(len > 500, "{f} missing or tiny ({len} bytes)");
    }
    // Every panel and every legend entry is drawn (SVG keeps the text).
    let svg = std::fs::read_to_string(out.join("loss_steps.svg")).unwrap();
    for text in [
        "target gs, cayley map",
        "target haar, exp map",
        "target dct, exp map",
        "gs_m2 (48)",
        "dense (120)",
    ] {
        assert!(svg.contains(text), "loss_steps.svg lacks {text:?}");
    }
    assert_eq!(csv.lines().next(), Some(HEADER));
    let rows = parse(&csv);

    // f64 training: the bound is 10·n·eps(f64) = 3.55e-14 at n = 16.
    let bound = 10.0 * N as f64 * f64::EPSILON;
    let worst = rows.iter().map(|r| r.ortho_err).fold(0.0, f64::max);
    assert!(worst <= bound, "max ortho_err {worst:e} > {bound:e}");
    assert!(worst > 0.0, "rounding must show somewhere after training");

    let mut fits: BTreeMap<_, Vec<&Row>> = BTreeMap::new();
    for r in &rows {
        fits.entry(r.key.clone()).or_default().push(r);
    }
    assert_eq!(fits.len(), 6 * 2 * 3, "6 methods x 2 maps x 3 targets");
    // Free parameters Σ k_i·b_i(b_i−1)/2 at n = 16, by hand.
    let expected_params = BTreeMap::from([
        ("gs_m2", 2 * 4 * 6),    // 2 factors x 4 blocks of 4x4
        ("gs_m3", 3 * 4 * 6),    // 3 factors x 4 blocks of 4x4
        ("oft", 2 * 28),         // 2 blocks of 8x8
        ("boft", 3 * 4 * 6),     // 3 factors x 4 blocks of 4x4
        ("monarch", 8 + 2 * 28), // R: 8 blocks of 2x2, L: 2 blocks of 8x8
        ("dense", 16 * 15 / 2),  // one 16x16 block
    ]);
    let mut initial: BTreeMap<&str, f64> = BTreeMap::new();
    for ((method, map, target), fit) in &fits {
        let (first, last) = (fit[0], fit[fit.len() - 1]);
        assert_eq!(first.step, 0);
        assert!(fit.windows(2).all(|w| w[0].step < w[1].step));
        assert!(first.seconds > 0.0 && fit.windows(2).all(|w| w[0].seconds <= w[1].seconds));
        assert_eq!(
            first.params,
            expected_params[method.as_str()],
            "{method} parameter count"
        );
        // T6: zero parameters give Q = I exactly.
        assert_eq!(first.ortho_err, 0.0, "{method}/{map}/{target} at step 0");
        // Same starting point Q = I for every method: the same initial loss, bit for bit.
        let l0 = *initial.entry(target.as_str()).or_insert(first.loss);
        assert_eq!(first.loss, l0, "{method}/{map}/{target} initial loss");
        assert!(
            last.loss < first.loss,
            "{method}/{map}/{target}: loss {} -> {}",
            first.loss,
            last.loss
        );
        assert!(last.loss.is_finite() && last.loss >= 0.0);
    }
    // The dense parametrization can fit any target of SO(n): it must get well below Q = I.
    for ((method, _, target), fit) in &fits {
        if method == "dense" {
            let last = fit[fit.len() - 1].loss;
            assert!(
                last < 0.1 * initial[target.as_str()],
                "dense on {target}: {last}"
            );
        }
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["fits"].as_array().map(Vec::len), Some(36));
    assert_eq!(summary["max_ortho_err"].as_f64(), Some(worst));
    // The GS target is in the gs_m2 class: the inverse Cayley map of its blocks reproduces it.
    let cert = &summary["targets"][0]["gs_m2_cayley_certificate"]["loss"];
    assert!(
        cert.as_f64().is_some_and(|l| l < 1e-24),
        "certificate {cert}"
    );
    // The paper's convention Σ k_i·b_i², by hand.
    let paper_params = BTreeMap::from([
        ("gs_m2", 2 * 4 * 16),
        ("gs_m3", 3 * 4 * 16),
        ("oft", 2 * 64),
        ("boft", 3 * 4 * 16),
        ("monarch", 8 * 4 + 2 * 64),
        ("dense", 256u64),
    ]);
    for m in summary["methods"].as_array().unwrap() {
        let name = m["method"].as_str().unwrap();
        assert_eq!(
            m["free_params"].as_u64(),
            Some(expected_params[name] as u64)
        );
        assert_eq!(m["paper_params"].as_u64(), Some(paper_params[name]));
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn same_seed_same_numbers() {
    let (a, b, c) = (tmp("seed-a"), tmp("seed-b"), tmp("seed-c"));
    let (ca, cb, cc) = (quick(&a, "11"), quick(&b, "11"), quick(&c, "12"));
    assert_eq!(without_seconds(&ca), without_seconds(&cb));
    let loss = |csv: &str| parse(csv).iter().map(|r| r.loss).collect::<Vec<_>>();
    assert_ne!(loss(&ca), loss(&cc), "another seed must give other targets");
    for d in [a, b, c] {
        let _ = std::fs::remove_dir_all(d);
    }
}

fn assert_usage_error(args: &[&str], needle: &str) {
    let o = run(args);
    assert_eq!(o.status.code(), Some(2), "{args:?} must exit 2");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: stderr {err:?}"
    );
    assert!(
        err.contains(needle),
        "{args:?}: stderr {err:?} lacks {needle:?}"
    );
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    let out = tmp("bad");
    let o = out.to_str().unwrap();
    assert_usage_error(&["--quick", "--bogus"], "--bogus");
    assert_usage_error(&["--quick", "--out", o, "--n", "10"], "--n");
    assert_usage_error(&["--quick", "--out", o, "--lr", "-1"], "--lr");
    assert_usage_error(&["--quick", "--out", o, "--steps", "0"], "--steps");
    assert_usage_error(&["--quick", "--threads", "0"], "threads");
    // An absurd learning rate overflows the generators: the library's non-finite loss error.
    assert_usage_error(
        &["--quick", "--out", o, "--lr", "1e300"],
        "non-finite loss NaN at step 1",
    );
    let _ = std::fs::remove_dir_all(&out);
}
