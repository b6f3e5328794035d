//! Algorithm 1: project a dense matrix onto GS(Pᵀ, P, I) (GSOFT's class, blocks of 8 at n = 64),
//! save the projection as a safetensors chain and load it back bit for bit. Run:
//! `cargo run --release --example project_and_save`.
use gslab::io::{load_chain, save_chain};
use gslab::rand::{SeedableRng, rngs::StdRng};
use gslab::structured::{ChainLayout, Gs, GsChain, LinearOp};
use gslab::{Blocks, Tensor};
use std::collections::BTreeMap;

fn main() -> gslab::Result<()> {
    let a = Tensor::<f64>::randn(&[64, 64], 1.0, &mut StdRng::seed_from_u64(1));
    let s = Blocks::size(64, 8)?.shape();
    let layout = ChainLayout::gsoft(s, s)?;
    let p = Gs::project(&a, &layout)?; // typed: L and R cannot be swapped
    let err = a.sub(&p.gs.to_dense()).norm() / a.norm();
    println!(
        "‖A − π(A)‖/‖A‖ = {err:.4}; block ranks of row 0: {:?}",
        p.ranks[0]
    );
    let path = std::env::temp_dir().join("gslab_projection.safetensors");
    save_chain(&path, p.gs.layout(), &p.gs.blocks(), &BTreeMap::new())?;
    let (l2, b2) = load_chain::<f64>(&path)?;
    let back = GsChain::from_layout(l2, b2)?;
    assert!(
        back.to_dense() == p.gs.to_dense(),
        "the file holds the projection bit for bit"
    );
    println!("saved and reloaded {}", path.display());
    std::fs::remove_file(path).map_err(|e| gslab::Error::io("projection", e))
}
