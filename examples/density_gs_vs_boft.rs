//! Theorem 2 at n = 96 with blocks of 4 (r = 24): GS chains become dense with 1 + ⌈log₄ 24⌉ = 4
//! factors; BOFT's butterfly under PEFT's rule stops at 1 + v₂(24) = 4 factors with rows of
//! b·2^(m−1) nonzeros and never becomes dense. Run:
//! `cargo run --release --example density_gs_vs_boft`.
use gslab::Blocks;
use gslab::structured::pattern::{
    GsShuffle, boft_formula, gs_formula, support_growth_boft, support_growth_gs,
};

fn main() -> gslab::Result<()> {
    let blocks = Blocks::size(96, 4)?;
    let gs = support_growth_gs(blocks, 5, GsShuffle::default())?;
    let boft = support_growth_boft(blocks, 5)?;
    println!("m  GS nonzeros/row  BOFT nonzeros/row   (n = 96, b = 4, r = 24)");
    for (m, g) in gs.iter().enumerate() {
        let b = boft
            .get(m)
            .map_or("not buildable".into(), |s| s.row_range().1.to_string());
        println!("{}  {:>15}  {:>17}", m + 1, g.row_range().1, b);
    }
    println!("Theorem 2: GS dense with {} factors", gs_formula(blocks)?);
    match boft_formula(blocks) {
        Ok(m) => println!("BOFT dense with {m} factors"),
        Err(e) => println!("BOFT: {e}"),
    }
    assert!(gs[3].dense && boft.iter().all(|s| !s.dense));
    Ok(())
}
