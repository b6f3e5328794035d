//! glibc `malloc` settings for loops that allocate and free large tensors every step.
//!
//! glibc serves allocations above its mmap threshold (128 KiB at start, raised as large blocks
//! are freed, at most 32 MiB) with fresh `mmap`s, and gives the top of its heap back to the
//! system whenever more than the trim threshold (twice the mmap threshold) is free. A training
//! step through the tape allocates and frees megabytes of tensors, so each step can pay a page
//! fault for every 4 KiB it touches again and `munmap` calls that interrupt the other threads;
//! [`keep_freed_memory`] keeps that memory in the process instead (what it saves per step:
//! `papers/group-and-shuffle.md`, "Machine notes").
//!
//! The experiment binaries call [`keep_freed_memory`] at start ([`run_main`](crate::run_main);
//! set `GSLAB_MALLOC=default` to run them with glibc's defaults). Outside them the same effect
//! needs no code: set `MALLOC_MMAP_THRESHOLD_=33554432` and `MALLOC_TRIM_THRESHOLD_=1073741824`
//! in the environment.

/// On Linux with glibc, keeps freed memory in the process for the next step: sets
/// `M_MMAP_THRESHOLD` to 32 MiB (glibc's largest, so blocks up to 32 MiB come from the heap) and
/// `M_TRIM_THRESHOLD` to 1 GiB (the heap is not shrunk until 1 GiB of it is free). The process
/// then keeps its peak heap size. Returns whether both settings were accepted; on other targets
/// it does nothing and returns `false`.
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only changes allocator parameters; both values are in the ranges
        // glibc documents (mmap threshold ≤ 32 MiB on 64-bit targets).
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
