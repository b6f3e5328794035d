//! Integration test of the `density` experiment binary (Theorem 2): runs it with `--quick`,
//! checks its outputs and compares every measured minimum with the closed forms
//! `1 + ⌈log_b r⌉` (GS) and `1 + ⌈log₂ r⌉` (BOFT), computed here in integer arithmetic.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_density");

/// A fresh empty directory under the system temp dir.
fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gslab_exp_density_{tag}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Smallest `t` with `base^t >= x` (independent of the library's `ceil_log`).
fn ceil_log_int(base: u64, x: u64) -> u64 {
    let mut t = 0;
    let mut p: u64 = 1;
    while p < x {
        p *= base;
        t += 1;
    }
    t
}

fn nonempty(path: &Path) {
    let len = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{} missing: {e}", path.display()))
        .len();
    assert!(len > 0, "{} is empty", path.display());
}

#[test]
fn quick_run_matches_closed_forms() {
    let dir = temp_dir("quick");
    let out = Command::new(BIN)
        .args(["--quick", "--seed", "7", "--threads", "2", "--out"])
        .arg(&dir)
        .output()
        .expect("run density");
    assert!(
        out.status.success(),
        "density failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    for f in [
        "min_factors.csv",
        "support.csv",
        "random_perms.csv",
        "summary.json",
    ] {
        nonempty(&dir.join(f));
    }
    let pngs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    assert!(pngs.len() >= 4, "expected at least 4 figures, got {pngs:?}");
    for png in &pngs {
        nonempty(png);
        let bytes = std::fs::read(png).unwrap();
        assert_eq!(
            &bytes[..8],
            b"\x89PNG\r\n\x1a\n",
            "{} is not a PNG",
            png.display()
        );
        let svg = png.with_extension("svg");
        nonempty(&svg);
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.contains("<svg"), "{} is not an SVG", svg.display());
    }

    let csv = std::fs::read_to_string(dir.join("min_factors.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("n,b,r,gs_min_factors,gs_formula,boft_min_factors,boft_formula")
    );
    let mut seen = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 7, "bad row {line:?}");
        let num = |i: usize| f[i].parse::<u64>().unwrap_or_else(|_| panic!("{line:?}"));
        let (n, b, r) = (num(0), num(1), num(2));
        assert_eq!(n, b * r, "{line:?}");
        let gs = 1 + ceil_log_int(b, r);
        assert_eq!(num(3), gs, "GS minimum at n={n}, b={b}");
        assert_eq!(num(4), gs, "GS formula at n={n}, b={b}");
        // PEFT's rule builds a dense butterfly only for r a power of 2 and an even block size
        // (the digest's (12, 3) row is not buildable: b = 3 is odd).
        if r.is_power_of_two() && b % 2 == 0 {
            let boft = 1 + ceil_log_int(2, r);
            assert_eq!(num(5), boft, "BOFT minimum at n={n}, b={b}");
            assert_eq!(num(6), boft, "BOFT formula at n={n}, b={b}");
        } else {
            assert_eq!(
                (f[5], f[6]),
                ("", ""),
                "BOFT columns must be empty: {line:?}"
            );
        }
        seen.push((n, b));
    }
    // The quick grid keeps the small rows of the digest's T1 table, including the non-power-of-2
    // case r = 96 and the tie n = 12.
    for need in [(768, 8), (64, 4), (12, 3), (320, 10), (1024, 32)] {
        assert!(seen.contains(&need), "row {need:?} missing from {seen:?}");
    }

    // T2 / T3 rows as printed in the digest.
    let support = std::fs::read_to_string(dir.join("support.csv")).unwrap();
    let per_row = |fam: &str, n: &str, b: &str| -> Vec<String> {
        support
            .lines()
            .skip(1)
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f[0] == fam && f[1] == n && f[2] == b)
            .map(|f| {
                assert_eq!(f[6], f[7], "rows not uniform: {f:?}");
                f[7].to_string()
            })
            .collect()
    };
    assert_eq!(per_row("gs", "768", "8")[..4], ["8", "64", "512", "768"]);
    assert_eq!(per_row("gs", "320", "10")[..3], ["10", "100", "320"]);
    assert_eq!(per_row("boft", "768", "8")[..4], ["8", "16", "32", "64"]);
    assert_eq!(
        per_row("boft", "1024", "32")[..4],
        ["32", "64", "128", "256"]
    );

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["gs_all_match_formula"], true);
    assert_eq!(json["boft_all_match_formula"], true);
    assert_eq!(json["random_any_dense_below_threshold"], false);
    assert_eq!(json["t4_boft_dense_params_1024_32"], 196_608);
    assert_eq!(json["t4_gs_dense_params_1024_32"], 65_536);
    let figures = json["figures"].as_array().expect("figures list");
    assert!(figures.len() >= 8, "{figures:?}");
    for stem in figures {
        let stem = stem.as_str().unwrap();
        for ext in ["png", "svg"] {
            nonempty(&dir.join(format!("{stem}.{ext}")));
        }
    }
    common::check_figures_json(&dir);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_argument_exits_2_with_one_line() {
    for bad in [
        vec!["--threads", "lots"],
        vec!["--no-such-flag"],
        vec!["--seed", "-3"],
    ] {
        let out = Command::new(BIN).args(&bad).output().expect("run density");
        assert_eq!(out.status.code(), Some(2), "args {bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "args {bad:?}: {err:?}");
        assert!(!err.trim().is_empty());
    }
}

#[test]
fn unwritable_out_exits_2_with_one_line() {
    let dir = temp_dir("blocked");
    let file = dir.join("not_a_dir");
    std::fs::write(&file, "x").unwrap();
    let out = Command::new(BIN)
        .args(["--quick", "--out"])
        .arg(file.join("sub"))
        .output()
        .expect("run density");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
