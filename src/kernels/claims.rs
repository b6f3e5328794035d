//! Work sharing with stable ownership: the items `0..items` (batch chunks) are cut into one
//! contiguous home range per worker; a worker takes items from the front of its home range and,
//! once that is empty, steals from the back of the others'.
//!
//! With rayon's own splitting, which worker runs which chunk changes from call to call, and the
//! chunk's output rows and scratch panels then move between cores. Writing memory that the
//! other core has cached costs several times more than writing memory the core owns (see
//! `kernels::pool`), so the chain kernels hand chunks out through [`Claims`]
//! keyed by the worker's rayon index: in a balanced call every worker runs the same chunks as
//! in the previous one. Stealing from the back keeps a slow worker's first chunks (the ones it
//! is about to run) its own. Which worker runs a chunk never changes the arithmetic.

use rayon::prelude::*;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// One `[front, back)` range per worker, packed as `front | back << 32`.
pub(crate) struct Claims {
    ranges: Vec<AtomicU64>,
}

fn pack(front: usize, back: usize) -> u64 {
    front as u64 | (back as u64) << 32
}

fn unpack(v: u64) -> (usize, usize) {
    ((v & 0xffff_ffff) as usize, (v >> 32) as usize)
}

impl Claims {
    /// `items` split into `groups ≥ 1` home ranges `[g·items/groups, (g+1)·items/groups)`.
    ///
    /// # Panics
    /// If `groups` is 0 or `items` does not fit in 32 bits.
    pub fn new(items: usize, groups: usize) -> Self {
        assert!(groups > 0, "Claims: zero groups");
        assert!(items < 1 << 32, "Claims: {items} items");
        let bound = |g: usize| g * items / groups;
        let ranges = (0..groups)
            .map(|g| AtomicU64::new(pack(bound(g), bound(g + 1))))
            .collect();
        Self { ranges }
    }

    /// Number of home ranges.
    pub fn groups(&self) -> usize {
        self.ranges.len()
    }

    /// The next item for a worker whose home range is `home`: the front of the home range, else
    /// the back of the next non-empty range after it; `None` when every item is taken. Every
    /// item is returned exactly once over all calls.
    pub fn next(&self, home: usize) -> Option<usize> {
        let n = self.groups();
        (0..n).find_map(|i| self.take((home + i) % n, i == 0))
    }

    /// Takes the front (`own`) or the back item of range `g`, if it is not empty.
    fn take(&self, g: usize, own: bool) -> Option<usize> {
        let r = &self.ranges[g];
        let mut cur = r.load(Ordering::Acquire);
        loop {
            let (front, back) = unpack(cur);
            if front >= back {
                return None;
            }
            let (next, item) = if own {
                (pack(front + 1, back), front)
            } else {
                (pack(front, back - 1), back - 1)
            };
            match r.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(item),
                Err(now) => cur = now,
            }
        }
    }
}

/// Runs `f(state, i, item)` for every item of `items` on up to `workers` rayon workers of the
/// current pool, handing the items out through [`Claims`] (home range by rayon index, then
/// stealing). A worker calls `init` once, when it gets its first item, and keeps that state for
/// all its items. With one worker, or outside a pool of several threads, runs in order on the
/// calling thread.
pub(crate) fn par_claimed<I, S>(
    items: Vec<I>,
    workers: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, I) + Sync,
) where
    I: Send,
{
    let workers = workers.min(rayon::current_num_threads()).min(items.len());
    if workers <= 1 {
        let mut state = None;
        for (i, item) in items.into_iter().enumerate() {
            f(state.get_or_insert_with(&init), i, item);
        }
        return;
    }
    let claims = Claims::new(items.len(), workers);
    let slots: Vec<Mutex<Option<I>>> = items.into_iter().map(|v| Mutex::new(Some(v))).collect();
    (0..workers).into_par_iter().for_each(|_| {
        let home = rayon::current_thread_index().unwrap_or(0) % workers;
        let mut state = None;
        while let Some(i) = claims.next(home) {
            let item = slots[i].lock().unwrap_or_else(|e| e.into_inner()).take();
            let item = item.expect("each item is claimed once");
            f(state.get_or_insert_with(&init), i, item);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn owner_takes_its_front_and_thieves_the_back() {
        let c = Claims::new(8, 2);
        assert_eq!(c.next(0), Some(0));
        assert_eq!(c.next(1), Some(4));
        // worker 0 steals from range 1 only when its own is empty
        let own: Vec<_> = (0..3).map(|_| c.next(0)).collect();
        assert_eq!(own, [Some(1), Some(2), Some(3)]);
        assert_eq!(c.next(0), Some(7));
        assert_eq!(c.next(1), Some(5));
        assert_eq!(c.next(1), Some(6));
        assert_eq!((c.next(0), c.next(1)), (None, None));
    }

    #[test]
    fn uneven_splits_cover_every_item_once() {
        for (items, groups) in [(0, 1), (1, 3), (7, 2), (10, 4), (3, 3)] {
            let c = Claims::new(items, groups);
            let mut seen: Vec<usize> = (0..groups * 4).filter_map(|i| c.next(i % groups)).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..items).collect::<Vec<_>>(), "{items}/{groups}");
        }
    }

    #[test]
    fn par_claimed_runs_every_item_once_with_one_state_per_worker() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for workers in [1, 2, 5] {
            let inits = AtomicUsize::new(0);
            let mut out = vec![0usize; 37];
            let items: Vec<&mut usize> = out.iter_mut().collect();
            pool.install(|| {
                par_claimed(
                    items,
                    workers,
                    || inits.fetch_add(1, Ordering::Relaxed),
                    |_, i, slot| *slot += i + 1,
                )
            });
            assert_eq!(out, (1..=37).collect::<Vec<_>>(), "{workers} workers");
            assert!((1..=workers.min(2)).contains(&inits.load(Ordering::Relaxed)));
        }
    }

    #[test]
    fn concurrent_workers_take_every_item_exactly_once() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap();
        for _ in 0..50 {
            let c = Claims::new(97, 4);
            let hits: Vec<AtomicUsize> = (0..97).map(|_| AtomicUsize::new(0)).collect();
            pool.install(|| {
                (0..4).into_par_iter().for_each(|g| {
                    while let Some(q) = c.next(g) {
                        hits[q].fetch_add(1, Ordering::Relaxed);
                    }
                });
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
        }
    }
}
