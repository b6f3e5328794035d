//! [`Checkpoint`]: everything a training run needs to continue bit for bit — model parameters,
//! optimizer state, extra state tensors (e.g. power-iteration vectors) and metadata (epoch, step,
//! configuration, logs) — in one safetensors file written atomically.
//!
//! Tensors are stored under `prefix/name` keys: [`Checkpoint::put_params`] uses the model's
//! [`Params::param_names`], [`Checkpoint::put_optimizer`] the names of
//! [`Optimizer::state`] plus its step count in the metadata. Metadata values are strings; `f64`
//! values written with [`Checkpoint::put_f64s`] use Rust's shortest round-trip formatting, so they
//! read back to the same bits. Random number generators are not stored: a run that must resume
//! bitwise derives each epoch's generator from `(seed, epoch)`.
//!
//! ```
//! use gslab::nn::checkpoint::Checkpoint;
//! use gslab::nn::optim::{Adam, Optimizer};
//! use gslab::{Params, Tensor};
//! let mut model = vec![Tensor::<f64>::ones(&[3])];
//! let mut opt = Adam::new(0.1);
//! opt.step(&mut model.params_mut(), &[Tensor::ones(&[3])]);
//! let mut ck = Checkpoint::new();
//! ck.put_params("model", &model);
//! ck.put_optimizer("adam", &opt);
//! ck.put_meta("epoch", "1");
//! let path = std::env::temp_dir().join(format!("gslab_ck_doc_{}.safetensors", std::process::id()));
//! ck.save(&path)?;
//! let mut back = Checkpoint::<f64>::load(&path)?;
//! let (mut model2, mut opt2) = (vec![Tensor::<f64>::zeros(&[3])], Adam::new(0.1));
//! back.take_params("model", &mut model2)?;
//! back.take_optimizer("adam", &mut opt2)?;
//! assert_eq!(model2, model);
//! assert_eq!(opt2.state(), opt.state());
//! assert_eq!(back.meta("epoch")?, "1");
//! # std::fs::remove_file(path).unwrap();
//! # Ok::<(), gslab::Error>(())
//! ```

use crate::autodiff::params::Params;
use crate::error::{Error, Result};
use crate::io::{load_metadata, load_tensors, save_tensors};
use crate::nn::optim::{Optimizer, OptimizerState};
use crate::real::Real;
use crate::tensor::Tensor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Named tensors and string metadata of a training run (module docs).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint<T: Real> {
    tensors: BTreeMap<String, Tensor<T>>,
    meta: BTreeMap<String, String>,
    /// The file it was loaded from, for error messages.
    path: Option<PathBuf>,
}

impl<T: Real> Checkpoint<T> {
    /// An empty checkpoint.
    pub fn new() -> Self {
        Self {
            tensors: BTreeMap::new(),
            meta: BTreeMap::new(),
            path: None,
        }
    }

    /// Stores `tensor` under `name` (replacing an earlier one).
    pub fn put(&mut self, name: impl Into<String>, tensor: Tensor<T>) {
        self.tensors.insert(name.into(), tensor);
    }

    /// Removes and returns the tensor `name`.
    ///
    /// # Errors
    /// [`Error::Format`] naming the tensor and the file if it is missing.
    pub fn take(&mut self, name: &str) -> Result<Tensor<T>> {
        self.tensors
            .remove(name)
            .ok_or_else(|| self.missing(&format!("tensor '{name}'")))
    }

    /// Stores every parameter of `model` as `prefix/name`.
    pub fn put_params<M: Params<T>>(&mut self, prefix: &str, model: &M) {
        for (name, p) in model.param_names().into_iter().zip(model.params()) {
            self.put(format!("{prefix}/{name}"), p.clone());
        }
    }

    /// Restores every parameter of `model` from `prefix/name`, checking shapes.
    ///
    /// # Errors
    /// [`Error::Format`] naming the tensor if it is missing or has another shape.
    pub fn take_params<M: Params<T>>(&mut self, prefix: &str, model: &mut M) -> Result<()> {
        let names = model.param_names();
        for (name, p) in names.into_iter().zip(model.params_mut()) {
            let key = format!("{prefix}/{name}");
            let t = self.take(&key)?;
            if t.shape() != p.shape() {
                return Err(self.bad(&format!(
                    "tensor '{key}' has shape {:?}, the model needs {:?}",
                    t.shape(),
                    p.shape()
                )));
            }
            *p = t;
        }
        Ok(())
    }

    /// Stores the optimizer's state tensors as `prefix/name` and its step count as metadata
    /// `prefix/steps`.
    pub fn put_optimizer<O: Optimizer<T>>(&mut self, prefix: &str, opt: &O) {
        let state = opt.state();
        for (name, t) in state.tensors {
            self.put(format!("{prefix}/{name}"), t);
        }
        self.put_meta(format!("{prefix}/steps"), state.steps.to_string());
    }

    /// Restores an optimizer stored by [`Checkpoint::put_optimizer`].
    ///
    /// # Errors
    /// [`Error::Format`] if the step count is missing or not a number; the optimizer's own error
    /// if its state does not fit.
    pub fn take_optimizer<O: Optimizer<T>>(&mut self, prefix: &str, opt: &mut O) -> Result<()> {
        let steps_key = format!("{prefix}/steps");
        let steps = self
            .meta(&steps_key)?
            .parse::<u64>()
            .map_err(|_| self.bad(&format!("metadata '{steps_key}' is not a step count")))?;
        let start = format!("{prefix}/");
        let names: Vec<String> = self
            .tensors
            .keys()
            .filter(|k| k.starts_with(&start))
            .cloned()
            .collect();
        let mut tensors = Vec::new();
        for key in names {
            let t = self.take(&key)?;
            tensors.push((key[start.len()..].to_string(), t));
        }
        opt.set_state(OptimizerState { tensors, steps })
    }

    /// Stores a metadata string.
    pub fn put_meta(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.meta.insert(key.into(), value.into());
    }

    /// The metadata string `key`.
    ///
    /// # Errors
    /// [`Error::Format`] naming the key and the file if it is missing.
    pub fn meta(&self, key: &str) -> Result<&str> {
        self.meta
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| self.missing(&format!("metadata '{key}'")))
    }

    /// Stores `values` as metadata `key`, each with the shortest formatting that reads back to
    /// the same bits, separated by commas.
    pub fn put_f64s(&mut self, key: impl Into<String>, values: &[f64]) {
        let text: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
        self.put_meta(key, text.join(","));
    }

    /// The values stored by [`Checkpoint::put_f64s`] under `key`, bit for bit.
    ///
    /// # Errors
    /// [`Error::Format`] if the key is missing or a value is not a number.
    pub fn f64s(&self, key: &str) -> Result<Vec<f64>> {
        let text = self.meta(key)?;
        if text.is_empty() {
            return Ok(Vec::new());
        }
        text.split(',')
            .map(|v| {
                v.parse::<f64>()
                    .map_err(|_| self.bad(&format!("metadata '{key}' holds {v:?}, not a number")))
            })
            .collect()
    }

    /// Writes the checkpoint to `path` atomically (a temporary file, then a rename).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be written.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let named: Vec<(&str, &Tensor<T>)> =
            self.tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
        save_tensors(path, &named, &self.meta)
    }

    /// Reads a checkpoint written by [`Checkpoint::save`].
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read, [`Error::Format`] if it is not a valid
    /// safetensors file, [`Error::Dtype`] if its tensors are not of dtype `T`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Ok(Self {
            tensors: load_tensors(path)?,
            meta: load_metadata(path)?,
            path: Some(path.to_path_buf()),
        })
    }

    fn where_(&self) -> String {
        self.path
            .as_ref()
            .map_or_else(|| "<memory>".to_string(), |p| p.display().to_string())
    }

    fn missing(&self, what: &str) -> Error {
        Error::format(self.where_(), format!("checkpoint has no {what}"))
    }

    fn bad(&self, msg: &str) -> Error {
        Error::format(self.where_(), msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::optim::Sgd;

    #[test]
    fn missing_and_mismatched_entries_are_named() {
        let mut ck = Checkpoint::<f64>::new();
        ck.put("model/p0", Tensor::zeros(&[2]));
        let mut wrong = vec![Tensor::<f64>::zeros(&[3])];
        let e = ck.take_params("model", &mut wrong).unwrap_err().to_string();
        assert!(
            e.contains("'model/p0'") && e.contains("[2]") && e.contains("[3]"),
            "{e}"
        );
        let e = ck.take_params("other", &mut wrong).unwrap_err().to_string();
        assert!(e.contains("no tensor 'other/p0'"), "{e}");
        let e = ck
            .take_optimizer("sgd", &mut Sgd::new(0.1, 0.9))
            .unwrap_err();
        assert!(e.to_string().contains("metadata 'sgd/steps'"), "{e}");
        ck.put_meta("x", "1.5,oops");
        assert!(ck.f64s("x").unwrap_err().to_string().contains("\"oops\""));
    }

    #[test]
    fn f64_metadata_round_trips_bit_for_bit() {
        let mut ck = Checkpoint::<f32>::new();
        let v = [
            0.1,
            1.0 / 3.0,
            f64::MIN_POSITIVE,
            -2.5e-300,
            12345.678901234567,
        ];
        ck.put_f64s("log", &v);
        let back = ck.f64s("log").unwrap();
        assert!(back.iter().zip(&v).all(|(a, b)| a.to_bits() == b.to_bits()));
        ck.put_f64s("empty", &[]);
        assert!(ck.f64s("empty").unwrap().is_empty());
    }
}
