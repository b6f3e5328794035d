//! A pool of recycled buffers for the chain kernels: one small pool per thread in front of a
//! process-wide one.
//!
//! The kernels need large short-lived buffers on every call (per-worker scratch panels, the
//! worker's column-major copy of the blocks, the saved factor inputs of a forward pass, the
//! output gradients of a backward pass). Allocating them fresh costs a page fault per 4 KiB page
//! plus zeroing by the kernel, and glibc returns freed heap tops to the system, so a training
//! loop would pay this on every step. Buffers are therefore given back here when their owner is
//! dropped and handed out again by [`take`].
//!
//! **Thread-local first.** A buffer goes back to the pool of the thread that drops it, and
//! [`take`] looks there before the shared pool, so a rayon worker gets back the scratch it wrote
//! in the previous call: writing memory that another core has cached costs several times more
//! than writing memory the core owns (measured by `cargo bench --bench structured --
//! cross_core_write`; numbers in `papers/`), so handing one worker's scratch to the other costs
//! more than the copy it serves. A thread keeps at most [`LOCAL_BUFFERS`] buffers and
//! [`LOCAL_BYTES`] bytes; the oldest overflow into the shared pool.
//!
//! Contents of a recycled buffer are stale: callers must write every element they later read.
//!
//! Setting the environment variable `GSLAB_POOL=off` disables recycling (every buffer is
//! allocated fresh and freed on drop); it exists to measure what the pool changes.
//! The shared pool keeps at most [`MAX_BUFFERS`] buffers and [`MAX_BYTES`] bytes; anything
//! beyond is freed normally.

use crate::real::Real;
use std::any::Any;
use std::cell::RefCell;
use std::sync::Mutex;

/// Most buffers kept in the shared pool.
pub const MAX_BUFFERS: usize = 64;

/// Most bytes kept in the shared pool (sum of capacities).
pub const MAX_BYTES: usize = 128 << 20;

/// Most buffers kept in one thread's pool.
pub const LOCAL_BUFFERS: usize = 16;

/// Most bytes kept in one thread's pool.
pub const LOCAL_BYTES: usize = 16 << 20;

/// Buffers smaller than this many bytes are not pooled (the allocator handles them well).
const MIN_BYTES: usize = 16 << 10;

/// A pooled buffer: its size in bytes and the `Vec<T>` itself.
type Entry = (usize, Box<dyn Any + Send>);

/// Pooled buffers, oldest first, each with its size in bytes, and the pool's limits.
struct Pool {
    bufs: Vec<Entry>,
    bytes: usize,
    max_buffers: usize,
    max_bytes: usize,
}

impl Pool {
    const fn new(max_buffers: usize, max_bytes: usize) -> Self {
        Self {
            bufs: Vec::new(),
            bytes: 0,
            max_buffers,
            max_bytes,
        }
    }
}

static POOL: Mutex<Pool> = Mutex::new(Pool::new(MAX_BUFFERS, MAX_BYTES));

thread_local! {
    static LOCAL: RefCell<Pool> = const { RefCell::new(Pool::new(LOCAL_BUFFERS, LOCAL_BYTES)) };
}

fn bytes_of<T>(v: &Vec<T>) -> usize {
    v.capacity() * std::mem::size_of::<T>()
}

impl Pool {
    /// Removes and returns the smallest pooled `Vec<T>` with capacity in `[len, 2·len]`, the most
    /// recently returned one among equals: it is the most likely to be still in cache (taking the
    /// oldest makes a mix of ops cycle through every pooled buffer of a size).
    fn take<T: Real>(&mut self, len: usize) -> Option<Vec<T>> {
        let (i, _) = self
            .bufs
            .iter()
            .enumerate()
            .rev()
            .filter_map(|(i, (_, b))| b.downcast_ref::<Vec<T>>().map(|v| (i, v.capacity())))
            .filter(|&(_, cap)| cap >= len && cap <= 2 * len)
            .min_by_key(|&(_, cap)| cap)?;
        let (bytes, b) = self.bufs.remove(i);
        self.bytes -= bytes;
        Some(*b.downcast::<Vec<T>>().expect("pool type checked above"))
    }

    /// Keeps a buffer of `bytes` bytes; returns the buffers evicted to make room (the buffer
    /// itself if it is larger than the byte limit).
    fn evicted(&mut self, bytes: usize, b: Box<dyn Any + Send>) -> Vec<Entry> {
        if bytes > self.max_bytes {
            return vec![(bytes, b)];
        }
        let mut out = Vec::new();
        while self.bufs.len() >= self.max_buffers || self.bytes + bytes > self.max_bytes {
            let old = self.bufs.remove(0);
            self.bytes -= old.0;
            out.push(old);
        }
        self.bytes += bytes;
        self.bufs.push((bytes, b));
        out
    }
}

/// False when the environment variable `GSLAB_POOL` is `off` (read once).
fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("GSLAB_POOL").map_or(true, |v| v != "off"))
}

/// A buffer of exactly `len` elements: the smallest `Vec<T>` with capacity in `[len, 2·len]`
/// from this thread's pool, else from the shared pool (stale contents), else a new zeroed one.
pub fn take<T: Real>(len: usize) -> Vec<T> {
    if enabled() && len * std::mem::size_of::<T>() >= MIN_BYTES {
        let local = LOCAL.try_with(|l| l.borrow_mut().take::<T>(len));
        let found = local.ok().flatten().or_else(|| {
            POOL.lock()
                .unwrap_or_else(|e| e.into_inner())
                .take::<T>(len)
        });
        if let Some(mut v) = found {
            v.resize(len, T::zero());
            return v;
        }
    }
    vec![T::zero(); len]
}

/// Returns a buffer to this thread's pool; the oldest buffers of a full thread pool move to the
/// shared pool, whose oldest are freed, so the pools follow the current working set (a loop
/// that changes sizes does not leave them full of buffers nobody asks for). Small buffers and
/// buffers larger than [`MAX_BYTES`] are freed.
pub fn give<T: Real>(v: Vec<T>) {
    let bytes = bytes_of(&v);
    if !enabled() || bytes < MIN_BYTES {
        return;
    }
    let b: Box<dyn Any + Send> = Box::new(v);
    // During thread teardown the thread's pool may be gone: the buffer is then freed.
    let over = LOCAL
        .try_with(|l| l.borrow_mut().evicted(bytes, b))
        .unwrap_or_default();
    if over.is_empty() {
        return;
    }
    let mut shared = POOL.lock().unwrap_or_else(|e| e.into_inner());
    for (bytes, b) in over {
        drop(shared.evicted(bytes, b));
    }
}

/// A `Vec<T>` from the pool that goes back to the pool when dropped. Its contents are stale when
/// it comes from the pool (see the module docs).
#[derive(Clone, Debug)]
pub struct PoolVec<T> {
    v: Vec<T>,
    back: fn(Vec<T>),
}

impl<T: Real> PoolVec<T> {
    /// A buffer of `len` elements, recycled if possible (stale contents), else zeroed.
    pub fn new(len: usize) -> Self {
        Self {
            v: take(len),
            back: give::<T>,
        }
    }
}

impl<T> std::ops::Deref for PoolVec<T> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.v
    }
}

impl<T> std::ops::DerefMut for PoolVec<T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        &mut self.v
    }
}

impl<T> Drop for PoolVec<T> {
    fn drop(&mut self) {
        (self.back)(std::mem::take(&mut self.v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What [`give`] does with one pool: small buffers are dropped, the rest kept.
    fn give_to<T: Real>(pool: &mut Pool, v: Vec<T>) {
        let bytes = bytes_of(&v);
        if bytes >= MIN_BYTES {
            drop(pool.evicted(bytes, Box::new(v)));
        }
    }

    /// A buffer given back on a thread is handed out again on that thread, and not on another
    /// one (the per-thread tier); it survives only as long as its thread's pool.
    #[test]
    fn buffers_return_to_the_thread_that_gave_them() {
        let len = 3 * MIN_BYTES / 8 + 17; // a size no other test uses (f64)
        let (mine, again) = std::thread::spawn(move || {
            let v: Vec<f64> = take(len);
            let ptr = v.as_ptr() as usize;
            give(v);
            let w: Vec<f64> = take(len);
            (ptr, w.as_ptr() as usize)
        })
        .join()
        .unwrap();
        assert_eq!(mine, again, "same thread gets its own buffer back");
        let kept = std::thread::spawn(move || {
            give(vec![0.0f64; len]);
            let here = LOCAL.with(|l| l.borrow().bufs.len());
            // another thread does not see this thread's pool
            let other = std::thread::spawn(move || LOCAL.with(|l| l.borrow().bufs.len()))
                .join()
                .unwrap();
            (here, other)
        })
        .join()
        .unwrap();
        assert_eq!(kept, (1, 0));
    }

    #[test]
    fn full_pool_evicts_oldest_so_new_sizes_are_kept() {
        let mut pool = Pool::new(MAX_BUFFERS, MAX_BYTES);
        let small = MIN_BYTES / 8; // f64 elements of the smallest pooled size
        for _ in 0..MAX_BUFFERS {
            give_to(&mut pool, vec![0.0f64; small]);
        }
        assert_eq!(pool.bufs.len(), MAX_BUFFERS);
        // a buffer of another size still gets in, replacing the oldest one
        give_to(&mut pool, vec![1.0f64; 3 * small]);
        assert_eq!(pool.bufs.len(), MAX_BUFFERS);
        let v: Vec<f64> = pool.take(3 * small).expect("the new size was kept");
        assert_eq!(v.capacity(), 3 * small);
        // byte limit: one buffer of MAX_BYTES evicts everything else
        give_to(&mut pool, vec![0.0f64; MAX_BYTES / 8]);
        assert_eq!(pool.bufs.len(), 1);
        assert_eq!(pool.bytes, MAX_BYTES);
        // too small or too large: dropped
        give_to(&mut pool, vec![0.0f32; 4]);
        give_to(&mut pool, vec![0.0f64; MAX_BYTES / 8 + 1]);
        assert_eq!(pool.bufs.len(), 1);
        assert!(
            pool.take::<f32>(MAX_BYTES / 8).is_none(),
            "types are kept apart"
        );
    }
}
