//! Safetensors input and output: whole chains ([`save_chain`] / [`load_chain`]) and named
//! tensors ([`save_tensors`] / [`load_tensors`]), readable from PyTorch.
//!
//! # Chain file format (`gslab.chain.v1`)
//! A chain `A = P_{m+1} B_m P_m ⋯ B_1 P_1` ([`ChainLayout`]) is stored as
//! - `factor.{i}.blocks`, `i = 0..m`: the blocks of `B_{i+1}`, dtype `F32` or `F64`, shape
//!   `(k, b1, b2)`, row-major; the factor maps `x` (length `k·b2`) to
//!   `y[j·b1 + u] = Σ_t B[j, u, t] · x[j·b2 + t]`;
//! - `perm.{i}`, `i = 0..=m`: the gather map of `P_{i+1}` as `I64` of shape `(n_i,)`:
//!   `(P x)[i] = x[perm[i]]`, i.e. `x[..., perm]` in PyTorch;
//! - `__metadata__`: `"format": "gslab.chain.v1"`, `"m"`: the number of factors, `"dtype"`,
//!   `"convention"`: a one-line statement of the two rules above, plus any user entries.
//!
//! Reading it in PyTorch (not executed here):
//!
//! ```python
//! import torch
//! from safetensors import safe_open
//! from safetensors.torch import load_file
//! t = load_file("chain.safetensors")
//! with safe_open("chain.safetensors", "pt") as f:
//!     m = int(f.metadata()["m"])
//! def apply(x):                                  # x: (batch, n_in) -> (batch, n_out) = x A^T
//!     x = x[:, t["perm.0"]]
//!     for i in range(m):
//!         B = t[f"factor.{i}.blocks"]            # (k, b1, b2)
//!         k, b1, b2 = B.shape
//!         x = torch.einsum("kut,zkt->zku", B, x.reshape(-1, k, b2)).reshape(-1, k * b1)
//!         x = x[:, t[f"perm.{i + 1}"]]
//!     return x
//! A = apply(torch.eye(n_in, dtype=t["factor.0.blocks"].dtype)).T   # the dense matrix
//! ```
//!
//! Loading validates the format tag, dtypes, shapes (the sizes must chain, Definition 5.1) and
//! that every `perm.{i}` is a permutation, and returns errors naming the offending tensor.
//! Extra tensors in a chain file are ignored. Values round-trip bitwise.

use crate::autodiff::params::Params;
use crate::blocks::BlockShape;
use crate::error::{Error, Result};
use crate::kernels::layout::ChainLayout;
use crate::perm::Perm;
use crate::real::{Real, RealSlice};
use crate::tensor::Tensor;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The `format` metadata value of a chain file.
pub const CHAIN_FORMAT: &str = "gslab.chain.v1";

/// The `convention` metadata value of a chain file.
pub const CHAIN_CONVENTION: &str = "(P x)[i] = x[perm[i]]; y = P_{m+1} B_m P_m ... B_1 P_1 x; \
factor.{i}.blocks has shape (k, b1, b2) and maps x to y[j*b1+u] = sum_t B[j,u,t] x[j*b2+t]";

/// Metadata keys written by [`save_chain`]; user metadata may not use them.
pub const RESERVED_KEYS: [&str; 4] = ["format", "m", "dtype", "convention"];

const MEMORY: &str = "<memory>";

fn io_err(path: &str, msg: impl std::fmt::Display) -> Error {
    Error::format(path, msg)
}

/// The safetensors dtype of `T`.
fn dtype_of<T: Real>() -> Dtype {
    match T::view(&[]) {
        RealSlice::F32(_) => Dtype::F32,
        RealSlice::F64(_) => Dtype::F64,
    }
}

/// Little-endian bytes of the values, bit for bit.
fn real_bytes<T: Real>(data: &[T]) -> Vec<u8> {
    match T::view(data) {
        RealSlice::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        RealSlice::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

/// Values of `T` from little-endian bytes, bit for bit (the bytes hold values of `T`'s dtype).
fn real_from_bytes<T: Real>(bytes: &[u8]) -> Vec<T> {
    let f32s = || {
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect()
    };
    let f64s = || {
        bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect()
    };
    match dtype_of::<T>() {
        Dtype::F32 => T::from_f32_vec(f32s()),
        _ => T::from_f64_vec(f64s()),
    }
    .expect("dtype_of names T's concrete type")
}

/// One tensor to write: name, dtype, shape, bytes.
struct Raw {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl Raw {
    fn real<T: Real>(name: String, t: &Tensor<T>) -> Self {
        Self {
            name,
            dtype: dtype_of::<T>(),
            shape: t.shape().to_vec(),
            bytes: real_bytes(t.data()),
        }
    }

    fn perm(name: String, p: &Perm) -> Self {
        Self {
            name,
            dtype: Dtype::I64,
            shape: vec![p.len()],
            bytes: p
                .as_slice()
                .iter()
                .flat_map(|&s| (s as i64).to_le_bytes())
                .collect(),
        }
    }
}

/// Serializes raw tensors and metadata to safetensors bytes.
fn serialize(raws: &[Raw], metadata: HashMap<String, String>) -> Result<Vec<u8>> {
    let views = raws
        .iter()
        .map(|r| {
            TensorView::new(r.dtype, r.shape.clone(), &r.bytes)
                .map(|v| (r.name.clone(), v))
                .map_err(|e| io_err(MEMORY, format!("tensor '{}': {e}", r.name)))
        })
        .collect::<Result<Vec<_>>>()?;
    let meta = if metadata.is_empty() {
        None
    } else {
        Some(metadata)
    };
    safetensors::tensor::serialize(views, meta).map_err(|e| io_err(MEMORY, e))
}

/// Writes `bytes` to `path` atomically: to a temporary file in the same directory, flushed to
/// disk, then renamed over `path`, so a crash leaves either the old file or the new one, never a
/// truncated one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let name = path.file_name().map_or_else(
        || std::ffi::OsString::from("file"),
        std::ffi::OsStr::to_os_string,
    );
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(&name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(&tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, bytes)
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// Re-labels an error from a bytes-level function with the file path.
fn with_path(path: &Path, e: Error) -> Error {
    e.at_path(path)
}

/// Parses safetensors bytes.
fn parse(bytes: &[u8]) -> Result<SafeTensors<'_>> {
    SafeTensors::deserialize(bytes)
        .map_err(|e| io_err(MEMORY, format!("not a valid safetensors file: {e}")))
}

/// The `__metadata__` of safetensors bytes (empty if absent).
///
/// # Errors
/// [`Error::Format`] if the bytes are not a valid safetensors file.
pub fn metadata_from_bytes(bytes: &[u8]) -> Result<BTreeMap<String, String>> {
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| io_err(MEMORY, format!("not a valid safetensors file: {e}")))?;
    Ok(meta
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect())
}

/// The `__metadata__` of a safetensors file (empty if absent).
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Format`] if it is not a valid safetensors
/// file.
pub fn load_metadata(path: impl AsRef<Path>) -> Result<BTreeMap<String, String>> {
    let path = path.as_ref();
    metadata_from_bytes(&read_file(path)?).map_err(|e| with_path(path, e))
}

/// A real tensor of dtype `T` from a view, checked.
fn real_tensor<T: Real>(name: &str, view: &TensorView<'_>) -> Result<Tensor<T>> {
    let want = dtype_of::<T>();
    if view.dtype() != want {
        return Err(Error::Dtype {
            path: MEMORY.to_string(),
            name: name.to_string(),
            expected: format!("{want:?}"),
            got: format!("{:?}", view.dtype()),
        });
    }
    Tensor::from_vec(view.shape(), real_from_bytes(view.data()))
}

/// A permutation from an `I64` view of shape `(n,)`, checked with [`Perm::from_vec`].
fn perm_tensor(name: &str, view: &TensorView<'_>) -> Result<Perm> {
    if view.dtype() != Dtype::I64 || view.shape().len() != 1 {
        return Err(io_err(
            MEMORY,
            format!(
                "tensor '{name}' must be I64 of shape (n,), got {:?} of shape {:?}",
                view.dtype(),
                view.shape()
            ),
        ));
    }
    let map = view
        .data()
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
        .map(|v| {
            usize::try_from(v)
                .map_err(|_| io_err(MEMORY, format!("tensor '{name}' holds negative index {v}")))
        })
        .collect::<Result<Vec<usize>>>()?;
    Perm::from_vec(map).map_err(|e| match e {
        Error::NotAPermutation { n, reason } => Error::NotAPermutation {
            n,
            reason: format!("tensor '{name}': {reason}"),
        },
        other => other,
    })
}

/// Safetensors bytes of named tensors (all of dtype `T`) with optional string metadata.
///
/// # Errors
/// [`Error::InvalidArgument`] on a repeated name; [`Error::Format`] if serialization fails.
pub fn tensors_to_bytes<T: Real>(
    tensors: &[(&str, &Tensor<T>)],
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let mut seen = std::collections::HashSet::new();
    for (name, _) in tensors {
        if !seen.insert(*name) {
            return Err(Error::InvalidArgument(format!(
                "tensor name '{name}' is repeated"
            )));
        }
    }
    let raws: Vec<Raw> = tensors
        .iter()
        .map(|(name, t)| Raw::real(name.to_string(), t))
        .collect();
    serialize(&raws, metadata.clone().into_iter().collect())
}

/// Writes named tensors (e.g. trained parameters) to a safetensors file; PyTorch reads it with
/// `safetensors.torch.load_file(path)`.
///
/// # Errors
/// As [`tensors_to_bytes`], and [`Error::Io`] if the file cannot be written.
pub fn save_tensors<T: Real>(
    path: impl AsRef<Path>,
    tensors: &[(&str, &Tensor<T>)],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let path = path.as_ref();
    let bytes = tensors_to_bytes(tensors, metadata).map_err(|e| with_path(path, e))?;
    write_file(path, &bytes)
}

/// Named tensors of dtype `T` from safetensors bytes.
///
/// # Errors
/// [`Error::Format`] if the bytes are not valid safetensors; [`Error::Dtype`] if a tensor is not
/// of dtype `T`.
pub fn tensors_from_bytes<T: Real>(bytes: &[u8]) -> Result<BTreeMap<String, Tensor<T>>> {
    let st = parse(bytes)?;
    st.iter()
        .map(|(name, view)| Ok((name.to_string(), real_tensor(name, &view)?)))
        .collect()
}

/// Reads every tensor of a safetensors file; all must have dtype `T`.
///
/// # Errors
/// As [`tensors_from_bytes`], and [`Error::Io`] if the file cannot be read.
pub fn load_tensors<T: Real>(path: impl AsRef<Path>) -> Result<BTreeMap<String, Tensor<T>>> {
    let path = path.as_ref();
    tensors_from_bytes(&read_file(path)?).map_err(|e| with_path(path, e))
}

/// Safetensors bytes of a chain in the `gslab.chain.v1` format (see the module docs).
///
/// # Errors
/// [`Error::BlockMismatch`] if the blocks do not match the layout; [`Error::InvalidArgument`] if
/// `metadata` uses a key of [`RESERVED_KEYS`]; [`Error::Format`] if serialization fails.
pub fn chain_to_bytes<T: Real>(
    layout: &ChainLayout,
    blocks: &[Tensor<T>],
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    layout.check_blocks(blocks)?;
    if let Some(k) = metadata
        .keys()
        .find(|k| RESERVED_KEYS.contains(&k.as_str()))
    {
        return Err(Error::InvalidArgument(format!(
            "metadata key '{k}' is reserved by the chain format"
        )));
    }
    let mut raws: Vec<Raw> = blocks
        .iter()
        .enumerate()
        .map(|(i, b)| Raw::real(format!("factor.{i}.blocks"), b))
        .collect();
    raws.extend(
        layout
            .perms()
            .iter()
            .enumerate()
            .map(|(i, p)| Raw::perm(format!("perm.{i}"), p)),
    );
    let mut meta: HashMap<String, String> = metadata.clone().into_iter().collect();
    meta.insert("format".into(), CHAIN_FORMAT.into());
    meta.insert("m".into(), layout.m().to_string());
    meta.insert("dtype".into(), T::DTYPE.into());
    meta.insert("convention".into(), CHAIN_CONVENTION.into());
    serialize(&raws, meta)
}

/// Writes a chain `P_{m+1} B_m P_m ⋯ B_1 P_1` to a safetensors file in the `gslab.chain.v1`
/// format (see the module docs for the naming scheme and a PyTorch reader).
///
/// # Errors
/// As [`chain_to_bytes`], and [`Error::Io`] if the file cannot be written.
pub fn save_chain<T: Real>(
    path: impl AsRef<Path>,
    layout: &ChainLayout,
    blocks: &[Tensor<T>],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let path = path.as_ref();
    let bytes = chain_to_bytes(layout, blocks, metadata).map_err(|e| with_path(path, e))?;
    write_file(path, &bytes)
}

/// A chain from safetensors bytes in the `gslab.chain.v1` format, validated.
///
/// # Errors
/// [`Error::Format`] naming the problem for an invalid file, a wrong format tag, a missing tensor
/// or a wrong rank; [`Error::Dtype`] for blocks of another dtype than `T`; [`Error::NotAPermutation`] naming the tensor for an invalid `perm.{i}`;
/// [`Error::BlockMismatch`] if the sizes do not chain.
pub fn chain_from_bytes<T: Real>(bytes: &[u8]) -> Result<(ChainLayout, Vec<Tensor<T>>)> {
    let meta = metadata_from_bytes(bytes)?;
    if meta.get("format").map(String::as_str) != Some(CHAIN_FORMAT) {
        return Err(io_err(
            MEMORY,
            format!(
                "metadata 'format' is {:?}, expected \"{CHAIN_FORMAT}\"",
                meta.get("format")
            ),
        ));
    }
    let m: usize = meta
        .get("m")
        .and_then(|s| s.parse().ok())
        .filter(|&m| m >= 1)
        .ok_or_else(|| {
            io_err(
                MEMORY,
                format!("metadata 'm' = {:?} is not a count >= 1", meta.get("m")),
            )
        })?;
    let st = parse(bytes)?;
    let get = |name: &str| {
        st.tensor(name)
            .map_err(|_| io_err(MEMORY, format!("missing tensor '{name}' (m = {m})")))
    };
    let mut blocks = Vec::with_capacity(m);
    let mut shapes = Vec::with_capacity(m);
    for i in 0..m {
        let name = format!("factor.{i}.blocks");
        let t: Tensor<T> = real_tensor(&name, &get(&name)?)?;
        let [k, b1, b2] = t.shape()[..] else {
            return Err(io_err(
                MEMORY,
                format!(
                    "tensor '{name}' must have shape (k, b1, b2), got {:?}",
                    t.shape()
                ),
            ));
        };
        shapes.push(BlockShape::new(k, b1, b2));
        blocks.push(t);
    }
    let perms = (0..=m)
        .map(|i| {
            let name = format!("perm.{i}");
            perm_tensor(&name, &get(&name)?)
        })
        .collect::<Result<Vec<_>>>()?;
    let layout = ChainLayout::new(shapes, perms)?;
    Ok((layout, blocks))
}

/// Reads a chain written by [`save_chain`] (or by any tool following the format), validated.
///
/// # Errors
/// As [`chain_from_bytes`], and [`Error::Io`] if the file cannot be read.
pub fn load_chain<T: Real>(path: impl AsRef<Path>) -> Result<(ChainLayout, Vec<Tensor<T>>)> {
    let path = path.as_ref();
    chain_from_bytes(&read_file(path)?).map_err(|e| with_path(path, e))
}

/// Saves a model's parameters to a safetensors file through [`save_tensors`], one
/// tensor per [`Params::param_names`] entry, in the model's dtype, with metadata
/// `format = gslab.params.v1`.
///
/// # Errors
/// [`Error::Io`] if writing fails; [`Error::InvalidArgument`] on repeated names.
pub fn save_params<T: Real, M: Params<T>>(model: &M, path: &Path) -> Result<()> {
    let names = model.param_names();
    let named: Vec<(&str, &Tensor<T>)> = names
        .iter()
        .map(String::as_str)
        .zip(model.params())
        .collect();
    let meta = BTreeMap::from([("format".to_string(), "gslab.params.v1".to_string())]);
    save_tensors(path, &named, &meta)
}

/// Loads parameters saved by [`save_params`] into `model`, by name, through
/// [`load_tensors`] (the file's dtype must be `T`).
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Dtype`] if it holds another dtype;
/// [`Error::Format`] if it cannot be parsed, lacks a name, or holds a tensor of another shape (the
/// message names the file, the tensor and both shapes).
pub fn load_params<T: Real, M: Params<T>>(model: &mut M, path: &Path) -> Result<()> {
    let mut file = load_tensors::<T>(path)?;
    let names = model.param_names();
    let io_err = |msg: String| Error::format(path, msg);
    for (name, p) in names.iter().zip(model.params_mut()) {
        let t = file
            .remove(name)
            .ok_or_else(|| io_err(format!("no tensor named '{name}'")))?;
        if t.shape() != p.shape() {
            return Err(io_err(format!(
                "'{name}' has shape {:?} in the file, {:?} expected",
                t.shape(),
                p.shape()
            )));
        }
        *p = t;
    }
    Ok(())
}
