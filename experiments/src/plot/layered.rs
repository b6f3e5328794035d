//! [`LayeredPlot`]: layered "information flow" diagrams, columns of nodes joined by edges (the
//! paper's Figures 1, 3 and 5).

use super::{DrawResult, Figure, render};
use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

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
    /// [`Error::Figure`] naming the offending count or edge.
    pub fn validate(&self) -> Result<()> {
        if self.levels.is_empty() || self.edges.len() + 1 != self.levels.len() {
            return Err(Error::Figure(format!(
                "layered plot {:?}: {} levels need {} edge lists, got {}",
                self.title,
                self.levels.len(),
                self.levels.len().saturating_sub(1),
                self.edges.len()
            )));
        }
        for (t, level) in self.edges.iter().enumerate() {
            if let Some(e) = level.iter().find(|e| e.0 >= self.n || e.1 >= self.n) {
                return Err(Error::Figure(format!(
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
/// [`Error::Figure`] if `panels` is empty or a panel fails [`LayeredPlot::validate`]; otherwise
/// as [`save`](super::save).
pub fn save_layered(
    stem: &Path,
    title: &str,
    panels: &[LayeredPlot],
    panel: (u32, u32),
) -> Result<(PathBuf, PathBuf)> {
    if panels.is_empty() {
        return Err(Error::Figure(format!(
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
