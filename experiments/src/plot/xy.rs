//! [`XyPlot`]: line, scatter and line+marker series on linear or log axes, with the legend in the
//! corner that covers the fewest drawn points.

use super::legend::{densify, legend_box_size, legend_corner};
use super::{DrawResult, Scale, axis_range, series_color, tick_label};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

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

pub(super) fn draw_xy<DB: DrawingBackend>(p: &XyPlot, area: &DrawingArea<DB, Shift>) -> DrawResult {
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
