//! [`SpyPlot`]: the sparsity pattern of a boolean matrix, down-sampled to a grid of grey cells.

use super::{DrawResult, tick_label};
use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

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
    /// [`Error::Figure`] if `rows`, `cols` or `max_cells` is zero.
    pub fn from_fn(
        title: impl Into<String>,
        rows: usize,
        cols: usize,
        max_cells: usize,
        nonzero: impl Fn(usize, usize) -> bool,
    ) -> Result<Self> {
        if rows == 0 || cols == 0 || max_cells == 0 {
            return Err(Error::Figure(format!(
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
    /// [`gslab::Error::InvalidShape`] if `pattern.len() != rows·cols`; otherwise as
    /// [`SpyPlot::from_fn`].
    pub fn from_slice(
        title: impl Into<String>,
        rows: usize,
        cols: usize,
        max_cells: usize,
        pattern: &[bool],
    ) -> Result<Self> {
        if pattern.len() != rows * cols {
            return Err(gslab::Error::InvalidShape {
                shape: vec![rows, cols],
                expected: rows * cols,
                got: pattern.len(),
            }
            .into());
        }
        Self::from_fn(title, rows, cols, max_cells, |i, j| pattern[i * cols + j])
    }

    /// Total number of nonzero entries.
    pub fn nnz(&self) -> u64 {
        self.nonzeros.iter().map(|&c| u64::from(c)).sum()
    }
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

pub(super) fn draw_spy<DB: DrawingBackend>(
    p: &SpyPlot,
    area: &DrawingArea<DB, Shift>,
) -> DrawResult {
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
