//! Helpers shared by the integration tests of the experiment binaries.

/// `figures.json` lists every PNG of `dir` exactly once, each entry's PNG and SVG exist, and
/// every caption is one non-empty sentence.
pub fn check_figures_json(dir: &std::path::Path) {
    let text = std::fs::read_to_string(dir.join("figures.json")).expect("figures.json");
    let figs: Vec<serde_json::Value> = serde_json::from_str(&text).expect("figures.json list");
    let mut listed: Vec<String> = figs
        .iter()
        .map(|f| f["png"].as_str().expect("png").to_string())
        .collect();
    for f in &figs {
        let stem = f["stem"].as_str().expect("stem");
        assert_eq!(f["png"].as_str(), Some(format!("{stem}.png").as_str()));
        assert_eq!(f["svg"].as_str(), Some(format!("{stem}.svg").as_str()));
        assert!(dir.join(format!("{stem}.svg")).is_file(), "{stem}.svg");
        let cap = f["caption"].as_str().expect("caption");
        assert!(cap.len() > 20 && cap.ends_with('.'), "{stem}: {cap:?}");
        assert!(
            !cap.contains(". "),
            "{stem}: caption is not one sentence: {cap:?}"
        );
    }
    let mut pngs: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png"))
        .collect();
    assert!(!pngs.is_empty());
    pngs.sort();
    listed.sort();
    assert_eq!(listed, pngs, "figures.json vs PNG files");
}
