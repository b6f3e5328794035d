//! [`Heatmap`]: a real matrix in the viridis colour scale with a colour bar.

use super::{DrawResult, tick_label};
use crate::error::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

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
    /// Names of the columns under the cells (empty: the column indices).
    pub x_ticks: Vec<String>,
    /// Names of the rows beside the cells (empty: the row indices).
    pub y_ticks: Vec<String>,
    /// Decimals of the cell annotations (`None`: integers bare, others with 2 decimals).
    pub decimals: Option<usize>,
}

impl Heatmap {
    /// A heatmap of a row-major `rows × cols` matrix; values are annotated when the matrix has at
    /// most 24 × 24 entries.
    ///
    /// # Errors
    /// [`gslab::Error::InvalidShape`] if `values.len() != rows·cols` or either size is zero.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
        rows: usize,
        cols: usize,
        values: Vec<f64>,
    ) -> Result<Self> {
        if values.len() != rows * cols || rows == 0 || cols == 0 {
            return Err(gslab::Error::InvalidShape {
                shape: vec![rows, cols],
                expected: rows * cols,
                got: values.len(),
            }
            .into());
        }
        Ok(Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            rows,
            cols,
            values,
            annotate: rows <= 24 && cols <= 24,
            x_ticks: Vec::new(),
            y_ticks: Vec::new(),
            decimals: None,
        })
    }

    /// The same heatmap with named columns and rows (categories instead of indices).
    ///
    /// # Errors
    /// [`gslab::Error::InvalidArgument`] if there is not one name per column and one per row.
    pub fn with_ticks(mut self, x_ticks: Vec<String>, y_ticks: Vec<String>) -> Result<Self> {
        if x_ticks.len() != self.cols || y_ticks.len() != self.rows {
            return Err(gslab::Error::InvalidArgument(format!(
                "heatmap '{}': {} column and {} row names for a {} × {} matrix",
                self.title,
                x_ticks.len(),
                y_ticks.len(),
                self.rows,
                self.cols
            ))
            .into());
        }
        self.x_ticks = x_ticks;
        self.y_ticks = y_ticks;
        Ok(self)
    }

    /// The same heatmap with every annotation printed with `decimals` decimals.
    pub fn with_decimals(mut self, decimals: usize) -> Self {
        self.decimals = Some(decimals);
        self
    }
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

/// Cell annotation: `decimals` decimals if given; else integers without decimals, otherwise 2.
fn cell_text(v: f64, decimals: Option<usize>) -> String {
    if let Some(d) = decimals {
        format!("{v:.d$}")
    } else if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.2}")
    }
}

/// Pixels beside the rows for the axis description and the row names: 64 for indices, wider
/// for names (about 7 pixels per character at the 13-pixel tick font).
fn y_label_area(names: &[String]) -> u32 {
    let longest = names.iter().map(|n| n.chars().count()).max().unwrap_or(0) as u32;
    (30 + 7 * longest).max(64)
}

pub(super) fn draw_heatmap<DB: DrawingBackend>(
    p: &Heatmap,
    area: &DrawingArea<DB, Shift>,
) -> DrawResult {
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
        .y_label_area_size(y_label_area(&p.y_ticks))
        .build_cartesian_2d(0f64..c, r..0f64)
        .map_err(e)?;
    // Ticks sit at cell centres `k + 0.5`: the name of cell `k`, or `k` itself.
    let centre = |v: f64, names: &[String]| {
        let k = v - 0.5;
        if (k - k.round()).abs() < 1e-6 && k >= -1e-6 {
            let k = k.round() as usize;
            names.get(k).cloned().unwrap_or_else(|| k.to_string())
        } else {
            String::new()
        }
    };
    let x_idx = |v: &f64| centre(*v, &p.x_ticks);
    let y_idx = |v: &f64| centre(*v, &p.y_ticks);
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(p.x_label.as_str())
        .y_desc(p.y_label.as_str())
        .x_label_formatter(&x_idx)
        .y_label_formatter(&y_idx)
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
                Text::new(
                    cell_text(v, p.decimals),
                    (j as f64 + 0.5, i as f64 + 0.5),
                    style,
                )
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
