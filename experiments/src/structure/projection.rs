//! Algorithm 1 (T9): random members of a GS class are projected back (relative error at
//! rounding level); random dense matrices are projected and compared with the best-scaled random
//! members and with random perturbations of the projection's own blocks (`projection.csv`).

use super::ranks::Setting;
use super::{Config, project, random_member, rel_err, rng_for};
use crate::{Result, Run};
use gslab::kernels::reference::reference_dense;
use gslab::structured::{ChainLayout, Gs, LinearOp};
use gslab::{Blocks, Tensor};
use serde::Serialize;
use serde_json::json;

/// One projection trial in `projection.csv`.
#[derive(Serialize)]
struct ProjRow {
    layout: String,
    n: usize,
    trial: usize,
    input: &'static str,
    proj_rel_error: f64,
    best_random_member_rel_error: f64,
    best_perturbed_rel_error: f64,
}

/// The layouts of the projection and Theorem 1 studies: the rank settings, GSOFT's
/// `Pᵀ L P R` (n = 16, b = 4) and a rectangular-block-count Monarch (k_L = 4, k_R = 8).
pub(super) fn projection_layouts(
    seed: u64,
    settings: &[Setting],
) -> Result<Vec<(String, ChainLayout)>> {
    let mut out: Vec<(String, ChainLayout)> = settings
        .iter()
        .map(|s| (s.name.to_string(), s.layout.clone()))
        .collect();
    let mut rng = rng_for(seed, "gsoft-layout");
    let gsoft = Gs::<f64>::gsoft_random(Blocks::count(16, 4)?, &mut rng)?;
    out.push(("gsoft_n16_b4".into(), gsoft.layout().clone()));
    let monarch = ChainLayout::monarch_square(Blocks::count(32, 4)?)?;
    out.push(("monarch_4x8".into(), monarch));
    Ok(out)
}

/// `min_c ‖G − cB‖_F / ‖G‖_F = sqrt(1 − ⟨G,B⟩² / (‖G‖²‖B‖²))` (the best multiple of `B`, itself a
/// member of the class).
fn best_scaled_err(g: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    let dot: f64 = g.data().iter().zip(b.data()).map(|(x, y)| x * y).sum();
    let c = dot / (g.norm() * b.norm());
    (1.0 - c * c).max(0.0).sqrt()
}

pub(super) fn projection_study(
    run: &Run,
    cfg: &Config,
    settings: &[Setting],
) -> Result<serde_json::Value> {
    let layouts = projection_layouts(run.seed, settings)?;
    let mut rows = Vec::new();
    let pb = run.progress(layouts.len() as u64, "projection (Alg. 1)");
    for (name, layout) in &layouts {
        let n = layout.n_in();
        let mut rng = rng_for(run.seed, &format!("proj-{name}"));
        for trial in 0..cfg.trials {
            for input in ["member", "gaussian"] {
                let a = if input == "member" {
                    reference_dense(layout, &random_member(layout, &mut rng))
                } else {
                    Tensor::randn(&[layout.n_out(), n], 1.0, &mut rng)
                };
                let blocks = project(&a, layout)?;
                let pa = reference_dense(layout, &blocks);
                let proj = rel_err(&a, &pa);
                let mut best_rand = f64::INFINITY;
                let mut best_pert = f64::INFINITY;
                for _ in 0..cfg.trials {
                    let b = reference_dense(layout, &random_member(layout, &mut rng));
                    best_rand = best_rand.min(best_scaled_err(&a, &b));
                    let pert: Vec<Tensor<f64>> = blocks
                        .iter()
                        .map(|t| {
                            let d = Tensor::randn(t.shape(), 1e-3, &mut rng);
                            t.add(&d)
                        })
                        .collect();
                    best_pert = best_pert.min(rel_err(&a, &reference_dense(layout, &pert)));
                }
                rows.push(ProjRow {
                    layout: name.clone(),
                    n,
                    trial,
                    input,
                    proj_rel_error: proj,
                    best_random_member_rel_error: best_rand,
                    best_perturbed_rel_error: best_pert,
                });
            }
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    run.write_csv("projection.csv", &rows)?;
    let members = rows.iter().filter(|r| r.input == "member");
    let max_member = members.map(|r| r.proj_rel_error).fold(0.0f64, f64::max);
    let never_worse = rows.iter().all(|r| {
        r.proj_rel_error <= r.best_random_member_rel_error
            && r.proj_rel_error <= r.best_perturbed_rel_error
    });
    let dense: Vec<&ProjRow> = rows.iter().filter(|r| r.input == "gaussian").collect();
    let min_margin_random = dense
        .iter()
        .map(|r| r.best_random_member_rel_error - r.proj_rel_error)
        .fold(f64::INFINITY, f64::min);
    let min_margin_pert = dense
        .iter()
        .map(|r| r.best_perturbed_rel_error - r.proj_rel_error)
        .fold(f64::INFINITY, f64::min);
    Ok(json!({
        "layouts": layouts.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        "max_member_rel_error": max_member,
        "projection_never_worse": never_worse,
        "min_margin_vs_random_members": min_margin_random,
        "min_margin_vs_perturbed": min_margin_pert,
    }))
}
