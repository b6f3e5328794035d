//! `reproduce`: runs every experiment at its default size and writes `results/REPORT.md` with
//! every figure and the main tables, one sentence each on what they show. The crate's main job.

use clap::Parser;
use experiments::{
    CommonArgs, Error, Result, counts, density, finetune, lipconv, orthofit, report, run_main,
    speed, structure,
};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Runs every experiment of the Group-and-Shuffle reproduction and writes `REPORT.md`.
#[derive(Parser)]
#[command(name = "reproduce")]
struct Args {
    /// `--seed`, `--threads`, `--out` (default `results/`), `--quick`.
    #[command(flatten)]
    common: CommonArgs,
    /// Run only these experiments (comma-separated names; default: all).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

/// One experiment: its name, what it tests, how to run it (its `run` with the common arguments
/// and its own defaults), and the tables the report shows.
struct Experiment {
    name: &'static str,
    about: &'static str,
    run: fn(CommonArgs) -> Result<()>,
    tables: &'static [Table],
}

/// A CSV shown in the report: file, the sentence that says what it shows, at most `rows` rows,
/// only the rows whose columns equal the `only` values and, if `ops` is not empty, whose `op`
/// column is one of `ops`.
struct Table {
    file: &'static str,
    sentence: &'static str,
    rows: usize,
    only: &'static [(&'static str, &'static str)],
    ops: &'static [&'static str],
}

const EXPERIMENTS: &[Experiment] = &[
    Experiment {
        name: "density",
        about: "Theorem 2 (T1-T4): the number of block-diagonal factors that makes a GS chain or a BOFT butterfly dense, by symbolic pattern propagation.",
        run: |common| {
            density::run(density::Args {
                common,
                trials: None,
            })
        },
        tables: &[Table {
            file: "min_factors.csv",
            sentence: "Smallest number of factors for a dense product, measured by pattern propagation, next to the closed forms 1+⌈log_b r⌉ (GS) and 1+⌈log₂ r⌉ (BOFT; empty where r is not a power of 2).",
            rows: 20,
            only: &[],
            ops: &[],
        }],
    },
    Experiment {
        name: "structure",
        about: "Prop. 1, Algorithm 1 and Theorem 1 (T7-T9), and expressivity against parameter budget for GS, Monarch, BOFT, block-diagonal and low-rank.",
        run: |common| {
            structure::run(structure::Args {
                common,
                n: None,
                steps: None,
                trials: None,
            })
        },
        tables: &[
            Table {
                file: "projection.csv",
                sentence: "Algorithm 1 projection: relative error on members of the class (rounding level) and on dense matrices, compared with random members and perturbed projections.",
                rows: 12,
                only: &[],
                ops: &[],
            },
            Table {
                file: "theorem1.csv",
                sentence: "Theorem 1: orthogonal GS members disguised with non-orthogonal factors, and the orthogonality and reconstruction errors of the recovered blocks.",
                rows: 12,
                only: &[],
                ops: &[],
            },
        ],
    },
    Experiment {
        name: "orthofit",
        about: "Trainable orthogonality (T5, T6): fits of target orthogonal matrices with OrthoGs, GS chain m=3, OFT, BOFT, orthogonal Monarch and dense Cayley, with the Cayley map and with exp; orthogonality is tracked at every logged step.",
        run: |common| {
            orthofit::run(orthofit::Args {
                common,
                n: None,
                steps: None,
                log_every: None,
                lr: orthofit::DEFAULT_LR,
            })
        },
        tables: &[Table {
            file: "final.csv",
            sentence: "Final loss ||Q − Q*||²_F / n per method, map and target, with free parameter counts and the largest ||QᵀQ − I||_max seen during training.",
            rows: 40,
            only: &[],
            ops: &[],
        }],
    },
    Experiment {
        name: "counts",
        about: "Tables 1-3 (T4, T12-T15): trainable-parameter counts from layer shapes, next to the paper's printed values, and adapter FLOPs per token.",
        run: |common| counts::run(counts::Args { common }),
        tables: &[Table {
            file: "params.csv",
            sentence: "Parameter counts in the paper's convention (b² per Cayley block) from the layer shapes, beside the value printed in the paper.",
            rows: 40,
            only: &[],
            ops: &[],
        }],
    },
    Experiment {
        name: "speed",
        about: "Wall-clock cost of the structured products against faer's dense GEMM on 1 and 2 threads (T15 on the wall clock), of the adapter steps, of conv2d against its im2col GEMM and of SOC / GS-SOC layers; the issues' speed targets are evaluated in summary.json.",
        run: |common| {
            speed::run(speed::Args {
                common,
                budget_ms: None,
                ops: None,
                no_pin: false,
            })
        },
        tables: &[
            Table {
                file: "speed.csv",
                sentence: "Median wall time and GFLOP/s per operation, size, batch, thread count, dtype and pass (fwd or fwdbwd) at the issue's target point n=1024, b=32, batch=256.",
                rows: 40,
                only: &[
                    ("n", "1024"),
                    ("b", "32"),
                    ("batch", "256"),
                    ("dtype", "f32"),
                ],
                ops: &[],
            },
            Table {
                file: "speed.csv",
                sentence: "The adapter training steps of the finetune experiment (frozen 1024 → 512 layer, batch 256, f32): LoRA r=8, GSOFT and BOFT with 8 × 8 blocks, as a hidden layer and as the first layer.",
                rows: 12,
                only: &[],
                ops: &[
                    "lora_step",
                    "gsoft_step",
                    "boft_step",
                    "lora_step_first",
                    "gsoft_step_first",
                    "boft_step_first",
                ],
            },
            Table {
                file: "speed.csv",
                sentence: "The 3 × 3 convolution (batch 128, 64 → 64 channels, 16 × 16, f32) against faer's GEMM of the im2col-equivalent shape, forward and forward + backward (for these rows n = channels, b = image side).",
                rows: 8,
                only: &[],
                ops: &["conv2d", "conv_gemm"],
            },
            Table {
                file: "speed.csv",
                sentence: "One training step (forward with 5 terms, backward) of an SOC, a GS-SOC (4, −) and a GS-SOC (4, 2) layer (paired shuffles): 64 channels on 16 × 16 images with batch 4 and 256 channels on 8 × 8 images with batch 2 (n = channels, b = image side).",
                rows: 12,
                only: &[],
                ops: &["soc", "gs_soc_4", "gs_soc_4x2"],
            },
        ],
    },
    Experiment {
        name: "finetune",
        about: "Table 1 in miniature (§7.1): full fine-tuning, LoRA, OFT, BOFT, GSOFT and Double GSOFT of a pretrained MLP 1024-512-512 on two MNIST transfer tasks (new classes 0-4 to 5-9; upright to rotated digits), learning rate chosen on a validation split, 3 seeds; the ablation over the number m of GS factors; merge, neuron-Gram and orthogonality checks.",
        run: |common| {
            finetune::run(finetune::Args {
                common,
                seeds: None,
                steps: None,
                epoch_steps: None,
                batch: None,
                target_train: None,
                hidden: None,
                pretrain_epochs: None,
                map: gslab::orthogonal::OrthoMap::Cayley,
                no_scale: false,
                methods: None,
                tasks: None,
                lr_scale: 1.0,
                resume: false,
                interrupt_after_epochs: None,
                nan_at_step: None,
            })
        },
        tables: &[
            Table {
                file: "base.csv",
                sentence: "The pretrained base models: source test accuracy and target test accuracy before fine-tuning (rotation: the pretrained model on rotated digits; new classes: a fresh untrained head), with the split sizes.",
                rows: 4,
                only: &[],
                ops: &[],
            },
            Table {
                file: "table.csv",
                sentence: "Target test accuracy (mean, min and max over seeds, %) and source accuracy after fine-tuning per task, method and configuration at the chosen learning rate, with the trainable parameters of the adapted layers (head excluded) and the time per training step.",
                rows: 60,
                only: &[],
                ops: &[],
            },
            Table {
                file: "mablation.csv",
                sentence: "The m-ablation: orthogonal GS chains with m = 1 (OFT), 2 (GSOFT), 3 and 4 factors at block sizes 4 and 8, with Theorem 2's density thresholds of the two adapted widths.",
                rows: 20,
                only: &[],
                ops: &[],
            },
        ],
    },
    Experiment {
        name: "lipconv",
        about: "Tables 3 and 4 in miniature (§6.3, App. F): 1-Lipschitz LipConvnets with SOC and GS-SOC convolutions trained on MNIST digits, certified robust accuracy from the network's certified Lipschitz bound, a PGD L2 attack at eps = 1.58 that must not break any certificate, parameters and training speedup; the activation x shuffle ablation of Table 4.",
        run: |common| {
            lipconv::run(lipconv::Args {
                common,
                epochs: None,
                depth: None,
                init_channels: None,
                batch: None,
                optimizer: None,
                lr: None,
                loss_offset: None,
                loss_scale: None,
                scaling: None,
                seeds: 1,
                table3: None,
                ablation: None,
                train_count: None,
                test_count: None,
                pgd_steps: None,
                resume: false,
                stop_after: None,
                inject_nan_step: None,
            })
        },
        tables: &[
            Table {
                file: "results.csv",
                sentence: "Per variant: parameters, training seconds per epoch and speedup over SOC (same run), clean test accuracy, certified accuracy at eps = 0.5, 1.0 and 1.58, accuracy under the PGD attack at 1.58 (an upper bound of the robust accuracy) and the certified Lipschitz bound L.",
                rows: 20,
                only: &[],
                ops: &[],
            },
            Table {
                file: "params_full.csv",
                sentence: "Parameters of the built full-size LipConvnet-15 (32 initial channels, 100 classes, 3x32x32 inputs) per Table 3 row, beside the count formula and the paper's printed value.",
                rows: 5,
                only: &[],
                ops: &[],
            },
        ],
    },
];

fn main() -> ExitCode {
    run_main("reproduce", |args: Args| {
        for name in &args.only {
            if !EXPERIMENTS.iter().any(|e| e.name == name) {
                return Err(Error::Usage(format!("--only: unknown experiment {name:?}")));
            }
        }
        let root = args
            .common
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("results"));
        let mut timings = Vec::new();
        for e in EXPERIMENTS {
            if !args.only.is_empty() && !args.only.iter().any(|n| n == e.name) {
                continue;
            }
            println!("== {}: {}", e.name, e.about);
            let t0 = Instant::now();
            (e.run)(common_for(e.name, &args.common, &root)).map_err(|err| Error::Experiment {
                name: e.name.to_string(),
                source: Box::new(err),
            })?;
            timings.push((e, t0.elapsed().as_secs_f64()));
        }
        let path = root.join("REPORT.md");
        write_report(&path, &root, &args.common, &timings)?;
        println!("report written to {}", path.display());
        Ok(())
    })
}

/// The common arguments of one experiment: `reproduce`'s seed, threads and `--quick`, and the
/// output directory `ROOT/NAME`.
fn common_for(name: &str, common: &CommonArgs, root: &Path) -> CommonArgs {
    CommonArgs {
        out: Some(root.join(name)),
        ..common.clone()
    }
}

fn write_report(
    path: &Path,
    root: &Path,
    common: &CommonArgs,
    timings: &[(&Experiment, f64)],
) -> Result<()> {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# gslab: Group-and-Shuffle reproduction report\n\n\
         Written by `cargo run --release --bin reproduce -- --seed {}{}`. Every number below comes \
         from the CSV and JSON files next to this report; `papers/group-and-shuffle.md` maps each \
         claim of the paper to the experiment that tests it.\n",
        common.seed,
        if common.quick { " --quick" } else { "" }
    );
    let _ = writeln!(md, "| experiment | wall time (s) |\n|---|---|");
    for (e, secs) in timings {
        let _ = writeln!(md, "| [{0}](#{0}) | {secs:.1} |", e.name);
    }
    for (e, _) in timings {
        let dir = root.join(e.name);
        let _ = writeln!(md, "\n## {}\n\n{}\n", e.name, e.about);
        for t in e.tables {
            let _ = writeln!(md, "**`{}/{}`.** {}\n", e.name, t.file, t.sentence);
            md.push_str(&report::csv_table(&dir.join(t.file), t.rows, |h, r| {
                let column = |name: &str| h.iter().position(|c| c == name);
                t.only
                    .iter()
                    .all(|(col, val)| column(col).is_some_and(|i| &r[i] == *val))
                    && (t.ops.is_empty()
                        || column("op").is_some_and(|i| t.ops.iter().any(|op| **op == r[i])))
            })?);
            md.push('\n');
        }
        md.push_str(&report::figures_markdown(
            e.name,
            &report::read_figures(&dir)?,
        ));
    }
    std::fs::write(path, md).map_err(|e| Error::io(path, e))
}
