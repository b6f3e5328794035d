//! MNIST digits from IDX files: [`load_mnist`] reads `images-idx3-ubyte.gz` and
//! `labels-idx1-ubyte.gz` into an [`Mnist`] set (images `(count, 1, 28, 28)` in `[0, 1]`), with
//! the helpers an experiment needs: centred zero padding to 32×32 ([`Mnist::padded`]), flattening
//! ([`Mnist::flat`]), the train/test split ([`Mnist::split`]) and subsets by index or label.
//!
//! The crate ships 10,000 digits in `data/mnist-10k/` ([`mnist_dir`]; source and licence in its
//! README). Their records are already shuffled: the first 8,000 are the training set and the last
//! 2,000 the test set ([`TRAIN_COUNT`]).

use super::Classification;
use super::idx::{IdxArray, magic_u8, read_idx};
use crate::error::{Error, Result};
use crate::real::Real;
use crate::tensor::Tensor;
use std::path::{Path, PathBuf};

/// File name of the images in an MNIST directory (IDX, magic `0x803`, gzip).
pub const IMAGES_FILE: &str = "images-idx3-ubyte.gz";

/// File name of the labels in an MNIST directory (IDX, magic `0x801`, gzip).
pub const LABELS_FILE: &str = "labels-idx1-ubyte.gz";

/// Side of an MNIST image in pixels.
pub const SIDE: usize = 28;

/// Number of classes (digits 0–9).
pub const CLASSES: usize = 10;

/// Records of the shipped set used for training; the rest (2,000) are the test set.
pub const TRAIN_COUNT: usize = 8000;

/// The directory of the 10,000 digits shipped with the crate: `<crate root>/data/mnist-10k`.
pub fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join("mnist-10k")
}

/// Grey-scale digit images with their labels.
///
/// Invariants (checked by [`Mnist::new`]): `images` has shape `(count, 1, side, side)` (NCHW, one
/// channel), `labels.len() == count` and every label is in `0..10`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mnist<T> {
    images: Tensor<T>,
    labels: Vec<usize>,
}

/// Reads the MNIST images and labels of `dir` ([`IMAGES_FILE`], [`LABELS_FILE`]) as an
/// [`Mnist`] set with pixel `p ∈ {0..255}` mapped to `p / 255 ∈ [0, 1]`.
///
/// # Errors
/// [`Error::Io`] naming the file if one is missing or unreadable; [`Error::Format`] naming the
/// file and the value for malformed content: any IDX error of [`read_idx`], a magic number other
/// than `0x803` (images) / `0x801` (labels), images that are not `28×28`, zero records, different
/// image and label counts, or a label above 9 (the first such index and value).
///
/// # Example
/// ```
/// use gslab::nn::data::mnist::{TRAIN_COUNT, load_mnist, mnist_dir};
///
/// let mnist = load_mnist::<f32>(mnist_dir())?;
/// assert_eq!(mnist.images().shape(), &[10_000, 1, 28, 28]);
/// let (train, test) = mnist.split(TRAIN_COUNT)?;
/// assert_eq!((train.len(), test.len()), (8000, 2000));
/// // Centred zero padding to 32×32 (2 pixels each side), then rows of 1024 features.
/// let x = train.padded(32)?.flat();
/// assert_eq!(x.shape(), &[8000, 1024]);
/// assert_eq!(x.norm(), train.images().norm()); // zero padding is an isometry
/// # Ok::<(), gslab::Error>(())
/// ```
pub fn load_mnist<T: Real>(dir: impl AsRef<Path>) -> Result<Mnist<T>> {
    let (ip, lp) = (
        dir.as_ref().join(IMAGES_FILE),
        dir.as_ref().join(LABELS_FILE),
    );
    let images = read_idx(&ip)?;
    let labels = read_idx(&lp)?;
    from_idx(images, &ip, labels, &lp)
}

/// Checks and converts the two parsed arrays (paths for the messages).
fn from_idx<T: Real>(images: IdxArray, ip: &Path, labels: IdxArray, lp: &Path) -> Result<Mnist<T>> {
    for (a, p, nd, what) in [(&images, ip, 3, "images"), (&labels, lp, 1, "labels")] {
        if a.magic() != magic_u8(nd) {
            return Err(Error::format(
                p,
                format!(
                    "magic number 0x{:08x} ({} dimensions {:?}), expected 0x{:08x} for MNIST {what}",
                    a.magic(),
                    a.dims().len(),
                    a.dims(),
                    magic_u8(nd)
                ),
            ));
        }
    }
    let (n, h, w) = (images.dims()[0], images.dims()[1], images.dims()[2]);
    if (h, w) != (SIDE, SIDE) {
        return Err(Error::format(
            ip,
            format!("images are {h}×{w}, expected {SIDE}×{SIDE}"),
        ));
    }
    if n == 0 {
        return Err(Error::format(ip, "no images (count 0)"));
    }
    if labels.dims()[0] != n {
        return Err(Error::format(
            lp,
            format!(
                "{} labels for {n} images in {}",
                labels.dims()[0],
                ip.display()
            ),
        ));
    }
    if let Some((i, &y)) = labels
        .data()
        .iter()
        .enumerate()
        .find(|&(_, &y)| usize::from(y) >= CLASSES)
    {
        return Err(Error::format(
            lp,
            format!("label {y} at index {i} is not a digit 0..=9"),
        ));
    }
    let scale: Vec<T> = (0..=255u32)
        .map(|p| T::from_f64(f64::from(p) / 255.0))
        .collect();
    let pixels = images
        .data()
        .iter()
        .map(|&p| scale[usize::from(p)])
        .collect();
    Ok(Mnist {
        images: Tensor::from_vec(&[n, 1, SIDE, SIDE], pixels)?,
        labels: labels.data().iter().map(|&y| usize::from(y)).collect(),
    })
}

impl<T: Real> Mnist<T> {
    /// A set from images `(count, 1, side, side)` and their labels.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the shape if `images` is not `(count, 1, s, s)`, both
    /// lengths if `labels.len() != count`, or the first label `≥ 10` and its index.
    pub fn new(images: Tensor<T>, labels: Vec<usize>) -> Result<Self> {
        let bad = |m: String| Err(Error::InvalidArgument(format!("Mnist::new: {m}")));
        match images.shape() {
            &[n, 1, h, w] if h == w => {
                if labels.len() != n {
                    return bad(format!("{} labels for {n} images", labels.len()));
                }
            }
            s => {
                return bad(format!(
                    "images must have shape (count, 1, s, s), got {s:?}"
                ));
            }
        }
        if let Some((i, &y)) = labels.iter().enumerate().find(|&(_, &y)| y >= CLASSES) {
            return bad(format!("label {y} at index {i} is not a digit 0..=9"));
        }
        Ok(Self { images, labels })
    }

    /// The images, shape `(count, 1, side, side)`, values in `[0, 1]`.
    pub fn images(&self) -> &Tensor<T> {
        &self.images
    }

    /// The label (digit `0..=9`) of each image.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// Images and labels, by value.
    pub fn into_parts(self) -> (Tensor<T>, Vec<usize>) {
        (self.images, self.labels)
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True if there are no records.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Side of the (square) images: 28 as read, 32 after [`padded`](Self::padded)`(32)`.
    pub fn side(&self) -> usize {
        self.images.shape()[2]
    }

    /// Pixels of image `i`, `side²` values row-major.
    ///
    /// # Panics
    /// If `i ≥ len()`.
    pub fn image(&self, i: usize) -> &[T] {
        let s2 = self.side() * self.side();
        &self.images.data()[i * s2..(i + 1) * s2]
    }

    /// Number of records of each digit: `counts[d] = #{i : label_i = d}`.
    pub fn label_counts(&self) -> [usize; CLASSES] {
        let mut c = [0; CLASSES];
        for &y in &self.labels {
            c[y] += 1;
        }
        c
    }

    /// The images centred in a `size × size` zero canvas: `(size − side)/2` zero pixels on each
    /// side (2 for 28 → 32).
    ///
    /// Zero padding is an isometry: every pixel keeps its value and the new ones are 0, so norms,
    /// inner products and distances between images are unchanged.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming `size` if it is smaller than the side or `size − side`
    /// is odd (no centred placement).
    pub fn padded(&self, size: usize) -> Result<Self> {
        let s = self.side();
        if size < s || !(size - s).is_multiple_of(2) {
            return Err(Error::InvalidArgument(format!(
                "Mnist::padded: size {size} must be at least the side {s} with an even \
                 difference, to centre the images"
            )));
        }
        let p = (size - s) / 2;
        let mut out = Tensor::zeros(&[self.len(), 1, size, size]);
        for (dst, src) in out
            .data_mut()
            .chunks_exact_mut(size * size)
            .zip(self.images.data().chunks_exact(s * s))
        {
            for (r, row) in src.chunks_exact(s).enumerate() {
                let at = (r + p) * size + p;
                dst[at..at + s].copy_from_slice(row);
            }
        }
        Ok(Self {
            images: out,
            labels: self.labels.clone(),
        })
    }

    /// The images as rows of features, shape `(count, side²)` (`(count, 1024)` after
    /// [`padded`](Self::padded)`(32)`), row-major pixels.
    pub fn flat(&self) -> Tensor<T> {
        let s = self.side();
        Tensor::from_vec(&[self.len(), s * s], self.images.data().to_vec())
            .expect("an NCHW image tensor has count·side² elements")
    }

    /// The flattened images ([`flat`](Self::flat)) with their labels, for the training loop.
    pub fn classification(&self) -> Classification<T> {
        Classification {
            x: self.flat(),
            labels: self.labels.clone(),
            classes: CLASSES,
        }
    }

    /// The first `n_train` records and the rest, each in the original order.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming `n_train` if it exceeds the number of records.
    pub fn split(&self, n_train: usize) -> Result<(Self, Self)> {
        if n_train > self.len() {
            return Err(Error::InvalidArgument(format!(
                "Mnist::split: n_train {n_train} exceeds the {} records",
                self.len()
            )));
        }
        let all: Vec<usize> = (0..self.len()).collect();
        let (a, b) = all.split_at(n_train);
        Ok((self.subset(a)?, self.subset(b)?))
    }

    /// The records at `indices`, in that order (repeats allowed).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the first index `≥ len()`.
    pub fn subset(&self, indices: &[usize]) -> Result<Self> {
        if let Some(&i) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(Error::InvalidArgument(format!(
                "Mnist::subset: index {i} out of range for {} records",
                self.len()
            )));
        }
        let s = self.side();
        let mut data = Vec::with_capacity(indices.len() * s * s);
        for &i in indices {
            data.extend_from_slice(self.image(i));
        }
        Ok(Self {
            images: Tensor::from_vec(&[indices.len(), 1, s, s], data)?,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
        })
    }

    /// The records whose label is in `digits`, in the original order (e.g. `&[0, 1, 2, 3, 4]`
    /// for the first half of a fine-tuning split). Labels are kept as they are.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the first entry of `digits` that is not `0..=9`.
    pub fn with_labels(&self, digits: &[usize]) -> Result<Self> {
        if let Some(&d) = digits.iter().find(|&&d| d >= CLASSES) {
            return Err(Error::InvalidArgument(format!(
                "Mnist::with_labels: {d} is not a digit 0..=9"
            )));
        }
        let keep: Vec<usize> = (0..self.len())
            .filter(|&i| digits.contains(&self.labels[i]))
            .collect();
        self.subset(&keep)
    }
}
