//! The adapters of `finetune` train through the structured kernels: during training steps of the
//! adapted MLP `1024 → 512 → 512 → 10` (batch 256, f32, on a 2-thread pool) no single heap
//! allocation reaches `n²·sizeof(f32)` bytes for `n = 1024` (4 MiB), so no dense `n × n`
//! rotation is ever formed. The largest legitimate buffers are the frozen weight `512 × 1024`
//! (2 MiB, half the threshold) and the batch `256 × 1024` (1 MiB).
//!
//! A counting global allocator records the largest single allocation of any thread while armed
//! (the kernels run on rayon workers); every worker has multiplied once before (faer's GEMM
//! backend allocates a per-thread scratch at a thread's first product). As a control, the counter must see the 4 MiB of the dense
//! rotation when one is formed on purpose after training (`OrthoChain::matrix`, a check-only
//! densification).

use experiments::finetune::methods::Spec;
use experiments::finetune::model::{Adapted, Mlp};
use experiments::finetune::train::{schedule, step};
use gslab::Tensor;
use gslab::nn::optim::Adam;
use gslab::orthogonal::OrthoMap;
use rand::{SeedableRng, rngs::StdRng};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

/// `System` plus the largest single allocation seen while [`ARMED`].
struct Counting;

static ARMED: AtomicBool = AtomicBool::new(false);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

fn seen(size: usize) {
    if ARMED.load(Relaxed) {
        LARGEST.fetch_max(size, Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so it
// upholds `GlobalAlloc`'s contract exactly as `System` does; the counter has no effect on memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        seen(layout.size());
        // SAFETY: forwarded from the caller (non-zero size layout).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        seen(layout.size());
        // SAFETY: forwarded from the caller.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (every allocation goes there).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        seen(new_size);
        // SAFETY: `ptr` was allocated by `System` with `layout`; the rest is forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const N: usize = 1024;
const THRESHOLD: usize = N * N * std::mem::size_of::<f32>();

/// The largest single allocation made by `f` (any thread).
fn largest_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.store(0, Relaxed);
    ARMED.store(true, Relaxed);
    let r = f();
    ARMED.store(false, Relaxed);
    (r, LARGEST.load(Relaxed))
}

#[test]
fn adapter_training_never_allocates_a_dense_n_by_n_matrix() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    // faer's GEMM backend gives each thread a scratch buffer (64 MiB) the first time that
    // thread multiplies: a one-time per-thread workspace, not a matrix of the model. Every
    // worker multiplies once before anything is measured, so the counter sees only the
    // training steps' own buffers whichever worker the scheduler hands a product to.
    pool.broadcast(|_| {
        let a = gslab::faer::Mat::<f32>::from_fn(128, 128, |i, j| (i + j) as f32);
        let mut c = gslab::faer::Mat::<f32>::zeros(128, 128);
        gslab::faer::linalg::matmul::matmul(
            c.as_mut(),
            gslab::faer::Accum::Replace,
            a.as_ref(),
            a.as_ref(),
            1.0,
            gslab::faer::Par::Seq,
        );
        assert!(c[(0, 0)] > 0.0);
    });
    pool.install(|| {
        let mut rng = StdRng::seed_from_u64(1);
        let base = Mlp::new(N, 512, 10, &mut rng);
        let x = Tensor::<f32>::rand_uniform(&[256, N], 0.0, 1.0, &mut rng);
        let y: Vec<usize> = (0..256).map(|i| i % 10).collect();
        let sched = schedule(10);
        for spec in [
            Spec::Gsoft { b: 8 },
            Spec::Gsoft { b: 32 },
            Spec::Oft { b: 16 },
            Spec::Boft { b: 8, m: 2 },
            Spec::Boft { b: 4, m: 4 },
            Spec::DoubleGsoft { b: 8 },
            Spec::GsChain { b: 8, m: 4 },
            Spec::Lora { r: 8 },
        ] {
            let mut model = Adapted::new(
                spec,
                &base,
                base.head.clone(),
                OrthoMap::Cayley,
                true,
                &mut rng,
            )
            .unwrap();
            let mut opt = Adam::new(1e-2);
            // One unarmed step first: buffer pools and rayon workers start up.
            step(&mut model, &mut opt, &sched, 0, &x, &y).unwrap();
            let (losses, largest) = largest_during(|| {
                (1..4)
                    .map(|t| step(&mut model, &mut opt, &sched, t, &x, &y).unwrap())
                    .collect::<Vec<f64>>()
            });
            println!(
                "{}: largest allocation during 3 steps {largest} bytes (threshold {THRESHOLD})",
                spec.label()
            );
            assert!(losses.iter().all(|l| l.is_finite()));
            // The frozen 512 × 1024 weight (2 MiB) is entered on the tape every step: the
            // counter sees the big buffers of the step.
            assert!(largest >= 512 * N * 4, "{}: {largest}", spec.label());
            assert!(
                largest < THRESHOLD,
                "{}: an allocation of {largest} bytes during training",
                spec.label()
            );
            // Control: forming the dense rotation on purpose is seen.
            if let Some(chain) = model.layers[0].ortho().and_then(|a| a.input_chain()) {
                let (q, largest) = largest_during(|| chain.matrix());
                assert_eq!(q.shape(), [N, N]);
                assert!(largest >= THRESHOLD, "{}: {largest}", spec.label());
            }
        }
    });
}
