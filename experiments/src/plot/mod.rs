//! Figures on top of `plotters`: every figure is written twice, as `STEM.png` (bitmap) and
//! `STEM.svg` (vector), from one description.
//!
//! A figure is a [`Plot`] value:
//! - [`XyPlot`] (`xy`): line, scatter or line+marker series on linear or logarithmic axes (each
//!   axis independently, so log-log and semi-log plots are the same type), with a legend;
//! - [`BarPlot`] (`bars`): horizontal grouped bars (one group per category, one bar per series),
//!   so long method names stay readable; the value axis may be logarithmic;
//! - [`SpyPlot`] (`spy`): the sparsity pattern of a boolean `rows × cols` matrix, down-sampled
//!   onto a grid of at most `max_cells × max_cells` cells whose grey level is the fraction of
//!   nonzeros it covers;
//! - [`Heatmap`] (`heatmap`): a real `rows × cols` matrix in the viridis colour scale with a
//!   colour bar and, for small integer matrices (block ranks), the value printed in each cell.
//!
//! [`save`] writes one figure and [`save_grid`] writes several as panels of one figure.
//! [`save_layered`] writes layered "information flow" diagrams ([`LayeredPlot`]: columns of
//! nodes joined by edges, some highlighted), like the paper's Figures 1, 3 and 5.
//! [`save_panels`] writes line plots as panels that share their axes and one legend column
//! ([`PanelGrid`]), for curves that all start in the same corner.
//! [`save_spread`] writes means with min–max whiskers (the spread over seeds) as panels with one
//! legend column ([`SpreadFigure`]), with an optional frontier and dashed reference lines.
//!
//! Legend placement lives in `legend`: the legend of an [`XyPlot`] goes to the corner of the
//! plotting area that covers the fewest drawn points ([`legend_corner`]); bar plots with several
//! series get a legend row under the bars; a [`PanelGrid`] gets a [`LegendColumn`] beside its
//! panels.
//!
//! Text is drawn with the vendored DejaVu Sans font (`experiments/assets/`), registered once as
//! the `sans-serif` family ([`register_font`]); no system font or font library is used at run
//! time.

mod bars;
mod heatmap;
mod layered;
mod legend;
mod panels;
mod spread;
mod spy;
mod xy;

pub use bars::BarPlot;
pub use heatmap::{Heatmap, viridis};
pub use layered::{LayerEdge, LayeredPlot, save_layered};
pub use legend::{LEGEND_COLUMN_WIDTH, LegendColumn, LegendCorner, legend_box_size, legend_corner};
pub use panels::{Panel, PanelGrid, save_panels};
pub use spread::{
    EntryStyle, RefLine, SpreadFigure, SpreadPanel, SpreadPoint, SpreadSeries, save_spread,
};
pub use spy::{SPY_MAX_CELLS, SpyPlot};
pub use xy::{Series, Style, XyPlot};

use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The DejaVu Sans font bytes embedded in the binary.
static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Outcome of the one-time font registration (`Ok` or a message).
static FONT_STATE: OnceLock<std::result::Result<(), String>> = OnceLock::new();

/// Registers the embedded DejaVu Sans as plotters' `sans-serif` family, once per process.
///
/// Every helper in this module calls it; call it yourself only when drawing with plotters
/// directly.
///
/// # Errors
/// [`Error::Figure`] if the embedded font cannot be parsed (a corrupt build).
pub fn register_font() -> Result<()> {
    FONT_STATE
        .get_or_init(|| {
            plotters::style::register_font("sans-serif", FontStyle::Normal, FONT_BYTES)
                .map_err(|_| "the embedded DejaVuSans.ttf is not a valid font".to_string())
        })
        .clone()
        .map_err(Error::Figure)
}

/// Axis scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Linear axis.
    Linear,
    /// Base-10 logarithmic axis spanning whole decades (non-positive values are not drawn).
    Log,
}

/// Any figure this module can draw.
#[derive(Debug, Clone, PartialEq)]
pub enum Plot {
    /// Lines / scatter.
    Xy(XyPlot),
    /// Grouped horizontal bars.
    Bars(BarPlot),
    /// Sparsity pattern.
    Spy(SpyPlot),
    /// Colour-scaled matrix.
    Heatmap(Heatmap),
}

impl Plot {
    /// Default pixel size `(width, height)` of a stand-alone figure of this kind.
    pub fn default_size(&self) -> (u32, u32) {
        match self {
            Plot::Xy(_) => (860, 600),
            Plot::Bars(b) => {
                let rows = b.categories.len() * b.series.len().max(1);
                (960, (160 + 22 * rows as u32).clamp(360, 1400))
            }
            Plot::Spy(_) => (680, 720),
            Plot::Heatmap(_) => (760, 680),
        }
    }
}

impl From<XyPlot> for Plot {
    fn from(p: XyPlot) -> Self {
        Plot::Xy(p)
    }
}

impl From<BarPlot> for Plot {
    fn from(p: BarPlot) -> Self {
        Plot::Bars(p)
    }
}

impl From<SpyPlot> for Plot {
    fn from(p: SpyPlot) -> Self {
        Plot::Spy(p)
    }
}

impl From<Heatmap> for Plot {
    fn from(p: Heatmap) -> Self {
        Plot::Heatmap(p)
    }
}

/// The two files written for `stem`: `(stem.png, stem.svg)`.
pub fn output_paths(stem: &Path) -> (PathBuf, PathBuf) {
    let with = |ext: &str| {
        let mut s = stem.as_os_str().to_owned();
        s.push(".");
        s.push(ext);
        PathBuf::from(s)
    };
    (with("png"), with("svg"))
}

/// Writes `plot` as `stem.png` and `stem.svg` at its [`Plot::default_size`], creating the parent
/// directory if needed. Returns the two paths.
///
/// # Errors
/// [`Error::Io`] naming the directory that could not be created, [`Error::Plot`] naming the
/// file that could not be drawn or written.
pub fn save(stem: &Path, plot: &Plot) -> Result<(PathBuf, PathBuf)> {
    render(stem, plot.default_size(), plot)
}

/// Writes several plots as panels of one figure (`ncols` panels per row, `panel` pixels each),
/// under a common `title`. Returns `(stem.png, stem.svg)`.
///
/// # Errors
/// [`Error::Figure`] if `plots` is empty or `ncols == 0`; otherwise as [`save`].
pub fn save_grid(
    stem: &Path,
    title: &str,
    plots: &[Plot],
    ncols: usize,
    panel: (u32, u32),
) -> Result<(PathBuf, PathBuf)> {
    if plots.is_empty() || ncols == 0 {
        return Err(Error::Figure(format!(
            "save_grid needs at least one plot and ncols > 0 (got {} plots, ncols = {ncols})",
            plots.len()
        )));
    }
    let ncols = ncols.min(plots.len());
    let nrows = plots.len().div_ceil(ncols);
    let size = (panel.0 * ncols as u32, panel.1 * nrows as u32 + 50);
    let grid = Grid {
        title,
        plots,
        nrows,
        ncols,
    };
    render(stem, size, &grid)
}

/// Something that can be drawn on any plotters backend.
trait Figure {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult;
}

impl Figure for Plot {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult {
        draw_plot(self, area)
    }
}

/// Panels of [`save_grid`].
struct Grid<'a> {
    title: &'a str,
    plots: &'a [Plot],
    nrows: usize,
    ncols: usize,
}

impl Figure for Grid<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult {
        let body = area
            .titled(self.title, ("sans-serif", 26))
            .map_err(|e| e.to_string())?;
        for (plot, cell) in self
            .plots
            .iter()
            .zip(body.split_evenly((self.nrows, self.ncols)))
        {
            draw_plot(plot, &cell)?;
        }
        Ok(())
    }
}

/// Draws `fig` on a PNG and an SVG backend of the given size.
fn render<F: Figure>(stem: &Path, size: (u32, u32), fig: &F) -> Result<(PathBuf, PathBuf)> {
    register_font()?;
    let (png, svg) = output_paths(stem);
    if let Some(dir) = png.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| Error::plot(&png, e))?;
        fig.draw(&root).map_err(|e| Error::plot(&png, e))?;
        root.present().map_err(|e| Error::plot(&png, e))?;
    }
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| Error::plot(&svg, e))?;
        fig.draw(&root).map_err(|e| Error::plot(&svg, e))?;
        root.present().map_err(|e| Error::plot(&svg, e))?;
    }
    Ok((png, svg))
}

/// String error of a drawing call.
type DrawResult = std::result::Result<(), String>;

fn draw_plot<DB: DrawingBackend>(plot: &Plot, area: &DrawingArea<DB, Shift>) -> DrawResult {
    match plot {
        Plot::Xy(p) => xy::draw_xy(p, area),
        Plot::Bars(p) => bars::draw_bars(p, area),
        Plot::Spy(p) => spy::draw_spy(p, area),
        Plot::Heatmap(p) => heatmap::draw_heatmap(p, area),
    }
}

/// A qualitative palette (matplotlib "tab10").
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Colour of series `i`.
pub fn series_color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Compact tick label: `0`; magnitudes ≥ 10⁴ with an SI suffix (`20k`, `1.2M`, `3G`);
/// magnitudes < 10⁻³ as `2.5e-5`; otherwise integers as integers and others with up to 3
/// significant digits.
pub fn tick_label(v: f64) -> String {
    let a = v.abs();
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if v == 0.0 || !v.is_finite() {
        return if v == 0.0 { "0".into() } else { format!("{v}") };
    }
    if a >= 1e4 {
        let (div, suffix) = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
            .into_iter()
            .find(|(d, _)| a >= *d)
            .unwrap_or((1.0, ""));
        return format!("{}{suffix}", trim(format!("{:.2}", v / div)));
    }
    if a < 1e-3 {
        let e = a.log10().floor();
        return format!("{}e{}", trim(format!("{:.1}", v / 10f64.powf(e))), e);
    }
    let digits = (2 - a.log10().floor() as i32).max(0) as usize;
    trim(format!("{v:.digits$}"))
}

/// Data range of `vals` on an axis of the given scale, padded by 5 % (linear) or a factor
/// (log); `(0, 1)` if there is no usable value.
fn axis_range(vals: impl Iterator<Item = f64>, scale: Scale) -> (f64, f64) {
    let usable = vals.filter(|v| v.is_finite() && (scale == Scale::Linear || *v > 0.0));
    let (lo, hi) = usable.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo > hi {
        return if scale == Scale::Log {
            (1.0, 10.0)
        } else {
            (0.0, 1.0)
        };
    }
    match scale {
        Scale::Linear => {
            let pad = if hi > lo {
                0.05 * (hi - lo)
            } else {
                lo.abs().max(1.0) * 0.5
            };
            (lo - pad, hi + pad)
        }
        Scale::Log => {
            let f = if hi > lo { (hi / lo).powf(0.05) } else { 2.0 };
            decades(lo / f, hi * f)
        }
    }
}

/// Widens `[lo, hi]` (positive) to whole powers of ten, so a log axis always has labelled ticks.
fn decades(lo: f64, hi: f64) -> (f64, f64) {
    (
        10f64.powf(lo.log10().floor()),
        10f64.powf(hi.log10().ceil()),
    )
}

/// Rough pixel width of `s` at the given font size (DejaVu Sans averages ~0.6 em per glyph).
fn text_width(s: &str, size: u32) -> u32 {
    (s.chars().count() as f64 * 0.6 * f64::from(size)).ceil() as u32
}
