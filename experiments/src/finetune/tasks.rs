//! The two transfer tasks on the 10,000 MNIST digits of `data/mnist-10k` (8,000 train / 2,000
//! test, zero-padded to 32 × 32 and flattened to 1024 features):
//! - **new classes** (`new_classes`): pretrain on the training digits 0–4, fine-tune on digits
//!   5–9 (labels `d − 5`) with a fresh 5-way head; the source accuracy after fine-tuning is that
//!   of the adapted body under the pretrained (frozen) 0–4 head;
//! - **rotation** (`rotation`): pretrain on upright digits 0–9, fine-tune on the same kind of
//!   digits rotated by 90° counter-clockwise (an exact pixel permutation of the 32 × 32 canvas,
//!   no interpolation), keeping the head shape and starting from the pretrained head; the
//!   source accuracy after fine-tuning is on the upright test digits (forgetting).
//!
//! The target training data are the first `target_train` training digits of the target (a
//! limited budget), split into the first 80 % for fitting and the last 20 % for choosing the
//! learning rate; accuracies are on the 2,000 test digits of the target (and the source).

use crate::{Error, Result};
use gslab::Tensor;
use gslab::nn::data::mnist::{Mnist, TRAIN_COUNT, load_mnist, mnist_dir};

/// Side of the padded images.
pub const SIDE: usize = 32;

/// Input features: `32 · 32`.
pub const FEATURES: usize = SIDE * SIDE;

/// A transfer task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Digits 0–4 → digits 5–9.
    NewClasses,
    /// Upright → rotated by 90°.
    Rotation,
}

impl Task {
    /// Both tasks, in output order.
    pub const ALL: [Task; 2] = [Task::NewClasses, Task::Rotation];

    /// The `task` column.
    pub fn name(self) -> &'static str {
        match self {
            Task::NewClasses => "new_classes",
            Task::Rotation => "rotation",
        }
    }

    /// Source and target in words, for the report.
    pub fn about(self) -> &'static str {
        match self {
            Task::NewClasses => {
                "source: training digits 0-4 (5-way head); target: digits 5-9 (a fresh 5-way head); \
                 source accuracy after fine-tuning: the adapted body under the pretrained 0-4 head"
            }
            Task::Rotation => {
                "source: upright digits 0-9; target: the digits rotated by 90 degrees \
                 counter-clockwise (same 10-way head, starting from the pretrained one); source \
                 accuracy after fine-tuning: upright test digits (forgetting)"
            }
        }
    }

    /// Parses a `--tasks` entry.
    pub fn parse(s: &str) -> std::result::Result<Task, String> {
        Task::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| format!("unknown task '{s}' (expected new_classes or rotation)"))
    }
}

/// Flattened images and their labels.
#[derive(Clone, Debug)]
pub struct Split {
    /// `(count, 1024)` rows in `[0, 1]`.
    pub x: Tensor<f32>,
    /// Labels in `0..classes`.
    pub y: Vec<usize>,
}

impl Split {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// True if there is no example.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// The rows at `idx` (in that order) and their labels.
    pub fn rows(&self, idx: &[usize]) -> (Tensor<f32>, Vec<usize>) {
        let d = self.x.shape()[1];
        let mut data = Vec::with_capacity(idx.len() * d);
        for &i in idx {
            data.extend_from_slice(&self.x.data()[i * d..(i + 1) * d]);
        }
        let x = Tensor::from_vec(&[idx.len(), d], data).expect("idx.len() rows of d features");
        (x, idx.iter().map(|&i| self.y[i]).collect())
    }

    /// The first `n` examples (all if fewer).
    fn head(&self, n: usize) -> Split {
        let idx: Vec<usize> = (0..n.min(self.len())).collect();
        let (x, y) = self.rows(&idx);
        Split { x, y }
    }

    /// Examples `from..` .
    fn tail(&self, from: usize) -> Split {
        let idx: Vec<usize> = (from.min(self.len())..self.len()).collect();
        let (x, y) = self.rows(&idx);
        Split { x, y }
    }
}

/// Sizes of the data of a run.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Sizes {
    /// Source examples used for pretraining (at most; the first ones).
    pub source_train: usize,
    /// Target training budget (fit + validation).
    pub target_train: usize,
    /// Test examples per split (at most; the first ones).
    pub test: usize,
}

/// The data of one task.
#[derive(Clone, Debug)]
pub struct TaskData {
    /// Which task.
    pub task: Task,
    /// Pretraining data.
    pub source_train: Split,
    /// Source test digits (source accuracy before and after fine-tuning).
    pub source_test: Split,
    /// Target fit split (the first 80 % of the budget).
    pub target_fit: Split,
    /// Target validation split (the last 20 %), for the learning-rate choice.
    pub target_val: Split,
    /// Target test digits.
    pub target_test: Split,
    /// Classes of the source head.
    pub source_classes: usize,
    /// Classes of the target head.
    pub target_classes: usize,
}

/// `(p, q)` ↦ the pixel at `(q, SIDE − 1 − p)`: each image rotated by 90° counter-clockwise, an
/// exact permutation of the pixels.
pub fn rotate90(x: &Tensor<f32>) -> Tensor<f32> {
    let mut out = x.clone();
    for (src, dst) in x
        .data()
        .chunks_exact(FEATURES)
        .zip(out.data_mut().chunks_exact_mut(FEATURES))
    {
        for p in 0..SIDE {
            for q in 0..SIDE {
                dst[p * SIDE + q] = src[q * SIDE + (SIDE - 1 - p)];
            }
        }
    }
    out
}

fn flat(m: &Mnist<f32>, relabel: impl Fn(usize) -> usize) -> Result<Split> {
    Ok(Split {
        x: m.padded(SIDE)?.flat(),
        y: m.labels().iter().map(|&d| relabel(d)).collect(),
    })
}

/// Loads the shipped digits and builds `task`'s splits at the given sizes.
///
/// # Errors
/// A missing or malformed data file ([`gslab::Error`]); [`Error::Usage`] if the target budget
/// leaves an empty fit or validation split.
pub fn load(task: Task, sizes: Sizes) -> Result<TaskData> {
    let mnist = load_mnist::<f32>(mnist_dir())?;
    let (train, test) = mnist.split(TRAIN_COUNT)?;
    let (lo, hi): (Vec<usize>, Vec<usize>) = ((0..5).collect(), (5..10).collect());
    let (source_train, source_test, target_pool, target_test, sc, tc) = match task {
        Task::NewClasses => (
            flat(&train.with_labels(&lo)?, |d| d)?,
            flat(&test.with_labels(&lo)?, |d| d)?,
            flat(&train.with_labels(&hi)?, |d| d - 5)?,
            flat(&test.with_labels(&hi)?, |d| d - 5)?,
            5,
            5,
        ),
        Task::Rotation => {
            let (tr, te) = (flat(&train, |d| d)?, flat(&test, |d| d)?);
            let rot = |s: &Split| Split {
                x: rotate90(&s.x),
                y: s.y.clone(),
            };
            let (rtr, rte) = (rot(&tr), rot(&te));
            (tr, te, rtr, rte, 10, 10)
        }
    };
    let budget = target_pool.head(sizes.target_train);
    let n_fit = budget.len() * 4 / 5;
    if n_fit == 0 || n_fit == budget.len() {
        return Err(Error::Usage(format!(
            "--target-train {} leaves an empty fit or validation split",
            sizes.target_train
        )));
    }
    Ok(TaskData {
        task,
        source_train: source_train.head(sizes.source_train),
        source_test: source_test.head(sizes.test),
        target_fit: budget.head(n_fit),
        target_val: budget.tail(n_fit),
        target_test: target_test.head(sizes.test),
        source_classes: sc,
        target_classes: tc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_is_a_quarter_turn_permutation() {
        let x = Tensor::from_fn(&[1, FEATURES], |i| i as f32);
        let r = rotate90(&x);
        // Four quarter turns are the identity; one moves the top-right pixel to the top left.
        assert_eq!(rotate90(&rotate90(&rotate90(&r))).data(), x.data());
        assert_eq!(r.data()[0], (SIDE - 1) as f32);
        let mut sorted = r.data().to_vec();
        sorted.sort_by(f32::total_cmp);
        assert_eq!(sorted, x.data());
    }
}
