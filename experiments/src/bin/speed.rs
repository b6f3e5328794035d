//! `speed`: wall-clock sweep of the structured kernels against dense GEMM on 1 and 2 threads.
//! See [`experiments::speed`] for what it measures and writes.

use experiments::{run_main, speed};
use std::process::ExitCode;

fn main() -> ExitCode {
    run_main("speed", speed::run)
}
