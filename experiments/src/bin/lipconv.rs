//! `lipconv`: trains SOC and GS-SOC LipConvnets on MNIST digits, certifies and attacks them
//! (Tables 3 and 4 in miniature). See [`experiments::lipconv`] for what it computes and writes.

use experiments::{lipconv, run_main};
use std::process::ExitCode;

fn main() -> ExitCode {
    run_main("lipconv", lipconv::run)
}
