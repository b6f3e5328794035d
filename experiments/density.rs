//! `density`: Theorem 2 of Group-and-Shuffle, measured by symbolic pattern propagation.
//! See [`gslab::exp::density`] for what it computes and writes.

use gslab::exp::{density, run_main};
use std::process::ExitCode;

fn main() -> ExitCode {
    run_main("density", density::run)
}
