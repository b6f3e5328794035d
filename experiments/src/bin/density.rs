//! `density`: Theorem 2 of Group-and-Shuffle, measured by symbolic pattern propagation.
//! See [`experiments::density`] for what it computes and writes.

use experiments::{density, run_main};
use std::process::ExitCode;

fn main() -> ExitCode {
    run_main("density", density::run)
}
