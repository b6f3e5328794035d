//! [`PanelGrid`]: line plots drawn as panels of one figure that share their axis ranges, their
//! axis labels and one [`LegendColumn`] to the right of the panels. Used where every curve
//! starts in the same corner (training curves from `Q = I`), so no in-chart legend position
//! would leave the curves visible.

use super::legend::{LEGEND_COLUMN_WIDTH, LegendColumn, draw_legend_column};
use super::{DrawResult, Figure, Scale, render, series_color, tick_label};
use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// One panel of a [`PanelGrid`]: a title and its lines, each `(i, points)` drawn in
/// [`series_color`]`(i)`, the colour of entry `i` of the grid's legend.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Caption above the panel.
    pub title: String,
    /// `(legend entry, points in drawing order)`.
    pub lines: Vec<(usize, Vec<(f64, f64)>)>,
}

/// Panels with shared axes (ranges over all panels), a shared legend column and an optional
/// dashed horizontal reference line drawn in every panel.
#[derive(Debug, Clone, PartialEq)]
pub struct PanelGrid {
    /// Caption above the whole figure.
    pub title: String,
    /// Horizontal axis label of every panel.
    pub x_label: String,
    /// Vertical axis label of every panel.
    pub y_label: String,
    /// Horizontal axis scale.
    pub x_scale: Scale,
    /// Vertical axis scale.
    pub y_scale: Scale,
    /// Panels per row.
    pub ncols: usize,
    /// The panels, row by row.
    pub panels: Vec<Panel>,
    /// The legend beside the panels (its reference label names [`PanelGrid::hline`]).
    pub legend: LegendColumn,
    /// Height of the dashed reference line, if any.
    pub hline: Option<f64>,
}

/// Height of the figure title strip in pixels.
const TITLE_H: u32 = 44;

/// Writes `grid` as `stem.png` and `stem.svg`, each panel `panel` pixels, the legend column
/// [`LEGEND_COLUMN_WIDTH`] wide. Returns the two paths.
///
/// # Errors
/// [`Error::Figure`] if there is no panel or `ncols == 0`; otherwise as [`save`](super::save).
pub fn save_panels(stem: &Path, grid: &PanelGrid, panel: (u32, u32)) -> Result<(PathBuf, PathBuf)> {
    if grid.panels.is_empty() || grid.ncols == 0 {
        return Err(Error::Figure(format!(
            "panel grid {:?} needs at least one panel and ncols > 0 (got {} panels, ncols = {})",
            grid.title,
            grid.panels.len(),
            grid.ncols
        )));
    }
    let nrows = grid.panels.len().div_ceil(grid.ncols) as u32;
    let size = (
        panel.0 * grid.ncols as u32 + LEGEND_COLUMN_WIDTH,
        panel.1 * nrows + TITLE_H,
    );
    render(stem, size, grid)
}

impl Figure for PanelGrid {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let s = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        let body = root.titled(&self.title, ("sans-serif", 22)).map_err(s)?;
        let width = body.dim_in_pixel().0;
        let (cells, legend) = body.split_horizontally(width.saturating_sub(LEGEND_COLUMN_WIDTH));
        let nrows = self.panels.len().div_ceil(self.ncols);
        let pts = || {
            self.panels
                .iter()
                .flat_map(|p| p.lines.iter().flat_map(|(_, v)| v.iter().copied()))
        };
        let (x_log, y_log) = (self.x_scale == Scale::Log, self.y_scale == Scale::Log);
        let xr = shared_axis(pts().map(|q| q.0), x_log);
        let yr = shared_axis(pts().map(|q| q.1).chain(self.hline), y_log);
        for (panel, cell) in self
            .panels
            .iter()
            .zip(cells.split_evenly((nrows, self.ncols)))
        {
            match (x_log, y_log) {
                (false, false) => draw_panel(&cell, self, panel, xr.0..xr.1, yr.0..yr.1)?,
                (false, true) => {
                    draw_panel(&cell, self, panel, xr.0..xr.1, (yr.0..yr.1).log_scale())?
                }
                (true, false) => {
                    draw_panel(&cell, self, panel, (xr.0..xr.1).log_scale(), yr.0..yr.1)?
                }
                (true, true) => draw_panel(
                    &cell,
                    self,
                    panel,
                    (xr.0..xr.1).log_scale(),
                    (yr.0..yr.1).log_scale(),
                )?,
            }
        }
        draw_legend_column(&legend, &self.legend)
    }
}

/// Axis range over the drawable values: whole decades widened by 0.15 decade on a log axis
/// (positive values only, so the end decades get labelled ticks), `[min(0, lo), hi + 5 %]` on a
/// linear one.
fn shared_axis(vals: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (lo, hi) = vals
        .filter(|v| v.is_finite() && (!log || *v > 0.0))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if lo > hi {
        return if log { (1.0, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        let (a, b) = (lo.log10().floor(), hi.log10().ceil());
        let b = if b > a { b } else { a + 1.0 };
        (10f64.powf(a - 0.15), 10f64.powf(b + 0.15))
    } else {
        let lo = lo.min(0.0);
        (lo, hi + 0.05 * (hi - lo).max(1e-12))
    }
}

fn draw_panel<DB, X, Y>(
    area: &DrawingArea<DB, Shift>,
    grid: &PanelGrid,
    panel: &Panel,
    x: X,
    y: Y,
) -> DrawResult
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let s = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 17))
        .margin(10)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)
        .map_err(s)?;
    let fmt = |v: &f64| tick_label(*v);
    chart
        .configure_mesh()
        .x_desc(grid.x_label.as_str())
        .y_desc(grid.y_label.as_str())
        .x_label_formatter(&fmt)
        .y_label_formatter(&fmt)
        .x_labels(6)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .draw()
        .map_err(s)?;
    let ok = |v: f64, scale: Scale| v.is_finite() && (scale == Scale::Linear || v > 0.0);
    for (i, pts) in &panel.lines {
        let c = series_color(*i);
        let pts: Vec<(f64, f64)> = pts
            .iter()
            .copied()
            .filter(|&(a, b)| ok(a, grid.x_scale) && ok(b, grid.y_scale))
            .collect();
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(2)))
            .map_err(s)?;
    }
    if let Some(v) = grid.hline {
        let (x0, x1) = {
            let r = chart.x_range();
            (r.start, r.end)
        };
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x0, v), (x1, v)],
                6,
                4,
                BLACK.stroke_width(2),
            ))
            .map_err(s)?;
    }
    Ok(())
}
