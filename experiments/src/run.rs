//! [`Run`]: one experiment run, owning its output directory, seed, `--quick` flag, thread pool
//! and figure manifest (`figures.json`, a caption for every figure).
//!
//! Figures saved through [`Run::figure`], [`Run::figure_grid`] or [`Run::figure_layered`] (or
//! registered with [`Run::register_figure`]) are listed with a caption in `figures.json`.

use crate::cli::one_line;
use crate::error::{Error, Result};
use crate::output::{write_csv, write_json};
use crate::plot::{self, Plot};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;

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
    /// A run named `name` writing into the existing directory `out`, with `threads` workers in
    /// `pool` (see [`CommonArgs::setup`](crate::CommonArgs::setup)).
    pub fn new(
        name: &str,
        out: PathBuf,
        seed: u64,
        quick: bool,
        threads: usize,
        pool: rayon::ThreadPool,
    ) -> Self {
        Self {
            name: name.to_string(),
            out,
            seed,
            quick,
            threads,
            pool,
            figures: Mutex::new(Vec::new()),
        }
    }

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
    /// As [`write_csv`].
    pub fn write_csv<S: Serialize>(&self, file: &str, rows: &[S]) -> Result<PathBuf> {
        let p = self.path(file);
        write_csv(&p, rows)?;
        Ok(p)
    }

    /// Writes `value` as pretty JSON to `out/file`. Returns the path.
    ///
    /// # Errors
    /// As [`write_json`].
    pub fn write_json<S: Serialize>(&self, file: &str, value: &S) -> Result<PathBuf> {
        let p = self.path(file);
        write_json(&p, value)?;
        Ok(p)
    }

    /// Writes `out/stem.png` and `out/stem.svg`. Returns both paths.
    ///
    /// # Errors
    /// As [`plot::save`].
    pub fn plot(&self, stem: &str, plot: &Plot) -> Result<(PathBuf, PathBuf)> {
        plot::save(&self.path(stem), plot)
    }

    /// [`Run::plot`] plus [`Run::register_figure`]`(stem, caption)`.
    ///
    /// # Errors
    /// As [`Run::plot`] and [`Run::register_figure`].
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
    /// [`Error::Figure`] if the caption is empty; as [`write_json`] for
    /// `figures.json`.
    pub fn register_figure(&self, stem: &str, caption: &str) -> Result<()> {
        if caption.trim().is_empty() {
            return Err(Error::Figure(format!("figure {stem:?} needs a caption")));
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
    /// As [`write_json`].
    pub fn finish(&self) -> Result<PathBuf> {
        let figs = self.figures();
        self.write_json(FIGURES_JSON, &figs)
    }

    /// A progress bar over `len` steps, hidden in `--quick` mode or when stderr is not a terminal.
    pub fn progress(&self, len: u64, message: &str) -> ProgressBar {
        progress_bar(len, message, self.quick)
    }
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
