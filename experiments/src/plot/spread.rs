//! [`SpreadPanel`]: means with a min–max whisker per point (the spread over seeds), drawn as
//! markers, optionally joined per series, with an optional frontier line and dashed reference
//! lines; several panels share one legend column to the right ([`save_spread`]), so no legend
//! covers a point.

use super::{DrawResult, Figure, Scale, axis_range, render, series_color, tick_label};
use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};

/// One point: the mean `y` at `x` and the spread `[lo, hi]` drawn as a vertical whisker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpreadPoint {
    /// Position.
    pub x: f64,
    /// Mean.
    pub y: f64,
    /// Lower end of the whisker (e.g. the smallest value over seeds).
    pub lo: f64,
    /// Upper end of the whisker.
    pub hi: f64,
}

/// A series of [`SpreadPoint`]s in colour [`series_color`]`(color)`.
#[derive(Debug, Clone, PartialEq)]
pub struct SpreadSeries {
    /// Palette index of the colour (also the legend entry it belongs to).
    pub color: usize,
    /// The points, in drawing order.
    pub points: Vec<SpreadPoint>,
    /// Join the points by a line (in the given order).
    pub line: bool,
}

/// A dashed black reference line with a label written next to it (horizontal lines: above
/// their left end; vertical lines: left of their top, stacked when there are several).
#[derive(Debug, Clone, PartialEq)]
pub struct RefLine {
    /// Position on the axis it crosses (`x` for a vertical line, `y` for a horizontal one).
    pub at: f64,
    /// Text written beside the line.
    pub label: String,
}

/// One panel: axes, series, an optional frontier (a thin black line) and reference lines.
#[derive(Debug, Clone, PartialEq)]
pub struct SpreadPanel {
    /// Caption above the panel.
    pub title: String,
    /// Horizontal axis label.
    pub x_label: String,
    /// Vertical axis label.
    pub y_label: String,
    /// Horizontal axis scale.
    pub x_scale: Scale,
    /// Vertical axis scale.
    pub y_scale: Scale,
    /// The series.
    pub series: Vec<SpreadSeries>,
    /// A frontier through the best points (drawn as a thin black line; empty for none).
    pub frontier: Vec<(f64, f64)>,
    /// Vertical dashed lines.
    pub vlines: Vec<RefLine>,
    /// Horizontal dashed lines.
    pub hlines: Vec<RefLine>,
}

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryStyle {
    /// A marker with a whisker in [`series_color`]`(i)`.
    Marker(usize),
    /// A thin black line (the frontier).
    Frontier,
    /// A dashed black line (the reference lines).
    Dashed,
}

/// The figure: panels in a grid and one legend column.
#[derive(Debug, Clone, PartialEq)]
pub struct SpreadFigure {
    /// Caption above the whole figure.
    pub title: String,
    /// Panels per row.
    pub ncols: usize,
    /// The panels, row by row.
    pub panels: Vec<SpreadPanel>,
    /// Heading of the legend column.
    pub legend_heading: String,
    /// Legend entries `(name, style)`, top to bottom.
    pub legend: Vec<(String, EntryStyle)>,
}

/// Width of the legend column in pixels.
const LEGEND_W: u32 = 230;
/// Height of the title strip in pixels.
const TITLE_H: u32 = 44;

/// Writes `fig` as `stem.png` and `stem.svg`, each panel `panel` pixels. Returns both paths.
///
/// # Errors
/// [`Error::Figure`] if there is no panel or `ncols == 0`; otherwise as [`save`](super::save).
pub fn save_spread(
    stem: &Path,
    fig: &SpreadFigure,
    panel: (u32, u32),
) -> Result<(PathBuf, PathBuf)> {
    if fig.panels.is_empty() || fig.ncols == 0 {
        return Err(Error::Figure(format!(
            "spread figure {:?} needs at least one panel and ncols > 0 (got {} panels, ncols = {})",
            fig.title,
            fig.panels.len(),
            fig.ncols
        )));
    }
    let ncols = fig.ncols.min(fig.panels.len());
    let nrows = fig.panels.len().div_ceil(ncols) as u32;
    let size = (panel.0 * ncols as u32 + LEGEND_W, panel.1 * nrows + TITLE_H);
    render(stem, size, fig)
}

impl Figure for SpreadFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let s = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        let body = root.titled(&self.title, ("sans-serif", 22)).map_err(s)?;
        let width = body.dim_in_pixel().0;
        let (cells, legend) = body.split_horizontally(width.saturating_sub(LEGEND_W));
        let ncols = self.ncols.min(self.panels.len());
        let nrows = self.panels.len().div_ceil(ncols);
        for (p, cell) in self.panels.iter().zip(cells.split_evenly((nrows, ncols))) {
            draw_panel(p, &cell)?;
        }
        draw_legend(&legend, &self.legend_heading, &self.legend)
    }
}

fn draw_panel<DB: DrawingBackend>(p: &SpreadPanel, area: &DrawingArea<DB, Shift>) -> DrawResult {
    let xs = p
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|q| q.x))
        .chain(p.frontier.iter().map(|q| q.0))
        .chain(p.vlines.iter().map(|l| l.at));
    let ys = p
        .series
        .iter()
        .flat_map(|s| s.points.iter().flat_map(|q| [q.lo, q.hi, q.y]))
        .chain(p.frontier.iter().map(|q| q.1))
        .chain(p.hlines.iter().map(|l| l.at));
    let (x0, x1) = axis_range(xs, p.x_scale);
    let (y0, y1) = axis_range(ys, p.y_scale);
    match (p.x_scale, p.y_scale) {
        (Scale::Linear, Scale::Linear) => panel_in(p, area, x0..x1, y0..y1),
        (Scale::Log, Scale::Linear) => panel_in(p, area, (x0..x1).log_scale(), y0..y1),
        (Scale::Linear, Scale::Log) => panel_in(p, area, x0..x1, (y0..y1).log_scale()),
        (Scale::Log, Scale::Log) => panel_in(p, area, (x0..x1).log_scale(), (y0..y1).log_scale()),
    }
}

fn panel_in<DB, X, Y>(p: &SpreadPanel, area: &DrawingArea<DB, Shift>, x: X, y: Y) -> DrawResult
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(46)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)
        .map_err(e)?;
    let fmt = |v: &f64| tick_label(*v);
    chart
        .configure_mesh()
        .x_desc(p.x_label.as_str())
        .y_desc(p.y_label.as_str())
        .x_label_formatter(&fmt)
        .y_label_formatter(&fmt)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 15))
        .draw()
        .map_err(e)?;
    let ok = |v: f64, s: Scale| v.is_finite() && (s == Scale::Linear || v > 0.0);
    let (xr, yr) = (chart.x_range(), chart.y_range());
    let label_font = ("sans-serif", 13).into_font().color(&BLACK);
    for l in p.hlines.iter().filter(|l| ok(l.at, p.y_scale)) {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(xr.start, l.at), (xr.end, l.at)],
                6,
                4,
                BLACK.stroke_width(1),
            ))
            .map_err(e)?;
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((xr.start, l.at))
                    + Text::new(l.label.clone(), (6, -16), label_font.clone()),
            ))
            .map_err(e)?;
    }
    let right = label_font.pos(Pos::new(HPos::Right, VPos::Top));
    for (k, l) in p.vlines.iter().filter(|l| ok(l.at, p.x_scale)).enumerate() {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(l.at, yr.start), (l.at, yr.end)],
                6,
                4,
                BLACK.stroke_width(1),
            ))
            .map_err(e)?;
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((l.at, yr.end))
                    + Text::new(l.label.clone(), (-4, 4 + 16 * k as i32), right.clone()),
            ))
            .map_err(e)?;
    }
    let frontier: Vec<(f64, f64)> = p
        .frontier
        .iter()
        .copied()
        .filter(|&(a, b)| ok(a, p.x_scale) && ok(b, p.y_scale))
        .collect();
    if frontier.len() > 1 {
        chart
            .draw_series(LineSeries::new(frontier, BLACK.stroke_width(1)))
            .map_err(e)?;
    }
    for s in &p.series {
        let c = series_color(s.color);
        let pts: Vec<SpreadPoint> = s
            .points
            .iter()
            .copied()
            .filter(|q| ok(q.x, p.x_scale) && ok(q.y, p.y_scale))
            .collect();
        for q in &pts {
            if ok(q.lo, p.y_scale) && ok(q.hi, p.y_scale) && q.hi > q.lo {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(q.x, q.lo), (q.x, q.hi)],
                        c.stroke_width(2),
                    )))
                    .map_err(e)?;
            }
        }
        if s.line && pts.len() > 1 {
            chart
                .draw_series(LineSeries::new(
                    pts.iter().map(|q| (q.x, q.y)),
                    c.mix(0.6).stroke_width(1),
                ))
                .map_err(e)?;
        }
        chart
            .draw_series(pts.iter().map(|q| Circle::new((q.x, q.y), 4, c.filled())))
            .map_err(e)?;
    }
    Ok(())
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    heading: &str,
    entries: &[(String, EntryStyle)],
) -> DrawResult {
    let s = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let font = ("sans-serif", 15).into_font().color(&BLACK);
    let y0 = 44;
    area.draw(&Text::new(heading, (8, y0 - 28), font.clone()))
        .map_err(s)?;
    for (i, (name, style)) in entries.iter().enumerate() {
        let y = y0 + 24 * i as i32 + 8;
        match *style {
            EntryStyle::Marker(c) => {
                let c = series_color(c);
                area.draw(&PathElement::new(
                    vec![(21, y - 8), (21, y + 8)],
                    c.stroke_width(2),
                ))
                .map_err(s)?;
                area.draw(&Circle::new((21, y), 4, c.filled())).map_err(s)?;
            }
            EntryStyle::Frontier => {
                area.draw(&PathElement::new(
                    vec![(8, y), (34, y)],
                    BLACK.stroke_width(1),
                ))
                .map_err(s)?;
            }
            EntryStyle::Dashed => {
                for x in [8, 22] {
                    area.draw(&PathElement::new(
                        vec![(x, y), (x + 8, y)],
                        BLACK.stroke_width(1),
                    ))
                    .map_err(s)?;
                }
            }
        }
        area.draw(&Text::new(name.as_str(), (42, y - 8), font.clone()))
            .map_err(s)?;
    }
    Ok(())
}
