//! `structure`: Prop. 1 block ranks, Algorithm 1 projection, Theorem 1 and expressivity against
//! parameter budget. See [`experiments::structure`] for what it computes and writes.

use experiments::{run_main, structure};
use std::process::ExitCode;

fn main() -> ExitCode {
    run_main("structure", structure::run)
}
