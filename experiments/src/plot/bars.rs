//! [`BarPlot`]: horizontal grouped bars, one group per category, with a legend row under the
//! bars when there are several series.

use super::legend::legend_row;
use super::text_width;
use super::{DrawResult, Scale, axis_range, series_color, tick_label};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

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

pub(super) fn draw_bars<DB: DrawingBackend>(
    p: &BarPlot,
    area: &DrawingArea<DB, Shift>,
) -> DrawResult {
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
