//! Theorem 1 (T7), constructively: orthogonal GS members written with non-orthogonal factors
//! (`L_S ← L_S G`, `R_S ← G⁻¹ R_S` per block) are given orthogonal blocks back
//! (`theorem1.csv`).

use super::projection::projection_layouts;
use super::ranks::Setting;
use super::{Config, rng_for, theorem1};
use crate::{Result, Run};
use faer::Mat;
use gslab::Tensor;
use gslab::kernels::reference::reference_dense;
use gslab::orthogonal::{haar_orthogonal, haar_orthogonal_blocks, orthogonality_error};
use gslab::structured::ChainLayout;
use gslab::structured::project::prop1_slots;
use rand::rngs::StdRng;
use serde::Serialize;
use serde_json::json;

/// One Theorem 1 trial in `theorem1.csv`.
#[derive(Serialize)]
struct Thm1Row {
    layout: String,
    trial: usize,
    hidden_block_orthogonality_error: f64,
    a_orthogonality_error: f64,
    recovered_orthogonality_error: f64,
    reconstruction_max_error: f64,
}

/// Rewrites the blocks `[R, L]` without changing `A`: for every block `(k1, k2)` with slots `S`,
/// `L_S ← L_S G` and `R_S ← G⁻¹ R_S` with `G = diag(d) Q` (`Q` random orthogonal,
/// `d ∈ [0.5, 2]`), so `G⁻¹ = Qᵀ diag(1/d)` exactly.
fn hide_orthogonality(
    layout: &ChainLayout,
    blocks: &[Tensor<f64>],
    rng: &mut StdRng,
) -> Result<Vec<Tensor<f64>>> {
    let (rs, ls) = (layout.factors()[0], layout.factors()[1]);
    let (br, bl) = (rs.b1, ls.b1);
    let pi = layout.perms()[1].as_slice();
    let (mut r, mut l) = (blocks[0].clone(), blocks[1].clone());
    for (k1, row) in prop1_slots(layout)?.iter().enumerate() {
        for (k2, s) in row.iter().enumerate() {
            let q = s.len();
            if q == 0 {
                continue;
            }
            let qm = haar_orthogonal::<f64, _>(q, rng);
            let d: Vec<f64> = Tensor::<f64>::rand_uniform(&[q], 0.5, 2.0, rng).into_vec();
            let g = Mat::<f64>::from_fn(q, q, |i, j| d[i] * qm.at2(i, j));
            let ginv = Mat::<f64>::from_fn(q, q, |i, j| qm.at2(j, i) / d[j]);
            let l_s = Mat::<f64>::from_fn(bl, q, |x, t| l.data()[(k1 * bl + x) * bl + s[t] % bl]);
            let r_s =
                Mat::<f64>::from_fn(q, br, |t, c| r.data()[(k2 * br + pi[s[t]] % br) * br + c]);
            let (l_new, r_new) = (&l_s * &g, &ginv * &r_s);
            for (t, &i) in s.iter().enumerate() {
                for x in 0..bl {
                    l.data_mut()[(k1 * bl + x) * bl + i % bl] = l_new[(x, t)];
                }
                for c in 0..br {
                    r.data_mut()[(k2 * br + pi[i] % br) * br + c] = r_new[(t, c)];
                }
            }
        }
    }
    Ok(vec![r, l])
}

pub(super) fn theorem1_study(
    run: &Run,
    cfg: &Config,
    settings: &[Setting],
) -> Result<serde_json::Value> {
    let layouts = projection_layouts(run.seed, settings)?;
    let mut rows = Vec::new();
    for (name, layout) in &layouts {
        let (rs, ls) = (layout.factors()[0], layout.factors()[1]);
        if rs.b1 != rs.b2 || ls.b1 != ls.b2 {
            continue;
        }
        let mut rng = rng_for(run.seed, &format!("thm1-{name}"));
        for trial in 0..cfg.trials {
            let ortho = vec![
                haar_orthogonal_blocks::<f64, _>(rs.k, rs.b1, &mut rng),
                haar_orthogonal_blocks::<f64, _>(ls.k, ls.b1, &mut rng),
            ];
            let a = reference_dense(layout, &ortho);
            let hidden = hide_orthogonality(layout, &ortho, &mut rng)?;
            let hidden_err = orthogonality_error(&hidden[0]).max(orthogonality_error(&hidden[1]));
            let rec = theorem1(layout, &hidden)?;
            let rec_err = orthogonality_error(&rec[0]).max(orthogonality_error(&rec[1]));
            let a2 = reference_dense(layout, &rec);
            rows.push(Thm1Row {
                layout: name.clone(),
                trial,
                hidden_block_orthogonality_error: hidden_err,
                a_orthogonality_error: orthogonality_error(&a),
                recovered_orthogonality_error: rec_err,
                reconstruction_max_error: a.sub(&a2).max_abs(),
            });
        }
    }
    run.write_csv("theorem1.csv", &rows)?;
    let max = |f: fn(&Thm1Row) -> f64| rows.iter().map(f).fold(0.0f64, f64::max);
    let min_hidden = rows
        .iter()
        .map(|r| r.hidden_block_orthogonality_error)
        .fold(f64::INFINITY, f64::min);
    let (orth, recon) = (
        max(|r| r.recovered_orthogonality_error),
        max(|r| r.reconstruction_max_error),
    );
    Ok(json!({
        "trials": rows.len(),
        "min_hidden_block_orthogonality_error": min_hidden,
        "max_a_orthogonality_error": max(|r| r.a_orthogonality_error),
        "max_orthogonality_error": orth,
        "max_reconstruction_error": recon,
    }))
}
