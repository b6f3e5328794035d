//! Gathers through a permutation's read offsets, and the shuffle structure that turns them into
//! tiled transpositions.
//!
//! A gather writes `dst[f] = src[base[f] + s·stride]` for every element `f` of every sample `s`.
//! Cut `base` into groups of `len` consecutive elements (the blocks of a step, or segments of an
//! output row). For a GS shuffle `P_(k,n)` every group reads with one constant step `r`, and the
//! groups form **chains**: groups `start, start + step, …` whose first offsets are
//! `a, a + 1, a + 2, …`. Along a chain, group `m` element `t` reads `src[a + m + t·r]`, so the
//! chain is the transposition of the matrix `S[t][m] = src[a + t·r + m]` (rows of `S`
//! contiguous), which [`transpose`] copies in SIMD tiles. [`Transposed`] is that description;
//! maps without it (random permutations, reversals) take the element-by-element loop.

use crate::kernels::transpose::{BlockRows, copy_runs, transpose, transpose_to_blocks};
use std::collections::HashMap;

/// The constant step `r` with `offs[t] = offs[0] + t·r` for all `t`, if there is one.
pub(crate) fn affine_step(offs: &[usize]) -> Option<isize> {
    if offs.len() < 2 {
        return Some(1);
    }
    let r = offs[1] as isize - offs[0] as isize;
    offs.iter()
        .enumerate()
        .all(|(t, &o)| o as isize == offs[0] as isize + t as isize * r)
        .then_some(r)
}

/// Groups `start + m·step` (`m < count`) whose first offsets are `a + m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Chain {
    pub a: usize,
    pub start: usize,
    pub step: usize,
    pub count: usize,
}

/// A gather map seen as transpositions: groups of `len` elements, each reading with step `r`,
/// partitioned into [`Chain`]s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Transposed {
    pub r: usize,
    pub len: usize,
    pub chains: Vec<Chain>,
}

impl Transposed {
    /// The transposed form of `base` for groups of `len` elements, if every group is affine with
    /// one step `r > 0`, the groups split into chains whose group indices are arithmetic
    /// progressions, and the chains are long enough to be worth it (on average at least 4
    /// groups).
    pub fn detect(base: &[usize], len: usize) -> Option<Self> {
        let (&a0, &a1) = (base.first()?, base.get(1)?);
        let r = a1.checked_sub(a0).filter(|&r| r > 0)?;
        if len < 2 || !base.len().is_multiple_of(len) {
            return None;
        }
        let affine = |g: &[usize]| g.iter().enumerate().all(|(t, &o)| o == g[0] + t * r);
        let firsts: Vec<usize> = base.chunks_exact(len).map(|g| g[0]).collect();
        if !base.chunks_exact(len).all(affine) {
            return None;
        }
        let chains = chains_of(&firsts)?;
        (chains.len() * 4 <= firsts.len()).then_some(Self { r, len, chains })
    }
}

/// A gather map prepared once per call: the read offsets `base`, their [`Transposed`] form if any,
/// and their runs of consecutive offsets (never crossing a multiple of `group`: a block, or a
/// whole row), so the per-chunk gathers only copy.
pub(crate) struct Gather {
    pub base: Vec<usize>,
    pub tr: Option<Transposed>,
    runs: Vec<(usize, usize, usize)>,
    by_runs: bool,
}

impl Gather {
    /// Prepares `base` for groups of `group` elements; `tr_len` is the group length tried for the
    /// transposed form (a block size or the first run of `base`).
    pub fn new(base: Vec<usize>, group: usize, tr_len: usize) -> Self {
        let tr = Transposed::detect(&base, tr_len);
        let runs = if tr.is_none() {
            runs_of(&base, group.max(1))
        } else {
            Vec::new()
        };
        // Short runs (a random permutation): one indexed load per element is cheaper.
        let by_runs = tr.is_none() && runs.len() * MIN_RUN <= base.len();
        Self {
            base,
            tr,
            runs,
            by_runs,
        }
    }
}

/// Length of the first run of constant step of `base`: the natural group length of a shuffle.
pub(crate) fn first_run(base: &[usize]) -> usize {
    let Some((&a0, &a1)) = base.first().zip(base.get(1)) else {
        return base.len();
    };
    let r = a1 as isize - a0 as isize;
    (0..base.len())
        .take_while(|&t| base[t] as isize == a0 as isize + t as isize * r)
        .count()
}

/// Splits the groups with first offsets `firsts` into chains (next group: first offset + 1),
/// each with group indices in arithmetic progression; `None` if some chain is not.
fn chains_of(firsts: &[usize]) -> Option<Vec<Chain>> {
    let by_first: HashMap<usize, usize> = firsts.iter().enumerate().map(|(i, &a)| (a, i)).collect();
    let mut seen = vec![false; firsts.len()];
    let mut chains = Vec::new();
    for i in 0..firsts.len() {
        // A chain starts at a group with no predecessor (first offset − 1 is no group's).
        let has_pred = firsts[i]
            .checked_sub(1)
            .is_some_and(|p| by_first.contains_key(&p));
        if seen[i] || has_pred {
            continue;
        }
        let mut members = vec![i];
        while let Some(&next) = by_first.get(&(firsts[*members.last()?] + 1)) {
            members.push(next);
        }
        let step = match members.get(1) {
            Some(&next) if next > i => next - i,
            Some(_) => return None,
            None => 1,
        };
        let arithmetic = members.iter().enumerate().all(|(m, &g)| g == i + m * step);
        if !arithmetic || members.iter().any(|&g| seen[g]) {
            return None;
        }
        members.iter().for_each(|&g| seen[g] = true);
        chains.push(Chain {
            a: firsts[i],
            start: i,
            step,
            count: members.len(),
        });
    }
    seen.iter().all(|&s| s).then_some(chains)
}

/// `dst[j][s·b + v] = src[base[j·b + v] + s·stride]` for every block `j` (each `dst[j]` a
/// `b × c` column-major block) and sample `s < c`; `tr` is the transposed form of `base` for
/// groups of a length dividing `b` (a group is a segment of one block's features) if it has one.
/// Otherwise samples are the outer loop so the source lines of one sample stay in L1 while all
/// blocks pick from them, and every run of consecutive offsets (a whole block for an identity,
/// half-blocks for a BOFT butterfly) is copied in 32-byte moves ([`copy_runs`], one call per
/// gather) when runs average at least [`MIN_RUN`] elements; shorter runs (a random
/// permutation) are gathered element by element.
pub(crate) fn gather_blocks<T: Copy + 'static>(
    dst: &mut [&mut [T]],
    src: &[T],
    g: &Gather,
    stride: usize,
    b: usize,
    c: usize,
) {
    let base = &g.base[..];
    if let Some(tr) = g.tr.as_ref().filter(|tr| b.is_multiple_of(tr.len)) {
        // Group g is segment g % (b/len) of block g / (b/len); per sample, every chain is one
        // transposition whose rows are its groups' segments.
        for ch in &tr.chains {
            let at = BlockRows {
                start: ch.start,
                step: ch.step,
                b,
            };
            let shape = (ch.count, tr.len, c);
            transpose_to_blocks(dst, at, &src[ch.a..], (tr.r, stride), shape);
        }
        return;
    }
    if g.by_runs {
        copy_runs(dst, b, src, stride, &g.runs, c);
        return;
    }
    for s in 0..c {
        let sp = &src[s * stride..];
        for (d, bj) in dst.iter_mut().zip(base.chunks_exact(b)) {
            for (dd, &o) in d[s * b..(s + 1) * b].iter_mut().zip(bj) {
                *dd = sp[o];
            }
        }
    }
}

/// Maximal runs `(f, o, len)` with `base[f + t] = o + t` for `t < len`, never crossing a multiple
/// of `group` (a block, or a whole row).
fn runs_of(base: &[usize], group: usize) -> Vec<(usize, usize, usize)> {
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    for (f, &o) in base.iter().enumerate() {
        match runs.last_mut() {
            Some(run) if f % group != 0 && run.1 + run.2 == o => run.2 += 1,
            _ => runs.push((f, o, 1)),
        }
    }
    runs
}

/// Average run length from which gathers copy runs ([`copy_runs`]) instead of element by element.
const MIN_RUN: usize = 4;

/// Plain rows `dst[s·n + o] = src[base[o] + s·stride]` for the samples of `dst`; with the
/// transposed form `tr` of `base`, each chain of each row is one tiled transposition, else runs
/// of consecutive offsets are copied as in [`gather_blocks`].
pub(crate) fn gather_rows<T: Copy + 'static>(
    dst: &mut [T],
    src: &[T],
    g: &Gather,
    stride: usize,
    n: usize,
) {
    if g.tr.is_none() && g.by_runs {
        // The rows as one block of `n` features per sample.
        let samples = dst.len() / n.max(1);
        let rows = &mut dst[..samples * n];
        copy_runs(&mut [rows], n, src, stride, &g.runs, samples);
        return;
    }
    for (s, d) in dst.chunks_exact_mut(n).enumerate() {
        let sp = &src[s * stride..];
        match &g.tr {
            Some(tr) => {
                for ch in &tr.chains {
                    let (l, ds) = (tr.len, ch.step * tr.len);
                    transpose(&mut d[ch.start * l..], ds, &sp[ch.a..], tr.r, ch.count, l);
                }
            }
            None => {
                for (dd, &o) in d.iter_mut().zip(&g.base) {
                    *dd = sp[o];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_of_4_blocks_of_8_is_one_chain() {
        // Block j, feature v reads feature j of block v of a panel with block stride 100.
        let base: Vec<usize> = (0..32).map(|f| (f % 8) * 100 + f / 8).collect();
        let tr = Transposed::detect(&base, 8).unwrap();
        assert_eq!(tr.r, 100);
        let want = Chain {
            a: 0,
            start: 0,
            step: 1,
            count: 4,
        };
        assert_eq!(tr.chains, vec![want]);
    }

    #[test]
    fn interleaved_chains_and_rejections() {
        // Groups 0,2,4,6 start at 0,1,2,3 and groups 1,3,5,7 at 50,51,52,53 (two chains).
        let firsts = [0, 50, 1, 51, 2, 52, 3, 53];
        let base: Vec<usize> = firsts.iter().flat_map(|&a| [a, a + 7]).collect();
        let tr = Transposed::detect(&base, 2).unwrap();
        assert_eq!(tr.chains.len(), 2);
        assert_eq!((tr.chains[1].start, tr.chains[1].step), (1, 2));
        // Identity (one group per element chain of length 1 each) and random maps are rejected.
        assert!(Transposed::detect(&(0..16).collect::<Vec<_>>(), 4).is_none());
        assert!(Transposed::detect(&[3, 0, 2, 1], 2).is_none());
    }

    /// Half-block runs (a BOFT butterfly: block j takes half-blocks from two distant places),
    /// copied by runs, equal the element-by-element definition; so does a random map.
    #[test]
    fn run_copies_equal_the_definition() {
        let (k, b, c, stride) = (4usize, 24usize, 3usize, 200usize);
        let src: Vec<f32> = (0..c * stride + 200).map(|i| i as f32).collect();
        let half: Vec<usize> = (0..k * b)
            .map(|f| {
                let (j, v) = (f / b, f % b);
                if v < b / 2 {
                    j * 12 + v
                } else {
                    100 + j * 12 + v
                }
            })
            .collect();
        let mut random = half.clone();
        random.reverse();
        for base in [half, random] {
            let mut out = vec![vec![0f32; c * b]; k];
            let mut rows: Vec<&mut [f32]> = out.iter_mut().map(|v| &mut v[..]).collect();
            gather_blocks(
                &mut rows,
                &src,
                &Gather::new(base.clone(), b, b),
                stride,
                b,
                c,
            );
            let mut flat = vec![0f32; c * k * b];
            gather_rows(
                &mut flat,
                &src,
                &Gather::new(base.clone(), k * b, 0),
                stride,
                k * b,
            );
            for s in 0..c {
                for (f, &o) in base.iter().enumerate() {
                    assert_eq!(out[f / b][s * b + f % b], src[o + s * stride]);
                    assert_eq!(flat[s * k * b + f], src[o + s * stride]);
                }
            }
        }
    }

    #[test]
    fn gathers_with_and_without_the_transposed_form_agree() {
        let (k, b, c, bs) = (16usize, 8usize, 3usize, 40usize);
        let src: Vec<f64> = (0..k * bs + 3 * c * b).map(|i| i as f64).collect();
        // Two chains: block j reads feature j/2 of blocks v = 0..8 (+ 8 for odd j).
        let base: Vec<usize> = (0..k * b)
            .map(|f| {
                let (j, v) = (f / b, f % b);
                (v + 8 * (j % 2)) * bs / 2 + j / 2
            })
            .collect();
        // Group length 1 never has a transposed form: the run / element path.
        let (with, without) = (
            Gather::new(base.clone(), b, b),
            Gather::new(base.clone(), b, 1),
        );
        assert!(with.tr.as_ref().is_some_and(|t| t.chains.len() == 2) && without.tr.is_none());
        let run = |g: &Gather| {
            let mut out = vec![vec![-1.0; c * b]; k];
            let mut rows: Vec<&mut [f64]> = out.iter_mut().map(|v| &mut v[..]).collect();
            gather_blocks(&mut rows, &src, g, b, b, c);
            out
        };
        assert_eq!(run(&with), run(&without));
        let rows = |g: &Gather| {
            let mut out = vec![-1.0; c * k * b];
            gather_rows(&mut out, &src, g, b, k * b);
            out
        };
        assert_eq!(first_run(&base), 2 * b);
        let with = Gather::new(base.clone(), k * b, 2 * b);
        assert!(with.tr.is_some());
        assert_eq!(rows(&with), rows(&Gather::new(base.clone(), k * b, 1)));
    }
}
