//! Integration test of the `speed` binary in `--quick` mode: output files, CSV header and
//! contents, the 1-vs-2-thread bitwise identity of the forward outputs, and the exit status of a
//! bad argument. No timing is asserted (the machine is shared and noisy).

use std::path::PathBuf;
use std::process::Command;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gslab-speed-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

const OPS: [&str; 14] = [
    "gs",
    "gs_chain3",
    "monarch",
    "boft",
    "block_diag",
    "dense",
    "cayley",
    "orthogs_step",
    "lora_step",
    "gsoft_step",
    "boft_step",
    "lora_step_first",
    "gsoft_step_first",
    "boft_step_first",
];

#[test]
fn quick_run_writes_consistent_outputs() {
    let dir = tmp("quick");
    let o = Command::new(env!("CARGO_BIN_EXE_speed"))
        .args(["--quick", "--seed", "3", "--out"])
        .arg(&dir)
        .output()
        .expect("run speed");
    assert!(
        o.status.success(),
        "speed --quick failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    for f in [
        "speed.csv",
        "speed_diag.csv",
        "summary.json",
        "time_vs_n.png",
        "time_vs_n.svg",
        "fraction_of_dense.png",
        "fraction_of_dense.svg",
    ] {
        let p = dir.join(f);
        let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0, "{} missing or empty", p.display());
    }

    let csv = std::fs::read_to_string(dir.join("speed.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("op,n,b,batch,threads,dtype,pass,median_s,gflops")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert!(!rows.is_empty());
    for r in &rows {
        assert_eq!(r.len(), 9, "row {r:?}");
        assert!(OPS.contains(&r[0]), "unknown op in {r:?}");
        assert!(["1", "2"].contains(&r[4]), "threads in {r:?}");
        assert!(["f32", "f64"].contains(&r[5]), "dtype in {r:?}");
        assert!(["fwd", "fwdbwd"].contains(&r[6]), "pass in {r:?}");
        let secs: f64 = r[7].parse().unwrap();
        let gflops: f64 = r[8].parse().unwrap();
        assert!(secs.is_finite() && secs > 0.0, "median_s in {r:?}");
        assert!(gflops.is_finite() && gflops > 0.0, "gflops in {r:?}");
    }
    for op in OPS {
        for t in ["1", "2"] {
            assert!(
                rows.iter().any(|r| r[0] == op && r[4] == t),
                "no {op} row on {t} threads"
            );
        }
    }
    // A training step has no forward-only row; every other op has both passes.
    let is_step = |op: &str| op.ends_with("_step") || op.ends_with("_step_first");
    for op in OPS.iter().filter(|&&op| !is_step(op)) {
        assert!(
            rows.iter().any(|r| r[0] == *op && r[6] == "fwd"),
            "{op} fwd"
        );
    }
    assert!(rows.iter().all(|r| !is_step(r[0]) || r[6] == "fwdbwd"));
    assert!(rows.iter().any(|r| r[5] == "f64"), "no f64 point");

    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    // Bitwise identity of outputs on 1 and 2 threads (a property of the fixed batch chunking,
    // not a timing).
    assert_eq!(s["fwd_bitwise_identical_1_vs_2_threads"], true);
    assert_eq!(s["fwdbwd_bitwise_identical_1_vs_2_threads"], true);
    assert_eq!(s["bitwise_mismatches"].as_array().map(Vec::len), Some(0));
    let n_cmp = s["bitwise_comparisons"].as_u64().unwrap();
    let n_rows = rows.len() as u64;
    assert_eq!(2 * n_cmp, n_rows, "one comparison per (case, pass)");
    // The 2-thread pool's workers are pinned, one CPU each (Linux lists the CPUs).
    assert_eq!(s["pinned"], true);
    if cfg!(target_os = "linux") {
        let pools = s["worker_cpus"].as_array().unwrap();
        let two = pools
            .iter()
            .find(|p| p["threads"] == 2)
            .expect("a 2-thread pool");
        let cpus = two["cpus"].as_array().unwrap();
        assert_eq!(cpus.len(), 2);
        assert!(
            cpus.iter().all(|c| c.as_array().map(Vec::len) == Some(1)),
            "{two}"
        );
    }
    // Every target is evaluated: a measured value and a pass flag (values not asserted).
    let targets = s["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 8);
    for t in targets {
        assert!(!t["measured"].is_null(), "target not measured: {t}");
        assert!(t["pass"].is_boolean(), "target without pass/fail: {t}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--no-pin` leaves every worker free to run on every CPU, and says so in the summary.
#[test]
fn no_pin_leaves_workers_unpinned() {
    let dir = tmp("nopin");
    let o = Command::new(env!("CARGO_BIN_EXE_speed"))
        .args(["--quick", "--ops", "gs", "--no-pin", "--out"])
        .arg(&dir)
        .output()
        .expect("run speed");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["pinned"], false);
    let pools = s["worker_cpus"].as_array().unwrap();
    let sizes: Vec<usize> = pools
        .iter()
        .flat_map(|p| p["cpus"].as_array().unwrap().iter())
        .filter_map(|c| c.as_array().map(Vec::len))
        .collect();
    assert!(sizes.windows(2).all(|w| w[0] == w[1]), "{pools:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_argument_exits_2_with_one_line() {
    let dir = tmp("bad");
    let o = Command::new(env!("CARGO_BIN_EXE_speed"))
        .args(["--quick", "--budget-ms", "0", "--out"])
        .arg(&dir)
        .output()
        .expect("run speed");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "stderr: {err}");
    assert!(err.starts_with("speed: error:"), "stderr: {err}");
    let o = Command::new(env!("CARGO_BIN_EXE_speed"))
        .arg("--no-such-flag")
        .output()
        .expect("run speed");
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr)
            .trim_end()
            .lines()
            .count(),
        1
    );
    let _ = std::fs::remove_dir_all(&dir);
}
