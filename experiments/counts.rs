//! `counts`: parameter counts of paper Tables 1–3 and per-token adapter costs.
//! See `gslab::exp::counts` for the outputs.

use clap::Parser;
use gslab::exp::{CommonArgs, counts, run_main};
use std::process::ExitCode;

/// Parameter and FLOP accounting of the Group-and-Shuffle paper's Tables 1–3.
#[derive(Parser)]
#[command(name = "counts", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    run_main("counts", |args: Args| {
        let run = args.common.setup("counts")?;
        let summary = run.install(|| counts::run(&run))?;
        print!("{}", counts::report(&summary));
        println!("outputs written to {}", run.out.display());
        Ok(())
    })
}
