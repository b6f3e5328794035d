//! Proposition 1 (T8): the predicted block-rank profile `min(#slots, b_L¹, b_R²)` of GS(I, P, I)
//! layouts next to the numerically measured block ranks of a random member (`ranks.csv`,
//! `ranks_<setting>` figures).

use super::{random_member, rng_for};
use crate::plot::{Heatmap, Plot};
use crate::{Result, Run};
use faer::Mat;
use gslab::kernels::reference::reference_dense;
use gslab::structured::project::{block_rank_profile, strip_outer};
use gslab::structured::{BlockShape, ChainLayout};
use gslab::{Perm, Tensor};
use serde::Serialize;
use serde_json::json;

/// A named GS(I, P, I) layout.
pub(super) struct Setting {
    pub(super) name: &'static str,
    pub(super) title: String,
    pub(super) layout: ChainLayout,
}

/// GS(I, P, I) with `L` = `l`, `R` = `r` and the gather map `p` in the middle.
fn gs_ipi(l: BlockShape, p: Perm, r: BlockShape) -> Result<ChainLayout> {
    Ok(ChainLayout::gs(
        Perm::identity(l.n_out()),
        l,
        p,
        r,
        Perm::identity(r.n_in()),
    )?)
}

/// The layouts of the rank and projection studies (all GS(I, P, I); P in the scatter reading
/// of P_(k_L, n) unless random).
pub(super) fn rank_settings(seed: u64) -> Result<Vec<Setting>> {
    let sq = BlockShape::square;
    let mut rng = rng_for(seed, "random-P");
    Ok(vec![
        Setting {
            name: "fig2_n12",
            title: "n=12, L: 4 blocks 3x3, R: 2 blocks 6x6, P=P_(4,12)".into(),
            layout: gs_ipi(sq(4, 3), Perm::shuffle_scatter(4, 12)?, sq(2, 6))?,
        },
        Setting {
            name: "n12_b3",
            title: "n=12, b=3 (L, R: 4 blocks 3x3), P=P_(4,12)".into(),
            layout: gs_ipi(sq(4, 3), Perm::shuffle_scatter(4, 12)?, sq(4, 3))?,
        },
        Setting {
            name: "n24_randP",
            title: "n=24, L: 3 blocks 8x8, R: 4 blocks 6x6, random P".into(),
            layout: gs_ipi(sq(3, 8), Perm::random(24, &mut rng), sq(4, 6))?,
        },
        Setting {
            name: "n64_bL8_bR4",
            title: "n=64, L: 8 blocks 8x8, R: 16 blocks 4x4, P=P_(8,64)".into(),
            layout: gs_ipi(sq(8, 8), Perm::shuffle_scatter(8, 64)?, sq(16, 4))?,
        },
    ])
}

/// One block of one setting in `ranks.csv`.
#[derive(Serialize)]
struct RankRow {
    setting: &'static str,
    k1: usize,
    k2: usize,
    slots: usize,
    predicted_rank: usize,
    measured_rank: usize,
    min_kept_sv: f64,
    max_dropped_sv: f64,
}

/// Numerical ranks of the `b_L¹ × b_R²` blocks of `M = P_Lᵀ A P_Rᵀ`: singular values above
/// `1e-9 · max_block σ_max` count. Returns `(ranks, smallest kept σ, largest dropped σ)` per block.
fn measured_ranks(layout: &ChainLayout, a: &Tensor<f64>) -> Result<Vec<Vec<(usize, f64, f64)>>> {
    let (rs, ls) = (layout.factors()[0], layout.factors()[1]);
    let m = strip_outer(a, &layout.perms()[2], &layout.perms()[0]);
    let mut svs = vec![vec![Vec::new(); rs.k]; ls.k];
    for (k1, row) in svs.iter_mut().enumerate() {
        for (k2, sv) in row.iter_mut().enumerate() {
            let blk =
                Mat::<f64>::from_fn(ls.b1, rs.b2, |u, c| m.at2(k1 * ls.b1 + u, k2 * rs.b2 + c));
            *sv = blk.singular_values().map_err(|e| {
                gslab::Error::Numerical(format!("SVD of block ({k1}, {k2}): {e:?}"))
            })?;
        }
    }
    let top = svs
        .iter()
        .flatten()
        .flatten()
        .fold(0.0f64, |a, &b| a.max(b));
    let tol = 1e-9 * top;
    Ok(svs
        .iter()
        .map(|row| {
            row.iter()
                .map(|sv| {
                    let kept = sv.iter().filter(|&&s| s > tol);
                    let r = kept.clone().count();
                    let min_kept = kept.fold(f64::INFINITY, |a, &b| a.min(b));
                    let max_drop = sv
                        .iter()
                        .filter(|&&s| s <= tol)
                        .fold(0.0f64, |a, &b| a.max(b));
                    (r, min_kept, max_drop)
                })
                .collect()
        })
        .collect())
}

pub(super) fn rank_study(run: &Run, settings: &[Setting]) -> Result<serde_json::Value> {
    let mut rows = Vec::new();
    let mut per = Vec::new();
    let mut all_agree = true;
    for s in settings {
        let (rs, ls) = (s.layout.factors()[0], s.layout.factors()[1]);
        let counts = block_rank_profile(&s.layout)?;
        let mut rng = rng_for(run.seed, &format!("rank-{}", s.name));
        let a = reference_dense(&s.layout, &random_member(&s.layout, &mut rng));
        let meas = measured_ranks(&s.layout, &a)?;
        let (mut agree, mut min_kept, mut max_drop) = (true, f64::INFINITY, 0.0f64);
        let (mut pred_v, mut meas_v) = (Vec::new(), Vec::new());
        for (k1, row) in counts.iter().enumerate() {
            for (k2, &c) in row.iter().enumerate() {
                let pred = c.min(ls.b1).min(rs.b2);
                let (r, kept, drop) = meas[k1][k2];
                agree &= pred == r;
                min_kept = min_kept.min(kept);
                max_drop = max_drop.max(drop);
                pred_v.push(pred as f64);
                meas_v.push(r as f64);
                rows.push(RankRow {
                    setting: s.name,
                    k1,
                    k2,
                    slots: c,
                    predicted_rank: pred,
                    measured_rank: r,
                    min_kept_sv: kept,
                    max_dropped_sv: drop,
                });
            }
        }
        all_agree &= agree;
        let xl = format!("block column k2 (R blocks, {} cols each)", rs.b2);
        let yl = format!("block row k1 (L blocks, {} rows each)", ls.b1);
        let panels = [
            Heatmap::new(
                "predicted rank min(#slots, b_L, b_R)",
                &xl,
                &yl,
                ls.k,
                rs.k,
                pred_v,
            )?,
            Heatmap::new(
                "measured rank (random member)",
                &xl,
                &yl,
                ls.k,
                rs.k,
                meas_v,
            )?,
        ]
        .map(Plot::from);
        let w = if rs.k > 8 { 760 } else { 560 };
        run.figure_grid(
            &format!("ranks_{}", s.name),
            &format!("Prop. 1 block ranks: {}", s.title),
            &panels,
            2,
            (w, 520),
            &format!(
                "Ranks of the blocks of A = L P R for {}: Proposition 1's prediction min(#slots, b_L, b_R) (left) against the numerical rank of a random member (right).",
                s.title
            ),
        )?;
        per.push(json!({
            "setting": s.name, "description": s.title, "agree": agree,
            "min_kept_singular_value": min_kept, "max_dropped_singular_value": max_drop,
        }));
    }
    run.write_csv("ranks.csv", &rows)?;
    Ok(json!({ "all_agree": all_agree, "settings": per }))
}
