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

const OPS: [&str; 19] = [
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
    "conv2d",
    "conv_gemm",
    "soc",
    "gs_soc_4",
    "gs_soc_4x2",
];

/// The SOC / GS-SOC layer ops (forward+backward only).
const LAYERS: [&str; 3] = ["soc", "gs_soc_4", "gs_soc_4x2"];

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
    // A training step or layer has no forward-only row; every other op has both passes.
    let is_step =
        |op: &str| op.ends_with("_step") || op.ends_with("_step_first") || LAYERS.contains(&op);
    for op in OPS.iter().filter(|&&op| !is_step(op)) {
        assert!(
            rows.iter().any(|r| r[0] == *op && r[6] == "fwd"),
            "{op} fwd"
        );
    }
    assert!(rows.iter().all(|r| !is_step(r[0]) || r[6] == "fwdbwd"));
    assert!(rows.iter().any(|r| r[5] == "f64"), "no f64 point");

    // The convolution rows at the quick grid's points (n = channels, b = image side), with the
    // FLOPs of the one model, worked out by hand: conv2d 3x3, 16 -> 16 channels, 8x8, batch 4:
    // 2·4·64·16·(16·9) = 1,179,648 forward, the same for its im2col GEMM (16 x 144 times
    // 144 x 256: 2·16·144·256), 3x with backward. A layer step is 3·5 terms of its convolutions: SOC
    // 16 channels 8x8 batch 2: 15·(2·2·64·16·144) = 8,847,360; GS-SOC (4, −): 16/4 = 4 input
    // channels per group, 15·(2·2·64·16·36) = 2,211,840; (4, 2) adds a 1x1 with 8 input channels
    // per group, 15·(2·2·64·16·8) = 491,520, total 2,703,360. At 32 channels on 4x4 (16 pixels),
    // batch 2: SOC 15·(2·2·16·32·288) = 8,847,360; (4, −) 15·(2·2·16·32·72) = 2,211,840.
    let flops = |op: &str, n: &str, pass: &str| -> Vec<f64> {
        rows.iter()
            .filter(|r| r[0] == op && r[1] == n && r[5] == "f32" && r[6] == pass)
            .map(|r| r[7].parse::<f64>().unwrap() * r[8].parse::<f64>().unwrap() * 1e9)
            .collect()
    };
    let close = |got: &[f64], want: f64, what: &str| {
        assert!(!got.is_empty(), "{what}: no rows");
        for g in got {
            assert!(
                (g / want - 1.0).abs() < 1e-9,
                "{what}: {g} FLOPs, want {want}"
            );
        }
    };
    for op in ["conv2d", "conv_gemm"] {
        assert!(
            rows.iter()
                .filter(|r| r[0] == op)
                .all(|r| (r[1], r[2], r[3]) == ("16", "8", "4")),
            "{op} rows off the quick conv point"
        );
        close(&flops(op, "16", "fwd"), 1_179_648.0, op);
        close(&flops(op, "16", "fwdbwd"), 3.0 * 1_179_648.0, op);
    }
    for op in LAYERS {
        let mut sizes: Vec<(&str, &str, &str)> = rows
            .iter()
            .filter(|r| r[0] == op)
            .map(|r| (r[1], r[2], r[3]))
            .collect();
        sizes.dedup();
        assert_eq!(sizes, [("16", "8", "2"), ("32", "4", "2")], "{op} sizes");
    }
    close(&flops("soc", "16", "fwdbwd"), 8_847_360.0, "soc c=16");
    close(
        &flops("gs_soc_4", "16", "fwdbwd"),
        2_211_840.0,
        "gs_soc_4 c=16",
    );
    close(
        &flops("gs_soc_4x2", "16", "fwdbwd"),
        2_703_360.0,
        "gs_soc_4x2 c=16",
    );
    close(&flops("soc", "32", "fwdbwd"), 8_847_360.0, "soc c=32");
    close(
        &flops("gs_soc_4", "32", "fwdbwd"),
        2_211_840.0,
        "gs_soc_4 c=32",
    );

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
    let names: Vec<&str> = targets.iter().filter_map(|t| t["name"].as_str()).collect();
    for name in [
        "conv2d_fwd_gflops_vs_gemm",
        "conv2d_fwdbwd_gflops_vs_gemm",
        "gs_soc_4_time_vs_soc_c16",
        "gs_soc_4x2_time_vs_soc_c16",
        "gs_soc_4_time_vs_soc_c32",
        "gs_soc_4x2_time_vs_soc_c32",
    ] {
        assert!(names.contains(&name), "no target {name} in {names:?}");
    }
    assert_eq!(targets.len(), 14);
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
