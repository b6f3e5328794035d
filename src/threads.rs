//! Rayon pools with workers pinned to CPUs, for measurements on machines whose scheduler
//! strands a woken worker.
//!
//! Every parallel kernel of this crate wakes the pool's other workers when a parallel region
//! starts. On the 2-vCPU VM this crate is measured on (Linux 6.18), the kernel often queued the
//! woken worker on the CPU of the worker that woke it and left it waiting there while the other
//! CPU idled: `perf sched timehist` showed a helper queued for 3.5 ms on the CPU where its waker
//! kept running, and in 2-thread GS forwards (medians 0.44–0.63 ms per call) the helper spent
//! 0.1–0.56 ms per call runnable but not running. With worker `i` pinned to CPU `i` its wait
//! dropped to 1–4 µs per call (papers/group-and-shuffle.md, fifth session). [`pool`] builds such a pool; the `speed` experiment uses it for its multi-thread
//! pools unless given `--no-pin`.
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
/// [`Error::InvalidArgument`] for `threads == 0` or if rayon cannot start the pool (names the
/// size and rayon's reason).
pub fn pool(threads: usize, pin: bool) -> Result<rayon::ThreadPool> {
    if threads == 0 {
        return Err(Error::InvalidArgument(
            "a pool needs at least 1 thread, got 0".into(),
        ));
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
    builder.build().map_err(|e| {
        Error::InvalidArgument(format!("cannot build a pool of {threads} threads: {e}"))
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
