//! `counts`: parameter counts of paper Tables 1–3 and per-token adapter costs.
//! See [`experiments::counts`] for the outputs.

use experiments::{counts, run_main};
use std::process::ExitCode;

fn main() -> ExitCode {
    run_main("counts", counts::run)
}
