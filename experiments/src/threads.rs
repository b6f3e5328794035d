//! Rayon pools with workers pinned to CPUs, for timings on machines whose scheduler can leave a
//! woken worker waiting behind the worker that woke it.
//!
//! Every parallel kernel of gslab wakes the pool's other workers when a parallel region starts.
//! If the scheduler queues a woken worker on the CPU of its waker while another CPU idles, a
//! 2-thread call runs at about 1-thread speed; with worker `i` pinned to CPU `i` the woken worker
//! starts at once (measurements: `papers/group-and-shuffle.md`, "Machine notes"). [`pool`] builds
//! such a pool; the `speed` experiment uses it for its multi-thread pools unless given `--no-pin`.
//!
//! Pinning fixes where each worker runs, so it suits a machine that runs nothing else heavy; the
//! default rayon pool (unpinned) is the right choice otherwise.

use crate::error::{Error, Result};

/// A rayon pool of `threads` workers. With `pin` (and more than one worker), worker `i` is
/// pinned to the `(i mod c)`-th of the `c` CPUs this process may run on (`core_affinity`); where
/// the CPUs cannot be listed or a worker cannot be pinned, that worker stays unpinned (see
/// [`pinned_workers`]). A one-worker pool is never pinned: it wakes no other worker.
///
/// # Errors
/// [`Error::Usage`] for `threads == 0`; [`Error::ThreadPool`] if rayon cannot start the pool
/// (names the size and rayon's reason).
pub fn pool(threads: usize, pin: bool) -> Result<rayon::ThreadPool> {
    if threads == 0 {
        return Err(Error::Usage("a pool needs at least 1 thread, got 0".into()));
    }
    let cpus = if pin && threads > 1 {
        core_affinity::get_core_ids().unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut builder = rayon::ThreadPoolBuilder::new().num_threads(threads);
    if !cpus.is_empty() {
        builder = builder.start_handler(move |i| {
            // A failed pin leaves the worker where the scheduler puts it (reported by
            // `pinned_workers`), which is what an unpinned pool does anyway.
            core_affinity::set_for_current(cpus[i % cpus.len()]);
        });
    }
    builder.build().map_err(|e| Error::ThreadPool {
        threads,
        msg: e.to_string(),
    })
}

/// For each worker of `pool`, the CPUs it may run on (`None` where they cannot be listed): one
/// CPU per worker in a pinned pool. This is how `speed` reports whether its pools are pinned.
pub fn pinned_workers(pool: &rayon::ThreadPool) -> Vec<Option<Vec<usize>>> {
    pool.broadcast(|_| core_affinity::get_core_ids().map(|ids| ids.iter().map(|c| c.id).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned workers each run on exactly one CPU, distinct CPUs as long as there are enough;
    /// an unpinned pool's workers keep every CPU of the process.
    #[test]
    #[cfg(target_os = "linux")]
    fn pinned_pool_puts_each_worker_on_its_own_cpu() {
        let all = core_affinity::get_core_ids()
            .expect("Linux lists the CPUs")
            .len();
        let pinned = pinned_workers(&pool(2, true).unwrap());
        let cpus: Vec<Vec<usize>> = pinned.into_iter().map(Option::unwrap).collect();
        assert!(cpus.iter().all(|c| c.len() == 1), "{cpus:?}");
        if all >= 2 {
            assert_ne!(cpus[0], cpus[1], "two workers on one CPU");
        }
        let free = pinned_workers(&pool(2, false).unwrap());
        assert!(
            free.iter().all(|c| c.as_ref().unwrap().len() == all),
            "{free:?}"
        );
        let single = pinned_workers(&pool(1, true).unwrap());
        assert_eq!(
            single[0].as_ref().unwrap().len(),
            all,
            "one worker is left unpinned"
        );
    }

    #[test]
    fn zero_threads_is_an_error_naming_the_count() {
        let e = pool(0, true).unwrap_err().to_string();
        assert!(e.contains("got 0"), "{e}");
    }
}
