//! # gslab-experiments: the Group-and-Shuffle reproduction's experiments
//!
//! Each experiment of the paper reproduction is a module with an `Args` struct (its command
//! line, `clap`) and a `run(args)` function that writes raw CSV, a JSON summary and PNG + SVG
//! figures into its output directory; `src/bin/` holds one thin binary per experiment, and
//! `reproduce` runs them all and writes `REPORT.md`.
//!
//! - [`density`]: Theorem 2 (factors for a dense GS / BOFT product), by pattern propagation;
//! - [`structure`]: Prop. 1 block ranks, Algorithm 1 projection, Theorem 1, expressivity;
//! - [`orthofit`]: trainable orthogonality (fits of target orthogonal matrices);
//! - [`counts`]: the parameter and FLOP counts of the paper's Tables 1–3;
//! - [`speed`]: wall-clock cost of the structured kernels against dense GEMM, of the adapter
//!   steps, and of the convolution and the SOC / GS-SOC layers;
//! - [`finetune`]: Table 1 in miniature (GSOFT vs OFT, BOFT, LoRA, full fine-tuning of a
//!   pretrained MLP on MNIST transfer tasks) and the ablation over the number of GS factors;
//! - [`lipconv`]: certified-robust SOC / GS-SOC LipConvnets on MNIST (Tables 3 and 4 in miniature).
//!
//! Shared support: [`CommonArgs`] (`--seed`, `--threads`, `--out`, `--quick`), [`Run`] (output
//! directory, seed, thread pool, figure manifest), [`run_main`] (the binaries' exit-status
//! contract), the file writers of [`output`], the figures of [`plot`] and the error type
//! [`Error`]. The library itself is `gslab`; nothing here is needed to use it.

pub mod cli;
pub mod counts;
pub mod density;
pub mod error;
pub mod finetune;
pub mod lipconv;
pub mod malloc;
pub mod orthofit;
pub mod output;
pub mod plot;
pub mod report;
pub mod run;
pub mod speed;
pub mod structure;
pub mod threads;

pub use cli::{CommonArgs, one_line, run_main};
pub use error::{Error, Result};
pub use output::{format_table, print_table, write_csv, write_csv_records, write_json};
pub use run::{FIGURES_JSON, FigureEntry, Run, progress_bar};
