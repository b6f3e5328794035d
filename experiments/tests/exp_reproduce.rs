//! `reproduce --quick`: every experiment runs in-process and `REPORT.md` shows every figure of
//! every experiment's manifest and the main tables.

mod common;

use std::path::PathBuf;
use std::process::Command;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gslab-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn quick_report_shows_every_figure_and_table() {
    let out = tmp("reproduce");
    let st = Command::new(env!("CARGO_BIN_EXE_reproduce"))
        .args(["--quick", "--seed", "3", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let report = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    for name in [
        "density",
        "structure",
        "orthofit",
        "counts",
        "speed",
        "finetune",
        "lipconv",
    ] {
        assert!(
            report.contains(&format!("\n## {name}\n")),
            "section {name} missing"
        );
        let manifest: Vec<serde_json::Value> = serde_json::from_str(
            &std::fs::read_to_string(out.join(name).join("figures.json")).unwrap(),
        )
        .unwrap();
        assert!(!manifest.is_empty(), "{name}: no figures");
        common::check_figures_json(&out.join(name));
        for fig in manifest {
            let stem = fig["stem"].as_str().unwrap();
            assert!(
                out.join(name).join(format!("{stem}.png")).is_file(),
                "{name}/{stem}.png"
            );
            assert!(
                out.join(name).join(format!("{stem}.svg")).is_file(),
                "{name}/{stem}.svg"
            );
            assert!(
                report.contains(&format!("]({name}/{stem}.png)")),
                "{name}/{stem} not shown"
            );
            assert!(report.contains(fig["caption"].as_str().unwrap()));
        }
    }
    // the Theorem 2 table is in the report, with the closed form of (1024, 32)
    assert!(
        report.contains(
            "| n | b | r | gs_min_factors | gs_formula | boft_min_factors | boft_formula |"
        )
    );
    assert!(report.contains("| 1024 | 32 | 32 | 2 | 2 | 6 | 6 |"));
    // the speed tables of the adapter steps, the convolution and the SOC / GS-SOC layers
    for row in [
        "| gsoft_step |",
        "| boft_step_first |",
        "| conv2d |",
        "| conv_gemm |",
        "| soc |",
        "| gs_soc_4x2 |",
    ] {
        assert!(report.contains(row), "{row} not in the report");
    }
    // the lipconv tables, with the built LipConvnet-15 tally of SOC (Table 3: 24.1M)
    assert!(report.contains(
        "| variant | groups | activation | paired | params | train_s_per_epoch | speedup |"
    ));
    assert!(report.contains("| soc | - | 24066020 | 24066020 | 24.1M |"));
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn unknown_experiment_exits_2_with_one_line() {
    let st = Command::new(env!("CARGO_BIN_EXE_reproduce"))
        .args(["--quick", "--only", "densty", "--out"])
        .arg(tmp("reproduce-bad"))
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(2));
    let err = String::from_utf8_lossy(&st.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("densty"), "{err}");
}
