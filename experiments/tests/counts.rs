//! The paper's Tables 1–3 built from `gslab::count` against the digest's printed numbers and
//! hand-worked integers, and the `counts` binary end to end.
//!
//! Independent sources: the printed values of paper Tables 1–3 (digest §6), the integers the
//! digest derives (196,608; 1,048,576), and closed forms worked out by hand in the comments below
//! (not from the code under test).

mod common;

use experiments::counts::tables::{self as count, Agreement};
use std::process::Command;

fn find<'a>(rows: &'a [count::CountRow], method: &str, config: &str) -> &'a count::CountRow {
    rows.iter()
        .find(|r| r.method == method && r.config == config)
        .unwrap_or_else(|| panic!("no row {method} {config}"))
}

#[test]
fn table1_roberta() {
    let rows = count::table1().unwrap();
    // FT: embeddings (50265+514+1)·768 + LayerNorms 25·1536 + 12·(4·(768²+768) + 2·(768·3072) + 3072 + 768)
    // + pooler 768²+768 = 124,645,632 (printed 125M).
    let ft = find(&rows, "FT", "-");
    assert_eq!(ft.params, 124_645_632);
    // LoRA r=8: 12·8·(4·1536 + 2·3840) = 1,327,104 (1.33M).
    let lora = find(&rows, "LoRA", "rank=8");
    assert_eq!(lora.params, 1_327_104);
    // OFT b=16: 12·(16·(4·768 + 768 + 3072) + 4·768 + 3072 + 768) = 1,410,048 (1.41M).
    let oft = find(&rows, "OFT", "b=16");
    assert_eq!(oft.params, 1_410_048);
    // BOFT b=8 m=2: same formula value, printed 1.42M (digest §9.7).
    let boft = find(&rows, "BOFT", "b=8,m=2");
    assert_eq!(boft.params, 1_410_048);
    assert_eq!(boft.agreement, Agreement::Differs);
    assert!(boft.note.contains("pooler"));
    // GSOFT b=8 also wraps pooler.dense: 1,410,048 + 2·768·8 + 768 = 1,423,104 (1.42M).
    let gs = find(&rows, "GSOFT", "b=8");
    assert_eq!(gs.params, 1_423_104);
    for r in [ft, lora, oft, gs] {
        assert_eq!(r.agreement, Agreement::Rounds, "{} {}", r.method, r.config);
    }
    let printed: Vec<&str> = rows.iter().map(|r| r.paper_printed.as_str()).collect();
    assert_eq!(printed, ["125M", "1.33M", "1.41M", "1.42M", "1.42M"]);
    // Free convention: GSOFT 2·(in/8)·28 + out summed = half-ish of the paper count.
    assert_eq!(
        gs.params_free,
        12 * (2 * 28 * (4 * 96 + 96 + 384) + 6912) + 2 * 96 * 28 + 768
    );
}

#[test]
fn table2_stable_diffusion() {
    let rows = count::table2().unwrap();
    assert_eq!(rows.len(), 13);
    // Hand-worked sums over the 16 transformer blocks: Σw² = 5·320² + 5·640² + 6·1280² = 12,390,400;
    // Σw = 12,480; per block 8 projections, k and v of attn2 read 1024 features.
    let sum_w2: u64 = 12_390_400;
    let sum_w: u64 = 12_480;
    let ctx2: u64 = 16 * 1024 * 1024;
    let scale = 8 * sum_w; // 99,840
    let expect = |m: &str, c: &str| -> (u64, &'static str, Agreement) {
        let r = |x: &str| {
            x.trim_start_matches("r=")
                .split(',')
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        };
        match (m, c) {
            ("FT", _) => (
                6 * sum_w2 + 2 * 1024 * sum_w + 2 * sum_w,
                "99.9M",
                Agreement::Rounds,
            ),
            ("LoRA", "rank=4") => (4 * (14 * sum_w + 2048 * 16), "0.8M", Agreement::Rounds),
            ("LoRA", "rank=32") => (32 * (14 * sum_w + 2048 * 16), "6.6M", Agreement::Rounds),
            ("LoRA", "rank=128") => (128 * (14 * sum_w + 2048 * 16), "26.6M", Agreement::Rounds),
            ("BOFT", "r=32,m=4") => (
                4 * (6 * sum_w2 + 2 * ctx2) / 32 + scale,
                "13.6M",
                Agreement::Rounds,
            ),
            ("BOFT", "r=32,m=6") => (
                6 * (6 * sum_w2 + 2 * ctx2) / 32 + scale,
                "20.4M",
                Agreement::Differs,
            ),
            ("BOFT", "r=16,m=5") => (
                5 * (6 * sum_w2 + 2 * ctx2) / 16 + scale,
                "33.8M",
                Agreement::Rounds,
            ),
            ("GSOFT", c) => {
                let p = ["6.8M", "13.6M", "27.1M"]
                    [[32, 16, 8].iter().position(|&x| x == r(c)).unwrap()];
                (
                    (12 * sum_w2 + 4 * ctx2) / r(c) + scale,
                    p,
                    Agreement::Rounds,
                )
            }
            ("Double GSOFT", c) => {
                let (p, a) = [
                    ("6.5M", Agreement::Truncates),
                    ("13.0M", Agreement::Rounds),
                    ("25.9M", Agreement::Truncates),
                ][[64, 32, 16].iter().position(|&x| x == r(c)).unwrap()];
                ((28 * sum_w2 + 4 * ctx2) / r(c) + scale, p, a)
            }
            other => panic!("unexpected row {other:?}"),
        }
    };
    for row in &rows {
        let (params, printed, agreement) = expect(&row.method, &row.config);
        assert_eq!(row.params, params, "{} {}", row.method, row.config);
        assert_eq!(row.paper_printed, printed, "{} {}", row.method, row.config);
        assert_eq!(row.agreement, agreement, "{} {}", row.method, row.config);
        if agreement != Agreement::Rounds {
            assert!(!row.note.is_empty(), "a mismatch must be explained");
        }
    }
    // Spot values: Full 99,926,400; GSOFT r=32 6,843,392; BOFT m=6 20,330,496.
    assert_eq!(find(&rows, "FT", "-").params, 99_926_400);
    assert_eq!(find(&rows, "GSOFT", "r=32").params, 6_843_392);
    assert_eq!(find(&rows, "BOFT", "r=32,m=6").params, 20_330_496);
}

#[test]
fn table3_lipconvnet() {
    let rows = count::table3().unwrap();
    // SOC: Σ c²k² over the 15 convolutions = 23,013,376, biases 3,968, classifier 1024² + 100.
    let filters: u64 = 23_013_376;
    let biases: u64 = 3_968;
    let head: u64 = 1024 * 1024 + 100;
    let pointwise: u64 = 2_095_104; // Σ out² over the 15 convolutions (second, 1×1 SOC)
    let want = [
        ("-", filters + biases + head, "24.1M"),
        ("(4, -)", filters / 4 + biases + head, "6.81M"),
        (
            "(4, 1)",
            filters / 4 + biases + head + pointwise + biases,
            "8.91M",
        ),
        (
            "(4, 2)",
            filters / 4 + biases + head + pointwise / 2 + biases,
            "7.86M",
        ),
        (
            "(4, 4)",
            filters / 4 + biases + head + pointwise / 4 + biases,
            "7.3M",
        ),
    ];
    assert_eq!(rows.len(), want.len());
    for (r, (groups, params, printed)) in rows.iter().zip(want) {
        assert_eq!(r.config, groups);
        assert_eq!(r.params, params, "{groups}");
        assert_eq!(r.paper_printed, printed);
        assert_eq!(r.agreement, Agreement::Rounds, "{groups}");
    }
    assert_eq!(rows[0].params, 24_066_020);
}

#[test]
fn t4_matvec_rows() {
    let rows = count::matvec_rows(&[(1024, 32)]).unwrap();
    let boft = rows.iter().find(|r| r.structure == "BOFT").unwrap();
    assert_eq!((boft.factors, boft.macs), (6, 196_608));
    assert_eq!(boft.ratio_to_gs, 3.0);
}

#[test]
fn flop_rows_per_token() {
    let rows = count::flop_rows().unwrap();
    // Table 1, PEFT targets: 12·(4·768² + 2·768·3072) = 84,934,656 merged.
    let lora = rows
        .iter()
        .find(|r| r.table == 1 && r.method == "LoRA")
        .unwrap();
    assert_eq!(lora.merged_macs, 84_934_656);
    assert_eq!(lora.unmerged_macs, 84_934_656 + 1_327_104);
    assert!((lora.overhead_pct - 1.5625).abs() < 1e-12);
}

#[test]
fn printed_value_parsing() {
    assert_eq!(count::parse_printed("1.42M").unwrap(), (1.42e6, 1e4));
    assert_eq!(count::parse_printed("125M").unwrap(), (125e6, 1e6));
    assert!(count::parse_printed("about 3").is_err());
    assert_eq!(
        count::compare_printed(1_415_000, "1.42M").unwrap(),
        Agreement::Rounds
    );
    assert_eq!(
        count::compare_printed(1_414_000, "1.42M").unwrap(),
        Agreement::Differs
    );
    assert_eq!(
        count::compare_printed(6_569_216, "6.5M").unwrap(),
        Agreement::Truncates
    );
    assert_eq!(count::format_millions(1_423_104, 2), "1.42M");
}

#[test]
fn text_table_alignment() {
    let t = experiments::format_table(
        &["name", "n"],
        &[
            vec!["ab".into(), "5".into()],
            vec!["c".into(), "123".into()],
        ],
    );
    assert_eq!(t, "name    n\n----  ---\nab      5\nc     123\n");
    assert_eq!(experiments::one_line("a\n  b\tc"), "a b c");
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("gslab-counts-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn binary_quick_run_writes_outputs() {
    let out = tmp("ok");
    let o = Command::new(env!("CARGO_BIN_EXE_counts"))
        .args(["--quick", "--seed", "7", "--threads", "1", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let csv = std::fs::read_to_string(out.join("params.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "table,model,method,config,params,paper_printed");
    assert_eq!(lines.len(), 1 + 5 + 13 + 5);
    for key in [
        "1,RoBERTa-base,GSOFT,b=8,1423104,1.42M",
        "1,RoBERTa-base,LoRA,rank=8,1327104,1.33M",
        "2,SD-2-base UNet attention,FT,-,99926400,99.9M",
        "2,SD-2-base UNet attention,Double GSOFT,r=64,6569216,6.5M",
        "3,LipConvnet-15,SOC,-,24066020,24.1M",
        "3,LipConvnet-15,GS-SOC,\"(4, 1)\",8905060,8.91M",
    ] {
        assert!(lines.contains(&key), "missing row {key}");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["rounds"], 19);
    assert_eq!(summary["differs"], 2);
    assert_eq!(summary["roberta_head_params_2_classes"], 592_130);
    for f in [
        "flops.csv",
        "matvec_macs.csv",
        "params_detail.csv",
        "params.png",
        "params.svg",
        "params_table2.png",
    ] {
        let len = std::fs::metadata(out.join(f)).map(|m| m.len()).unwrap_or(0);
        assert!(len > 100, "{f} missing or empty");
    }
    common::check_figures_json(&out);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("1.42M") && stdout.contains("differs"));
}

/// Runs the binary with `args`; asserts exit status 2 and a single stderr line; returns it.
fn expect_usage_error(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_counts"))
        .args(args)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "args {args:?}");
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "stderr not one line: {err:?}"
    );
    assert!(err.starts_with("counts: error:"), "{err}");
    err
}

#[test]
fn binary_bad_arguments_exit_2_one_line() {
    assert!(expect_usage_error(&["--seed", "abc"]).contains("--seed"));
    assert!(expect_usage_error(&["--threads", "0"]).contains("--threads"));
    assert!(expect_usage_error(&["--no-such-flag"]).contains("--no-such-flag"));
}

#[test]
fn binary_unwritable_output_exit_2_names_path() {
    let d = tmp("blocked");
    std::fs::create_dir_all(&d).unwrap();
    let blocker = d.join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let target = blocker.join("out");
    let err = expect_usage_error(&["--quick", "--out", target.to_str().unwrap()]);
    assert!(err.contains("file"), "{err}");
}

#[derive(clap::Parser)]
struct DemoArgs {
    #[command(flatten)]
    common: experiments::CommonArgs,
}

#[test]
fn common_args_defaults_and_run_setup() {
    use clap::Parser;
    let a = DemoArgs::try_parse_from(["demo"]).unwrap().common;
    assert_eq!((a.seed, a.threads, a.quick), (0, None, false));
    assert_eq!(
        a.out_dir("demo"),
        std::path::Path::new("results").join("demo")
    );
    assert!(DemoArgs::try_parse_from(["demo", "--threads", "0"]).is_err());
    let out = tmp("setup");
    let a = DemoArgs::try_parse_from([
        "demo",
        "--seed",
        "5",
        "--threads",
        "2",
        "--quick",
        "--out",
        out.to_str().unwrap(),
    ])
    .unwrap()
    .common;
    let run = a.setup("demo").unwrap();
    assert!(out.is_dir());
    assert_eq!((run.seed, run.threads, run.quick), (5, 2, true));
    assert_eq!(run.install(rayon::current_num_threads), 2);
    assert!(run.progress(10, "x").is_hidden());
    #[derive(serde::Serialize)]
    struct Rec {
        a: u32,
        b: String,
    }
    let p = run
        .write_csv(
            "t.csv",
            &[Rec {
                a: 1,
                b: "x,y".into(),
            }],
        )
        .unwrap();
    assert_eq!(std::fs::read_to_string(p).unwrap(), "a,b\n1,\"x,y\"\n");
    let j = run
        .write_json("t.json", &serde_json::json!({"k": [1, 2]}))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(j).unwrap()).unwrap();
    assert_eq!(v["k"][1], 2);
}

#[test]
fn run_figure_manifest() {
    use clap::Parser;
    let out = tmp("manifest");
    let run = DemoArgs::try_parse_from(["demo", "--quick", "--out", out.to_str().unwrap()])
        .unwrap()
        .common
        .setup("demo")
        .unwrap();
    // finish() writes an empty manifest when nothing was drawn.
    let p = run.finish().unwrap();
    assert_eq!(std::fs::read_to_string(&p).unwrap().trim(), "[]");
    let xy = experiments::plot::XyPlot::new("t", "x", "y").with(experiments::plot::Series::line(
        "s",
        vec![(0.0, 1.0), (1.0, 2.0)],
    ));
    run.figure("a", &xy.clone().into(), "First caption of the test figure.")
        .unwrap();
    run.figure(
        "b",
        &xy.clone().into(),
        "Second caption of the test figure.",
    )
    .unwrap();
    // Registering a stem again replaces its entry; an empty caption is refused.
    run.figure("a", &xy.into(), "Replaced caption of the test figure.")
        .unwrap();
    assert!(run.register_figure("c", "  ").is_err());
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("figures.json")).unwrap()).unwrap();
    assert_eq!(
        v,
        serde_json::json!([
            {"stem": "a", "png": "a.png", "svg": "a.svg", "caption": "Replaced caption of the test figure."},
            {"stem": "b", "png": "b.png", "svg": "b.svg", "caption": "Second caption of the test figure."},
        ])
    );
    common::check_figures_json(&out);
    assert_eq!(run.figures().len(), 2);
}

/// T17: the "ALL" column is the plain mean of the 8 GLUE scores; the digest recomputed the means
/// by hand as 86.0687, 86.5263, 86.2713, 85.8425, 86.6688, which round to the printed values.
#[test]
fn t17_glue_all_is_the_plain_mean() {
    let hand = [86.0687, 86.5263, 86.2713, 85.8425, 86.6688];
    for ((method, mean, printed), want) in count::glue_all_rows().into_iter().zip(hand) {
        assert!(
            (mean - want).abs() < 1e-4,
            "{method}: mean {mean} vs hand {want}"
        );
        assert!(
            (mean - printed).abs() <= 0.005 + 1e-9,
            "{method}: {mean} does not round to {printed}"
        );
    }
}
