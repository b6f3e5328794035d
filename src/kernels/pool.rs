//! A process-wide pool of recycled buffers for the chain kernels.
//!
//! The kernels need large short-lived buffers on every call (per-worker scratch panels, the
//! saved factor inputs of a forward pass, the output gradients of a backward pass). Allocating
//! them fresh costs a page fault per 4 KiB page plus zeroing by the kernel, and glibc returns
//! freed heap tops to the system, so a training loop would pay this on every step. Buffers are
//! therefore given back here when their owner is dropped and handed out again by [`take`].
//!
//! Contents of a recycled buffer are stale: callers must write every element they later read.
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

struct Pool {
    bufs: Vec<Box<dyn Any + Send>>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    bufs: Vec::new(),
    bytes: 0,
});

fn bytes_of<T>(v: &Vec<T>) -> usize {
    v.capacity() * std::mem::size_of::<T>()
}

/// A buffer of exactly `len` elements: the smallest pooled `Vec<T>` with capacity in
/// `[len, 2·len]` (stale contents), else a new zeroed one.
pub fn take<T: Real>(len: usize) -> Vec<T> {
    if len * std::mem::size_of::<T>() >= MIN_BYTES {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        let best = pool
            .bufs
            .iter()
            .enumerate()
            .filter_map(|(i, b)| b.downcast_ref::<Vec<T>>().map(|v| (i, v.capacity())))
            .filter(|&(_, cap)| cap >= len && cap <= 2 * len)
            .min_by_key(|&(_, cap)| cap);
        if let Some((i, _)) = best {
            let b = pool.bufs.swap_remove(i);
            let mut v = *b.downcast::<Vec<T>>().expect("pool type checked above");
            pool.bytes -= bytes_of(&v);
            drop(pool);
            v.resize(len, T::zero());
            return v;
        }
    }
    vec![T::zero(); len]
}

/// Returns a buffer to the pool (or frees it if the pool is full or the buffer is small).
pub fn give<T: Real>(v: Vec<T>) {
    let bytes = bytes_of(&v);
    if bytes < MIN_BYTES {
        return;
    }
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if pool.bufs.len() < MAX_BUFFERS && pool.bytes + bytes <= MAX_BYTES {
        pool.bytes += bytes;
        pool.bufs.push(Box::new(v));
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
