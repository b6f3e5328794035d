//! `orthofit`: fits target orthogonal matrices with exactly orthogonal structured layers
//! (Cayley and exp). See [`gslab::exp::orthofit`] for what it computes and writes.

use gslab::exp::{orthofit, run_main};
use std::process::ExitCode;

fn main() -> ExitCode {
    run_main("orthofit", orthofit::run)
}
