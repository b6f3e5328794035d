//! Shared support for the experiment binaries in `experiments/`.
//!
//! A binary is thin: it declares its arguments with [`CommonArgs`] flattened in, and calls
//! [`run_main`] with a body that turns the arguments into a [`Run`] ([`CommonArgs::setup`]) and
//! calls the library. The [`Run`] owns the output directory, the seed, the `--quick` flag and a
//! rayon pool of `--threads` threads, and writes CSV, JSON and figures into the output directory.
//! Figures saved through [`Run::figure`], [`Run::figure_grid`] or [`Run::figure_layered`] (or
//! registered with [`Run::register_figure`]) are listed with a caption in `figures.json`.
//!
//! Exit status of [`run_main`]: 0 on success, 2 on a usage error or a returned [`Error`] (one
//! line on stderr: `NAME: error: ...`), 101 if the body panicked (also one line).
//!
//! ```no_run
//! use clap::Parser;
//! use gslab::exp::{CommonArgs, run_main};
//!
//! #[derive(Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     common: CommonArgs,
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     run_main("demo", |args: Args| {
//!         let run = args.common.setup("demo")?;
//!         run.write_json("summary.json", &serde_json::json!({"ok": true}))?;
//!         Ok(())
//!     })
//! }
//! ```

pub mod counts;
pub mod density;
pub mod orthofit;
pub mod report;
pub mod speed;
pub mod structure;

use crate::error::{Error, Result};
use crate::plot::{self, Plot};
use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

/// Arguments every experiment binary accepts (`#[command(flatten)]` them into the binary's
/// own `clap::Parser` struct).
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Seed of every random number generator of the run.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads (default: all available cores).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub threads: Option<u64>,
    /// Output directory (default: results/NAME/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Small sizes that run in seconds (used by the tests); hides the progress bar.
    #[arg(long)]
    pub quick: bool,
}

impl CommonArgs {
    /// The output directory: `--out`, or `results/NAME/` relative to the working directory.
    pub fn out_dir(&self, name: &str) -> PathBuf {
        self.out
            .clone()
            .unwrap_or_else(|| Path::new("results").join(name))
    }

    /// Creates the output directory and the thread pool of the run named `name`.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory cannot be created; [`Error::InvalidArgument`] if the
    /// thread pool cannot be built.
    pub fn setup(&self, name: &str) -> Result<Run> {
        let out = self.out_dir(name);
        std::fs::create_dir_all(&out).map_err(|e| io_error(&out, &e))?;
        let threads = match self.threads {
            Some(t) => t as usize,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| {
                Error::InvalidArgument(format!("cannot build a pool of {threads} threads: {e}"))
            })?;
        Ok(Run {
            name: name.to_string(),
            out,
            seed: self.seed,
            quick: self.quick,
            threads,
            pool,
            figures: Mutex::new(Vec::new()),
        })
    }
}

/// One experiment run: where its outputs go and how it runs.
#[derive(Debug)]
pub struct Run {
    /// Experiment name (used in messages and default paths).
    pub name: String,
    /// Output directory (exists).
    pub out: PathBuf,
    /// Seed of the run.
    pub seed: u64,
    /// `--quick`: small sizes, no progress bar.
    pub quick: bool,
    /// Number of worker threads of [`Run::pool`].
    pub threads: usize,
    /// The rayon pool all parallel work of the run should use (via [`Run::install`]).
    pub pool: rayon::ThreadPool,
    /// The figure manifest (`figures.json`), in registration order.
    figures: Mutex<Vec<FigureEntry>>,
}

/// One entry of the figure manifest `figures.json` written by [`Run::register_figure`]: the
/// two files of a figure (relative to the output directory) and a one-sentence caption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FigureEntry {
    /// File stem (`stem.png`, `stem.svg`).
    pub stem: String,
    /// Bitmap file name.
    pub png: String,
    /// Vector file name.
    pub svg: String,
    /// One sentence saying what the figure shows.
    pub caption: String,
}

/// File name of the figure manifest in the output directory.
pub const FIGURES_JSON: &str = "figures.json";

impl Run {
    /// `out/file`.
    pub fn path(&self, file: &str) -> PathBuf {
        self.out.join(file)
    }

    /// Runs `f` inside the run's thread pool (rayon and faer `Par::rayon(0)` use its threads).
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }

    /// Writes `rows` as `out/file` (CSV; header from the field names of `S`). Returns the path.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn write_csv<S: Serialize>(&self, file: &str, rows: &[S]) -> Result<PathBuf> {
        let p = self.path(file);
        write_csv(&p, rows)?;
        Ok(p)
    }

    /// Writes `value` as pretty JSON to `out/file`. Returns the path.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn write_json<S: Serialize>(&self, file: &str, value: &S) -> Result<PathBuf> {
        let p = self.path(file);
        write_json(&p, value)?;
        Ok(p)
    }

    /// Writes `out/stem.png` and `out/stem.svg`. Returns both paths.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn plot(&self, stem: &str, plot: &Plot) -> Result<(PathBuf, PathBuf)> {
        plot::save(&self.path(stem), plot)
    }

    /// [`Run::plot`] plus [`Run::register_figure`]`(stem, caption)`.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn figure(&self, stem: &str, plot: &Plot, caption: &str) -> Result<(PathBuf, PathBuf)> {
        let paths = self.plot(stem, plot)?;
        self.register_figure(stem, caption)?;
        Ok(paths)
    }

    /// [`plot::save_grid`] into `out/stem` plus [`Run::register_figure`]`(stem, caption)`.
    ///
    /// # Errors
    /// As [`plot::save_grid`].
    pub fn figure_grid(
        &self,
        stem: &str,
        title: &str,
        plots: &[Plot],
        ncols: usize,
        panel: (u32, u32),
        caption: &str,
    ) -> Result<(PathBuf, PathBuf)> {
        let paths = plot::save_grid(&self.path(stem), title, plots, ncols, panel)?;
        self.register_figure(stem, caption)?;
        Ok(paths)
    }

    /// [`plot::save_layered`] into `out/stem` plus [`Run::register_figure`]`(stem, caption)`.
    ///
    /// # Errors
    /// As [`plot::save_layered`].
    pub fn figure_layered(
        &self,
        stem: &str,
        title: &str,
        panels: &[plot::LayeredPlot],
        panel: (u32, u32),
        caption: &str,
    ) -> Result<(PathBuf, PathBuf)> {
        let paths = plot::save_layered(&self.path(stem), title, panels, panel)?;
        self.register_figure(stem, caption)?;
        Ok(paths)
    }

    /// Records that `out/stem.png` and `out/stem.svg` were written, with a one-sentence
    /// `caption`, and rewrites `out/figures.json` (a JSON list of [`FigureEntry`] in
    /// registration order; registering a stem again replaces its entry).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the caption is empty; [`Error::Io`] naming `figures.json`.
    pub fn register_figure(&self, stem: &str, caption: &str) -> Result<()> {
        if caption.trim().is_empty() {
            return Err(Error::InvalidArgument(format!(
                "figure {stem:?} needs a caption"
            )));
        }
        let entry = FigureEntry {
            stem: stem.to_string(),
            png: format!("{stem}.png"),
            svg: format!("{stem}.svg"),
            caption: one_line(caption),
        };
        let mut figs = self.figures.lock().unwrap_or_else(|e| e.into_inner());
        match figs.iter_mut().find(|f| f.stem == stem) {
            Some(f) => *f = entry,
            None => figs.push(entry),
        }
        write_json(&self.path(FIGURES_JSON), &*figs)
    }

    /// The figures registered so far, in order.
    pub fn figures(&self) -> Vec<FigureEntry> {
        self.figures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Writes `out/figures.json` (also when no figure was registered). Returns its path.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn finish(&self) -> Result<PathBuf> {
        let figs = self.figures();
        self.write_json(FIGURES_JSON, &figs)
    }

    /// A progress bar over `len` steps, hidden in `--quick` mode or when stderr is not a terminal.
    pub fn progress(&self, len: u64, message: &str) -> ProgressBar {
        progress_bar(len, message, self.quick)
    }
}

fn io_error(path: &Path, e: &dyn std::fmt::Display) -> Error {
    Error::format(path, e)
}

/// Writes `rows` to a CSV file with a header row taken from the field names of `S`.
///
/// # Errors
/// [`Error::Io`] naming `path`.
pub fn write_csv<S: Serialize>(path: &Path, rows: &[S]) -> Result<()> {
    let mut w = csv::Writer::from_path(path).map_err(|e| io_error(path, &e))?;
    for r in rows {
        w.serialize(r).map_err(|e| io_error(path, &e))?;
    }
    w.flush().map_err(|e| io_error(path, &e))
}

/// Writes a CSV file from an explicit header and string records.
///
/// # Errors
/// [`Error::Io`] naming `path` (also when a record's length differs from the header's).
pub fn write_csv_records(path: &Path, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut w = csv::Writer::from_path(path).map_err(|e| io_error(path, &e))?;
    w.write_record(header).map_err(|e| io_error(path, &e))?;
    for r in rows {
        w.write_record(r).map_err(|e| io_error(path, &e))?;
    }
    w.flush().map_err(|e| io_error(path, &e))
}

/// Writes `value` as pretty-printed JSON (with a trailing newline).
///
/// # Errors
/// [`Error::Io`] naming `path`.
pub fn write_json<S: Serialize>(path: &Path, value: &S) -> Result<()> {
    let mut s = serde_json::to_string_pretty(value).map_err(|e| io_error(path, &e))?;
    s.push('\n');
    std::fs::write(path, s).map_err(|e| io_error(path, &e))
}

/// A progress bar over `len` steps with a message; hidden when `hidden` is set or stderr is not
/// a terminal (so logs and tests stay clean).
pub fn progress_bar(len: u64, message: &str, hidden: bool) -> ProgressBar {
    if hidden || !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    }
    let style =
        ProgressStyle::with_template("{msg:24} [{bar:40}] {pos}/{len} ({elapsed}, eta {eta})")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(len)
        .with_style(style)
        .with_message(message.to_string())
}

/// Collapses a message to one line (newlines and runs of whitespace become single spaces).
pub fn one_line(msg: &str) -> String {
    msg.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parses the arguments of binary `name` and runs `body`.
///
/// - `--help` / `--version`: printed, exit 0.
/// - Usage error (unknown flag, bad value): `NAME: error: ...` on one line of stderr, exit 2.
/// - `body` returns `Err(e)`: `NAME: error: e` on one line, exit 2.
/// - `body` panics: `NAME: internal error: ...` on one line (no backtrace), exit 101.
///
/// Before `body` runs, [`keep_freed_memory`](crate::malloc::keep_freed_memory) keeps freed
/// tensors in the heap (glibc), so training loops and timings do not pay page faults per step
/// (unless the environment variable `GSLAB_MALLOC` is `default`).
pub fn run_main<A: Parser>(name: &str, body: impl FnOnce(A) -> Result<()>) -> ExitCode {
    let args = match A::try_parse() {
        Ok(a) => a,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                print!("{e}");
                return ExitCode::SUCCESS;
            }
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let msg = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("{name}: error: {} (see --help)", one_line(msg));
            return ExitCode::from(2);
        }
    };
    // Training loops and timings: freed tensors stay in the heap (no page faults per step).
    // `GSLAB_MALLOC=default` keeps glibc's defaults, to measure what the setting changes.
    if std::env::var("GSLAB_MALLOC").map_or(true, |v| v != "default") {
        crate::malloc::keep_freed_memory();
    }
    let who = name.to_string();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("{who}: internal error: {}{at}", one_line(&msg));
    }));
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(args))) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("{name}: error: {}", one_line(&e.to_string()));
            ExitCode::from(2)
        }
        Err(_) => ExitCode::from(101),
    }
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
