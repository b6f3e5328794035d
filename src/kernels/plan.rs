//! Execution plans of the chain kernels: a chain `A = P_{m+1} B_m P_m ⋯ B_1 P_1` (or its
//! transpose) as a sequence of gather + block-product steps, with the read maps of every step
//! for chunks of `c` samples, and a per-layout cache of them.
//!
//! A plan and its maps depend only on the layout, the direction and the chunk size, never on
//! the block values or the batch contents, so [`prepared`] builds them once and keeps them in
//! the layout's [`KernelCache`].

use crate::kernels::gather::{Gather, affine_step, first_run};
use crate::kernels::layout::ChainLayout;
use std::sync::Arc;

/// One block-diagonal step of a plan: `k` blocks mapping `b_in` to `b_out` features, taken from
/// factor `factor` of the layout (transposed for the backward plan), with the gather map σ
/// (logical feature `f` of the step's input is feature `σ(f)` of the previous output).
pub(crate) struct Step {
    pub factor: usize,
    pub k: usize,
    pub b_in: usize,
    pub b_out: usize,
    pub transposed: bool,
    pub gather: Vec<usize>,
}

/// A chain as a sequence of gather + block-product steps and a final gather.
pub(crate) struct Plan {
    pub steps: Vec<Step>,
    pub out_gather: Vec<usize>,
    /// If every block of the last step lands on consecutive output columns:
    /// `(first column, step)` per block, so the last products write the output rows directly.
    pub out_direct: Option<Vec<(usize, isize)>>,
    pub n_in: usize,
    pub n_out: usize,
}

impl Plan {
    /// `Y = X·Aᵀ`: the steps of `A` itself.
    pub(crate) fn forward(layout: &ChainLayout) -> Self {
        let steps: Vec<Step> = layout
            .factors()
            .iter()
            .enumerate()
            .map(|(i, f)| Step {
                factor: i,
                k: f.k,
                b_in: f.b2,
                b_out: f.b1,
                transposed: false,
                gather: layout.perms()[i].as_slice().to_vec(),
            })
            .collect();
        let out_gather = layout.perms()[layout.m()].as_slice().to_vec();
        Self {
            out_direct: direct_output(&steps, &out_gather),
            steps,
            out_gather,
            n_in: layout.n_in(),
            n_out: layout.n_out(),
        }
    }

    /// `Y = X·A`: the steps of `Aᵀ = P_1ᵀ B_1ᵀ ⋯ B_mᵀ P_{m+1}ᵀ`.
    pub(crate) fn transposed(layout: &ChainLayout) -> Self {
        let m = layout.m();
        let steps: Vec<Step> = (0..m)
            .rev()
            .map(|i| {
                let f = layout.factors()[i];
                Step {
                    factor: i,
                    k: f.k,
                    b_in: f.b1,
                    b_out: f.b2,
                    transposed: true,
                    gather: layout.perms()[i + 1].inverse().as_slice().to_vec(),
                }
            })
            .collect();
        let out_gather = layout.perms()[0].inverse().as_slice().to_vec();
        Self {
            out_direct: direct_output(&steps, &out_gather),
            steps,
            out_gather,
            n_in: layout.n_out(),
            n_out: layout.n_in(),
        }
    }
}

/// Padding (in scalars) between the blocks of a panel, so that the blocks of a panel do not sit
/// at power-of-two distances (which thrashes the L1 cache in the gathers).
pub(crate) const PAD: usize = 16;

/// Distance between consecutive blocks of a panel with block size `b` over `c` samples.
pub(crate) fn block_stride(c: usize, b: usize) -> usize {
    c * b + PAD
}

/// Length of a panel of `k` blocks of size `b` over `c` samples.
pub(crate) fn panel_len(k: usize, b: usize, c: usize) -> usize {
    k * block_stride(c, b)
}

/// For the final gather `y[o] = z[σ(o)]`: the output columns of block `j` of the last step are
/// `σ⁻¹(j·b + v)`, `v < b`; returns their `(start, step)` per block if all are consecutive
/// (step ±1). A block landing on strided columns (e.g. GSOFT's final `Pᵀ`) is better written to
/// a panel and gathered row by row, which avoids scattered stores in faer's epilogue.
fn direct_output(steps: &[Step], out_gather: &[usize]) -> Option<Vec<(usize, isize)>> {
    let last = steps.last()?;
    let mut inv = vec![0; out_gather.len()];
    for (o, &g) in out_gather.iter().enumerate() {
        inv[g] = o;
    }
    inv.chunks_exact(last.b_out)
        .map(|cols| {
            affine_step(cols)
                .filter(|r| r.abs() == 1)
                .map(|r| (cols[0], r))
        })
        .collect()
}

/// How one step (or the final gather) reads its source for chunks of `c` samples: element
/// `f` of sample `s` sits at `g.base[f] + s·ss`; `rs[j]` is block `j`'s row step if every block's
/// offsets are affine (then the product reads the source through a strided view). `g` also holds
/// the map's transposed form (a shuffle: tiled transpositions) and its runs of consecutive
/// offsets, prepared once per layout and chunk size (see [`prepared`]).
pub(crate) struct ReadMap {
    pub g: Gather,
    pub ss: usize,
    pub rs: Option<Vec<isize>>,
}

impl ReadMap {
    /// The map with its transposed form, for groups of the first run of `base` capped at
    /// `block` (a step's input block size; `None` for the final gather into plain rows).
    fn new(base: Vec<usize>, ss: usize, rs: Option<Vec<isize>>, block: Option<usize>) -> Self {
        let run = first_run(&base);
        let (group, len) = match block {
            Some(b) => (b, run.min(b)),
            None => (base.len(), run),
        };
        Self {
            g: Gather::new(base, group, len),
            ss,
            rs,
        }
    }
}

/// The read maps of every step and of the final gather for chunks of `c` samples. They depend
/// only on the plan and `c`, so they are cached with the plan (full chunks, and the last
/// partial chunk) and shared by all workers.
pub(crate) struct Maps {
    pub steps: Vec<ReadMap>,
    pub out: ReadMap,
}

impl Maps {
    pub(crate) fn new(plan: &Plan, c: usize) -> Self {
        let steps = plan
            .steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let mut base = vec![0; step.k * step.b_in];
                let panel_b = (i > 0).then(|| plan.steps[i - 1].b_out);
                let ss = fill_base(&mut base, &step.gather, panel_b, plan.n_in, c);
                let rs = base.chunks_exact(step.b_in).map(affine_step).collect();
                ReadMap::new(base, ss, rs, Some(step.b_in))
            })
            .collect();
        let mut base = vec![0; plan.n_out];
        let last_b = plan.steps.last().map_or(1, |s| s.b_out);
        let ss = fill_base(&mut base, &plan.out_gather, Some(last_b), 0, c);
        Self {
            steps,
            out: ReadMap::new(base, ss, None, None),
        }
    }
}

/// Offsets for reading through the gather map `map` from a source that is either plain rows of
/// length `n` (`panel_b = None`) or a panel with block size `b` over `c` samples. Returns the
/// per-sample stride: logical element `map[f]` of sample `s` sits at `base[f] + s·stride`.
fn fill_base(
    base: &mut [usize],
    map: &[usize],
    panel_b: Option<usize>,
    n: usize,
    c: usize,
) -> usize {
    match panel_b {
        None => {
            base.copy_from_slice(map);
            n
        }
        Some(b) => {
            let bs = block_stride(c, b);
            for (o, &g) in base.iter_mut().zip(map) {
                *o = (g / b) * bs + g % b;
            }
            b
        }
    }
}

/// A plan with the read maps for chunks of `c` samples (see [`prepared`]).
pub(crate) struct Prepared {
    pub plan: Plan,
    pub maps: Maps,
}

/// Which plan of a layout: `Y = X·Aᵀ` (forward) or `Y = X·A` (transposed, the backward).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Forward,
    Transposed,
}

/// The plan of `layout` in direction `dir` with its read maps for chunks of `c` samples, from the
/// layout's [`KernelCache`](crate::kernels::layout::KernelCache) (built and cached on first use;
/// a loop uses two per direction: full and last chunk).
pub(crate) fn prepared(layout: &ChainLayout, dir: Direction, c: usize) -> Arc<Prepared> {
    let key = (dir as u8, c);
    layout.kernel_cache().get_or_insert(key, || {
        let plan = match dir {
            Direction::Forward => Plan::forward(layout),
            Direction::Transposed => Plan::transposed(layout),
        };
        let maps = Maps::new(&plan, c);
        Prepared { plan, maps }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::BlockShape;
    use crate::kernels::layout::KernelCache;

    fn layout() -> ChainLayout {
        let s = BlockShape::square(4, 8);
        ChainLayout::gsoft(s, s).unwrap()
    }

    #[test]
    fn plans_are_built_once_per_key_and_shared_by_clones() {
        let l = layout();
        let a = prepared(&l, Direction::Forward, 16);
        let b = prepared(&l, Direction::Forward, 16);
        assert!(Arc::ptr_eq(&a, &b), "second lookup hits the cache");
        let t = prepared(&l, Direction::Transposed, 16);
        assert!(!Arc::ptr_eq(&a, &t), "directions are separate entries");
        assert_eq!(a.plan.steps.len(), 2);
        assert!(a.plan.steps.iter().all(|s| !s.transposed));
        assert!(t.plan.steps.iter().all(|s| s.transposed));
        let c = prepared(&l, Direction::Forward, 5);
        assert!(!Arc::ptr_eq(&a, &c), "chunk sizes are separate entries");
        let copy = l.clone();
        assert!(Arc::ptr_eq(&a, &prepared(&copy, Direction::Forward, 16)));
        assert_eq!(l.kernel_cache().len(), 3);
    }

    #[test]
    fn cache_is_bounded_and_ignored_by_equality() {
        let l = layout();
        let first = prepared(&l, Direction::Forward, 1);
        for c in 2..=KernelCache::CAPACITY + 3 {
            prepared(&l, Direction::Forward, c);
        }
        assert_eq!(l.kernel_cache().len(), KernelCache::CAPACITY);
        let again = prepared(&l, Direction::Forward, 1);
        assert!(!Arc::ptr_eq(&first, &again), "the oldest entry was evicted");
        assert_eq!(l, layout(), "a used cache does not change equality");
    }
}
