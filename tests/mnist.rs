//! The IDX reader and the MNIST loader on the shipped 10,000 digits, checked against the raw
//! bytes decompressed independently here, and on malformed files: every bad input is an `Err`
//! naming the problem, never a panic.

use flate2::read::GzDecoder;
use flate2::{Compression, write::GzEncoder};
use gslab::Error;
use gslab::nn::data::idx::{parse_idx, read_idx};
use gslab::nn::data::mnist::{IMAGES_FILE, LABELS_FILE, Mnist, load_mnist, mnist_dir};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use std::io::{Read, Write};
use std::path::PathBuf;

/// The decompressed bytes of a shipped file, through `flate2` directly (not the reader).
fn raw(name: &str) -> Vec<u8> {
    let gz = std::fs::read(mnist_dir().join(name)).unwrap();
    let mut out = Vec::new();
    GzDecoder::new(&gz[..]).read_to_end(&mut out).unwrap();
    out
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A fresh temporary directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gslab-mnist-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// An IDX file of bytes with the given dimensions.
fn idx(dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(payload);
    b
}

/// The message of a format error (panics on anything else).
fn format_msg<T: std::fmt::Debug>(r: gslab::Result<T>) -> String {
    match r {
        Err(e @ Error::Format { .. }) => e.to_string(),
        other => panic!("expected Error::Format, got {other:?}"),
    }
}

#[test]
fn shipped_digits_match_the_raw_bytes() {
    let img = raw(IMAGES_FILE);
    let lab = raw(LABELS_FILE);
    // The headers as the README states them, read by hand.
    assert_eq!(
        img[..16],
        [0, 0, 8, 3, 0, 0, 0x27, 0x10, 0, 0, 0, 28, 0, 0, 0, 28]
    );
    assert_eq!(lab[..8], [0, 0, 8, 1, 0, 0, 0x27, 0x10]);
    assert_eq!(img.len(), 16 + 10_000 * 784);
    assert_eq!(lab.len(), 8 + 10_000);

    let m = load_mnist::<f64>(mnist_dir()).unwrap();
    assert_eq!(m.images().shape(), &[10_000, 1, 28, 28]);
    assert_eq!(m.len(), 10_000);
    assert_eq!(m.side(), 28);
    for (&v, &b) in m.images().data().iter().zip(&img[16..]) {
        assert_eq!((v * 255.0).round(), f64::from(b));
        assert!((0.0..=1.0).contains(&v));
    }
    let labels: Vec<usize> = lab[8..].iter().map(|&y| usize::from(y)).collect();
    assert_eq!(m.labels(), &labels[..]);
    // Both ends of the range occur: background 0 and full ink 1.
    assert_eq!(m.images().max_abs(), 1.0);
    assert!(m.images().data().contains(&0.0));

    let counts = m.label_counts();
    assert_eq!(counts.iter().sum::<usize>(), 10_000);
    assert!(counts.iter().all(|&c| c > 800), "{counts:?}");

    // f32 holds the same values, rounded once.
    let m32 = load_mnist::<f32>(mnist_dir()).unwrap();
    assert_eq!(
        m32.images()
            .cast::<f64>()
            .sub(&m.images().cast::<f32>().cast())
            .max_abs(),
        0.0
    );
    assert_eq!(m32.labels(), m.labels());
}

#[test]
fn padding_is_a_centred_isometry() {
    let m = load_mnist::<f64>(mnist_dir()).unwrap();
    let p = m.padded(32).unwrap();
    assert_eq!(p.images().shape(), &[10_000, 1, 32, 32]);
    assert_eq!(p.labels(), m.labels());
    for i in 0..m.len() {
        let (a, b) = (m.image(i), p.image(i));
        for r in 0..32 {
            for c in 0..32 {
                let inside = (2..30).contains(&r) && (2..30).contains(&c);
                let want = if inside {
                    a[(r - 2) * 28 + (c - 2)]
                } else {
                    0.0
                };
                assert_eq!(b[r * 32 + c], want, "image {i} pixel ({r}, {c})");
            }
        }
        let sq = |x: &[f64]| x.iter().map(|v| v * v).sum::<f64>();
        assert_eq!(sq(a), sq(b), "image {i}");
    }
    // Distances are preserved too (exactly: the padded differences are zero).
    let d = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(u, v)| (u - v) * (u - v)).sum::<f64>();
    assert_eq!(d(m.image(3), m.image(7)), d(p.image(3), p.image(7)));

    let flat = p.flat();
    assert_eq!(flat.shape(), &[10_000, 1024]);
    assert_eq!(flat.data(), p.images().data());
    let c = p.classification();
    assert_eq!((c.x.shape(), c.classes), (&[10_000, 1024][..], 10));

    assert_eq!(m.padded(28).unwrap(), m);
    for bad in [27, 31] {
        let e = m.padded(bad).unwrap_err().to_string();
        assert!(e.contains(&format!("size {bad}")), "{e}");
    }
}

#[test]
fn split_and_subsets_keep_order() {
    let m = load_mnist::<f32>(mnist_dir()).unwrap();
    let (train, test) = m.split(8000).unwrap();
    assert_eq!((train.len(), test.len()), (8000, 2000));
    assert_eq!(train.image(0), m.image(0));
    assert_eq!(train.image(7999), m.image(7999));
    assert_eq!(test.image(0), m.image(8000));
    assert_eq!(test.image(1999), m.image(9999));
    assert_eq!([train.labels(), test.labels()].concat(), m.labels());
    assert!(m.split(10_001).unwrap_err().to_string().contains("10001"));

    let low = m.with_labels(&[0, 1, 2, 3, 4]).unwrap();
    let high = m.with_labels(&[5, 6, 7, 8, 9]).unwrap();
    assert_eq!(low.len() + high.len(), 10_000);
    assert!(low.labels().iter().all(|&y| y < 5) && high.labels().iter().all(|&y| y >= 5));
    let first_high = m.labels().iter().position(|&y| y >= 5).unwrap();
    assert_eq!(high.image(0), m.image(first_high));
    let c = m.label_counts();
    assert_eq!(low.len(), c[..5].iter().sum::<usize>());
    assert!(m.with_labels(&[10]).unwrap_err().to_string().contains("10"));

    let s = m.subset(&[9999, 0, 0]).unwrap();
    assert_eq!(
        s.labels(),
        &[m.labels()[9999], m.labels()[0], m.labels()[0]]
    );
    assert_eq!(s.image(0), m.image(9999));
    assert!(
        m.subset(&[3, 10_000])
            .unwrap_err()
            .to_string()
            .contains("index 10000")
    );
}

#[test]
fn new_validates_shape_count_and_labels() {
    let t = gslab::Tensor::<f64>::zeros(&[2, 1, 4, 4]);
    assert_eq!(Mnist::new(t.clone(), vec![3, 9]).unwrap().side(), 4);
    let e = Mnist::new(t.clone(), vec![3]).unwrap_err().to_string();
    assert!(e.contains("1 labels for 2 images"), "{e}");
    let e = Mnist::new(t, vec![3, 10]).unwrap_err().to_string();
    assert!(e.contains("label 10 at index 1"), "{e}");
    let e = Mnist::new(gslab::Tensor::<f64>::zeros(&[2, 3, 4, 4]), vec![0, 0])
        .unwrap_err()
        .to_string();
    assert!(e.contains("[2, 3, 4, 4]"), "{e}");
}

#[test]
fn missing_files_are_io_errors_naming_the_path() {
    let d = temp_dir("missing");
    match load_mnist::<f32>(&d) {
        Err(e @ Error::Io { .. }) => assert!(e.to_string().contains(IMAGES_FILE), "{e}"),
        other => panic!("{other:?}"),
    }
    std::fs::copy(mnist_dir().join(IMAGES_FILE), d.join(IMAGES_FILE)).unwrap();
    match load_mnist::<f32>(&d) {
        Err(e @ Error::Io { .. }) => assert!(e.to_string().contains(LABELS_FILE), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(read_idx(d.join("nope")), Err(Error::Io { .. })));
}

#[test]
fn malformed_files_are_format_errors_naming_the_problem() {
    let d = temp_dir("malformed");
    let labels = raw(LABELS_FILE);
    let write = |name: &str, bytes: &[u8]| std::fs::write(d.join(name), bytes).unwrap();
    let load = || load_mnist::<f32>(&d);
    // A few images: the first 20 of the shipped set.
    let img20 = idx(&[20, 28, 28], &raw(IMAGES_FILE)[16..16 + 20 * 784]);
    let lab20 = idx(&[20], &labels[8..28]);
    write(IMAGES_FILE, &gz(&img20));
    write(LABELS_FILE, &gz(&lab20));
    assert_eq!(load().unwrap().len(), 20);

    // Empty file, garbage that is not gzip, a corrupt gzip body.
    write(IMAGES_FILE, &[]);
    let m = format_msg(load());
    assert!(m.contains(IMAGES_FILE) && m.contains("empty"), "{m}");
    write(IMAGES_FILE, b"this is not an IDX file");
    let m = format_msg(load());
    assert!(m.contains("bad magic number 0x74686973"), "{m}");
    let mut z = gz(&img20);
    let mid = z.len() / 2;
    z[mid] ^= 0x55;
    write(IMAGES_FILE, &z);
    assert!(format_msg(load()).contains("gzip stream"));

    // The labels file passed as images.
    write(IMAGES_FILE, &gz(&lab20));
    let m = format_msg(load());
    assert!(
        m.contains("0x00000801") && m.contains("expected 0x00000803"),
        "{m}"
    );
    // Images of the wrong size; no images.
    write(IMAGES_FILE, &idx(&[1, 27, 27], &[0; 729]));
    assert!(format_msg(load()).contains("27×27, expected 28×28"));
    write(IMAGES_FILE, &idx(&[0, 28, 28], &[]));
    assert!(format_msg(load()).contains("count 0"));
    // Plain (not gzipped) content under the .gz name is read too.
    write(IMAGES_FILE, &img20);
    assert_eq!(load().unwrap().len(), 20);

    // Label count and values.
    write(LABELS_FILE, &idx(&[19], &labels[8..27]));
    let m = format_msg(load());
    assert!(
        m.contains(LABELS_FILE) && m.contains("19 labels for 20 images"),
        "{m}"
    );
    let mut bad = lab20.clone();
    bad[8 + 5] = 12;
    write(LABELS_FILE, &gz(&bad));
    assert!(format_msg(load()).contains("label 12 at index 5"));
    write(LABELS_FILE, &gz(&img20));
    assert!(format_msg(load()).contains("expected 0x00000801"));
    // Truncated and overlong payloads name the byte counts.
    write(LABELS_FILE, &gz(&lab20[..lab20.len() - 3]));
    let m = format_msg(load());
    assert!(
        m.contains("need 20 decompressed bytes") && m.contains("got 17"),
        "{m}"
    );
    write(LABELS_FILE, &[lab20.clone(), vec![1, 2]].concat());
    assert!(format_msg(load()).contains("2 trailing bytes"));
}

#[test]
fn every_truncation_and_header_bit_flip_is_an_error() {
    let lab_gz = std::fs::read(mnist_dir().join(LABELS_FILE)).unwrap();
    let lab = raw(LABELS_FILE);
    for cut in 0..lab_gz.len() {
        let m = format_msg(parse_idx(&lab_gz[..cut]));
        assert!(
            m.contains("gzip stream") || m.contains("truncated") || m.contains("empty"),
            "cut {cut}: {m}"
        );
    }
    for cut in 0..lab.len() {
        let m = format_msg(parse_idx(&lab[..cut]));
        assert!(
            m.contains("truncated") || m.contains("empty"),
            "cut {cut}: {m}"
        );
    }
    // The images at a spread of cut points, gzip and plain.
    let img_gz = std::fs::read(mnist_dir().join(IMAGES_FILE)).unwrap();
    let img = raw(IMAGES_FILE);
    for k in 0..40 {
        let cut = k * img_gz.len() / 40 + k;
        format_msg(parse_idx(&img_gz[..cut]));
    }
    for cut in [3, 4, 15, 16, 17, 784, img.len() / 2, img.len() - 1] {
        let m = format_msg(parse_idx(&img[..cut]));
        assert!(m.contains("truncated"), "cut {cut}: {m}");
    }
    // Every single-bit flip of the 16-byte image header (on a 50-image file) breaks it.
    let small = idx(&[50, 28, 28], &img[16..16 + 50 * 784]);
    assert!(parse_idx(&small).is_ok());
    for byte in 0..16 {
        for bit in 0..8 {
            let mut b = small.clone();
            b[byte] ^= 1 << bit;
            let m = format_msg(parse_idx(&b));
            assert!(
                ["magic", "type code", "truncated", "trailing", "overflow"]
                    .iter()
                    .any(|w| m.contains(w)),
                "byte {byte} bit {bit}: {m}"
            );
        }
    }
}

#[test]
fn random_mutations_never_panic() {
    let img = raw(IMAGES_FILE);
    let small = idx(&[8, 28, 28], &img[16..16 + 8 * 784]);
    let seeds = [
        small.clone(),
        gz(&small),
        idx(&[30], &raw(LABELS_FILE)[8..38]),
    ];
    let mut rng = StdRng::seed_from_u64(20_240_601);
    let (mut ok, mut err) = (0, 0);
    for it in 0..3000 {
        let mut b = seeds[it % seeds.len()].clone();
        for _ in 0..rng.random_range(1..4) {
            match rng.random_range(0..4) {
                0 if !b.is_empty() => {
                    let i = rng.random_range(0..b.len());
                    b[i] ^= 1 << rng.random_range(0..8);
                }
                1 if !b.is_empty() => {
                    // Mostly in the header, where the structure is.
                    let i = rng.random_range(0..b.len().min(24));
                    b[i] = rng.random();
                }
                2 => b.truncate(rng.random_range(0..=b.len())),
                _ => {
                    let i = rng.random_range(0..=b.len());
                    b.insert(i, rng.random());
                }
            }
        }
        let r = std::panic::catch_unwind(|| parse_idx(&b));
        match r {
            Ok(Ok(a)) => {
                assert_eq!(
                    a.data().len(),
                    a.dims().iter().product::<usize>(),
                    "iteration {it}"
                );
                ok += 1;
            }
            Ok(Err(Error::Format { .. })) => err += 1,
            Ok(Err(e)) => panic!("iteration {it}: unexpected error kind {e:?}"),
            Err(_) => panic!("iteration {it}: parse_idx panicked on {} bytes", b.len()),
        }
    }
    assert!(err > 2500, "{ok} parsed, {err} rejected");
}
