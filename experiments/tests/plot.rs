//! Each plot helper writes a non-empty PNG and SVG; the SVG carries the labels as text.

use experiments::plot::{self, BarPlot, Heatmap, Plot, Scale, Series, SpyPlot, XyPlot};
use std::path::PathBuf;

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir()
        .join(format!("gslab-plot-test-{}", std::process::id()))
        .join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Checks both files exist, are non-trivial, start with the right magic, and the SVG contains
/// every expected text.
fn check(paths: (PathBuf, PathBuf), texts: &[&str]) {
    let png = std::fs::read(&paths.0).unwrap();
    assert!(
        png.len() > 1000,
        "{} too small: {}",
        paths.0.display(),
        png.len()
    );
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let svg = std::fs::read_to_string(&paths.1).unwrap();
    assert!(
        svg.starts_with("<svg") || svg.starts_with("<?xml"),
        "bad SVG start"
    );
    for t in texts {
        assert!(
            svg.contains(t),
            "SVG {} lacks text {t:?}",
            paths.1.display()
        );
    }
}

fn xy() -> XyPlot {
    let sq: Vec<(f64, f64)> = (1..=10).map(|i| (f64::from(i), f64::from(i * i))).collect();
    let lin: Vec<(f64, f64)> = (1..=10)
        .map(|i| (f64::from(i), 3.0 * f64::from(i)))
        .collect();
    XyPlot::new("Quadratic vs linear", "n (size)", "cost")
        .with(Series::line("n^2", sq))
        .with(Series::line("3n", lin))
}

#[test]
fn line_plot_linear_and_loglog() {
    let d = out_dir("line");
    check(
        plot::save(&d.join("lin"), &xy().into()).unwrap(),
        &["Quadratic vs linear", "n (size)", "cost", "n^2", "3n"],
    );
    let ll = xy().scales(Scale::Log, Scale::Log);
    check(
        plot::save(&d.join("loglog"), &ll.into()).unwrap(),
        &["n^2", "cost"],
    );
}

#[test]
fn scatter_plot() {
    let d = out_dir("scatter");
    let pts: Vec<(f64, f64)> = (0..30)
        .map(|i| (f64::from(i).sin(), f64::from(i).cos() * 2.0))
        .collect();
    let p = XyPlot::new("Scatter", "x", "y").with(Series::points("samples", pts));
    check(
        plot::save(&d.join("scatter"), &p.into()).unwrap(),
        &["Scatter", "samples"],
    );
}

#[test]
fn grouped_bars_linear_and_log() {
    let d = out_dir("bars");
    let mut p = BarPlot {
        title: "Params per method".into(),
        value_label: "parameters".into(),
        categories: vec!["LoRA r=8".into(), "OFT b=16".into(), "GSOFT b=8".into()],
        series: vec![
            ("paper".into(), vec![1.33e6, 1.41e6, 1.42e6]),
            ("free".into(), vec![1.33e6, 0.7e6, 0.66e6]),
        ],
        scale: Scale::Linear,
    };
    check(
        plot::save(&d.join("lin"), &p.clone().into()).unwrap(),
        &["Params per method", "GSOFT b=8", "free"],
    );
    p.scale = Scale::Log;
    check(
        plot::save(&d.join("log"), &p.into()).unwrap(),
        &["OFT b=16"],
    );
}

#[test]
fn spy_plot_1024_downsampled() {
    let d = out_dir("spy");
    // Block diagonal with 32 blocks of 32: nnz = 32 * 32^2 = 32768.
    let sp = SpyPlot::from_fn("block diagonal", 1024, 1024, plot::SPY_MAX_CELLS, |i, j| {
        i / 32 == j / 32
    })
    .unwrap();
    assert_eq!((sp.grid_rows, sp.grid_cols), (256, 256));
    assert_eq!(sp.nnz(), 32 * 32 * 32);
    assert_eq!(
        sp.entries.iter().map(|&e| u64::from(e)).sum::<u64>(),
        1024 * 1024
    );
    check(
        plot::save(&d.join("spy"), &sp.into()).unwrap(),
        &["block diagonal", "32768"],
    );
    // A small pattern from a slice keeps one cell per entry.
    let pat = [true, false, false, true, true, false];
    let small = SpyPlot::from_slice("small", 2, 3, 256, &pat).unwrap();
    assert_eq!(small.nonzeros, vec![1, 0, 0, 1, 1, 0]);
    assert!(SpyPlot::from_slice("bad", 2, 2, 256, &pat).is_err());
}

#[test]
fn heatmap_with_annotations() {
    let d = out_dir("heat");
    let vals: Vec<f64> = (0..16).map(|k| f64::from(k % 4 + 1)).collect();
    let h = Heatmap::new("Block ranks", "block column", "block row", 4, 4, vals).unwrap();
    assert!(h.annotate);
    check(
        plot::save(&d.join("heat"), &h.into()).unwrap(),
        &["Block ranks", "block column"],
    );
    assert!(Heatmap::new("bad", "x", "y", 2, 3, vec![0.0; 5]).is_err());
}

#[test]
fn heatmap_with_named_cells_and_fixed_decimals() {
    let d = out_dir("heat-named");
    let h = Heatmap::new(
        "Ablation",
        "shuffles",
        "activation",
        2,
        2,
        vec![18.14, 32.7, 16.8, 37.0],
    )
    .unwrap()
    .with_ticks(
        vec!["plain".into(), "paired".into()],
        vec!["MaxMin".into(), "MaxMinPermuted".into()],
    )
    .unwrap()
    .with_decimals(1);
    check(
        plot::save(&d.join("heat"), &h.into()).unwrap(),
        &["Ablation", "paired", "MaxMinPermuted", "37.0", "18.1"],
    );
    let e = Heatmap::new("two", "x", "y", 2, 2, vec![0.0; 4])
        .unwrap()
        .with_ticks(vec!["a".into()], vec!["b".into(), "c".into()])
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("1 column and 2 row names for a 2 × 2 matrix"),
        "{e}"
    );
}

#[test]
fn multi_panel_grid() {
    let d = out_dir("grid");
    let sp = SpyPlot::from_fn("diag", 64, 64, 64, |i, j| i == j).unwrap();
    let plots: Vec<Plot> = vec![xy().into(), sp.into()];
    check(
        plot::save_grid(&d.join("grid"), "Two panels", &plots, 2, (600, 480)).unwrap(),
        &["Two panels", "diag"],
    );
    assert!(plot::save_grid(&d.join("none"), "x", &[], 2, (10, 10)).is_err());
}

#[test]
fn unwritable_path_is_io_error_naming_path() {
    // A regular file used as a directory cannot be created.
    let d = out_dir("err");
    let blocker = d.join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let err = plot::save(&blocker.join("sub").join("p"), &xy().into()).unwrap_err();
    match err {
        experiments::Error::Io { path, .. } => assert!(path.contains("file"), "{path}"),
        other => panic!("expected Io, got {other:?}"),
    }
}

#[test]
fn tick_labels_are_compact() {
    assert_eq!(plot::tick_label(1000.0), "1000");
    assert_eq!(plot::tick_label(1e6), "1M");
    assert_eq!(plot::tick_label(1.42e6), "1.42M");
    assert_eq!(plot::tick_label(20000.0), "20k");
    assert_eq!(plot::tick_label(3.5), "3.5");
    assert_eq!(plot::tick_label(0.25), "0.25");
    assert_eq!(plot::tick_label(2.5e-5), "2.5e-5");
    assert_eq!(plot::tick_label(0.0), "0");
}

#[test]
fn legend_avoids_data_in_upper_left() {
    // Plotting area 0..800 × 0..500 (pixels, y down); a legend box of 150 × 50.
    let area = (0, 0, 800, 500);
    let size = plot::legend_box_size(&["abcdefghijkl"]);
    assert_eq!(size, (9 * 12 + 40, 30));
    // A falling curve: dense points in the upper-left 300 × 200 px.
    let upper_left: Vec<(i32, i32)> = (0..30)
        .flat_map(|i| (0..20).map(move |j| (10 * i, 10 * j)))
        .collect();
    let c = plot::legend_corner(&upper_left, area, size);
    assert_ne!(c, plot::LegendCorner::UpperLeft);
    // No data: the tie keeps the legend upper-left.
    assert_eq!(
        plot::legend_corner(&[], area, size),
        plot::LegendCorner::UpperLeft
    );
    // Data everywhere except the lower-right box: lower right wins.
    let lr = plot::LegendCorner::LowerRight.rect(area, size);
    assert_eq!(lr, (800 - 5 - 148, 500 - 5 - 30, 800 - 5, 500 - 5));
    let most: Vec<(i32, i32)> = (0..=80)
        .flat_map(|i| (0..=50).map(move |j| (10 * i, 10 * j)))
        .filter(|&(x, y)| !(x >= lr.0 - 10 && y >= lr.1 - 10))
        .collect();
    assert_eq!(
        plot::legend_corner(&most, area, size),
        plot::LegendCorner::LowerRight
    );
}

#[test]
fn layered_diagram_saves_validates_and_highlights() {
    use plot::LayeredPlot;
    // 4 nodes, blocks {0,1},{2,3}, then the swap 1 <-> 2 (gather: output i takes input σ(i)).
    let mut g = LayeredPlot {
        title: "toy flow".into(),
        n: 4,
        levels: vec!["x".into(), "B x".into(), "P B x".into()],
        edges: vec![
            vec![
                (0, 0, false),
                (0, 1, false),
                (1, 0, false),
                (1, 1, false),
                (2, 2, false),
                (2, 3, false),
                (3, 2, false),
                (3, 3, false),
            ],
            vec![(0, 0, false), (2, 1, false), (1, 2, false), (3, 3, false)],
        ],
    };
    g.highlight_from(0);
    // From input 0: block edges 0->0, 0->1; then perm edges 0->0 and 1->2 (hand-worked).
    let hl: Vec<Vec<(usize, usize)>> = g
        .edges
        .iter()
        .map(|l| l.iter().filter(|e| e.2).map(|e| (e.0, e.1)).collect())
        .collect();
    assert_eq!(hl, vec![vec![(0, 0), (0, 1)], vec![(0, 0), (1, 2)]]);
    let d = out_dir("layered");
    check(
        plot::save_layered(
            &d.join("flow"),
            "Toy information flow",
            &[g.clone()],
            (400, 300),
        )
        .unwrap(),
        &["Toy information flow", "toy flow", "P B x"],
    );
    let mut bad = g.clone();
    bad.edges[1].push((4, 0, false));
    assert!(bad.validate().is_err());
    let mut short = g;
    short.levels.pop();
    assert!(plot::save_layered(&d.join("bad"), "x", &[short], (400, 300)).is_err());
    assert!(plot::save_layered(&d.join("none"), "x", &[], (400, 300)).is_err());
}

#[test]
fn falling_curve_legend_is_not_upper_left_when_rendered() {
    // A curve that starts high on the left fills the upper-left corner, so the legend text
    // must start in the right half of the 860 px wide figure.
    let pts: Vec<(f64, f64)> = (0..=40)
        .map(|i| (f64::from(i), 40.0 - f64::from(i)))
        .collect();
    let p = XyPlot::new("Falling", "x", "y").with(Series::line("falling series", pts));
    let d = out_dir("falling");
    let paths = plot::save(&d.join("falling"), &p.into()).unwrap();
    let svg = std::fs::read_to_string(&paths.1).unwrap();
    check(paths, &["falling series"]);
    let at = svg.find("falling series").unwrap();
    let tag = &svg[svg[..at].rfind("<text").unwrap()..at];
    let x: f64 = tag
        .split("x=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no x in {tag}"));
    assert!(x > 430.0, "legend text at x = {x}");
}
