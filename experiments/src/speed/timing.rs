//! The timing harness: median wall time over rounds in which the compared ops and the thread
//! counts take turns, with per-call CPU time, run-queue wait and page faults read from `/proc`;
//! and the 1-vs-t-thread bitwise comparison of every op's outputs.

use super::workloads::{Work, bitwise_equal};
use super::{Config, Grid, Op, Pass, Point};
use crate::Result;
use faer::Par;
use gslab::Real;
use rand::rngs::StdRng;
use rayon::ThreadPool;
use serde::Serialize;
use std::hint::black_box;
use std::time::Instant;

const MAX_REPS: usize = 200;

/// One CSV row.
#[derive(Clone, Debug, Serialize)]
pub(super) struct Row {
    pub(super) op: &'static str,
    pub(super) n: usize,
    pub(super) b: usize,
    pub(super) batch: usize,
    pub(super) threads: usize,
    pub(super) dtype: &'static str,
    pub(super) pass: &'static str,
    pub(super) median_s: f64,
    pub(super) gflops: f64,
}

/// Per-call diagnostics of a measurement, over the timed calls (not the warm-up).
#[derive(Clone, Copy, Debug, Serialize)]
pub(super) struct Diag {
    /// Minor page faults per call (every fresh page an allocation touches costs one).
    pub(super) faults: f64,
    /// CPU time of all threads of the process per call, seconds (`/proc/self/task/*/schedstat`).
    pub(super) cpu_s: f64,
    /// Time threads of the process spent runnable but waiting for a CPU, per call, seconds: the
    /// direct measure of how much other load on the machine slowed this measurement. Summed over
    /// all threads (a rayon worker spinning between jobs is runnable too), so it can exceed the
    /// wall time.
    pub(super) runq_wait_s: f64,
}

/// Timed rounds per measurement: the ops of a point and the thread counts take turns, round
/// after round, so that a change of machine speed during a measurement hits all of them alike.
const ROUNDS: usize = 5;

/// Factor on the number of rounds (and so of timed calls) at the two points the targets are
/// read at ([`Grid::is_target_point`]).
const TARGET_REPEATS: usize = 3;

/// Untimed calls at the start of every timed block: after the other pool's turn, the first call
/// pays for moving the data into this thread's caches and for the idle workers of the previous
/// pool, which is not the cost of the op.
const BLOCK_WARM_UP: usize = 2;

/// Samples and counters of one thread count of a measurement.
struct Acc {
    ts: Vec<f64>,
    /// `(minor faults, on-CPU ns, run-queue wait ns)`; `None` once a counter read failed.
    counters: Option<(u64, u64, u64)>,
}

impl Acc {
    fn new() -> Self {
        Self {
            ts: Vec::new(),
            counters: Some((0, 0, 0)),
        }
    }

    /// Runs [`BLOCK_WARM_UP`] untimed calls of `f` (the pool that ran before may still hold the
    /// CPUs and caches), then `reps` timed calls, adding the samples and the counter deltas.
    fn block(&mut self, f: &mut dyn FnMut(), reps: usize) {
        for _ in 0..BLOCK_WARM_UP {
            f();
        }
        let before = minor_faults().zip(sched_totals());
        for _ in 0..reps {
            let t = Instant::now();
            f();
            self.ts.push(t.elapsed().as_secs_f64());
        }
        let after = minor_faults().zip(sched_totals());
        self.counters = match (self.counters, before, after) {
            (Some(c), Some((f0, s0)), Some((f1, s1))) => Some((
                c.0 + f1.saturating_sub(f0),
                c.1 + s1.0.saturating_sub(s0.0),
                c.2 + s1.1.saturating_sub(s0.1),
            )),
            _ => None,
        };
    }

    /// Median of the samples and the per-call diagnostics.
    fn finish(mut self) -> (f64, Diag) {
        let n = self.ts.len().max(1) as f64;
        let per = |v: Option<u64>, scale: f64| v.map_or(f64::NAN, |v| v as f64 * scale / n);
        let c = self.counters;
        let diag = Diag {
            faults: per(c.map(|c| c.0), 1.0),
            cpu_s: per(c.map(|c| c.1), 1e-9),
            runq_wait_s: per(c.map(|c| c.2), 1e-9),
        };
        self.ts.sort_by(f64::total_cmp);
        let m = self.ts.len() / 2;
        let median = match self.ts.len() {
            0 => f64::NAN,
            l if l % 2 == 1 => self.ts[m],
            _ => 0.5 * (self.ts[m - 1] + self.ts[m]),
        };
        (median, diag)
    }
}

/// Warm-up of `f` for a quarter of `budget` (at least one call); returns the last call's time.
fn warm_up(f: &mut dyn FnMut(), budget: f64) -> f64 {
    let mut warm = 0.0;
    loop {
        let t = Instant::now();
        f();
        let last = t.elapsed().as_secs_f64();
        warm += last;
        if warm >= 0.25 * budget {
            return last;
        }
    }
}

/// Minor page faults of this process so far (`/proc/self/stat` field 10), if readable.
fn minor_faults() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(7)?.parse().ok()
}

/// `(on-CPU ns, run-queue wait ns)` summed over the live threads of this process (Linux
/// `/proc/self/task/*/schedstat`), if readable.
pub(super) fn sched_totals() -> Option<(u64, u64)> {
    let mut tot = (0u64, 0u64);
    for e in std::fs::read_dir("/proc/self/task").ok()? {
        let s = std::fs::read_to_string(e.ok()?.path().join("schedstat")).ok()?;
        let mut it = s.split_whitespace().map(|v| v.parse::<u64>().ok());
        tot.0 += it.next()??;
        tot.1 += it.next()??;
    }
    Some(tot)
}

/// A 1-vs-t-thread output comparison.
#[derive(Clone, Debug, Serialize)]
pub(super) struct Identity {
    pub(super) op: &'static str,
    pub(super) n: usize,
    pub(super) b: usize,
    pub(super) batch: usize,
    pub(super) dtype: &'static str,
    pub(super) pass: &'static str,
    pub(super) identical: bool,
}

/// Results of the sweep.
pub(super) struct Sweep {
    pub(super) rows: Vec<Row>,
    /// Diagnostics, one per row.
    pub(super) diag: Vec<Diag>,
    /// `(CPU s, run-queue wait s)` of the whole sweep, all threads of the process.
    pub(super) sched: Option<(f64, f64)>,
    pub(super) identity: Vec<Identity>,
    /// Per pool `(threads, the CPUs each worker may run on)`.
    pub(super) cpus: Vec<(usize, Vec<Option<Vec<usize>>>)>,
}

pub(super) fn dtype_name<T: Real>() -> &'static str {
    if T::DTYPE == "F32" { "f32" } else { "f64" }
}

/// Measures every pass of every case of `group` (the ops compared at one point) on every pool,
/// appending rows (in case, pass, pool order) and 1-vs-t comparisons.
///
/// Per pass, every `(case, pool)` gets its outputs kept (bitwise check) and a warm-up; then
/// [`ROUNDS`] rounds run, each timing one block of calls of every case on every pool in turn, so
/// a change of machine speed during the group hits all the compared ops alike (the targets are
/// ratios of these ops).
pub(super) fn measure_group<T: Real>(
    group: &[(Op, Point)],
    cfg: &Config,
    pools: &[(usize, ThreadPool)],
    rng: &mut StdRng,
    out: &mut Sweep,
    tick: &dyn Fn(),
) -> Result<()> {
    let mut works: Vec<Work<T>> = group
        .iter()
        .map(|&(op, p)| Work::<T>::build(op, p, rng))
        .collect::<Result<_>>()?;
    let par_of = |t: usize| if t == 1 { Par::Seq } else { Par::rayon(t) };
    // results[case][pass index] = per pool (seconds, diag); identity[case][pass index].
    let mut results: Vec<Vec<Vec<(f64, Diag)>>> = group.iter().map(|_| Vec::new()).collect();
    let mut identical: Vec<Vec<Option<bool>>> = group.iter().map(|_| Vec::new()).collect();
    for pass in [Pass::Fwd, Pass::FwdBwd] {
        let members: Vec<usize> = (0..group.len())
            .filter(|&c| group[c].0.passes().contains(&pass))
            .collect();
        // reps[c][pool]: calls per round, clamp(budget / t_call, min_reps, MAX_REPS) in total.
        let mut reps: Vec<Vec<usize>> = vec![Vec::new(); group.len()];
        for &c in &members {
            let mut outputs: Vec<Vec<T>> = Vec::new();
            for (t, pool) in pools {
                let par = par_of(*t);
                let work = &mut works[c];
                let (kept, last) = pool.install(|| {
                    let kept = work.run(pass, par, true);
                    let mut call = || {
                        black_box(work.run(pass, par, false));
                    };
                    (kept, warm_up(&mut call, cfg.budget))
                });
                outputs.extend(kept);
                let total =
                    ((cfg.budget / last.max(1e-9)).ceil() as usize).clamp(cfg.min_reps, MAX_REPS);
                reps[c].push(total.div_ceil(ROUNDS));
            }
            identical[c].push(
                (outputs.len() >= 2)
                    .then(|| outputs[1..].iter().all(|o| bitwise_equal(&outputs[0], o))),
            );
        }
        let mut accs: Vec<Vec<Acc>> = (0..group.len())
            .map(|_| pools.iter().map(|_| Acc::new()).collect())
            .collect();
        // The two points the targets are read at (the target point and the threading point at
        // `big_n`) get TARGET_REPEATS times the rounds: more rounds average over more of the
        // machine's slow episodes.
        let at_target = group.iter().any(|&(_, p)| cfg.grid.is_target_point(&p));
        let rounds = ROUNDS * if at_target { TARGET_REPEATS } else { 1 };
        for _ in 0..rounds {
            for &c in &members {
                for (i, (t, pool)) in pools.iter().enumerate() {
                    let par = par_of(*t);
                    let (work, acc) = (&mut works[c], &mut accs[c][i]);
                    let mut call = || {
                        black_box(work.run(pass, par, false));
                    };
                    pool.install(|| acc.block(&mut call, reps[c][i]));
                }
            }
        }
        for &c in &members {
            let accs = std::mem::take(&mut accs[c]);
            results[c].push(accs.into_iter().map(Acc::finish).collect());
        }
    }
    for (c, &(op, p)) in group.iter().enumerate() {
        for (k, &pass) in op.passes().iter().enumerate() {
            let flops = works[c].flops(p, pass);
            for ((t, _), &(secs, diag)) in pools.iter().zip(&results[c][k]) {
                out.diag.push(diag);
                out.rows.push(Row {
                    op: op.name(),
                    n: p.n,
                    b: p.b,
                    batch: p.batch,
                    threads: *t,
                    dtype: dtype_name::<T>(),
                    pass: pass.name(),
                    median_s: secs,
                    gflops: flops / secs * 1e-9,
                });
                tick();
            }
            if let Some(identical) = identical[c][k] {
                out.identity.push(Identity {
                    op: op.name(),
                    n: p.n,
                    b: p.b,
                    batch: p.batch,
                    dtype: dtype_name::<T>(),
                    pass: pass.name(),
                    identical,
                });
            }
        }
    }
    Ok(())
}

/// Splits the point-major case list into groups of consecutive cases with the same key (the ops
/// compared at one point: the structured ops, dense at the same `(n, batch)`, Cayley at `n/b`
/// blocks, see [`Grid::cases`]).
pub(super) fn point_groups<'a>(grid: &Grid, cases: &'a [(Op, Point)]) -> Vec<&'a [(Op, Point)]> {
    cases
        .chunk_by(|a, b| grid.point_key(&a.1) == grid.point_key(&b.1))
        .collect()
}

pub(super) fn load_average() -> Option<String> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// Finds the row of `op` at `p` (row conventions applied), `threads`, `dtype`, `pass`.
pub(super) fn find<'a>(
    sw: &'a Sweep,
    grid: &Grid,
    op: Op,
    p: Point,
    threads: usize,
    dtype: &str,
    pass: Pass,
) -> Option<&'a Row> {
    find_index(sw, grid, op, p, threads, dtype, pass).map(|i| &sw.rows[i])
}

/// The index of the row [`find`] returns.
pub(super) fn find_index(
    sw: &Sweep,
    grid: &Grid,
    op: Op,
    p: Point,
    threads: usize,
    dtype: &str,
    pass: Pass,
) -> Option<usize> {
    let p = grid.point_for(op, p);
    sw.rows.iter().position(|r| {
        r.op == op.name()
            && r.n == p.n
            && r.b == p.b
            && r.batch == p.batch
            && r.threads == threads
            && r.dtype == dtype
            && r.pass == pass.name()
    })
}
