//! Expressivity: relative Frobenius error against parameter budget for GS (m = 2, 3), Monarch,
//! BOFT, block-diagonal and low-rank on Gaussian, orthogonal, DCT-II and Walsh–Hadamard targets
//! (`expressivity.csv`, `expressivity_<target>` figures). Projections where they exist
//! (Algorithm 1, keeping blocks, truncated SVD), Adam on the chain blocks otherwise.

use super::{Config, LR, project, random_member, rel_err, rng_for};
use crate::plot::{Plot, Scale, Series, XyPlot};
use crate::{Result, Run, print_table};
use faer::Mat;
use gslab::autodiff::ops::chain::chain_apply;
use gslab::kernels::reference::reference_dense;
use gslab::nn::optim::{Adam, Optimizer};
use gslab::nn::schedule::Schedule;
use gslab::orthogonal::haar_orthogonal;
use gslab::structured::pattern::boft_formula;
use gslab::structured::{
    BlockDiag, BlockShape, Butterfly, ChainLayout, Gs, GsChain, LinearOp, LowRank,
};
use gslab::{Blocks, Tape, Tensor, Var};
use rand::rngs::StdRng;
use rayon::prelude::*;
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;

/// The target matrices, each `n × n`.
fn targets(n: usize, seed: u64) -> Vec<(&'static str, &'static str, Tensor<f64>)> {
    let mut rng = rng_for(seed, "targets");
    let gauss = Tensor::randn(&[n, n], 1.0 / (n as f64).sqrt(), &mut rng);
    let orth = haar_orthogonal::<f64, _>(n, &mut rng);
    let nf = n as f64;
    let dct = Tensor::from_fn(&[n, n], |idx| {
        let (k, j) = ((idx / n) as f64, (idx % n) as f64);
        let s = if k == 0.0 {
            (1.0 / nf).sqrt()
        } else {
            (2.0 / nf).sqrt()
        };
        s * (std::f64::consts::PI * (2.0 * j + 1.0) * k / (2.0 * nf)).cos()
    });
    let had = Tensor::from_fn(&[n, n], |idx| {
        let sign = if ((idx / n) & (idx % n)).count_ones().is_multiple_of(2) {
            1.0
        } else {
            -1.0
        };
        sign / nf.sqrt()
    });
    vec![
        ("gaussian", "Gaussian", gauss),
        ("orthogonal", "random orthogonal", orth),
        ("dct", "DCT-II", dct),
        ("hadamard", "Walsh-Hadamard", had),
    ]
}

/// One fitted configuration in `expressivity.csv`.
#[derive(Serialize, Clone)]
struct ExprRow {
    target: &'static str,
    family: &'static str,
    method: &'static str,
    config: String,
    params: usize,
    rel_error: f64,
}

/// A structured family member to fit by gradient descent.
enum Job {
    /// GS m = 2 (GSOFT layout) by Algorithm 1.
    Gs2(usize),
    /// Monarch `(k_L, k_R)` by Algorithm 1.
    Monarch(usize, usize),
    /// Block-diagonal with `b × b` blocks: keep the diagonal blocks.
    BlockDiag(usize),
    /// Rank-`r` truncated SVD.
    LowRank(usize),
    /// Adam on the blocks of a chain: family, config, layout.
    Adam(&'static str, String, Arc<ChainLayout>),
}

/// Powers of two `lo, 2lo, …` up to `hi` inclusive.
fn pow2(lo: usize, hi: usize) -> Vec<usize> {
    std::iter::successors(Some(lo), |&x| Some(2 * x))
        .take_while(|&x| x <= hi)
        .collect()
}

fn expressivity_jobs(n: usize, seed: u64) -> Result<Vec<Job>> {
    let mut jobs = Vec::new();
    let mut rng = rng_for(seed, "expr-layouts");
    for b in pow2(2, n / 2) {
        jobs.push(Job::Gs2(b));
    }
    for kl in pow2(2, n / 2) {
        jobs.push(Job::Monarch(kl, n / kl));
    }
    // b = 1 (diagonal) only from n = 32: at n = 16 its point (16 parameters) sits at the far
    // left of the plot, where it crowded the legend.
    for b in pow2(if n >= 32 { 1 } else { 2 }, n / 2) {
        jobs.push(Job::BlockDiag(b));
    }
    for r in pow2(1, n / 2) {
        jobs.push(Job::LowRank(r));
    }
    for b in pow2(2, n / 4) {
        let g = GsChain::<f64>::random_shuffled(&[BlockShape::square(n / b, b); 3], &mut rng)?;
        jobs.push(Job::Adam(
            "GS m=3",
            format!("b={b}"),
            g.layout_arc().clone(),
        ));
    }
    for b in pow2(2, n / 2) {
        let r = n / b;
        let blocks = Blocks::count(n, r)?;
        let m = boft_formula(blocks)?;
        let bf = Butterfly::<f64>::random(blocks, m, &mut rng)?;
        jobs.push(Job::Adam(
            "BOFT",
            format!("b={b},m={m}"),
            bf.layout_arc().clone(),
        ));
    }
    // Diagnostic: Adam on the GS m=2 layout, whose optimum Algorithm 1 gives exactly.
    for b in pow2(2, n / 2) {
        let g = Gs::<f64>::gsoft_random(Blocks::size(n, b)?, &mut rng)?;
        jobs.push(Job::Adam(
            "GS m=2 (Adam)",
            format!("b={b}"),
            g.layout_arc().clone(),
        ));
    }
    Ok(jobs)
}

/// Adam on the chain blocks, minimising `mean((I·Aᵀ − targetᵀ)²)` (chain_apply on the identity
/// batch), cosine learning rate `LR → LR/100`; returns the final blocks.
fn adam_fit(
    layout: &Arc<ChainLayout>,
    target: &Tensor<f64>,
    steps: usize,
    rng: &mut StdRng,
) -> Vec<Tensor<f64>> {
    let mut blocks = random_member(layout, rng);
    let eye = Tensor::<f64>::eye(layout.n_in());
    let tt = target.transpose();
    let mut opt = Adam::<f64>::new(LR);
    // η = LR decaying to η/100.
    let sched = Schedule::cosine(0.01, steps, 0);
    for t in 0..steps {
        opt.set_lr_factor(sched.factor_at(t));
        let tape = Tape::new();
        let x = tape.constant(eye.clone());
        let vars: Vec<Var<f64>> = blocks.iter().map(|b| tape.leaf(b.clone())).collect();
        let loss = chain_apply(x, &vars, layout).mse(tape.constant(tt.clone()));
        let grads = tape.backward(loss);
        let g: Vec<Tensor<f64>> = vars.iter().map(|&v| grads.wrt(v)).collect();
        let mut ps: Vec<&mut Tensor<f64>> = blocks.iter_mut().collect();
        opt.step(&mut ps, &g);
    }
    blocks
}

/// Runs one job on one target.
fn run_job(
    job: &Job,
    target: &Tensor<f64>,
    tname: &'static str,
    cfg: &Config,
    seed: u64,
) -> Result<ExprRow> {
    let n = cfg.n;
    let row = |family, method, config: String, params, approx: &Tensor<f64>| ExprRow {
        target: tname,
        family,
        method,
        config,
        params,
        rel_error: rel_err(target, approx),
    };
    Ok(match job {
        Job::Gs2(b) => {
            let s = Blocks::size(n, *b)?.shape();
            let layout = ChainLayout::gsoft(s, s)?;
            let blocks = project(target, &layout)?;
            let a = reference_dense(&layout, &blocks);
            row("GS m=2", "alg1", format!("b={b}"), 2 * n * b, &a)
        }
        Job::Monarch(kl, kr) => {
            let layout = ChainLayout::monarch_square(Blocks::count(kl * kr, *kl)?)?;
            let blocks = project(target, &layout)?;
            let a = reference_dense(&layout, &blocks);
            row(
                "Monarch",
                "alg1",
                format!("kL={kl},kR={kr}"),
                layout.param_count(),
                &a,
            )
        }
        Job::BlockDiag(b) => {
            let k = n / b;
            let blocks = Tensor::from_fn(&[k, *b, *b], |idx| {
                let (j, u, t) = (idx / (b * b), (idx / b) % b, idx % b);
                target.at2(j * b + u, j * b + t)
            });
            let op = BlockDiag::from_blocks(blocks)?;
            row(
                "block-diagonal",
                "keep blocks",
                format!("b={b}"),
                op.param_count(),
                &op.to_dense(),
            )
        }
        Job::LowRank(r) => {
            let svd = target
                .to_mat()
                .thin_svd()
                .map_err(|e| gslab::Error::Numerical(format!("SVD of the target: {e:?}")))?;
            let sv = svd.S().column_vector();
            let u = Mat::<f64>::from_fn(n, *r, |i, t| svd.U()[(i, t)] * sv[t].sqrt());
            let v = Mat::<f64>::from_fn(n, *r, |i, t| svd.V()[(i, t)] * sv[t].sqrt());
            let op = LowRank::from_factors(
                &Tensor::from_mat(u.as_ref()),
                &Tensor::from_mat(v.as_ref()),
            )?;
            row(
                "low-rank",
                "truncated SVD",
                format!("r={r}"),
                op.param_count(),
                &op.to_dense(),
            )
        }
        Job::Adam(family, config, layout) => {
            let mut rng = rng_for(seed, &format!("adam-{tname}-{family}-{config}"));
            let blocks = adam_fit(layout, target, cfg.steps, &mut rng);
            let a = reference_dense(layout, &blocks);
            row(family, "adam", config.clone(), layout.param_count(), &a)
        }
    })
}

/// Families drawn in the figures, in legend order.
const FAMILIES: [&str; 6] = [
    "GS m=2",
    "GS m=3",
    "Monarch",
    "BOFT",
    "block-diagonal",
    "low-rank",
];

/// Per family, the best error at each parameter count (several configurations may share one).
fn envelope(rows: &[ExprRow], target: &str, family: &str) -> Vec<(f64, f64)> {
    let mut pts: Vec<(usize, f64)> = Vec::new();
    for r in rows
        .iter()
        .filter(|r| r.target == target && r.family == family)
    {
        match pts.iter_mut().find(|p| p.0 == r.params) {
            Some(p) => p.1 = p.1.min(r.rel_error),
            None => pts.push((r.params, r.rel_error)),
        }
    }
    pts.sort_by_key(|p| p.0);
    pts.into_iter().map(|(p, e)| (p as f64, e)).collect()
}

pub(super) fn expressivity_study(run: &Run, cfg: &Config) -> Result<serde_json::Value> {
    let n = cfg.n;
    let tgts = targets(n, run.seed);
    let jobs = expressivity_jobs(n, run.seed)?;
    let work: Vec<(usize, usize)> = (0..tgts.len())
        .flat_map(|t| (0..jobs.len()).map(move |j| (t, j)))
        .collect();
    let pb = run.progress(work.len() as u64, "expressivity fits");
    let rows: Vec<ExprRow> = work
        .par_iter()
        .map(|&(t, j)| {
            let r = run_job(&jobs[j], &tgts[t].2, tgts[t].0, cfg, run.seed);
            pb.inc(1);
            r
        })
        .collect::<Result<_>>()?;
    pb.finish_and_clear();
    run.write_csv("expressivity.csv", &rows)?;
    for (tname, tdesc, _) in &tgts {
        let mut plot = XyPlot::new(
            format!("{tdesc}, n={n}: GS m=3, BOFT by Adam; rest optimal"),
            "parameters (block entries)",
            "relative error ||A - Â||_F / ||A||_F",
        )
        .scales(Scale::Log, Scale::Linear);
        for fam in FAMILIES {
            plot = plot.with(Series::line(fam, envelope(&rows, tname, fam)));
        }
        run.figure(
            &format!("expressivity_{tname}"),
            &Plot::from(plot),
            &format!(
                "Lowest relative error ||A − Â||_F / ||A||_F reached per parameter budget when approximating {tdesc} (n = {n}) by each family (GS m = 3 and BOFT fitted by Adam, the other families by their optimal projection)."
            ),
        )?;
    }
    // Table: best error within the budget of the smallest dense GS m=2 (b = 2^⌈log2(n)/2⌉).
    let b_dense = 1usize << n.trailing_zeros().div_ceil(2);
    let budget = 2 * n * b_dense;
    let mut table = Vec::new();
    let mut at_budget = serde_json::Map::new();
    for (tname, _, _) in &tgts {
        let mut cells = vec![tname.to_string()];
        let mut obj = serde_json::Map::new();
        for fam in FAMILIES {
            let best = rows
                .iter()
                .filter(|r| r.target == *tname && r.family == fam && r.params <= budget)
                .min_by(|a, b| a.rel_error.total_cmp(&b.rel_error));
            match best {
                Some(r) => {
                    cells.push(format!("{:.3} ({})", r.rel_error, r.params));
                    obj.insert(
                        fam.into(),
                        json!({"rel_error": r.rel_error, "params": r.params, "config": r.config}),
                    );
                }
                None => cells.push("-".into()),
            }
        }
        table.push(cells);
        at_budget.insert(tname.to_string(), serde_json::Value::Object(obj));
    }
    println!("\nbest relative error with at most {budget} parameters (params used):");
    let mut header = vec!["target"];
    header.extend(FAMILIES);
    print_table(&header, &table);
    // How close Adam gets to the exact optimum on the GS m=2 layout.
    let mut gap = 0.0f64;
    for r in rows.iter().filter(|r| r.family == "GS m=2 (Adam)") {
        if let Some(opt) = rows
            .iter()
            .find(|o| o.target == r.target && o.family == "GS m=2" && o.config == r.config)
        {
            gap = gap.max(r.rel_error - opt.rel_error);
        }
    }
    Ok(json!({
        "budget": budget,
        "best_within_budget": at_budget,
        "adam_gs2_max_excess_over_alg1": gap,
    }))
}
