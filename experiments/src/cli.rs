//! The command line shared by the experiment binaries: [`CommonArgs`] and [`run_main`].
//!
//! A binary is thin: its experiment declares its arguments with [`CommonArgs`] flattened in, and
//! the binary calls [`run_main`] with a body that turns the arguments into a [`Run`]
//! ([`CommonArgs::setup`]: output directory, seed, `--quick`, a rayon pool of `--threads`
//! threads) and runs the experiment.
//!
//! Exit status of [`run_main`]: 0 on success, 2 on a usage error or a returned
//! [`Error`] (one line on stderr: `NAME: error: ...`), 101 if the body panicked
//! (also one line).
//!
//! ```no_run
//! use clap::Parser;
//! use experiments::{CommonArgs, run_main};
//!
//! #[derive(Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     common: CommonArgs,
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     run_main("demo", |args: Args| {
//!         let run = args.common.setup("demo")?;
//!         run.write_json("summary.json", &serde_json::json!({"ok": true}))?;
//!         Ok(())
//!     })
//! }
//! ```

use crate::error::{Error, Result};
use crate::run::Run;
use clap::Parser;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments every experiment binary accepts (`#[command(flatten)]` them into the binary's
/// own `clap::Parser` struct).
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Seed of every random number generator of the run.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads (default: all available cores).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub threads: Option<u64>,
    /// Output directory (default: results/NAME/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Small sizes that run in seconds (used by the tests); hides the progress bar.
    #[arg(long)]
    pub quick: bool,
}

impl CommonArgs {
    /// The output directory: `--out`, or `results/NAME/` relative to the working directory.
    pub fn out_dir(&self, name: &str) -> PathBuf {
        self.out
            .clone()
            .unwrap_or_else(|| Path::new("results").join(name))
    }

    /// Creates the output directory and the thread pool of the run named `name`.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory cannot be created; [`Error::ThreadPool`] if the thread
    /// pool cannot be built.
    pub fn setup(&self, name: &str) -> Result<Run> {
        let out = self.out_dir(name);
        std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
        let threads = match self.threads {
            Some(t) => t as usize,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| Error::ThreadPool {
                threads,
                msg: e.to_string(),
            })?;
        Ok(Run::new(name, out, self.seed, self.quick, threads, pool))
    }
}

/// Collapses a message to one line (newlines and runs of whitespace become single spaces).
pub fn one_line(msg: &str) -> String {
    msg.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parses the arguments of binary `name` and runs `body`.
///
/// - `--help` / `--version`: printed, exit 0.
/// - Usage error (unknown flag, bad value): `NAME: error: ...` on one line of stderr, exit 2.
/// - `body` returns `Err(e)`: `NAME: error: e` on one line, exit 2.
/// - `body` panics: `NAME: internal error: ...` on one line (no backtrace), exit 101.
///
/// Before `body` runs, [`keep_freed_memory`](crate::malloc::keep_freed_memory) keeps freed
/// tensors in the heap (glibc), so training loops and timings do not pay page faults per step
/// (unless the environment variable `GSLAB_MALLOC` is `default`).
pub fn run_main<A: Parser>(name: &str, body: impl FnOnce(A) -> Result<()>) -> ExitCode {
    let args = match A::try_parse() {
        Ok(a) => a,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                print!("{e}");
                return ExitCode::SUCCESS;
            }
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let msg = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("{name}: error: {} (see --help)", one_line(msg));
            return ExitCode::from(2);
        }
    };
    // Training loops and timings: freed tensors stay in the heap (no page faults per step).
    // `GSLAB_MALLOC=default` keeps glibc's defaults, to measure what the setting changes.
    if std::env::var("GSLAB_MALLOC").map_or(true, |v| v != "default") {
        crate::malloc::keep_freed_memory();
    }
    let who = name.to_string();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("{who}: internal error: {}{at}", one_line(&msg));
    }));
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(args))) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("{name}: error: {}", one_line(&e.to_string()));
            ExitCode::from(2)
        }
        Err(_) => ExitCode::from(101),
    }
}
