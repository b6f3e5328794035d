//! The `counts` experiment: parameter counts of paper Tables 1–3 and per-token costs of the
//! adapters, from layer shapes (`gslab::count`); the tables themselves are in [`tables`].
//!
//! Outputs in the run directory:
//! - `params.csv` (`table,model,method,config,params,paper_printed`): exact counts in the paper's
//!   convention next to the printed values;
//! - `params_detail.csv`: the same rows plus the free-parameter count, the agreement and the note;
//! - `flops.csv`: multiply-adds per token of the adapted layers, merged and unmerged;
//! - `matvec_macs.csv`: GS vs BOFT vs dense matvec cost at the density thresholds (T4, T15);
//! - `summary.json`; figures `params_table{1,2,3}`, `params` (all three panels) and `flops`
//!   (merged vs unmerged cost), PNG + SVG, listed with captions in `figures.json`.

pub mod tables;

use crate::error::Result;
use crate::plot::{BarPlot, Plot, Scale};
use crate::{CommonArgs, Run};
use clap::Parser;
use serde::Serialize;
use tables::{Agreement, CountRow, FlopRow, MatvecRow};

/// Parameter and FLOP accounting of the Group-and-Shuffle paper's Tables 1–3.
#[derive(Parser, Debug, Clone)]
#[command(name = "counts", version)]
pub struct Args {
    /// `--seed`, `--threads`, `--out`, `--quick` (the counts are exact: the same at every size).
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Runs the experiment: writes every output into `--out` and prints the tables.
///
/// # Errors
/// A file that cannot be written (named in the message).
pub fn run(args: Args) -> Result<()> {
    let run = args.common.setup("counts")?;
    let summary = run.install(|| write_outputs(&run))?;
    print!("{}", report(&summary));
    println!("outputs written to {}", run.out.display());
    Ok(())
}

/// A `params.csv` record.
#[derive(Debug, Serialize)]
struct ParamsRecord<'a> {
    table: u8,
    model: &'a str,
    method: &'a str,
    config: &'a str,
    params: u64,
    paper_printed: &'a str,
}

/// `(n, b)` cases of the matvec comparison (T4 is (1024, 32)).
const MATVEC_CASES: [(u64, u64); 4] = [(1024, 32), (768, 8), (4096, 64), (64, 4)];

/// Result of [`run`]: the rows and a text report for the terminal.
#[derive(Debug, Clone, Serialize)]
pub struct CountsSummary {
    /// All table rows.
    pub rows: Vec<CountRow>,
    /// Rows whose exact count rounds to the printed value.
    pub rounds: usize,
    /// Rows that only truncate to the printed value.
    pub truncates: usize,
    /// Rows that differ.
    pub differs: usize,
    /// GLUE classification head parameters for 2 classes (not in Table 1's counts).
    pub roberta_head_params_2_classes: u64,
    /// Per-token costs.
    pub flops: Vec<FlopRow>,
    /// Matvec costs (T4, T15).
    pub matvec: Vec<MatvecRow>,
}

/// Computes every count, writes the CSV, JSON and figure files into `run.out`, and returns the
/// summary.
///
/// # Errors
/// A file that cannot be written (named in the message).
pub fn write_outputs(run: &Run) -> Result<CountsSummary> {
    let rows = tables::all_tables()?;
    let records: Vec<ParamsRecord<'_>> = rows
        .iter()
        .map(|r| ParamsRecord {
            table: r.table,
            model: &r.model,
            method: &r.method,
            config: &r.config,
            params: r.params,
            paper_printed: &r.paper_printed,
        })
        .collect();
    run.write_csv("params.csv", &records)?;
    run.write_csv("params_detail.csv", &rows)?;
    let flops = tables::flop_rows()?;
    run.write_csv("flops.csv", &flops)?;
    let matvec = tables::matvec_rows(&MATVEC_CASES)?;
    run.write_csv("matvec_macs.csv", &matvec)?;
    let n = |a: Agreement| rows.iter().filter(|r| r.agreement == a).count();
    let summary = CountsSummary {
        rounds: n(Agreement::Rounds),
        truncates: n(Agreement::Truncates),
        differs: n(Agreement::Differs),
        roberta_head_params_2_classes: gslab::count::roberta_head_params(768, 2),
        rows,
        flops,
        matvec,
    };
    run.write_json("summary.json", &summary)?;
    let panels: Vec<Plot> = (1..=3).map(|t| bars(&summary.rows, t)).collect();
    for (t, p) in panels.iter().enumerate() {
        run.figure(
            &format!("params_table{}", t + 1),
            p,
            &if t == 2 {
                "Trainable parameters of every method of paper Table 3: exact count (b² per block) against the number printed in the paper.".to_string()
            } else {
                format!(
                    "Trainable parameters of every method of paper Table {}: exact count (b² per block), the number printed in the paper, and the free count (b(b−1)/2 per orthogonal block).",
                    t + 1
                )
            },
        )?;
    }
    run.figure_grid(
        "params",
        "Trainable parameters: exact vs printed",
        &panels,
        1,
        (1000, 560),
        "Trainable parameters of the methods of paper Tables 1, 2 and 3 in one figure: exact counts against the numbers printed in the paper.",
    )?;
    let flop_panels: Vec<Plot> = (1..=2).map(|t| flop_bars(&summary.flops, t)).collect();
    run.figure_grid(
        "flops",
        "Multiply-adds per token, adapted layers",
        &flop_panels,
        2,
        (900, 620),
        "Multiply-adds per token in the adapted layers of the paper Table 1 and Table 2 models, with the adapter merged into the weights against applied separately (merged cost plus the adapter's own products).",
    )?;
    run.finish()?;
    Ok(summary)
}

/// Horizontal bars of exact (paper convention), printed and free-convention counts of table `t`.
fn bars(rows: &[CountRow], t: u8) -> Plot {
    let rs: Vec<&CountRow> = rows.iter().filter(|r| r.table == t).collect();
    let printed = |r: &CountRow| tables::parse_printed(&r.paper_printed).map_or(f64::NAN, |p| p.0);
    let mut series = vec![
        (
            "exact (b² per block)".to_string(),
            rs.iter().map(|r| r.params as f64).collect::<Vec<_>>(),
        ),
        (
            "printed in the paper".to_string(),
            rs.iter().map(|r| printed(r)).collect(),
        ),
    ];
    if t != 3 {
        series.push((
            "free (b(b−1)/2 per block)".to_string(),
            rs.iter().map(|r| r.params_free as f64).collect(),
        ));
    }
    let model = rs.first().map_or("", |r| r.model.as_str());
    Plot::Bars(BarPlot {
        title: format!("Table {t}: {model}"),
        value_label: "trainable parameters".into(),
        categories: rs
            .iter()
            .map(|r| format!("{} {}", r.method, r.config))
            .collect(),
        series,
        scale: if t == 3 { Scale::Linear } else { Scale::Log },
    })
}

/// Merged vs unmerged multiply-adds per token of table `t`'s methods.
fn flop_bars(rows: &[FlopRow], t: u8) -> Plot {
    let rs: Vec<&FlopRow> = rows.iter().filter(|r| r.table == t).collect();
    let model = rs.first().map_or("", |r| r.model.as_str());
    Plot::Bars(BarPlot {
        title: format!("Table {t}: {model}"),
        value_label: "multiply-adds per token".into(),
        categories: rs
            .iter()
            .map(|r| match r.config.as_str() {
                "-" => r.method.clone(),
                c => format!("{} {c}", r.method),
            })
            .collect(),
        series: vec![
            (
                "merged (dense)".into(),
                rs.iter().map(|r| r.merged_macs as f64).collect(),
            ),
            (
                "unmerged".into(),
                rs.iter().map(|r| r.unmerged_macs as f64).collect(),
            ),
        ],
        scale: Scale::Linear,
    })
}

/// The terminal report: one line per table row with the printed value, the agreement and the
/// note, then the matvec comparison.
pub fn report(s: &CountsSummary) -> String {
    let header = [
        "table",
        "method",
        "config",
        "params",
        "free",
        "printed",
        "agreement",
        "note",
    ];
    let rows: Vec<Vec<String>> = s
        .rows
        .iter()
        .map(|r| {
            vec![
                r.table.to_string(),
                r.method.clone(),
                r.config.clone(),
                r.params.to_string(),
                r.params_free.to_string(),
                r.paper_printed.clone(),
                format!("{:?}", r.agreement).to_lowercase(),
                if r.agreement == Agreement::Rounds {
                    String::new()
                } else {
                    short(&r.note)
                },
            ]
        })
        .collect();
    let mut out = crate::format_table(&header, &rows);
    out.push_str(&format!(
        "\n{} rows round to the printed value, {} only truncate, {} differ (notes in params_detail.csv)\n\n",
        s.rounds, s.truncates, s.differs
    ));
    let mh = [
        "n",
        "b",
        "structure",
        "factors",
        "multiply-adds",
        "ratio to GS",
    ];
    let mrows: Vec<Vec<String>> = s
        .matvec
        .iter()
        .map(|m| {
            vec![
                m.n.to_string(),
                m.b.to_string(),
                m.structure.clone(),
                m.factors.to_string(),
                m.macs.to_string(),
                format!("{:.2}", m.ratio_to_gs),
            ]
        })
        .collect();
    out.push_str(&crate::format_table(&mh, &mrows));
    out
}

/// First clause of a note (up to the first `;`), for the terminal.
fn short(note: &str) -> String {
    note.split(';').next().unwrap_or("").trim().to_string()
}
