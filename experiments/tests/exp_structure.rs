//! The `structure` experiment binary in `--quick` mode (n = 16): outputs exist, the key numbers
//! hold, same seed → identical CSVs, bad arguments exit 2 with one line.
//!
//! Expected values are independent of the code under test: digest T8's hand-worked slot counts,
//! closed forms for orthogonal targets (all singular values 1, so a rank-r truncation keeps r/n of
//! the energy; a normalised Hadamard has all entries ±1/√n, so b×b diagonal blocks keep b/n of
//! it), the Kronecker structure H16 = H4 ⊗ H4 (exactly a GS / Monarch matrix with 4×4 blocks),
//! and the optimality of Algorithm 1 (no other member of the class, found by random search,
//! perturbation or Adam, can be closer).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_structure"))
        .args(args)
        .output()
        .expect("cannot start the structure binary")
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gslab_exp_structure_{}_{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn run_quick(dir: &Path, seed: &str, threads: &str) {
    let out = run(&[
        "--quick",
        "--seed",
        seed,
        "--threads",
        threads,
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "structure --quick failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Rows of a CSV file as header → value maps.
fn read_csv(path: &Path) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            header
                .iter()
                .cloned()
                .zip(rec.iter().map(String::from))
                .collect()
        })
        .collect()
}

fn num(row: &HashMap<String, String>, key: &str) -> f64 {
    row[key]
        .parse()
        .unwrap_or_else(|_| panic!("{key} = {:?} is not a number", row[key]))
}

/// The expressivity error of `(target, family, config)`.
fn expr_err(rows: &[HashMap<String, String>], target: &str, family: &str, config: &str) -> f64 {
    let r = rows
        .iter()
        .find(|r| r["target"] == target && r["family"] == family && r["config"] == config)
        .unwrap_or_else(|| panic!("no expressivity row for {target}/{family}/{config}"));
    num(r, "rel_error")
}

#[test]
fn quick_run_outputs_and_key_numbers() {
    let dir = temp_dir("main");
    run_quick(&dir, "7", "2");
    let files = [
        "summary.json",
        "ranks.csv",
        "projection.csv",
        "theorem1.csv",
        "expressivity.csv",
    ];
    let stems = [
        "ranks_fig2_n12",
        "ranks_n12_b3",
        "ranks_n24_randP",
        "ranks_n64_bL8_bR4",
        "expressivity_gaussian",
        "expressivity_orthogonal",
        "expressivity_dct",
        "expressivity_hadamard",
    ];
    for f in files.iter().map(|f| f.to_string()).chain(
        stems
            .iter()
            .flat_map(|s| [format!("{s}.png"), format!("{s}.svg")]),
    ) {
        let p = dir.join(&f);
        let len = std::fs::metadata(&p)
            .unwrap_or_else(|_| panic!("missing {p:?}"))
            .len();
        assert!(len > 100, "{f} is only {len} bytes");
    }
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();

    // Prop. 1: predicted == measured; and digest T8's hand-worked counts for n=12, b=3, P_(4,12):
    // R-block 0 = {0,1,2} lands once in each of L-blocks 0, 1, 2 and never in L-block 3.
    assert_eq!(s["rank_profile"]["all_agree"], true);
    let ranks = read_csv(&dir.join("ranks.csv"));
    for r in &ranks {
        assert_eq!(r["predicted_rank"], r["measured_rank"], "{r:?}");
    }
    let slots = |k1: &str| {
        let r = ranks
            .iter()
            .find(|r| r["setting"] == "n12_b3" && r["k1"] == k1 && r["k2"] == "0")
            .expect("n12_b3 row");
        r["slots"].clone()
    };
    assert_eq!(
        [slots("0"), slots("1"), slots("2"), slots("3")],
        ["1", "1", "1", "0"]
    );

    // Algorithm 1: exact on members; never worse than other members of the class.
    let proj = &s["projection"];
    assert!(proj["max_member_rel_error"].as_f64().unwrap() < 1e-10);
    assert_eq!(proj["projection_never_worse"], true);
    let prows = read_csv(&dir.join("projection.csv"));
    assert!(prows.iter().any(|r| r["input"] == "gaussian"));
    for r in &prows {
        let e = num(r, "proj_rel_error");
        if r["input"] == "member" {
            assert!(e < 1e-10, "{r:?}");
        }
        assert!(e <= num(r, "best_random_member_rel_error"), "{r:?}");
        assert!(e <= num(r, "best_perturbed_rel_error"), "{r:?}");
    }

    // Theorem 1: the hidden factors were far from orthogonal, the recovered ones are orthogonal.
    let t1 = &s["theorem1"];
    assert!(t1["min_hidden_block_orthogonality_error"].as_f64().unwrap() > 0.1);
    assert!(t1["max_orthogonality_error"].as_f64().unwrap() < 1e-10);
    assert!(t1["max_reconstruction_error"].as_f64().unwrap() < 1e-10);

    // Expressivity at n = 16.
    let n = 16.0f64;
    let ex = read_csv(&dir.join("expressivity.csv"));
    for target in ["orthogonal", "dct", "hadamard"] {
        for r in [1.0, 2.0, 4.0, 8.0] {
            let e = expr_err(&ex, target, "low-rank", &format!("r={r}"));
            assert!(
                (e - (1.0 - r / n).sqrt()).abs() < 1e-12,
                "{target} r={r}: {e}"
            );
        }
    }
    for b in [2.0, 4.0, 8.0] {
        let e = expr_err(&ex, "hadamard", "block-diagonal", &format!("b={b}"));
        assert!(
            (e - (1.0 - b / n).sqrt()).abs() < 1e-12,
            "hadamard b={b}: {e}"
        );
    }
    // H16 = H4 ⊗ H4 is exactly a GS(m=2, b=4) and a Monarch(4, 4) matrix.
    assert!(expr_err(&ex, "hadamard", "GS m=2", "b=4") < 1e-12);
    assert!(expr_err(&ex, "hadamard", "Monarch", "kL=4,kR=4") < 1e-12);
    for target in ["gaussian", "orthogonal", "dct", "hadamard"] {
        // With b = √n both layouts are the same class, so their projections coincide.
        let gs = expr_err(&ex, target, "GS m=2", "b=4");
        let mo = expr_err(&ex, target, "Monarch", "kL=4,kR=4");
        assert!((gs - mo).abs() < 1e-12, "{target}: GS {gs} vs Monarch {mo}");
        // Algorithm 1 is the global optimum on the GS m=2 layout: Adam cannot beat it.
        for b in ["b=2", "b=4", "b=8"] {
            let opt = expr_err(&ex, target, "GS m=2", b);
            let adam = expr_err(&ex, target, "GS m=2 (Adam)", b);
            assert!(
                adam >= opt - 1e-12,
                "{target} {b}: Adam {adam} < Alg. 1 {opt}"
            );
        }
    }
    common::check_figures_json(&dir);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn same_seed_gives_identical_csvs() {
    let (a, b) = (temp_dir("det_a"), temp_dir("det_b"));
    run_quick(&a, "3", "1");
    run_quick(&b, "3", "2");
    for f in [
        "ranks.csv",
        "projection.csv",
        "theorem1.csv",
        "expressivity.csv",
    ] {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(x == y, "{f} differs between two runs with seed 3");
    }
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(&b);
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    let dir = temp_dir("bad");
    let d = dir.to_str().unwrap();
    for args in [
        vec!["--quick", "--n", "12", "--out", d],
        vec!["--quick", "--steps", "0", "--out", d],
        vec!["--quick", "--no-such-flag"],
        vec!["--threads", "zero"],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("structure: error:"), "{args:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
