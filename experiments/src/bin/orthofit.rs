//! `orthofit`: fits target orthogonal matrices with exactly orthogonal structured layers
//! (Cayley and exp). See [`experiments::orthofit`] for what it computes and writes.

use experiments::{orthofit, run_main};
use std::process::ExitCode;

fn main() -> ExitCode {
    run_main("orthofit", orthofit::run)
}
