//! One training run of `lipconv` ([`TrainRun`]): a variant and a seed, trained epoch by epoch
//! with the shared recipe, checkpointed after every epoch and resumable bit for bit.
//!
//! Nothing random is stored: the initialisation comes from a generator seeded by
//! `(seed, variant)` and the data order of epoch `e` from one seeded by `(seed, e)` (the same
//! batches for every variant). A checkpoint holds the parameters, the SGD velocities and step
//! count, the spectral state (power-iteration vectors and counters), the number of finished
//! epochs, the per-epoch logs (bit-exact `f64`) and a fingerprint of the training configuration,
//! which `--resume` requires to match.

use super::{Config, OptimizerKind, Variant};
use crate::{Error, Result, Run};
use gslab::autodiff::tape::Var;
use gslab::nn::checkpoint::Checkpoint;
use gslab::nn::data::argmax_rows;
use gslab::nn::data::mnist::Mnist;
use gslab::nn::lipconvnet::LipConvnet;
use gslab::nn::optim::{Adam, Optimizer, OptimizerState, Sgd};
use gslab::nn::schedule::Schedule;
use gslab::orthogonal::conv::{Mode, SpectralState};
use gslab::{Params, Tape, Tensor};
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::path::PathBuf;
use std::time::Instant;

/// Per-epoch log of a run (index = epoch − 1).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpochLog {
    /// Mean training loss over the epoch's samples (training mode, before each update).
    pub loss: Vec<f64>,
    /// Fraction of the epoch's training samples classified correctly (training mode).
    pub train_acc: Vec<f64>,
    /// Wall time of the epoch's training steps (no checkpointing), seconds.
    pub seconds: Vec<f64>,
}

/// A variant and a seed in training (module docs).
pub struct TrainRun {
    /// The variant trained.
    pub variant: Variant,
    /// Its seed.
    pub seed: u64,
    /// The network.
    pub net: LipConvnet<f32>,
    opt: Opt,
    schedule: Schedule,
    steps_per_epoch: usize,
    /// The per-epoch log so far.
    pub log: EpochLog,
    path: PathBuf,
    fingerprint: String,
}

/// The optimizer of a run: the official SGD recipe or Adam (`--optimizer`).
#[derive(Clone, Debug)]
enum Opt {
    Sgd(Sgd<f32>),
    Adam(Adam<f32>),
}

impl Optimizer<f32> for Opt {
    fn step(&mut self, params: &mut [&mut Tensor<f32>], grads: &[Tensor<f32>]) {
        match self {
            Self::Sgd(o) => o.step(params, grads),
            Self::Adam(o) => o.step(params, grads),
        }
    }
    fn lr(&self) -> f64 {
        match self {
            Self::Sgd(o) => o.lr(),
            Self::Adam(o) => o.lr(),
        }
    }
    fn lr_factor(&self) -> f64 {
        match self {
            Self::Sgd(o) => o.lr_factor(),
            Self::Adam(o) => o.lr_factor(),
        }
    }
    fn set_lr_factor(&mut self, factor: f64) {
        match self {
            Self::Sgd(o) => o.set_lr_factor(factor),
            Self::Adam(o) => o.set_lr_factor(factor),
        }
    }
    fn state(&self) -> OptimizerState<f32> {
        match self {
            Self::Sgd(o) => o.state(),
            Self::Adam(o) => o.state(),
        }
    }
    fn set_state(&mut self, state: OptimizerState<f32>) -> gslab::Result<()> {
        match self {
            Self::Sgd(o) => o.set_state(state),
            Self::Adam(o) => o.set_state(state),
        }
    }
}

/// SplitMix64 finaliser: a well-mixed 64-bit value of `x`.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a hash of a name.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Seed of the initialisation of `variant` with `seed`.
fn init_seed(seed: u64, variant: &str) -> u64 {
    mix(mix(seed) ^ fnv(variant))
}

/// Seed of the data order of epoch `epoch` (0-based): shared by every variant.
fn order_seed(seed: u64, epoch: usize) -> u64 {
    mix(mix(seed ^ 0x6c69_7063_6f6e_7600) ^ epoch as u64)
}

impl TrainRun {
    /// A fresh run, or with `--resume` the run restored from its checkpoint when there is one.
    ///
    /// # Errors
    /// A network that cannot be built; on resume, a checkpoint that cannot be read, was written
    /// by another configuration (the message names the first differing setting) or does not fit
    /// the network.
    pub fn start(run: &Run, cfg: &Config, variant: Variant, seed: u64) -> Result<Self> {
        let name = variant.name();
        let mut rng = StdRng::seed_from_u64(init_seed(seed, &name));
        let net = LipConvnet::<f32>::new(variant.net_config(cfg), &mut rng)?;
        let steps_per_epoch = cfg.train_count.div_ceil(cfg.batch);
        let total = cfg.epochs * steps_per_epoch;
        let milestones = cfg
            .milestones
            .iter()
            .map(|f| (f * total as f64).round() as usize)
            .collect();
        let dir = run.path("checkpoints");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut me = Self {
            variant,
            seed,
            net,
            opt: match cfg.optimizer {
                OptimizerKind::Sgd => {
                    Opt::Sgd(Sgd::new(cfg.lr, cfg.momentum).with_weight_decay(cfg.weight_decay))
                }
                OptimizerKind::Adam => Opt::Adam(Adam::new(cfg.lr)),
            },
            schedule: Schedule::multi_step(milestones, 0.1),
            steps_per_epoch,
            log: EpochLog::default(),
            path: dir.join(format!("{name}_s{seed}.safetensors")),
            fingerprint: fingerprint(cfg, &variant, seed),
        };
        if cfg.resume && me.path.exists() {
            me.restore()?;
        }
        Ok(me)
    }

    /// Epochs finished so far.
    pub fn epochs_done(&self) -> usize {
        self.log.loss.len()
    }

    /// The checkpoint file of the run.
    pub fn checkpoint_path(&self) -> &std::path::Path {
        &self.path
    }

    /// Trains the next epoch, then writes the checkpoint.
    ///
    /// # Errors
    /// [`gslab::Error::NonFiniteLoss`] naming the variant, seed, epoch and step (global step in
    /// `step`, the step within the epoch in the context); a checkpoint that cannot be written.
    pub fn train_epoch(
        &mut self,
        cfg: &Config,
        data: &Mnist<f32>,
        bar: &ProgressBar,
    ) -> Result<()> {
        let epoch = self.epochs_done();
        let mut order: Vec<usize> = (0..data.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(order_seed(self.seed, epoch)));
        let t0 = Instant::now();
        let (mut loss_sum, mut correct) = (0.0f64, 0usize);
        for (b, idx) in order.chunks(cfg.batch).enumerate() {
            let step = epoch * self.steps_per_epoch + b;
            let (x, labels) = gather(data, idx);
            let tape = Tape::new();
            let leaves = self.net.leaves(&tape);
            let z = self
                .net
                .forward_with(tape.constant(x), &leaves, Mode::Train);
            let pred = argmax_rows(&z.value());
            correct += pred.iter().zip(&labels).filter(|(p, y)| p == y).count();
            let loss = margin_loss(z, &labels, cfg.loss_offset, cfg.loss_scale);
            let mut value = f64::from(loss.value().item());
            if cfg.inject_nan_step == Some(step) {
                value = f64::NAN;
            }
            if !value.is_finite() {
                return Err(gslab::Error::NonFiniteLoss {
                    context: String::new(),
                    step,
                    loss: value,
                }
                .in_context(format!(
                    "lipconv variant {}, seed {}, epoch {} of {}, step {} of the epoch",
                    self.variant.name(),
                    self.seed,
                    epoch + 1,
                    cfg.epochs,
                    b
                ))
                .into());
            }
            let grads = tape.backward(loss);
            let grads: Vec<Tensor<f32>> = leaves.iter().map(|v| grads.wrt(*v)).collect();
            self.opt.set_lr_factor(self.schedule.factor_at(step));
            self.opt.step(&mut self.net.params_mut(), &grads);
            loss_sum += value * idx.len() as f64;
            bar.inc(1);
        }
        let seconds = t0.elapsed().as_secs_f64();
        let n = data.len() as f64;
        self.log.loss.push(loss_sum / n);
        self.log.train_acc.push(correct as f64 / n);
        self.log.seconds.push(seconds);
        self.save()
    }

    /// Writes the checkpoint (atomically: a temporary file, then a rename).
    fn save(&self) -> Result<()> {
        let mut ck = Checkpoint::<f32>::new();
        ck.put_params("model", &self.net);
        ck.put_optimizer("opt", &self.opt);
        let state = self.net.state();
        for (name, t) in state.tensors {
            ck.put(format!("spectral/{name}"), t);
        }
        for (name, c) in state.counters {
            ck.put_meta(format!("spectral/{name}"), c.to_string());
        }
        ck.put_meta("epochs_done", self.epochs_done().to_string());
        ck.put_meta("fingerprint", self.fingerprint.clone());
        ck.put_f64s("log/loss", &self.log.loss);
        ck.put_f64s("log/train_acc", &self.log.train_acc);
        ck.put_f64s("log/seconds", &self.log.seconds);
        Ok(ck.save(&self.path)?)
    }

    /// Restores everything [`TrainRun::save`] wrote.
    fn restore(&mut self) -> Result<()> {
        let path = self.path.display().to_string();
        let mut ck = Checkpoint::<f32>::load(&self.path)?;
        check_fingerprint(&path, ck.meta("fingerprint")?, &self.fingerprint)?;
        ck.take_params("model", &mut self.net)?;
        ck.take_optimizer("opt", &mut self.opt)?;
        let template = self.net.state();
        let mut state = SpectralState::default();
        for (name, _) in template.tensors {
            let t = ck.take(&format!("spectral/{name}"))?;
            state.tensors.push((name, t));
        }
        for (name, _) in template.counters {
            let key = format!("spectral/{name}");
            let c = ck.meta(&key)?.parse::<u64>().map_err(|_| {
                gslab::Error::format(&path, format!("metadata '{key}' is not a step count"))
            })?;
            state.counters.push((name, c));
        }
        self.net.set_state(&state)?;
        let log = EpochLog {
            loss: ck.f64s("log/loss")?,
            train_acc: ck.f64s("log/train_acc")?,
            seconds: ck.f64s("log/seconds")?,
        };
        let done = ck.meta("epochs_done")?;
        let ok = done
            .parse::<usize>()
            .ok()
            .filter(|&d| d == log.loss.len() && d == log.train_acc.len() && d == log.seconds.len());
        if ok.is_none() {
            return Err(gslab::Error::format(
                &path,
                format!(
                    "epochs_done '{done}' does not match the logs ({} epochs logged)",
                    log.loss.len()
                ),
            )
            .into());
        }
        self.log = log;
        Ok(())
    }
}

/// The training settings a checkpoint must share with the run resuming it, as `key=value`
/// pairs (`;`-separated, `f64` in shortest round-trip form).
fn fingerprint(cfg: &Config, variant: &Variant, seed: u64) -> String {
    [
        ("variant", variant.name()),
        ("seed", seed.to_string()),
        ("epochs", cfg.epochs.to_string()),
        ("depth", cfg.depth.to_string()),
        ("init_channels", cfg.init_channels.to_string()),
        ("batch", cfg.batch.to_string()),
        ("optimizer", format!("{:?}", cfg.optimizer)),
        ("lr", format!("{:?}", cfg.lr)),
        ("loss_offset", format!("{:?}", cfg.loss_offset)),
        ("loss_scale", format!("{:?}", cfg.loss_scale)),
        ("scaling", super::scaling_name(cfg.scaling).to_string()),
        ("train_count", cfg.train_count.to_string()),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={v}"))
    .collect::<Vec<_>>()
    .join(";")
}

/// Errors naming the first setting in which the stored fingerprint differs.
fn check_fingerprint(path: &str, stored: &str, want: &str) -> Result<()> {
    if stored == want {
        return Ok(());
    }
    let pairs = |s: &str| -> Vec<(String, String)> {
        s.split(';')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.to_string(), v.to_string())
            })
            .collect()
    };
    let (a, b) = (pairs(stored), pairs(want));
    let diff = b
        .iter()
        .find(|(k, v)| a.iter().find(|(ka, _)| ka == k).map(|(_, va)| va) != Some(v))
        .map_or_else(
            || "its settings".to_string(),
            |(k, v)| {
                let old = a
                    .iter()
                    .find(|(ka, _)| ka == k)
                    .map_or("(missing)", |(_, va)| va.as_str());
                format!("{k} = {old} in the checkpoint, {v} now")
            },
        );
    Err(Error::Usage(format!(
        "--resume: checkpoint {path} was written by another configuration ({diff})"
    )))
}

/// The images `idx` of `data` as a `(len, 1, 32, 32)` batch, and their labels.
pub fn gather(data: &Mnist<f32>, idx: &[usize]) -> (Tensor<f32>, Vec<usize>) {
    let s = data.side();
    let mut x = Vec::with_capacity(idx.len() * s * s);
    for &i in idx {
        x.extend_from_slice(data.image(i));
    }
    let labels = idx.iter().map(|&i| data.labels()[i]).collect();
    let x = Tensor::from_vec(&[idx.len(), 1, s, s], x).expect("len·side² pixels");
    (x, labels)
}

/// The training loss `CE(s·(z − o·e_y))`: softmax cross-entropy of the logits with the true
/// class's logit lowered by the offset `o` and all of them scaled by `s` (`o = 0, s = 1`: plain
/// cross-entropy, the official recipe). The offset asks for a margin of at least about `o`
/// before the loss saturates, which is what certification at a radius needs.
pub fn margin_loss<'t>(z: Var<'t, f32>, labels: &[usize], offset: f64, scale: f64) -> Var<'t, f32> {
    let classes = z.shape()[1];
    let mut z = z;
    if offset != 0.0 {
        let o = offset as f32;
        let shift = Tensor::from_fn(&[labels.len(), classes], |i| {
            if i % classes == labels[i / classes] {
                o
            } else {
                0.0
            }
        });
        z = z.sub(z.tape().constant(shift));
    }
    if scale != 1.0 {
        z = z.mul_scalar(scale as f32);
    }
    z.softmax_cross_entropy(labels)
}
