//! Markdown rendering for `results/REPORT.md`, written by the `reproduce` binary: CSV files as
//! tables and the figures listed in each experiment's `figures.json`.

use crate::error::{Error, Result};
use crate::run::{FIGURES_JSON, FigureEntry};
use std::fmt::Write as _;
use std::path::Path;

/// Reads `dir/figures.json`; an absent manifest gives an empty list.
///
/// # Errors
/// [`Error::Io`] if the file exists but cannot be read, [`Error::Json`] if it cannot be parsed.
pub fn read_figures(dir: &Path) -> Result<Vec<FigureEntry>> {
    let path = dir.join(FIGURES_JSON);
    if !path.exists() {
        return Ok(vec![]);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::json(&path, e))
}

/// Renders a CSV file as a Markdown table, keeping the rows for which `keep(header, row)` is
/// true, at most `max_rows` of them (a final line says how many were left out).
///
/// # Errors
/// [`Error::Csv`] if the file cannot be read or is not valid CSV.
pub fn csv_table(
    path: &Path,
    max_rows: usize,
    keep: impl Fn(&csv::StringRecord, &csv::StringRecord) -> bool,
) -> Result<String> {
    let csv_err = |e| Error::csv(path, e);
    let mut rdr = csv::Reader::from_path(path).map_err(csv_err)?;
    let header = rdr.headers().map_err(csv_err)?.clone();
    let mut md = String::new();
    let cells = |r: &csv::StringRecord| r.iter().map(|c| c.replace('|', "\\|")).collect::<Vec<_>>();
    let _ = writeln!(md, "| {} |", cells(&header).join(" | "));
    let _ = writeln!(md, "|{}", "---|".repeat(header.len()));
    let (mut shown, mut left) = (0usize, 0usize);
    for rec in rdr.records() {
        let rec = rec.map_err(csv_err)?;
        if !keep(&header, &rec) {
            continue;
        }
        if shown < max_rows {
            let _ = writeln!(md, "| {} |", cells(&rec).join(" | "));
            shown += 1;
        } else {
            left += 1;
        }
    }
    if left > 0 {
        let _ = writeln!(md, "\n({left} more rows in `{}`.)", file_name(path));
    }
    Ok(md)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Markdown for every figure of an experiment: caption, then the PNG (relative link from the
/// report's directory), then a link to the SVG.
pub fn figures_markdown(rel_dir: &str, figures: &[FigureEntry]) -> String {
    let mut md = String::new();
    for f in figures {
        let _ = writeln!(
            md,
            "**{}.** {}\n\n![{}]({rel_dir}/{}.png)\n\n([SVG]({rel_dir}/{}.svg))\n",
            f.stem, f.caption, f.stem, f.stem, f.stem
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_table_filters_limits_and_escapes() {
        let dir = std::env::temp_dir().join(format!("gslab-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t.csv");
        std::fs::write(&p, "a,b\n1,x|y\n2,z\n3,w\n").unwrap();
        let md = csv_table(&p, 1, |_, r| &r[0] != "2").unwrap();
        assert!(
            md.starts_with("| a | b |\n|---|---|\n| 1 | x\\|y |\n"),
            "{md}"
        );
        assert!(md.contains("(1 more rows in `t.csv`.)"), "{md}");
        assert!(read_figures(&dir).unwrap().is_empty());
        std::fs::write(
            dir.join("figures.json"),
            r#"[{"stem":"f","caption":"C.","png":"f.png","svg":"f.svg"}]"#,
        )
        .unwrap();
        let figs = read_figures(&dir).unwrap();
        assert_eq!(figs[0].stem, "f");
        assert!(figures_markdown("d", &figs).contains("![f](d/f.png)"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
