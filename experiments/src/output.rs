//! Output files and terminal tables of the experiments: CSV (header from the field names of a
//! `Serialize` row, or explicit), pretty JSON, and aligned text tables.

use crate::error::{Error, Result};
use serde::Serialize;
use std::path::Path;

/// Writes `rows` to a CSV file with a header row taken from the field names of `S`.
///
/// # Errors
/// [`Error::Csv`] or [`Error::Io`] naming `path`.
pub fn write_csv<S: Serialize>(path: &Path, rows: &[S]) -> Result<()> {
    let csv_err = |e| Error::csv(path, e);
    let mut w = csv::Writer::from_path(path).map_err(csv_err)?;
    for r in rows {
        w.serialize(r).map_err(csv_err)?;
    }
    w.flush().map_err(|e| Error::io(path, e))
}

/// Writes a CSV file from an explicit header and string records.
///
/// # Errors
/// [`Error::Csv`] or [`Error::Io`] naming `path` (also when a record's length differs from
/// the header's).
pub fn write_csv_records(path: &Path, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let csv_err = |e| Error::csv(path, e);
    let mut w = csv::Writer::from_path(path).map_err(csv_err)?;
    w.write_record(header).map_err(csv_err)?;
    for r in rows {
        w.write_record(r).map_err(csv_err)?;
    }
    w.flush().map_err(|e| Error::io(path, e))
}

/// Writes `value` as pretty-printed JSON (with a trailing newline).
///
/// # Errors
/// [`Error::Json`] or [`Error::Io`] naming `path`.
pub fn write_json<S: Serialize>(path: &Path, value: &S) -> Result<()> {
    let mut s = serde_json::to_string_pretty(value).map_err(|e| Error::json(path, e))?;
    s.push('\n');
    std::fs::write(path, s).map_err(|e| Error::io(path, e))
}

/// Formats an aligned text table: columns padded to their widest cell, columns whose body cells
/// are all numbers right-aligned (header included), a dashed rule under the header.
pub fn format_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let ncol = header
        .len()
        .max(rows.iter().map(Vec::len).max().unwrap_or(0));
    let cell = |r: &[String], j: usize| r.get(j).cloned().unwrap_or_default();
    let head: Vec<String> = (0..ncol)
        .map(|j| header.get(j).map_or(String::new(), |s| s.to_string()))
        .collect();
    let width: Vec<usize> = (0..ncol)
        .map(|j| {
            rows.iter()
                .map(|r| cell(r, j).chars().count())
                .chain([head[j].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let is_num = |s: &str| s.replace([',', '_', '%'], "").parse::<f64>().is_ok();
    // A column is right-aligned (header too) when all its non-empty body cells are numbers.
    let right: Vec<bool> = (0..ncol)
        .map(|j| {
            let mut cells = rows
                .iter()
                .map(|r| cell(r, j))
                .filter(|c| !c.is_empty())
                .peekable();
            cells.peek().is_some() && cells.all(|c| is_num(&c))
        })
        .collect();
    let line = |r: &[String]| {
        let cells: Vec<String> = (0..ncol)
            .map(|j| {
                let c = cell(r, j);
                if right[j] {
                    format!("{c:>w$}", w = width[j])
                } else {
                    format!("{c:<w$}", w = width[j])
                }
            })
            .collect();
        cells.join("  ").trim_end().to_string()
    };
    let mut out = line(&head);
    out.push('\n');
    out.push_str(
        &width
            .iter()
            .map(|&w| "-".repeat(w))
            .collect::<Vec<_>>()
            .join("  "),
    );
    out.push('\n');
    for r in rows {
        out.push_str(&line(r));
        out.push('\n');
    }
    out
}

/// Prints [`format_table`] to stdout.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    print!("{}", format_table(header, rows));
}
