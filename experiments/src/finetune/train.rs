//! Pretraining of the base MLPs and the fine-tuning runs, with checkpoints.
//!
//! **Data order.** Step `t` of epoch `e` (an epoch is a fixed number of steps) draws its batch
//! from a generator seeded by `(seed, task, e)`: the fit set is shuffled and cut into batches,
//! reshuffled whenever it runs out. The order depends only on the seed, the task and the epoch,
//! so every method and learning rate of a seed sees the same batches (a paired comparison), and
//! nothing random needs saving.
//!
//! **Checkpoints.** Every run `(task, method, config, seed, lr)` writes
//! `checkpoints/<task>__<method>__<config>__s<seed>__lr<lr>.safetensors` after every epoch
//! (parameters, Adam state, completed epochs, per-epoch mean losses; atomically, by
//! [`Checkpoint::save`]) and once more when it is finished, with its results. With `--resume` a
//! finished run is read back instead of trained and an unfinished one continues after its last
//! completed epoch; the numbers are bitwise those of an uninterrupted run. A checkpoint written
//! with other settings (steps, batch, sizes, map, scale) is refused with an error naming it.
//!
//! **Non-finite loss.** The library's [`gslab::Error::NonFiniteLoss`] stops the run; it is
//! returned with the task, method, configuration, seed and learning rate in its context and the
//! step in its message.

use super::checks::{Checks, argmax_rows, run_checks};
use super::methods::Spec;
use super::model::{Adapted, Mlp};
use super::tasks::{FEATURES, Split, Task, TaskData};
use crate::{Error, Result};
use gslab::nn::checkpoint::Checkpoint;
use gslab::nn::linear::Linear;
use gslab::nn::optim::{Adam, Optimizer};
use gslab::nn::schedule::Schedule;
use gslab::nn::train::loss_and_grads;
use gslab::orthogonal::OrthoMap;
use gslab::{Params, Tensor};
use rand::seq::SliceRandom;
use rand::{SeedableRng, rngs::StdRng};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Everything a run needs besides its key.
#[derive(Clone, Debug)]
pub struct Setup {
    /// Optimizer steps per fine-tuning run.
    pub steps: usize,
    /// Steps per epoch (the checkpoint interval).
    pub epoch_steps: usize,
    /// Batch size of fine-tuning.
    pub batch: usize,
    /// Width of the hidden layers.
    pub hidden: usize,
    /// Block map of the orthogonal adapters.
    pub map: OrthoMap,
    /// Whether the orthogonal adapters carry the scale vector.
    pub scale: bool,
    /// Pretraining epochs over the source data.
    pub pretrain_epochs: usize,
    /// Where checkpoints go.
    pub checkpoints: PathBuf,
    /// Read existing checkpoints.
    pub resume: bool,
    /// Test hook: stop every run after this many epochs (leaving its checkpoint).
    pub interrupt_after: Option<usize>,
    /// Test hook: a NaN pixel in the batch of this global step of every fine-tuning run.
    pub nan_at_step: Option<usize>,
    /// Everything that must match for a checkpoint to be resumed (sizes, steps, map, ...).
    pub fingerprint: String,
}

impl Setup {
    /// Epochs per run.
    pub fn epochs(&self) -> usize {
        self.steps / self.epoch_steps
    }
}

/// Pretraining: Adam at this learning rate, cosine decay, batch [`PRETRAIN_BATCH`].
pub const PRETRAIN_LR: f64 = 1e-3;
/// Pretraining batch size.
pub const PRETRAIN_BATCH: usize = 128;

/// A 64-bit mix of the words (splitmix64 finalizer over a running sum), for seeding generators.
pub fn mix(words: &[u64]) -> u64 {
    let mut h: u64 = 0x243F_6A88_85A3_08D3;
    for &w in words {
        h = h.wrapping_add(w).wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h = z ^ (z >> 31);
    }
    h
}

/// Generator tags of [`mix`].
const TAG_BASE: u64 = 1;
const TAG_ORDER: u64 = 2;
const TAG_HEAD: u64 = 3;
const TAG_ADAPTER: u64 = 4;
const TAG_PRETRAIN_ORDER: u64 = 5;

fn task_word(task: Task) -> u64 {
    match task {
        Task::NewClasses => 0,
        Task::Rotation => 1,
    }
}

/// The batches of one epoch: `steps` batches of `batch` indices into `0..n`, from a shuffled
/// order that is reshuffled when it runs out.
fn epoch_batches(n: usize, batch: usize, steps: usize, rng: &mut StdRng) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    let mut pos = 0;
    (0..steps)
        .map(|_| {
            (0..batch)
                .map(|_| {
                    if pos == n {
                        order.shuffle(rng);
                        pos = 0;
                    }
                    pos += 1;
                    order[pos - 1]
                })
                .collect()
        })
        .collect()
}

/// Accuracy of `logits` against `labels`.
pub fn accuracy(logits: &Tensor<f32>, labels: &[usize]) -> f64 {
    let hits = argmax_rows(logits)
        .iter()
        .zip(labels)
        .filter(|(p, y)| p == y)
        .count();
    hits as f64 / labels.len().max(1) as f64
}

/// `f` applied to `x` in chunks of 512 rows, the results stacked (bounded memory on big sets).
fn chunked(x: &Tensor<f32>, f: impl Fn(&Tensor<f32>) -> Tensor<f32>) -> Tensor<f32> {
    let (n, d) = (x.shape()[0], x.shape()[1]);
    let mut out: Vec<f32> = Vec::new();
    let mut cols = 0;
    for start in (0..n).step_by(512) {
        let end = (start + 512).min(n);
        let part = Tensor::from_vec(&[end - start, d], x.data()[start * d..end * d].to_vec())
            .expect("a row range of x");
        let y = f(&part);
        cols = y.shape()[1];
        out.extend_from_slice(y.data());
    }
    Tensor::from_vec(&[n, cols], out).expect("n rows of the same width")
}

/// The pretrained model of a task and its accuracies.
#[derive(Clone, Debug)]
pub struct Base {
    /// The pretrained MLP (source head included).
    pub mlp: Mlp,
    /// Source test accuracy.
    pub source_acc: f64,
    /// Target test accuracy before fine-tuning: the pretrained model on the rotated digits
    /// (rotation), or the base body with a fresh untrained 5-way head (new classes, chance level).
    pub target_acc: f64,
    /// Wall time of the pretraining (0 when read from the cache).
    pub seconds: f64,
}

/// The initial target head of `seed`: a fresh `h → 5` layer (new classes) or the pretrained
/// head (rotation).
pub fn initial_head(data: &TaskData, mlp: &Mlp, seed: u64) -> Linear<f32> {
    match data.task {
        Task::NewClasses => {
            let mut rng = StdRng::seed_from_u64(mix(&[seed, task_word(data.task), TAG_HEAD]));
            Linear::new(mlp.head.in_features(), data.target_classes, &mut rng)
        }
        Task::Rotation => mlp.head.clone(),
    }
}

/// Pretrains (or, with `--resume`, reads back) the base MLP of `data.task`, cached as
/// `base_<task>.safetensors` in `out`.
///
/// # Errors
/// A non-finite loss (naming the task and step), a checkpoint that cannot be written or read.
pub fn pretrain(data: &TaskData, setup: &Setup, seed: u64, out: &Path) -> Result<Base> {
    let path = out.join(format!("base_{}.safetensors", data.task.name()));
    let tw = task_word(data.task);
    let fingerprint = format!("{}|pretrain seed={seed}", setup.fingerprint);
    let mut mlp = Mlp::new(
        FEATURES,
        setup.hidden,
        data.source_classes,
        &mut StdRng::seed_from_u64(mix(&[seed, tw, TAG_BASE])),
    );
    let t0 = Instant::now();
    let mut seconds = 0.0;
    let cached = setup.resume && path.exists();
    if cached {
        let mut ck = Checkpoint::<f32>::load(&path)?;
        check_fingerprint(&ck, &fingerprint, &path)?;
        ck.take_params("mlp", &mut mlp)?;
    } else {
        let n = data.source_train.len();
        let per_epoch = (n / PRETRAIN_BATCH).max(1);
        let steps = per_epoch * setup.pretrain_epochs;
        let sched = Schedule::cosine(0.0, steps, steps / 20);
        let mut opt = Adam::<f32>::new(PRETRAIN_LR);
        for epoch in 0..setup.pretrain_epochs {
            let mut rng = StdRng::seed_from_u64(mix(&[seed, tw, TAG_PRETRAIN_ORDER, epoch as u64]));
            for (s, idx) in epoch_batches(n, PRETRAIN_BATCH.min(n), per_epoch, &mut rng)
                .into_iter()
                .enumerate()
            {
                let t = epoch * per_epoch + s;
                let (x, y) = data.source_train.rows(&idx);
                let (_, grads) = loss_and_grads(&mlp, t, &mut |_, m, tape, leaves| {
                    m.logits_on(tape.constant(x.clone()), leaves)
                        .softmax_cross_entropy(&y)
                })
                .map_err(|e| e.in_context(format!("pretraining on task {}", data.task.name())))?;
                opt.set_lr_factor(sched.factor_at(t));
                opt.step(&mut mlp.params_mut(), &grads);
            }
        }
        let mut ck = Checkpoint::new();
        ck.put_params("mlp", &mlp);
        ck.put_meta("fingerprint", fingerprint);
        ck.save(&path)?;
        seconds = t0.elapsed().as_secs_f64();
    }
    let source_acc = accuracy(
        &chunked(&data.source_test.x, |x| mlp.apply(x)),
        &data.source_test.y,
    );
    let head = initial_head(data, &mlp, seed);
    let target_acc = accuracy(
        &chunked(&data.target_test.x, |x| head.apply(&mlp.features(x))),
        &data.target_test.y,
    );
    Ok(Base {
        mlp,
        source_acc,
        target_acc,
        seconds,
    })
}

fn check_fingerprint(ck: &Checkpoint<f32>, want: &str, path: &Path) -> Result<()> {
    let have = ck.meta("fingerprint")?;
    if have != want {
        return Err(Error::Usage(format!(
            "checkpoint {} was written with other settings ({have}); remove it or run without --resume",
            path.display()
        )));
    }
    Ok(())
}

/// One fine-tuning run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunKey {
    /// The task.
    pub task: Task,
    /// Method and configuration.
    pub spec: Spec,
    /// Seed of the head initialisation, LoRA's `A` and the data order.
    pub seed: u64,
    /// Adam's learning rate.
    pub lr: f64,
}

impl RunKey {
    /// What a non-finite-loss error names: `task T, method M, config C, seed S, lr L`.
    pub fn context(&self) -> String {
        format!(
            "task {}, method {}, config {}, seed {}, lr {:e}",
            self.task.name(),
            self.spec.method(),
            self.spec.config(),
            self.seed,
            self.lr
        )
    }

    /// The checkpoint file name.
    pub fn file_name(&self) -> String {
        let cfg = self.spec.config().replace(['=', ','], "");
        format!(
            "{}__{}__{}__s{}__lr{:e}.safetensors",
            self.task.name(),
            self.spec.method(),
            if cfg == "-" { "none".to_string() } else { cfg },
            self.seed,
            self.lr
        )
    }
}

/// The results of a finished run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunResult {
    /// Validation accuracy (the learning-rate choice).
    pub val_acc: f64,
    /// Target test accuracy.
    pub target_acc: f64,
    /// Source test accuracy after fine-tuning (module docs of `tasks`).
    pub source_acc: f64,
    /// Mean training loss of the last epoch.
    pub final_loss: f64,
    /// Trainable scalars of the hidden layers as stored.
    pub params_free: usize,
    /// The same in the paper's convention.
    pub params_paper: usize,
    /// The post-training checks.
    pub checks: Checks,
}

impl RunResult {
    fn to_vec(&self) -> Vec<f64> {
        let mut v = vec![
            self.val_acc,
            self.target_acc,
            self.source_acc,
            self.final_loss,
            self.params_free as f64,
            self.params_paper as f64,
        ];
        v.extend(self.checks.to_vec());
        v
    }

    fn from_slice(v: &[f64]) -> Option<Self> {
        (v.len() == 6 + Checks::LEN).then(|| Self {
            val_acc: v[0],
            target_acc: v[1],
            source_acc: v[2],
            final_loss: v[3],
            params_free: v[4] as usize,
            params_paper: v[5] as usize,
            checks: Checks::from_slice(&v[6..]),
        })
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Finished, with its results.
    Done(RunResult),
    /// Stopped by the `--interrupt-after-epochs` test hook after that many epochs.
    Interrupted,
}

/// The model of `key` at initialisation.
///
/// # Errors
/// As [`Adapted::new`].
pub fn initial_model(key: &RunKey, data: &TaskData, base: &Mlp, setup: &Setup) -> Result<Adapted> {
    let head = initial_head(data, base, key.seed);
    let mut rng = StdRng::seed_from_u64(mix(&[key.seed, task_word(key.task), TAG_ADAPTER]));
    Adapted::new(key.spec, base, head, setup.map, setup.scale, &mut rng)
}

/// One training step of `model` on the batch `(x, y)` at global step `t`: the cross-entropy of
/// the logits through the tape, its gradients, the schedule's factor, one Adam update. Returns
/// the loss before the update.
///
/// # Errors
/// [`gslab::Error::NonFiniteLoss`] naming step `t` (without context) if the loss is not finite.
pub fn step(
    model: &mut Adapted,
    opt: &mut Adam<f32>,
    sched: &Schedule,
    t: usize,
    x: &Tensor<f32>,
    y: &[usize],
) -> gslab::Result<f64> {
    let (loss, grads) = loss_and_grads(model, t, &mut |_, m, tape, leaves| {
        m.logits_on(tape.constant(x.clone()), leaves)
            .softmax_cross_entropy(y)
    })?;
    opt.set_lr_factor(sched.factor_at(t));
    opt.step(&mut model.params_mut(), &grads);
    Ok(loss)
}

/// The learning-rate schedule of a run: linear warmup over 10 % of the steps, then cosine decay
/// to 0.
pub fn schedule(steps: usize) -> Schedule {
    Schedule::cosine(0.0, steps, steps / 10)
}

/// Trains, evaluates and checks one run (module docs: checkpoints, data order, errors).
///
/// # Errors
/// A non-finite loss (naming the run and the step), a checkpoint that cannot be written, or
/// (with `--resume`) one that cannot be read or was written with other settings.
pub fn fine_tune(key: &RunKey, data: &TaskData, base: &Mlp, setup: &Setup) -> Result<Outcome> {
    let path = setup.checkpoints.join(key.file_name());
    let fingerprint = format!("{}|{}", setup.fingerprint, key.context());
    let mut model = initial_model(key, data, base, setup)?;
    let mut opt = Adam::<f32>::new(key.lr);
    let mut losses: Vec<f64> = Vec::new();
    if setup.resume && path.exists() {
        let mut ck = Checkpoint::<f32>::load(&path)?;
        check_fingerprint(&ck, &fingerprint, &path)?;
        if ck.meta("done")? == "1" {
            let v = ck.f64s("results")?;
            return RunResult::from_slice(&v).map(Outcome::Done).ok_or_else(|| {
                Error::Usage(format!(
                    "checkpoint {} holds {} result values, expected {}",
                    path.display(),
                    v.len(),
                    6 + Checks::LEN
                ))
            });
        }
        ck.take_params("model", &mut model)?;
        ck.take_optimizer("adam", &mut opt)?;
        losses = ck.f64s("losses")?;
    }
    let sched = schedule(setup.steps);
    let n = data.target_fit.len();
    let tw = task_word(key.task);
    for epoch in losses.len()..setup.epochs() {
        let mut rng = StdRng::seed_from_u64(mix(&[key.seed, tw, TAG_ORDER, epoch as u64]));
        let mut sum = 0.0;
        for (s, idx) in epoch_batches(n, setup.batch, setup.epoch_steps, &mut rng)
            .into_iter()
            .enumerate()
        {
            let t = epoch * setup.epoch_steps + s;
            let (mut x, y) = data.target_fit.rows(&idx);
            if setup.nan_at_step == Some(t) {
                x.data_mut()[0] = f32::NAN;
            }
            sum += step(&mut model, &mut opt, &sched, t, &x, &y)
                .map_err(|e| e.in_context(key.context()))?;
        }
        losses.push(sum / setup.epoch_steps as f64);
        save(&path, &model, &opt, &fingerprint, &losses, None)?;
        if setup.interrupt_after == Some(epoch + 1) && epoch + 1 < setup.epochs() {
            return Ok(Outcome::Interrupted);
        }
    }
    let result = evaluate(&model, data, base, &losses);
    save(&path, &model, &opt, &fingerprint, &losses, Some(&result))?;
    Ok(Outcome::Done(result))
}

fn save(
    path: &Path,
    model: &Adapted,
    opt: &Adam<f32>,
    fingerprint: &str,
    losses: &[f64],
    result: Option<&RunResult>,
) -> Result<()> {
    let mut ck = Checkpoint::new();
    ck.put_params("model", model);
    ck.put_optimizer("adam", opt);
    ck.put_meta("fingerprint", fingerprint);
    ck.put_f64s("losses", losses);
    ck.put_meta("done", if result.is_some() { "1" } else { "0" });
    if let Some(r) = result {
        ck.put_f64s("results", &r.to_vec());
    }
    ck.save(path)?;
    Ok(())
}

/// Accuracies and checks of a trained model.
fn evaluate(model: &Adapted, data: &TaskData, base: &Mlp, losses: &[f64]) -> RunResult {
    let val_acc = accuracy(
        &chunked(&data.target_val.x, |x| model.apply(x)),
        &data.target_val.y,
    );
    let target_acc = accuracy(
        &chunked(&data.target_test.x, |x| model.apply(x)),
        &data.target_test.y,
    );
    let source_logits = match data.task {
        // The adapted body under the pretrained (frozen) source head.
        Task::NewClasses => chunked(&data.source_test.x, |x| base.head.apply(&model.features(x))),
        Task::Rotation => chunked(&data.source_test.x, |x| model.apply(x)),
    };
    let source_acc = accuracy(&source_logits, &data.source_test.y);
    let merged = model.merged();
    let checks = run_checks(model, &merged, base, &data.target_test.x);
    RunResult {
        val_acc,
        target_acc,
        source_acc,
        final_loss: losses.last().copied().unwrap_or(f64::NAN),
        params_free: model.free_params(),
        params_paper: model.paper_params(),
        checks,
    }
}

/// Wall time in milliseconds of one training step of each key's model (batch of the run), on
/// the calling thread's pool, one configuration at a time: `rounds` rounds in which every
/// configuration in turn takes one untimed and `per_round` timed steps; the time of a
/// configuration is the smallest over the rounds of the round's median. Other load on a shared
/// machine only ever adds time and comes in bursts that can cover a whole round of one
/// configuration, so the best round is the estimate of the undisturbed cost.
///
/// # Errors
/// As [`fine_tune`].
pub fn step_ms(
    keys: &[(usize, RunKey)],
    datas: &[TaskData],
    bases: &[Base],
    setup: &Setup,
    (rounds, per_round): (usize, usize),
) -> Result<Vec<f64>> {
    struct Timed {
        model: Adapted,
        opt: Adam<f32>,
        batches: Vec<(Tensor<f32>, Vec<usize>)>,
        /// The median of each round.
        rounds: Vec<f64>,
        t: usize,
    }
    let sched = schedule(setup.steps);
    let mut all: Vec<Timed> = keys
        .iter()
        .map(|&(i, key)| {
            let data = &datas[i];
            let mut rng =
                StdRng::seed_from_u64(mix(&[key.seed, task_word(key.task), TAG_ORDER, 0]));
            let batches = epoch_batches(data.target_fit.len(), setup.batch, 4, &mut rng)
                .iter()
                .map(|idx| data.target_fit.rows(idx))
                .collect();
            Ok(Timed {
                model: initial_model(&key, data, &bases[i].mlp, setup)?,
                opt: Adam::new(key.lr),
                batches,
                rounds: Vec::new(),
                t: 0,
            })
        })
        .collect::<Result<_>>()?;
    for _ in 0..rounds {
        for (timed, (_, key)) in all.iter_mut().zip(keys) {
            let mut times = Vec::with_capacity(per_round);
            for k in 0..=per_round {
                let (x, y) = &timed.batches[timed.t % timed.batches.len()];
                let t0 = Instant::now();
                step(&mut timed.model, &mut timed.opt, &sched, timed.t, x, y)
                    .map_err(|e| e.in_context(key.context()))?;
                if k > 0 {
                    times.push(t0.elapsed().as_secs_f64() * 1e3);
                }
                timed.t += 1;
            }
            times.sort_by(f64::total_cmp);
            timed.rounds.push(times[times.len() / 2]);
        }
    }
    Ok(all
        .into_iter()
        .map(|t| t.rounds.into_iter().fold(f64::NAN, f64::min))
        .collect())
}

/// The split a check or a figure needs by name (kept for the report's sizes).
pub fn split_sizes(data: &TaskData) -> [(&'static str, usize); 5] {
    let len = |s: &Split| s.len();
    [
        ("source_train", len(&data.source_train)),
        ("source_test", len(&data.source_test)),
        ("target_fit", len(&data.target_fit)),
        ("target_val", len(&data.target_val)),
        ("target_test", len(&data.target_test)),
    ]
}
