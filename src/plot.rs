//! Plot helpers on top of `plotters`: every figure is written twice, as `STEM.png` (bitmap) and
//! `STEM.svg` (vector), from one description.
//!
//! A figure is a [`Plot`] value:
//! - [`XyPlot`]: line, scatter or line+marker series on linear or logarithmic axes (each axis
//!   independently, so log-log and semi-log plots are the same type), with a legend;
//! - [`BarPlot`]: horizontal grouped bars (one group per category, one bar per series), so long
//!   method names stay readable; the value axis may be logarithmic;
//! - [`SpyPlot`]: the sparsity pattern of a boolean `rows × cols` matrix, down-sampled onto a grid
//!   of at most `max_cells × max_cells` cells whose grey level is the fraction of nonzeros it covers;
//! - [`Heatmap`]: a real `rows × cols` matrix in the viridis colour scale with a colour bar and,
//!   for small integer matrices (block ranks), the value printed in each cell.
//!
//! [`save`] writes one figure and [`save_grid`] writes several as panels of one figure.
//! [`save_layered`] writes layered "information flow" diagrams ([`LayeredPlot`]: columns of
//! nodes joined by edges, some highlighted), like the paper's Figures 1, 3 and 5.
//!
//! The legend of an [`XyPlot`] goes to the corner of the plotting area that covers the fewest
//! drawn points ([`legend_corner`]).
//!
//! Text is drawn with the vendored DejaVu Sans font, registered once as the `sans-serif` family
//! ([`register_font`]); no system font or font library is used at run time.

use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The DejaVu Sans font bytes embedded in the binary.
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Outcome of the one-time font registration (`Ok` or a message).
static FONT_STATE: OnceLock<std::result::Result<(), String>> = OnceLock::new();

/// Registers the embedded DejaVu Sans as plotters' `sans-serif` family, once per process.
///
/// Every helper in this module calls it; call it yourself only when drawing with plotters
/// directly.
///
/// # Errors
/// [`Error::InvalidArgument`] if the embedded font cannot be parsed (a corrupt build).
pub fn register_font() -> Result<()> {
    FONT_STATE
        .get_or_init(|| {
            plotters::style::register_font("sans-serif", FontStyle::Normal, FONT_BYTES)
                .map_err(|_| "the embedded DejaVuSans.ttf is not a valid font".to_string())
        })
        .clone()
        .map_err(Error::InvalidArgument)
}

/// Axis scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Linear axis.
    Linear,
    /// Base-10 logarithmic axis spanning whole decades (non-positive values are not drawn).
    Log,
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A polyline through the points, in the given order.
    Line,
    /// Markers only (a scatter plot).
    Points,
    /// A polyline with a marker at each point.
    LinePoints,
}

/// One named series of `(x, y)` points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// The points, in drawing order.
    pub points: Vec<(f64, f64)>,
    /// Line, markers, or both.
    pub style: Style,
}

impl Series {
    /// A series drawn as a polyline with markers.
    pub fn line(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
            style: Style::LinePoints,
        }
    }

    /// A series drawn as markers only (scatter).
    pub fn points(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
            style: Style::Points,
        }
    }
}

/// A line / scatter plot with a legend.
#[derive(Debug, Clone, PartialEq)]
pub struct XyPlot {
    /// Caption above the plot.
    pub title: String,
    /// Horizontal axis label.
    pub x_label: String,
    /// Vertical axis label.
    pub y_label: String,
    /// Horizontal axis scale.
    pub x_scale: Scale,
    /// Vertical axis scale.
    pub y_scale: Scale,
    /// The series, drawn in order with colours from a fixed palette.
    pub series: Vec<Series>,
}

impl XyPlot {
    /// A plot with the given labels, linear axes and no series yet.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            x_scale: Scale::Linear,
            y_scale: Scale::Linear,
            series: Vec::new(),
        }
    }

    /// Sets both axis scales.
    pub fn scales(mut self, x: Scale, y: Scale) -> Self {
        self.x_scale = x;
        self.y_scale = y;
        self
    }

    /// Appends a series.
    pub fn with(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }
}

/// Horizontal grouped bars: `values[s][c]` is the bar of series `s` in category `c`.
#[derive(Debug, Clone, PartialEq)]
pub struct BarPlot {
    /// Caption above the plot.
    pub title: String,
    /// Label of the value (horizontal) axis.
    pub value_label: String,
    /// Category names, drawn top to bottom.
    pub categories: Vec<String>,
    /// `(series name, one value per category)`.
    pub series: Vec<(String, Vec<f64>)>,
    /// Linear or logarithmic value axis.
    pub scale: Scale,
}

/// Sparsity pattern of a boolean matrix, already down-sampled to a grid of cells.
///
/// Cell `(i, j)` covers matrix rows `⌊i·rows/gr⌋ .. ⌊(i+1)·rows/gr⌋` and the analogous columns; it
/// stores how many of its entries are nonzero and how many entries it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct SpyPlot {
    /// Caption above the plot (the matrix size and density are appended).
    pub title: String,
    /// Matrix rows.
    pub rows: usize,
    /// Matrix columns.
    pub cols: usize,
    /// Grid rows `gr = min(rows, max_cells)`.
    pub grid_rows: usize,
    /// Grid columns `gc = min(cols, max_cells)`.
    pub grid_cols: usize,
    /// Nonzeros per cell, row-major `gr × gc`.
    pub nonzeros: Vec<u32>,
    /// Entries per cell, row-major `gr × gc`.
    pub entries: Vec<u32>,
}

/// Default grid resolution of [`SpyPlot`] (cells per side).
pub const SPY_MAX_CELLS: usize = 256;

impl SpyPlot {
    /// Down-samples the pattern `nonzero(i, j)` of a `rows × cols` matrix onto at most
    /// `max_cells × max_cells` cells (each entry is evaluated once).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `rows`, `cols` or `max_cells` is zero.
    pub fn from_fn(
        title: impl Into<String>,
        rows: usize,
        cols: usize,
        max_cells: usize,
        nonzero: impl Fn(usize, usize) -> bool,
    ) -> Result<Self> {
        if rows == 0 || cols == 0 || max_cells == 0 {
            return Err(Error::InvalidArgument(format!(
                "spy plot needs rows, cols, max_cells > 0, got {rows}, {cols}, {max_cells}"
            )));
        }
        let (gr, gc) = (rows.min(max_cells), cols.min(max_cells));
        let mut nonzeros = vec![0u32; gr * gc];
        let mut entries = vec![0u32; gr * gc];
        let col_cell: Vec<usize> = (0..cols).map(|j| j * gc / cols).collect();
        for i in 0..rows {
            let base = (i * gr / rows) * gc;
            for (j, &cj) in col_cell.iter().enumerate() {
                entries[base + cj] += 1;
                nonzeros[base + cj] += u32::from(nonzero(i, j));
            }
        }
        Ok(Self {
            title: title.into(),
            rows,
            cols,
            grid_rows: gr,
            grid_cols: gc,
            nonzeros,
            entries,
        })
    }

    /// Same as [`SpyPlot::from_fn`] for a row-major `rows × cols` slice of flags.
    ///
    /// # Errors
    /// [`Error::InvalidShape`] if `pattern.len() != rows·cols`; otherwise as [`SpyPlot::from_fn`].
    pub fn from_slice(
        title: impl Into<String>,
        rows: usize,
        cols: usize,
        max_cells: usize,
        pattern: &[bool],
    ) -> Result<Self> {
        if pattern.len() != rows * cols {
            return Err(Error::InvalidShape {
                shape: vec![rows, cols],
                expected: rows * cols,
                got: pattern.len(),
            });
        }
        Self::from_fn(title, rows, cols, max_cells, |i, j| pattern[i * cols + j])
    }

    /// Total number of nonzero entries.
    pub fn nnz(&self) -> u64 {
        self.nonzeros.iter().map(|&c| u64::from(c)).sum()
    }
}

/// A real matrix drawn in the viridis colour scale, with a colour bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    /// Caption above the plot.
    pub title: String,
    /// Label under the columns.
    pub x_label: String,
    /// Label beside the rows.
    pub y_label: String,
    /// Matrix rows.
    pub rows: usize,
    /// Matrix columns.
    pub cols: usize,
    /// Row-major values, `rows·cols` of them.
    pub values: Vec<f64>,
    /// Print each value in its cell (sensible for at most about 24 × 24 cells).
    pub annotate: bool,
}

impl Heatmap {
    /// A heatmap of a row-major `rows × cols` matrix; values are annotated when the matrix has at
    /// most 24 × 24 entries.
    ///
    /// # Errors
    /// [`Error::InvalidShape`] if `values.len() != rows·cols` or either size is zero.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
        rows: usize,
        cols: usize,
        values: Vec<f64>,
    ) -> Result<Self> {
        if values.len() != rows * cols || rows == 0 || cols == 0 {
            return Err(Error::InvalidShape {
                shape: vec![rows, cols],
                expected: rows * cols,
                got: values.len(),
            });
        }
        Ok(Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            rows,
            cols,
            values,
            annotate: rows <= 24 && cols <= 24,
        })
    }
}

/// One edge of a [`LayeredPlot`]: `(from, to, highlighted)`, linking node `from` of level `t`
/// to node `to` of level `t + 1`; highlighted edges are drawn red and on top.
pub type LayerEdge = (usize, usize, bool);

/// A layered "information flow" diagram (the paper's Figures 1, 3 and 5): `levels.len()`
/// columns of `n` nodes each, node `i` of every column drawn at row `i` (top to bottom), with
/// `edges[t]` linking column `t` to column `t + 1`.
#[derive(Debug, Clone, PartialEq)]
pub struct LayeredPlot {
    /// Caption above the diagram.
    pub title: String,
    /// Nodes per level.
    pub n: usize,
    /// Label under each level (column), left to right.
    pub levels: Vec<String>,
    /// `edges[t]`: the edges from level `t` to level `t + 1` (`levels.len() − 1` lists).
    pub edges: Vec<Vec<LayerEdge>>,
}

impl LayeredPlot {
    /// Checks the shape: at least one level, `edges.len() = levels.len() − 1`, every endpoint
    /// `< n`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the offending count or edge.
    pub fn validate(&self) -> Result<()> {
        if self.levels.is_empty() || self.edges.len() + 1 != self.levels.len() {
            return Err(Error::InvalidArgument(format!(
                "layered plot {:?}: {} levels need {} edge lists, got {}",
                self.title,
                self.levels.len(),
                self.levels.len().saturating_sub(1),
                self.edges.len()
            )));
        }
        for (t, level) in self.edges.iter().enumerate() {
            if let Some(e) = level.iter().find(|e| e.0 >= self.n || e.1 >= self.n) {
                return Err(Error::InvalidArgument(format!(
                    "layered plot {:?}: edge {:?} of level {t} leaves 0..{}",
                    self.title, e, self.n
                )));
            }
        }
        Ok(())
    }

    /// Marks as highlighted every edge on a path starting at node `src` of level 0 (the
    /// nodes reached after level `t` are the `to` ends of highlighted edges of `edges[t]`).
    pub fn highlight_from(&mut self, src: usize) {
        let mut reach = vec![false; self.n];
        if let Some(r) = reach.get_mut(src) {
            *r = true;
        }
        for level in self.edges.iter_mut() {
            let mut next = vec![false; self.n];
            for e in level.iter_mut() {
                if reach.get(e.0).copied().unwrap_or(false) {
                    e.2 = true;
                    if let Some(r) = next.get_mut(e.1) {
                        *r = true;
                    }
                }
            }
            reach = next;
        }
    }
}

/// Writes several [`LayeredPlot`]s side by side (`panel` pixels each) under a common `title`
/// as `stem.png` and `stem.svg`. Returns the two paths.
///
/// # Errors
/// [`Error::InvalidArgument`] if `panels` is empty or a panel fails [`LayeredPlot::validate`];
/// [`Error::Io`] as [`save`].
pub fn save_layered(
    stem: &Path,
    title: &str,
    panels: &[LayeredPlot],
    panel: (u32, u32),
) -> Result<(PathBuf, PathBuf)> {
    if panels.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "save_layered {title:?} needs at least one panel"
        )));
    }
    for p in panels {
        p.validate()?;
    }
    let size = (panel.0 * panels.len() as u32, panel.1 + 50);
    render(stem, size, &LayeredFigure { title, panels })
}

/// The panels of [`save_layered`].
struct LayeredFigure<'a> {
    title: &'a str,
    panels: &'a [LayeredPlot],
}

impl Figure for LayeredFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult {
        let body = area
            .titled(self.title, ("sans-serif", 24))
            .map_err(|e| e.to_string())?;
        for (p, cell) in self
            .panels
            .iter()
            .zip(body.split_evenly((1, self.panels.len())))
        {
            draw_layered(&cell, p)?;
        }
        Ok(())
    }
}

fn draw_layered<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &LayeredPlot) -> DrawResult {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let last = (p.levels.len() - 1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(30)
        .build_cartesian_2d(-0.35f64..last + 0.35, (p.n as f64 - 0.4)..-0.6f64)
        .map_err(e)?;
    let grey = RGBColor(160, 160, 160);
    let red = RGBColor(214, 39, 40);
    for (t, level) in p.edges.iter().enumerate() {
        let x = t as f64;
        // Plain edges first so highlighted paths are drawn on top.
        for hl in [false, true] {
            let style = if hl {
                red.stroke_width(2)
            } else {
                grey.stroke_width(1)
            };
            chart
                .draw_series(level.iter().filter(|q| q.2 == hl).map(|&(a, b, _)| {
                    PathElement::new(vec![(x, a as f64), (x + 1.0, b as f64)], style)
                }))
                .map_err(e)?;
        }
    }
    let radius = if p.n <= 16 { 5 } else { 3 };
    for (t, label) in p.levels.iter().enumerate() {
        let x = t as f64;
        chart
            .draw_series((0..p.n).map(|i| Circle::new((x, i as f64), radius, BLACK.filled())))
            .map_err(e)?;
        chart
            .draw_series(std::iter::once(Text::new(
                label.clone(),
                (x, p.n as f64 - 0.4),
                TextStyle::from(("sans-serif", 14).into_font())
                    .pos(Pos::new(HPos::Center, VPos::Top)),
            )))
            .map_err(e)?;
    }
    if p.n <= 16 {
        let style = TextStyle::from(("sans-serif", 12).into_font())
            .pos(Pos::new(HPos::Right, VPos::Center));
        chart
            .draw_series(
                (0..p.n).map(|i| Text::new(i.to_string(), (-0.12, i as f64), style.clone())),
            )
            .map_err(e)?;
    }
    Ok(())
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
/// [`Error::Io`] naming the file that could not be written (or the drawing error).
pub fn save(stem: &Path, plot: &Plot) -> Result<(PathBuf, PathBuf)> {
    render(stem, plot.default_size(), plot)
}

/// Writes several plots as panels of one figure (`ncols` panels per row, `panel` pixels each),
/// under a common `title`. Returns `(stem.png, stem.svg)`.
///
/// # Errors
/// [`Error::InvalidArgument`] if `plots` is empty or `ncols == 0`; [`Error::Io`] as [`save`].
pub fn save_grid(
    stem: &Path,
    title: &str,
    plots: &[Plot],
    ncols: usize,
    panel: (u32, u32),
) -> Result<(PathBuf, PathBuf)> {
    if plots.is_empty() || ncols == 0 {
        return Err(Error::InvalidArgument(format!(
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
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e.to_string()))?;
    }
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| io_err(&png, e.to_string()))?;
        fig.draw(&root).map_err(|e| io_err(&png, e))?;
        root.present().map_err(|e| io_err(&png, e.to_string()))?;
    }
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| io_err(&svg, e.to_string()))?;
        fig.draw(&root).map_err(|e| io_err(&svg, e))?;
        root.present().map_err(|e| io_err(&svg, e.to_string()))?;
    }
    Ok((png, svg))
}

fn io_err(path: &Path, msg: String) -> Error {
    Error::format(path, msg)
}

/// String error of a drawing call.
type DrawResult = std::result::Result<(), String>;

fn draw_plot<DB: DrawingBackend>(plot: &Plot, area: &DrawingArea<DB, Shift>) -> DrawResult {
    match plot {
        Plot::Xy(p) => draw_xy(p, area),
        Plot::Bars(p) => draw_bars(p, area),
        Plot::Spy(p) => draw_spy(p, area),
        Plot::Heatmap(p) => draw_heatmap(p, area),
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

fn draw_xy<DB: DrawingBackend>(p: &XyPlot, area: &DrawingArea<DB, Shift>) -> DrawResult {
    let pts = || p.series.iter().flat_map(|s| s.points.iter().copied());
    let (x0, x1) = axis_range(pts().map(|q| q.0), p.x_scale);
    let (y0, y1) = axis_range(pts().map(|q| q.1), p.y_scale);
    match (p.x_scale, p.y_scale) {
        (Scale::Linear, Scale::Linear) => xy_in(p, area, x0..x1, y0..y1),
        (Scale::Log, Scale::Linear) => xy_in(p, area, (x0..x1).log_scale(), y0..y1),
        (Scale::Linear, Scale::Log) => xy_in(p, area, x0..x1, (y0..y1).log_scale()),
        (Scale::Log, Scale::Log) => xy_in(p, area, (x0..x1).log_scale(), (y0..y1).log_scale()),
    }
}

/// Keeps points that can be drawn on the axes (finite, positive on log axes).
fn drawable(p: &XyPlot, pts: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let ok = |v: f64, s: Scale| v.is_finite() && (s == Scale::Linear || v > 0.0);
    pts.iter()
        .copied()
        .filter(|&(x, y)| ok(x, p.x_scale) && ok(y, p.y_scale))
        .collect()
}

fn xy_in<DB, X, Y>(p: &XyPlot, area: &DrawingArea<DB, Shift>, x: X, y: Y) -> DrawResult
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(52)
        .y_label_area_size(78)
        .build_cartesian_2d(x, y)
        .map_err(e)?;
    let fmt = |v: &f64| tick_label(*v);
    chart
        .configure_mesh()
        .x_desc(p.x_label.as_str())
        .y_desc(p.y_label.as_str())
        .x_label_formatter(&fmt)
        .y_label_formatter(&fmt)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 17))
        .draw()
        .map_err(e)?;
    for (i, s) in p.series.iter().enumerate() {
        let c = series_color(i);
        let pts = drawable(p, &s.points);
        let line = matches!(s.style, Style::Line | Style::LinePoints);
        let marks = matches!(s.style, Style::Points | Style::LinePoints);
        if line {
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                .map_err(e)?;
        }
        if marks {
            chart
                .draw_series(pts.iter().map(|&q| Circle::new(q, 4, c.filled())))
                .map_err(e)?;
        }
        // An invisible element carries the legend entry.
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
            .map_err(e)?
            .label(&s.name)
            .legend(move |(lx, ly)| {
                EmptyElement::at((lx, ly))
                    + PathElement::new(
                        vec![(0, 0), (18, 0)],
                        c.stroke_width(if line { 2 } else { 0 }),
                    )
                    + Circle::new((9, 0), if marks { 4 } else { 0 }, c.filled())
            });
    }
    if !p.series.is_empty() {
        let (xr, yr) = chart.plotting_area().get_pixel_range();
        let px: Vec<Vec<(i32, i32)>> = p
            .series
            .iter()
            .map(|s| {
                drawable(p, &s.points)
                    .iter()
                    .map(|q| chart.backend_coord(q))
                    .collect()
            })
            .collect();
        let covered = densify(&px, &p.series);
        let names: Vec<&str> = p.series.iter().map(|s| s.name.as_str()).collect();
        let corner = legend_corner(
            &covered,
            (xr.start, yr.start, xr.end, yr.end),
            legend_box_size(&names),
        );
        chart
            .configure_series_labels()
            .position(corner.position())
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.5))
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(e)?;
    }
    Ok(())
}

/// A corner of the plotting area where an [`XyPlot`] legend can sit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegendCorner {
    /// Top left (the default on ties).
    UpperLeft,
    /// Top right.
    UpperRight,
    /// Bottom left.
    LowerLeft,
    /// Bottom right.
    LowerRight,
}

impl LegendCorner {
    /// All corners in order of preference (ties go to the earlier one).
    pub const ALL: [LegendCorner; 4] = [
        LegendCorner::UpperLeft,
        LegendCorner::UpperRight,
        LegendCorner::LowerLeft,
        LegendCorner::LowerRight,
    ];

    fn position(self) -> SeriesLabelPosition {
        match self {
            LegendCorner::UpperLeft => SeriesLabelPosition::UpperLeft,
            LegendCorner::UpperRight => SeriesLabelPosition::UpperRight,
            LegendCorner::LowerLeft => SeriesLabelPosition::LowerLeft,
            LegendCorner::LowerRight => SeriesLabelPosition::LowerRight,
        }
    }

    /// The legend box `(x0, y0, x1, y1)` (pixels, y down) of size `(w, h)` in this corner of
    /// `area = (x0, y0, x1, y1)`, inset by plotters' 5 px.
    pub fn rect(self, area: (i32, i32, i32, i32), (w, h): (i32, i32)) -> (i32, i32, i32, i32) {
        const INSET: i32 = 5;
        let left = matches!(self, LegendCorner::UpperLeft | LegendCorner::LowerLeft);
        let upper = matches!(self, LegendCorner::UpperLeft | LegendCorner::UpperRight);
        let x0 = if left {
            area.0 + INSET
        } else {
            area.2 - INSET - w
        };
        let y0 = if upper {
            area.1 + INSET
        } else {
            area.3 - INSET - h
        };
        (x0, y0, x0 + w, y0 + h)
    }
}

/// Estimated legend box `(width, height)` in pixels for the given series names:
/// `width = 9·(longest name in chars) + 40`, `height = 20·(number of series) + 10`.
pub fn legend_box_size(names: &[&str]) -> (i32, i32) {
    let longest = names.iter().map(|s| s.chars().count()).max().unwrap_or(0) as i32;
    (9 * longest + 40, 20 * names.len() as i32 + 10)
}

/// The corner of `area = (x0, y0, x1, y1)` (pixels, y down) whose legend box of size `size`
/// (see [`LegendCorner::rect`]) covers the fewest of `points` (pixels); ties go to the first of
/// [`LegendCorner::ALL`], so an empty plot keeps the legend upper-left.
pub fn legend_corner(
    points: &[(i32, i32)],
    area: (i32, i32, i32, i32),
    size: (i32, i32),
) -> LegendCorner {
    // Markers have a 4 px radius: a point this close to the box is covered too.
    const PAD: i32 = 4;
    let covered = |c: LegendCorner| {
        let (x0, y0, x1, y1) = c.rect(area, size);
        points
            .iter()
            .filter(|&&(x, y)| x >= x0 - PAD && x <= x1 + PAD && y >= y0 - PAD && y <= y1 + PAD)
            .count()
    };
    let mut best = LegendCorner::UpperLeft;
    let mut fewest = covered(best);
    for c in &LegendCorner::ALL[1..] {
        let k = covered(*c);
        if k < fewest {
            best = *c;
            fewest = k;
        }
    }
    best
}

/// The pixels a legend should avoid: every point, plus points every ~6 px along the segments
/// of series drawn with a line.
fn densify(px: &[Vec<(i32, i32)>], series: &[Series]) -> Vec<(i32, i32)> {
    let mut out = Vec::new();
    for (pts, s) in px.iter().zip(series) {
        out.extend_from_slice(pts);
        if s.style == Style::Points {
            continue;
        }
        for w in pts.windows(2) {
            let (dx, dy) = (w[1].0 - w[0].0, w[1].1 - w[0].1);
            let steps = (dx.abs().max(dy.abs()) / 6).min(2000);
            for k in 1..steps {
                out.push((w[0].0 + dx * k / steps, w[0].1 + dy * k / steps));
            }
        }
    }
    out
}

/// Rough pixel width of `s` at the given font size (DejaVu Sans averages ~0.6 em per glyph).
fn text_width(s: &str, size: u32) -> u32 {
    (s.chars().count() as f64 * 0.6 * f64::from(size)).ceil() as u32
}

fn draw_bars<DB: DrawingBackend>(p: &BarPlot, area: &DrawingArea<DB, Shift>) -> DrawResult {
    let vals = p.series.iter().flat_map(|(_, v)| v.iter().copied());
    match p.scale {
        Scale::Linear => {
            let (lo, hi) = vals
                .filter(|v| v.is_finite())
                .fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
            let hi = if hi > lo { hi } else { lo + 1.0 };
            bars_in(p, area, lo..hi + 0.05 * (hi - lo), 0.0)
        }
        Scale::Log => {
            let (lo, hi) = axis_range(vals, Scale::Log);
            bars_in(p, area, (lo..hi).log_scale(), lo)
        }
    }
}

fn bars_in<DB, X>(p: &BarPlot, area: &DrawingArea<DB, Shift>, x: X, base: f64) -> DrawResult
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    // With several series, a legend row under the chart (never over the bars).
    let (area, legend) = if p.series.len() > 1 {
        let h = area.dim_in_pixel().1;
        let (a, l) = area.split_vertically(h.saturating_sub(34));
        (a, Some(l))
    } else {
        (area.clone(), None)
    };
    let area = &area;
    let n = p.categories.len();
    let label_w = p
        .categories
        .iter()
        .map(|c| text_width(c, 14))
        .max()
        .unwrap_or(20)
        + 16;
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(52)
        .y_label_area_size(label_w)
        .build_cartesian_2d(x, -0.5f64..(n as f64 - 0.5))
        .map_err(e)?;
    let fmt = |v: &f64| tick_label(*v);
    // Category i is drawn at y = n-1-i so the first category is on top.
    let cat = |v: &f64| {
        let k = v.round();
        if (v - k).abs() < 1e-6 && k >= 0.0 && (k as usize) < n {
            p.categories[n - 1 - k as usize].clone()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(p.value_label.as_str())
        .x_label_formatter(&fmt)
        .y_label_formatter(&cat)
        .y_labels(n + 1)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 17))
        .draw()
        .map_err(e)?;
    let ns = p.series.len().max(1) as f64;
    let h = 0.8 / ns;
    for (s, (name, vals)) in p.series.iter().enumerate() {
        let c = series_color(s);
        let bars = vals
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite() && (p.scale == Scale::Linear || **v > base))
            .map(|(i, &v)| {
                let yc = (n - 1 - i) as f64 + 0.4 - h * (s as f64 + 0.5);
                Rectangle::new([(base, yc - 0.45 * h), (v, yc + 0.45 * h)], c.filled())
            });
        chart
            .draw_series(bars)
            .map_err(e)?
            .label(name)
            .legend(move |(lx, ly)| Rectangle::new([(lx, ly - 6), (lx + 16, ly + 6)], c.filled()));
    }
    if let Some(l) = legend {
        let names: Vec<&str> = p.series.iter().map(|(s, _)| s.as_str()).collect();
        legend_row(&l, &names)?;
    }
    Ok(())
}

/// Draws a centred row of colour swatches and series names (colours of [`series_color`]).
fn legend_row<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, names: &[&str]) -> DrawResult {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    const SIZE: u32 = 15;
    let widths: Vec<i32> = names
        .iter()
        .map(|s| (text_width(s, SIZE) + 40) as i32)
        .collect();
    let total: i32 = widths.iter().sum();
    let (w, h) = area.dim_in_pixel();
    let mut x = ((w as i32 - total) / 2).max(4);
    let y = h as i32 / 2;
    for (i, (name, wi)) in names.iter().zip(widths).enumerate() {
        let c = series_color(i);
        area.draw(&Rectangle::new([(x, y - 7), (x + 16, y + 7)], c.filled()))
            .map_err(e)?;
        let style = ("sans-serif", SIZE).into_font().color(&BLACK).pos(
            plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Left,
                plotters::style::text_anchor::VPos::Center,
            ),
        );
        area.draw(&Text::new(name.to_string(), (x + 22, y), style))
            .map_err(e)?;
        x += wi;
    }
    Ok(())
}

/// Grey level of a spy cell holding `nz` nonzeros out of `total` entries: white when empty,
/// otherwise from light grey (one nonzero) to black (all nonzero), in 16 steps.
fn spy_shade(nz: u32, total: u32) -> Option<RGBColor> {
    if nz == 0 || total == 0 {
        return None;
    }
    let step = (16 * nz).div_ceil(total).min(16); // 1..=16
    let g = (200 - (200 * step) / 16) as u8;
    Some(RGBColor(g, g, g))
}

fn draw_spy<DB: DrawingBackend>(p: &SpyPlot, area: &DrawingArea<DB, Shift>) -> DrawResult {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let nnz = p.nnz();
    let density = 100.0 * nnz as f64 / (p.rows as f64 * p.cols as f64);
    let caption = format!(
        "{} ({}×{}, nnz {}, {:.3}%)",
        p.title, p.rows, p.cols, nnz, density
    );
    let (r, c) = (p.rows as f64, p.cols as f64);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(14)
        .x_label_area_size(34)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..c, r..0f64)
        .map_err(e)?;
    let fmt = |v: &f64| tick_label(*v);
    chart
        .configure_mesh()
        .disable_mesh()
        .x_label_formatter(&fmt)
        .y_label_formatter(&fmt)
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(e)?;
    // Merge horizontal runs of equal shade into one rectangle (keeps the SVG small).
    let (gr, gc) = (p.grid_rows, p.grid_cols);
    let edge = |k: usize, g: usize, n: f64| (k * (n as usize) / g) as f64;
    let mut rects = Vec::new();
    for i in 0..gr {
        let mut j = 0;
        while j < gc {
            let shade = spy_shade(p.nonzeros[i * gc + j], p.entries[i * gc + j]);
            let mut k = j + 1;
            while k < gc && spy_shade(p.nonzeros[i * gc + k], p.entries[i * gc + k]) == shade {
                k += 1;
            }
            if let Some(col) = shade {
                let tl = (edge(j, gc, c), edge(i, gr, r));
                let br = (edge(k, gc, c), edge(i + 1, gr, r));
                rects.push(Rectangle::new([tl, br], col.filled()));
            }
            j = k;
        }
    }
    chart.draw_series(rects).map_err(e)?;
    Ok(())
}

/// Viridis colour of `t ∈ [0, 1]` (linear interpolation between 8 control colours).
pub fn viridis(t: f64) -> RGBColor {
    const V: [(f64, f64, f64); 8] = [
        (68.0, 1.0, 84.0),
        (70.0, 50.0, 127.0),
        (54.0, 92.0, 141.0),
        (39.0, 127.0, 143.0),
        (31.0, 162.0, 136.0),
        (74.0, 194.0, 110.0),
        (160.0, 219.0, 57.0),
        (254.0, 232.0, 37.0),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    } * 7.0;
    let k = (t.floor() as usize).min(6);
    let f = t - k as f64;
    let mix = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    let (a, b) = (V[k], V[k + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Cell annotation: integers without decimals, otherwise 2 decimals.
fn cell_text(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.2}")
    }
}

fn draw_heatmap<DB: DrawingBackend>(p: &Heatmap, area: &DrawingArea<DB, Shift>) -> DrawResult {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let finite = p.values.iter().copied().filter(|v| v.is_finite());
    let lo = finite.clone().fold(f64::INFINITY, f64::min);
    let hi = finite.fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo > hi {
        (0.0, 1.0)
    } else if lo == hi {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    };
    let norm = |v: f64| (v - lo) / (hi - lo);
    let w = area.dim_in_pixel().0;
    let (main, bar) = area.split_horizontally(w.saturating_sub(110));
    let (r, c) = (p.rows as f64, p.cols as f64);
    let mut chart = ChartBuilder::on(&main)
        .caption(&p.title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..c, r..0f64)
        .map_err(e)?;
    let idx = |v: &f64| {
        let k = v - 0.5;
        if (k - k.round()).abs() < 1e-6 && k >= -1e-6 {
            format!("{}", k.round() as i64)
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(p.x_label.as_str())
        .y_desc(p.y_label.as_str())
        .x_label_formatter(&idx)
        .y_label_formatter(&idx)
        .x_labels((2 * p.cols + 1).min(41))
        .y_labels((2 * p.rows + 1).min(41))
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(e)?;
    let cells = (0..p.rows).flat_map(|i| (0..p.cols).map(move |j| (i, j)));
    chart
        .draw_series(cells.clone().map(|(i, j)| {
            let col = viridis(norm(p.values[i * p.cols + j]));
            Rectangle::new(
                [(j as f64, i as f64), (j as f64 + 1.0, i as f64 + 1.0)],
                col.filled(),
            )
        }))
        .map_err(e)?;
    if p.annotate {
        let cell_px = (w.saturating_sub(200) as usize / p.cols.max(p.rows)).max(1);
        let font = ("sans-serif", (cell_px as f64 * 0.35).clamp(10.0, 24.0)).into_font();
        chart
            .draw_series(cells.map(|(i, j)| {
                let v = p.values[i * p.cols + j];
                let ink = if norm(v) > 0.6 { BLACK } else { WHITE };
                let style = font
                    .clone()
                    .color(&ink)
                    .pos(plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Center,
                    ));
                Text::new(cell_text(v), (j as f64 + 0.5, i as f64 + 0.5), style)
            }))
            .map_err(e)?;
    }
    draw_colorbar(&bar, lo, hi)
}

fn draw_colorbar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    lo: f64,
    hi: f64,
) -> DrawResult {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let mut chart = ChartBuilder::on(area)
        .margin_top(50)
        .margin_bottom(62)
        .margin_right(8)
        .y_label_area_size(0)
        .right_y_label_area_size(58)
        .build_cartesian_2d(0f64..1f64, lo..hi)
        .map_err(e)?;
    let fmt = |v: &f64| tick_label(*v);
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_label_formatter(&fmt)
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(e)?;
    const STEPS: usize = 64;
    chart
        .draw_series((0..STEPS).map(|k| {
            let a = lo + (hi - lo) * k as f64 / STEPS as f64;
            let b = lo + (hi - lo) * (k + 1) as f64 / STEPS as f64;
            let col = viridis((k as f64 + 0.5) / STEPS as f64);
            Rectangle::new([(0.0, a), (1.0, b)], col.filled())
        }))
        .map_err(e)?;
    Ok(())
}
