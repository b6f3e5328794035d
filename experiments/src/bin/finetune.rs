//! `finetune`: Table 1 in miniature — GSOFT, OFT, BOFT, LoRA and full fine-tuning of a
//! pretrained MLP on two MNIST transfer tasks, and the ablation over the number of GS factors.
//! See [`experiments::finetune`] for what it computes and writes.

use experiments::{finetune, run_main};
use std::process::ExitCode;

fn main() -> ExitCode {
    run_main("finetune", finetune::run)
}
