//! Channel rearrangements of NCHW `(batch, c, h, w)` variables, all isometries or their adjoints
//! (1-Lipschitz): [`Var::permute_channels`] and the GS channel shuffles
//! ([`Var::channel_shuffle`], [`channel_shuffle_perm`]), [`Var::space_to_depth`] (the stride-2
//! rearrangement of SOC), [`Var::pad_channels`] (zero channels appended: an isometric embedding)
//! and [`Var::take_channels`] (the first channels: its adjoint, a projection).
//!
//! ```
//! use gslab::{Tape, Tensor};
//! let tape = Tape::<f64>::new();
//! // channel values 0..8 on 1×1 images; the official channel_shuffle(x, 2)
//! let x = tape.leaf(Tensor::from_fn(&[1, 8, 1, 1], |i| i as f64));
//! let y = x.channel_shuffle(2, false);
//! assert_eq!(y.value().data(), &[0., 2., 4., 6., 1., 3., 5., 7.]);
//! // a 2×2 image becomes 4 channels of 1×1
//! let z = tape.leaf(Tensor::from_vec(&[1, 1, 2, 2], vec![1., 2., 3., 4.])?).space_to_depth();
//! assert_eq!((z.shape(), z.value().data().to_vec()), (vec![1, 4, 1, 1], vec![1., 2., 3., 4.]));
//! # Ok::<(), gslab::Error>(())
//! ```

use crate::autodiff::tape::Var;
use crate::error::{Error, Result};
use crate::perm::Perm;
use crate::real::Real;
use crate::tensor::Tensor;

/// The channel shuffle of the GS convolutions (digest §5.2): the official `channel_shuffle(x,
/// groups, paired)`, which scatters channel `i` to `σ_(groups, c)(i)`
/// ([`Perm::shuffle_scatter`]) or, paired, channel pairs `(2j, 2j+1)` together to
/// `σ^paired_(groups, c)(i)` ([`Perm::paired_shuffle_scatter`]). Returned as the gather-convention
/// permutation [`Var::permute_channels`] takes.
///
/// # Errors
/// [`Error::InvalidArgument`] naming the values unless `groups ≥ 1` divides `channels` (and, for
/// the paired shuffle, `2·groups` divides `channels`, so an odd channel count is refused).
pub fn channel_shuffle_perm(channels: usize, groups: usize, paired: bool) -> Result<Perm> {
    let bad = groups == 0
        || channels == 0
        || !channels.is_multiple_of(if paired { 2 * groups } else { groups });
    if bad {
        return Err(Error::InvalidArgument(format!(
            "channel shuffle of {channels} channels into {groups} groups{}: need {} dividing the channels",
            if paired { " (paired)" } else { "" },
            if paired { "2·groups" } else { "groups ≥ 1" }
        )));
    }
    if paired {
        Perm::paired_shuffle_scatter(groups, channels)
    } else {
        Perm::shuffle_scatter(groups, channels)
    }
}

/// `(batch, c, h·w)` of a variable with at least 2 axes; panics naming `op` otherwise.
fn nchw(op: &str, s: &[usize]) -> (usize, usize, usize) {
    assert!(
        s.len() >= 2,
        "{op}: need a (batch, channels, …) input, got shape {s:?}"
    );
    (s[0], s[1], s[2..].iter().product())
}

impl<'t, T: Real> Var<'t, T> {
    /// Permutes the channels (axis 1) in the gather convention of [`Perm`]:
    /// `y[n, i, …] = x[n, σ(i), …]`. Gradient: `dx[n, σ(i), …] = G[n, i, …]`.
    ///
    /// # Panics
    /// If `x` has fewer than 2 axes or `perm.len()` differs from the channel count; the message
    /// names `permute_channels` and both sizes.
    pub fn permute_channels(self, perm: &Perm) -> Var<'t, T> {
        let y = permute_channels(&self.value(), perm);
        let inv = perm.inverse();
        self.tape().push_op(y, &[self], move |g, needs| {
            vec![needs[0].then(|| permute_channels(g, &inv))]
        })
    }

    /// The GS channel shuffle `channel_shuffle(x, groups, paired)` of the official code
    /// ([`channel_shuffle_perm`]) applied with [`Var::permute_channels`].
    ///
    /// # Panics
    /// If the shuffle does not exist for the channel count (see [`channel_shuffle_perm`]); the
    /// message names `channel_shuffle`, the shape and the groups.
    pub fn channel_shuffle(self, groups: usize, paired: bool) -> Var<'t, T> {
        let shape = self.shape();
        let (_, c, _) = nchw("channel_shuffle", &shape);
        let perm = channel_shuffle_perm(c, groups, paired)
            .unwrap_or_else(|e| panic!("channel_shuffle: input of shape {shape:?}: {e}"));
        self.permute_channels(&perm)
    }

    /// Space-to-depth for stride 2 (SOC's `b c (h 2) (w 2) -> b (c 2 2) h w`):
    /// `(batch, c, 2h, 2w) → (batch, 4c, h, w)` with
    /// `y[n, 4i + 2a + b, r, s] = x[n, i, 2r + a, 2s + b]`. A permutation of the entries, hence
    /// orthogonal. Gradient: the inverse rearrangement of `G`.
    ///
    /// # Panics
    /// If `x` is not 4-D with even height and width; the message names `space_to_depth` and the
    /// shape.
    pub fn space_to_depth(self) -> Var<'t, T> {
        let shape = self.shape();
        let y = space_to_depth(&self.value());
        self.tape().push_op(y, &[self], move |g, needs| {
            vec![needs[0].then(|| {
                let (map, per) = s2d_map(&shape);
                let mut dx = Tensor::zeros(&shape);
                for (di, gi) in dx
                    .data_mut()
                    .chunks_exact_mut(per)
                    .zip(g.data().chunks_exact(per))
                {
                    gi.iter().zip(&map).for_each(|(&v, &s)| di[s] = v);
                }
                dx
            })]
        })
    }

    /// Appends zero channels up to `channels`: `y[n, i, …] = x[n, i, …]` for `i < c`, 0 beyond.
    /// An isometric embedding. Gradient: the first `c` channels of `G`.
    ///
    /// # Panics
    /// If `x` has fewer than 2 axes or `channels` is smaller than its channel count; the message
    /// names `pad_channels`, the shape and `channels`.
    pub fn pad_channels(self, channels: usize) -> Var<'t, T> {
        let shape = self.shape();
        let y = pad_channels(&self.value(), channels);
        self.tape().push_op(y, &[self], move |g, needs| {
            vec![needs[0].then(|| resize_channels(g, shape[1]))]
        })
    }

    /// The first `channels` channels: `y[n, i, …] = x[n, i, …]` for `i < channels` (the adjoint of
    /// [`Var::pad_channels`]; an orthogonal projection, 1-Lipschitz). Gradient: `G` padded with
    /// zero channels.
    ///
    /// # Panics
    /// If `x` has fewer than 2 axes or `channels` exceeds its channel count; the message names
    /// `take_channels`, the shape and `channels`.
    pub fn take_channels(self, channels: usize) -> Var<'t, T> {
        let shape = self.shape();
        let y = take_channels(&self.value(), channels);
        self.tape().push_op(y, &[self], move |g, needs| {
            vec![needs[0].then(|| resize_channels(g, shape[1]))]
        })
    }
}

/// `y[n, i, …] = x[n, σ(i), …]` (the value of [`Var::permute_channels`]).
///
/// # Panics
/// If `x` has fewer than 2 axes or `perm.len()` differs from the channel count; the message names
/// `permute_channels` and both sizes.
pub fn permute_channels<T: Real>(x: &Tensor<T>, perm: &Perm) -> Tensor<T> {
    let (b, c, q) = nchw("permute_channels", x.shape());
    assert!(
        perm.len() == c,
        "permute_channels: input of shape {:?} and a permutation of length {}",
        x.shape(),
        perm.len()
    );
    let mut y = Tensor::zeros(x.shape());
    for n in 0..b {
        for (i, &s) in perm.as_slice().iter().enumerate() {
            y.data_mut()[(n * c + i) * q..][..q].copy_from_slice(&x.data()[(n * c + s) * q..][..q]);
        }
    }
    y
}

/// For one image of shape `(c, 2h, 2w)`: the source index of every entry of its space-to-depth
/// image, and the entries per image.
fn s2d_map(shape: &[usize]) -> (Vec<usize>, usize) {
    let &[_, c, h2, w2] = shape else {
        panic!("space_to_depth: need a 4-D input (batch, c, 2h, 2w), got shape {shape:?}")
    };
    assert!(
        h2.is_multiple_of(2) && w2.is_multiple_of(2),
        "space_to_depth: height and width must be even, got shape {shape:?}"
    );
    let (h, w) = (h2 / 2, w2 / 2);
    let per = c * h2 * w2;
    let map = (0..per)
        .map(|q| {
            let (oc, r, s) = (q / (h * w).max(1), (q / w.max(1)) % h.max(1), q % w.max(1));
            let (i, a, bb) = (oc / 4, (oc / 2) % 2, oc % 2);
            (i * h2 + 2 * r + a) * w2 + 2 * s + bb
        })
        .collect();
    (map, per.max(1))
}

/// `(batch, c, 2h, 2w) → (batch, 4c, h, w)` with `y[n, 4i + 2a + b, r, s] = x[n, i, 2r + a,
/// 2s + b]` (the value of [`Var::space_to_depth`]).
///
/// # Panics
/// If `x` is not 4-D with even height and width; the message names `space_to_depth` and the
/// shape.
pub fn space_to_depth<T: Real>(x: &Tensor<T>) -> Tensor<T> {
    let (map, per) = s2d_map(x.shape());
    let s = x.shape();
    let mut y = Tensor::zeros(&[s[0], 4 * s[1], s[2] / 2, s[3] / 2]);
    for (yi, xi) in y
        .data_mut()
        .chunks_exact_mut(per)
        .zip(x.data().chunks_exact(per))
    {
        yi.iter_mut().zip(&map).for_each(|(v, &s)| *v = xi[s]);
    }
    y
}

/// `x` with zero channels appended up to `channels` (the value of [`Var::pad_channels`]).
///
/// # Panics
/// If `x` has fewer than 2 axes or more than `channels` channels; the message names
/// `pad_channels`, the shape and `channels`.
pub fn pad_channels<T: Real>(x: &Tensor<T>, channels: usize) -> Tensor<T> {
    let (_, c, _) = nchw("pad_channels", x.shape());
    assert!(
        channels >= c,
        "pad_channels: cannot pad an input of shape {:?} to {channels} channels",
        x.shape()
    );
    resize_channels(x, channels)
}

/// The first `channels` channels of `x` (the value of [`Var::take_channels`]).
///
/// # Panics
/// If `x` has fewer than 2 axes or fewer than `channels` channels; the message names
/// `take_channels`, the shape and `channels`.
pub fn take_channels<T: Real>(x: &Tensor<T>, channels: usize) -> Tensor<T> {
    let (_, c, _) = nchw("take_channels", x.shape());
    assert!(
        channels <= c,
        "take_channels: cannot take {channels} channels of an input of shape {:?}",
        x.shape()
    );
    resize_channels(x, channels)
}

/// `x` with `to` channels: the first `min(c, to)` channels copied, zeros beyond.
fn resize_channels<T: Real>(x: &Tensor<T>, to: usize) -> Tensor<T> {
    let (b, c, q) = nchw("resize_channels", x.shape());
    let keep = c.min(to) * q;
    let mut shape = x.shape().to_vec();
    shape[1] = to;
    let mut y = Tensor::zeros(&shape);
    for n in 0..b {
        y.data_mut()[n * to * q..][..keep].copy_from_slice(&x.data()[n * c * q..][..keep]);
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autodiff::gradcheck::gradcheck;
    use crate::autodiff::tape::Tape;
    use rand::{SeedableRng, rngs::StdRng};

    fn randn(shape: &[usize], seed: u64) -> Tensor<f64> {
        Tensor::randn(shape, 1.0, &mut StdRng::seed_from_u64(seed))
    }

    fn project<'t>(y: Var<'t, f64>, seed: u64) -> Var<'t, f64> {
        let r = y.tape().constant(randn(&y.shape(), 1000 + seed));
        y.mul(r).sum()
    }

    /// Channel order of `channel_shuffle` on `c` channels holding their own index.
    fn shuffled(c: usize, groups: usize, paired: bool) -> Vec<f64> {
        let tape = Tape::<f64>::new();
        let x = tape.constant(Tensor::from_fn(&[1, c, 1, 1], |i| i as f64));
        x.channel_shuffle(groups, paired).value().data().to_vec()
    }

    /// T11 of the digest: the official `channel_shuffle` on hand-worked examples.
    #[test]
    fn shuffles_match_the_official_channel_shuffle() {
        assert_eq!(shuffled(8, 2, false), [0., 2., 4., 6., 1., 3., 5., 7.]);
        assert_eq!(shuffled(8, 4, false), [0., 4., 1., 5., 2., 6., 3., 7.]);
        // paired, k = 4, C = 16: out = [0,1,8,9,2,3,10,11,4,5,12,13,6,7,14,15]
        assert_eq!(
            shuffled(16, 4, true),
            [
                0., 1., 8., 9., 2., 3., 10., 11., 4., 5., 12., 13., 6., 7., 14., 15.
            ]
        );
        // paired k = 2, C = 8: σ^paired = [0,1,4,5,2,3,6,7], an involution
        assert_eq!(shuffled(8, 2, true), [0., 1., 4., 5., 2., 3., 6., 7.]);
        assert_eq!(
            shuffled(8, 4, true),
            (0..8).map(f64::from).collect::<Vec<_>>()
        );
    }

    #[test]
    fn shuffle_constructor_errors_name_the_values() {
        let e = channel_shuffle_perm(6, 4, false).unwrap_err().to_string();
        assert!(e.contains("6 channels") && e.contains("4 groups"), "{e}");
        let odd = channel_shuffle_perm(12, 4, true).unwrap_err().to_string();
        assert!(
            odd.contains("12 channels") && odd.contains("paired"),
            "{odd}"
        );
        assert!(
            channel_shuffle_perm(7, 1, true).is_err(),
            "an odd count cannot be paired"
        );
    }

    #[test]
    fn space_to_depth_values_and_norm() {
        let x = Tensor::from_fn(&[2, 3, 4, 6], |i| i as f64);
        let tape = Tape::new();
        let y = tape.constant(x.clone()).space_to_depth().value();
        assert_eq!(y.shape(), &[2, 12, 2, 3]);
        // y[n, 4i + 2a + b, r, s] = x[n, i, 2r + a, 2s + b]: check (n, i, a, b, r, s) = (1, 2, 1, 0, 1, 2)
        let yv = y.data()[((12 + 4 * 2 + 2) * 2 + 1) * 3 + 2];
        let xv = x.data()[((3 + 2) * 4 + 3) * 6 + 4];
        assert_eq!(yv, xv);
        let mut sorted = y.data().to_vec();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(sorted, x.data(), "a permutation of the entries");
    }

    #[test]
    fn gradchecks() {
        let perm = Perm::from_vec(vec![2, 0, 3, 1]).unwrap();
        let r = gradcheck(
            |_, v| project(v[0].permute_channels(&perm), 1),
            &[randn(&[2, 4, 2, 3], 1)],
            1e-6,
        );
        assert!(r.max_rel_err < 1e-8, "{r}");
        let r = gradcheck(
            |_, v| project(v[0].space_to_depth(), 2),
            &[randn(&[2, 3, 4, 2], 2)],
            1e-6,
        );
        assert!(r.max_rel_err < 1e-8, "{r}");
        let r = gradcheck(
            |_, v| project(v[0].pad_channels(5), 3),
            &[randn(&[2, 3, 2, 2], 3)],
            1e-6,
        );
        assert!(r.max_rel_err < 1e-8, "{r}");
        let r = gradcheck(
            |_, v| project(v[0].take_channels(2), 4),
            &[randn(&[2, 3, 2, 2], 4)],
            1e-6,
        );
        assert!(r.max_rel_err < 1e-8, "{r}");
        let r = gradcheck(
            |_, v| project(v[0].channel_shuffle(2, true), 5),
            &[randn(&[1, 8, 1, 2], 5)],
            1e-6,
        );
        assert!(r.max_rel_err < 1e-8, "{r}");
    }

    #[test]
    fn pad_is_isometric_and_take_is_its_adjoint() {
        let tape = Tape::new();
        let x = tape.constant(randn(&[2, 3, 2, 2], 6));
        let p = x.pad_channels(5);
        assert_eq!(p.shape(), vec![2, 5, 2, 2]);
        assert_eq!(p.value().norm(), x.value().norm());
        assert_eq!(p.take_channels(3).value().data(), x.value().data());
    }

    #[test]
    #[should_panic(
        expected = "space_to_depth: height and width must be even, got shape [1, 2, 3, 4]"
    )]
    fn odd_space_to_depth_panics() {
        let tape = Tape::<f64>::new();
        tape.constant(Tensor::zeros(&[1, 2, 3, 4])).space_to_depth();
    }

    #[test]
    #[should_panic(expected = "channel_shuffle: input of shape [1, 6, 1, 1]")]
    fn odd_paired_shuffle_panics() {
        let tape = Tape::<f64>::new();
        tape.constant(Tensor::zeros(&[1, 6, 1, 1]))
            .channel_shuffle(2, true);
    }

    #[test]
    #[should_panic(expected = "pad_channels: cannot pad an input of shape [1, 3, 2] to 2 channels")]
    fn shrinking_pad_panics() {
        let tape = Tape::<f64>::new();
        tape.constant(Tensor::zeros(&[1, 3, 2])).pad_channels(2);
    }
}
