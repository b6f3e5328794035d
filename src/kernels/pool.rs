//! A process-wide pool of recycled buffers for the chain kernels.
//!
//! The kernels need large short-lived buffers on every call (per-worker scratch panels, the
//! saved factor inputs of a forward pass, the output gradients of a backward pass). Allocating
//! them fresh costs a page fault per 4 KiB page plus zeroing by the kernel, and glibc returns
//! freed heap tops to the system, so a training loop would pay this on every step. Buffers are
//! therefore given back here when their owner is dropped and handed out again by [`take`].
//!
//! Contents of a recycled buffer are stale: callers must write every element they later read.
//!
//! Setting the environment variable `GSLAB_POOL=off` disables recycling (every buffer is
//! allocated fresh and freed on drop); it exists to measure what the pool changes.
//! The pool keeps at most [`MAX_BUFFERS`] buffers and [`MAX_BYTES`] bytes; anything beyond is
//! freed normally.

use crate::real::Real;
use std::any::Any;
use std::sync::Mutex;

/// Most buffers kept in the pool.
pub const MAX_BUFFERS: usize = 64;

/// Most bytes kept in the pool (sum of capacities).
pub const MAX_BYTES: usize = 128 << 20;

/// Buffers smaller than this many bytes are not pooled (the allocator handles them well).
const MIN_BYTES: usize = 16 << 10;

/// Pooled buffers, oldest first, each with its size in bytes.
struct Pool {
    bufs: Vec<(usize, Box<dyn Any + Send>)>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    bufs: Vec::new(),
    bytes: 0,
});

fn bytes_of<T>(v: &Vec<T>) -> usize {
    v.capacity() * std::mem::size_of::<T>()
}

impl Pool {
    /// Removes and returns the smallest pooled `Vec<T>` with capacity in `[len, 2·len]`, the most
    /// recently returned one among equals: it is the most likely to be still in cache (taking the
    /// oldest made a mix of ops cycle through every pooled buffer of a size, about 20 % slower).
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

    /// Keeps `v`, evicting the oldest buffers while the pool would exceed [`MAX_BUFFERS`] or
    /// [`MAX_BYTES`]; small buffers and buffers larger than [`MAX_BYTES`] are dropped.
    fn give<T: Real>(&mut self, v: Vec<T>) {
        let bytes = bytes_of(&v);
        if !(MIN_BYTES..=MAX_BYTES).contains(&bytes) {
            return;
        }
        while self.bufs.len() >= MAX_BUFFERS || self.bytes + bytes > MAX_BYTES {
            let (old, _) = self.bufs.remove(0);
            self.bytes -= old;
        }
        self.bytes += bytes;
        self.bufs.push((bytes, Box::new(v)));
    }
}

/// False when the environment variable `GSLAB_POOL` is `off` (read once).
fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("GSLAB_POOL").map_or(true, |v| v != "off"))
}

/// A buffer of exactly `len` elements: the smallest pooled `Vec<T>` with capacity in
/// `[len, 2·len]` (stale contents), else a new zeroed one.
pub fn take<T: Real>(len: usize) -> Vec<T> {
    if enabled() && len * std::mem::size_of::<T>() >= MIN_BYTES {
        let found = POOL
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take::<T>(len);
        if let Some(mut v) = found {
            v.resize(len, T::zero());
            return v;
        }
    }
    vec![T::zero(); len]
}

/// Returns a buffer to the pool, evicting the oldest pooled buffers while the pool would exceed
/// [`MAX_BUFFERS`] or [`MAX_BYTES`], so the pool follows the current working set (a loop that
/// changes sizes does not leave it full of buffers nobody asks for). Small buffers and buffers
/// larger than [`MAX_BYTES`] are freed.
pub fn give<T: Real>(v: Vec<T>) {
    if !enabled() {
        return;
    }
    POOL.lock().unwrap_or_else(|e| e.into_inner()).give(v);
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

    #[test]
    fn full_pool_evicts_oldest_so_new_sizes_are_kept() {
        let mut pool = Pool {
            bufs: Vec::new(),
            bytes: 0,
        };
        let small = MIN_BYTES / 8; // f64 elements of the smallest pooled size
        for _ in 0..MAX_BUFFERS {
            pool.give(vec![0.0f64; small]);
        }
        assert_eq!(pool.bufs.len(), MAX_BUFFERS);
        // a buffer of another size still gets in, replacing the oldest one
        pool.give(vec![1.0f64; 3 * small]);
        assert_eq!(pool.bufs.len(), MAX_BUFFERS);
        let v: Vec<f64> = pool.take(3 * small).expect("the new size was kept");
        assert_eq!(v.capacity(), 3 * small);
        // byte limit: one buffer of MAX_BYTES evicts everything else
        pool.give(vec![0.0f64; MAX_BYTES / 8]);
        assert_eq!(pool.bufs.len(), 1);
        assert_eq!(pool.bytes, MAX_BYTES);
        // too small or too large: dropped
        pool.give(vec![0.0f32; 4]);
        pool.give(vec![0.0f64; MAX_BYTES / 8 + 1]);
        assert_eq!(pool.bufs.len(), 1);
        assert!(
            pool.take::<f32>(MAX_BYTES / 8).is_none(),
            "types are kept apart"
        );
    }
}
