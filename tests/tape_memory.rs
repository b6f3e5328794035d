//! Memory stays flat over long runs: one tape per step, built and dropped 10,000 times.
//!
//! A counting global allocator (wrapping `System`) tracks the live heap bytes allocated and freed
//! by the test's own thread (other threads of the process, such as the test harness's, allocate
//! on their own schedule, which on a loaded machine showed up as a one-off +900 bytes). After
//! warm-up (step 100) the live bytes between steps must not grow: after step 10,000 they equal
//! the value after step 100 up to a few hundred bytes. As a control, the counter must see the
//! tape's own allocations while a tape is alive. Every product here is small enough to run
//! sequentially on this thread.

use gslab::nn::data::two_spirals;
use gslab::nn::linear::Linear;
use gslab::{Params, Tape};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

/// `System` plus a running count of live bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    /// Whether allocations of this thread are counted (set by the test on its own thread).
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

/// `LIVE += delta` if the current thread is the counted one.
fn count(delta: isize) {
    if COUNTED.try_with(Cell::get).unwrap_or(false) {
        LIVE.fetch_add(delta, Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so it
// upholds `GlobalAlloc`'s contract exactly as `System` does; the counter has no effect on memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded from the caller (non-zero size layout).
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded from the caller.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (every allocation goes there).
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` was allocated by `System` with `layout`; the rest is forwarded.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const STEPS: usize = 10_000;
const WARMUP: usize = 100;
const SLACK: isize = 256;

#[test]
fn live_bytes_stay_flat_over_10000_tapes() {
    COUNTED.with(|c| c.set(true));
    // Start every worker of the global rayon pool before counting: a worker's own start-up
    // allocations happen on its thread whenever it is first scheduled, which on a loaded
    // machine can be after the warm-up (the flaky +900 bytes seen under load).
    rayon::broadcast(|_| ());
    let data = two_spirals::<f64>(16, 1.0, 0.05, 3).unwrap();
    let mut l1 = Linear::<f64>::seeded(2, 16, 4);
    let mut l2 = Linear::<f64>::seeded(16, 2, 5);
    let (mut after_warmup, mut during, mut max_drift) = (0isize, 0isize, 0isize);
    for step in 1..=STEPS {
        {
            let tape = Tape::new();
            let x = tape.constant(data.x.clone());
            let (h, v1) = l1.forward(&tape, x);
            let (logits, v2) = l2.forward(&tape, h.tanh());
            let loss = logits.softmax_cross_entropy(&data.labels);
            let grads = tape.backward(loss);
            if step == WARMUP {
                during = LIVE.load(Relaxed);
            }
            for (p, v) in l1.params_mut().into_iter().zip(v1.as_array()) {
                p.axpy(-0.1, &grads.wrt(v));
            }
            for (p, v) in l2.params_mut().into_iter().zip(v2.as_array()) {
                p.axpy(-0.1, &grads.wrt(v));
            }
        }
        let live = LIVE.load(Relaxed);
        if step == WARMUP {
            after_warmup = live;
        } else if step > WARMUP {
            max_drift = max_drift.max((live - after_warmup).abs());
        }
    }
    let end = LIVE.load(Relaxed);
    println!(
        "live bytes: {after_warmup} after step {WARMUP}, {end} after step {STEPS} \
         (max drift {max_drift}); {during} while the step-{WARMUP} tape was alive"
    );
    // control: the counter sees the tape (it holds at least the input copy, 32×2 f64 = 512 B)
    assert!(
        during - after_warmup >= 512,
        "counter saw no tape allocations"
    );
    assert!(
        (end - after_warmup).abs() <= SLACK,
        "live bytes grew: {after_warmup} -> {end}"
    );
    assert!(
        max_drift <= SLACK,
        "live bytes drifted by {max_drift} between steps"
    );
}
