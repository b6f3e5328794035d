//! Where legends go, so that they never hide data:
//! - an [`XyPlot`](super::XyPlot) legend sits in the corner of the plotting area whose box covers
//!   the fewest drawn points ([`legend_corner`], box size from [`legend_box_size`]);
//! - a [`BarPlot`](super::BarPlot) with several series gets a centred row of swatches under the
//!   bars (`legend_row`);
//! - a [`PanelGrid`](super::PanelGrid) gets a [`LegendColumn`] to the right of its panels,
//!   shared by all of them (curves that all start in the same corner leave no free corner).

use super::xy::{Series, Style};
use super::{DrawResult, series_color, text_width};
use plotters::coord::Shift;
use plotters::prelude::*;

/// A corner of the plotting area where an [`XyPlot`](super::XyPlot) legend can sit.
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

    pub(super) fn position(self) -> SeriesLabelPosition {
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
pub(super) fn densify(px: &[Vec<(i32, i32)>], series: &[Series]) -> Vec<(i32, i32)> {
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

/// Draws a centred row of colour swatches and series names (colours of [`series_color`]).
pub(super) fn legend_row<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    names: &[&str],
) -> DrawResult {
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

/// A legend drawn as a column beside the panels of a figure: a heading, one coloured line and
/// name per entry (entry `i` in [`series_color`]`(i)`, the colour of the panels' series `i`),
/// then a dashed black line for the reference line if it has a label.
#[derive(Debug, Clone, PartialEq)]
pub struct LegendColumn {
    /// Text above the entries (e.g. what the names are).
    pub heading: String,
    /// Entry names, in colour order.
    pub entries: Vec<String>,
    /// Label of the dashed reference line, if the figure draws one.
    pub reference: Option<String>,
}

/// Width in pixels of the area a [`LegendColumn`] is drawn in.
pub const LEGEND_COLUMN_WIDTH: u32 = 190;

/// Draws `legend` from the top left of `area`: the heading, then one 24 px row per entry.
pub(super) fn draw_legend_column<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    legend: &LegendColumn,
) -> DrawResult {
    let s = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let font = ("sans-serif", 15).into_font().color(&BLACK);
    let y0 = 40;
    area.draw(&Text::new(
        legend.heading.as_str(),
        (8, y0 - 26),
        font.clone(),
    ))
    .map_err(s)?;
    for (i, name) in legend.entries.iter().enumerate() {
        let y = y0 + 24 * i as i32;
        let c = series_color(i);
        area.draw(&PathElement::new(
            vec![(8, y + 8), (34, y + 8)],
            c.stroke_width(3),
        ))
        .map_err(s)?;
        area.draw(&Text::new(name.as_str(), (40, y), font.clone()))
            .map_err(s)?;
    }
    if let Some(label) = &legend.reference {
        let y = y0 + 24 * legend.entries.len() as i32 + 8;
        for x in [8, 20] {
            area.draw(&PathElement::new(
                vec![(x, y + 8), (x + 8, y + 8)],
                BLACK.stroke_width(2),
            ))
            .map_err(s)?;
        }
        area.draw(&Text::new(label.as_str(), (40, y), font.clone()))
            .map_err(s)?;
    }
    Ok(())
}
