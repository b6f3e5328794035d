//! Safetensors I/O: bitwise round trips (f32, f64), the documented naming scheme read back with
//! the safetensors crate alone, and clear errors on corrupted or mismatched input.

use gslab::io::*;
use gslab::kernels::layout::ChainLayout;
use gslab::kernels::reference::reference_apply;
use gslab::structured::BlockShape;
use gslab::{Error, Perm, Real, Tensor};
use rand::{SeedableRng, rngs::StdRng};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gslab-io-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// 10 -> 12 -> 8 with rectangular blocks and random permutations.
fn layout(r: &mut StdRng) -> ChainLayout {
    ChainLayout::new(
        vec![BlockShape::new(2, 6, 5), BlockShape::new(4, 2, 3)],
        vec![Perm::random(10, r), Perm::random(12, r), Perm::random(8, r)],
    )
    .unwrap()
}

/// Random blocks with awkward values planted: -0, subnormal, infinities, NaN, extremes.
fn blocks<T: Real>(l: &ChainLayout, r: &mut StdRng) -> Vec<Tensor<T>> {
    let mut v: Vec<Tensor<T>> = l
        .factors()
        .iter()
        .map(|f| Tensor::randn(&f.tensor_shape(), 1.0, r))
        .collect();
    let special = [
        T::from_f64(-0.0),
        T::min_positive_value() / T::from_f64(8.0),
        T::infinity(),
        T::neg_infinity(),
        T::nan(),
        T::max_value(),
        T::EPS,
    ];
    for (d, s) in v[0].data_mut().iter_mut().zip(special) {
        *d = s;
    }
    v
}

fn bits<T: Real>(t: &Tensor<T>) -> Vec<u64> {
    t.data()
        .iter()
        // Widening f32 -> f64 is injective on non-signalling values (NaN payload kept), so equal
        // f64 bits mean equal original bits.
        .map(|&x| x.to_f64().to_bits())
        .collect()
}

fn meta() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("note".to_string(), "unit test".to_string()),
        ("seed".to_string(), "42".to_string()),
    ])
}

fn chain_round_trip<T: Real>(seed: u64, name: &str) {
    let mut r = StdRng::seed_from_u64(seed);
    let l = layout(&mut r);
    let b = blocks::<T>(&l, &mut r);
    let path = tmp(name);
    save_chain(&path, &l, &b, &meta()).unwrap();
    let (l2, b2) = load_chain::<T>(&path).unwrap();
    assert_eq!(l2, l);
    assert_eq!(b2.len(), b.len());
    for (x, y) in b.iter().zip(&b2) {
        assert_eq!(x.shape(), y.shape());
        assert_eq!(bits(x), bits(y));
    }
    let m = load_metadata(&path).unwrap();
    assert_eq!(m["note"], "unit test");
    assert_eq!(m["format"], CHAIN_FORMAT);
    assert_eq!(m["m"], "2");
    assert_eq!(m["dtype"], T::DTYPE);
    assert_eq!(m["convention"], CHAIN_CONVENTION);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn chain_round_trip_f64_bitwise() {
    chain_round_trip::<f64>(1, "c64.safetensors");
}

#[test]
fn chain_round_trip_f32_bitwise() {
    chain_round_trip::<f32>(2, "c32.safetensors");
}

#[test]
fn f32_bytes_are_exact_le_bits() {
    // Independent check of the byte encoding: the raw F32 bytes equal f32::to_le_bytes.
    let t = Tensor::<f32>::from_vec(&[3], vec![1.5, -0.0, f32::from_bits(0x7fc0_1234)]).unwrap();
    let bytes = tensors_to_bytes(&[("x", &t)], &BTreeMap::new()).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let v = st.tensor("x").unwrap();
    assert_eq!(v.dtype(), Dtype::F32);
    let want: Vec<u8> = [1.5f32, -0.0, f32::from_bits(0x7fc0_1234)]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    assert_eq!(v.data(), &want[..]);
    let back = tensors_from_bytes::<f32>(&bytes).unwrap();
    let got: Vec<u32> = back["x"].data().iter().map(|x| x.to_bits()).collect();
    assert_eq!(
        got,
        vec![1.5f32.to_bits(), (-0.0f32).to_bits(), 0x7fc0_1234]
    );
}

#[test]
fn named_tensors_round_trip() {
    let mut r = StdRng::seed_from_u64(3);
    let a = Tensor::<f64>::randn(&[3, 4], 1.0, &mut r);
    let b = Tensor::<f64>::randn(&[2, 3, 3], 1.0, &mut r);
    let c = Tensor::<f64>::scalar(-2.5);
    let path = tmp("named.safetensors");
    save_tensors(&path, &[("a", &a), ("layer.b", &b), ("c", &c)], &meta()).unwrap();
    let got = load_tensors::<f64>(&path).unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(got["a"], a);
    assert_eq!(got["layer.b"], b);
    assert_eq!(got["c"], c);
    assert_eq!(load_metadata(&path).unwrap()["seed"], "42");
    let f = Tensor::<f32>::randn(&[5], 1.0, &mut r);
    let path32 = tmp("named32.safetensors");
    save_tensors(&path32, &[("f", &f)], &BTreeMap::new()).unwrap();
    assert_eq!(load_tensors::<f32>(&path32).unwrap()["f"], f);
    assert!(load_metadata(&path32).unwrap().is_empty());
    std::fs::remove_file(&path).unwrap();
    std::fs::remove_file(&path32).unwrap();
}

#[test]
fn documented_scheme_reproduces_the_chain() {
    // Read the file with the safetensors crate only, following the module docs (the same steps
    // as the Python snippet), and compare with the reference product.
    let mut r = StdRng::seed_from_u64(4);
    let l = layout(&mut r);
    let b: Vec<Tensor<f64>> = l
        .factors()
        .iter()
        .map(|f| Tensor::randn(&f.tensor_shape(), 1.0, &mut r))
        .collect();
    let bytes = chain_to_bytes(&l, &b, &BTreeMap::new()).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let f64s = |v: TensorView| -> Vec<f64> {
        assert_eq!(v.dtype(), Dtype::F64);
        v.data()
            .chunks(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let i64s = |v: TensorView| -> Vec<usize> {
        assert_eq!(v.dtype(), Dtype::I64);
        v.data()
            .chunks(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as usize)
            .collect()
    };
    for (i, p) in l.perms().iter().enumerate() {
        assert_eq!(i64s(st.tensor(&format!("perm.{i}")).unwrap()), p.as_slice());
    }
    let x: Vec<f64> = (0..10).map(|i| i as f64 - 3.5).collect();
    let mut z: Vec<f64> = i64s(st.tensor("perm.0").unwrap())
        .iter()
        .map(|&s| x[s])
        .collect();
    for i in 0..2 {
        let v = st.tensor(&format!("factor.{i}.blocks")).unwrap();
        let (k, b1, b2) = (v.shape()[0], v.shape()[1], v.shape()[2]);
        let w = f64s(v);
        let y: Vec<f64> = (0..k * b1)
            .map(|o| {
                let (j, u) = (o / b1, o % b1);
                (0..b2)
                    .map(|t| w[(j * b1 + u) * b2 + t] * z[j * b2 + t])
                    .sum()
            })
            .collect();
        z = i64s(st.tensor(&format!("perm.{}", i + 1)).unwrap())
            .iter()
            .map(|&s| y[s])
            .collect();
    }
    let want = reference_apply(&l, &b, &x);
    for (a, w) in z.iter().zip(&want) {
        assert!((a - w).abs() <= 1e-14 * w.abs().max(1.0));
    }
}

/// Writes raw tensors (name, dtype, shape, bytes) with metadata, bypassing our writer.
fn raw_file(items: &[(&str, Dtype, Vec<usize>, Vec<u8>)], meta: &[(&str, &str)]) -> Vec<u8> {
    let views: Vec<(String, TensorView)> = items
        .iter()
        .map(|(n, d, s, b)| (n.to_string(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let meta: HashMap<String, String> = meta
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    safetensors::tensor::serialize(views, Some(meta)).unwrap()
}

fn f64_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn i64_bytes(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A valid one-factor chain file (2 blocks of 1x2: length 4 -> 2) with the given perms.
fn one_factor(p0: &[i64], p1: &[i64], m: &str) -> Vec<u8> {
    raw_file(
        &[
            (
                "factor.0.blocks",
                Dtype::F64,
                vec![2, 1, 2],
                f64_bytes(&[1.0, 2.0, 3.0, 4.0]),
            ),
            ("perm.0", Dtype::I64, vec![p0.len()], i64_bytes(p0)),
            ("perm.1", Dtype::I64, vec![p1.len()], i64_bytes(p1)),
        ],
        &[("format", CHAIN_FORMAT), ("m", m)],
    )
}

fn io_msg(e: Error) -> String {
    match e {
        Error::Format { msg, .. } => msg,
        other => panic!("expected a Format error, got {other:?}"),
    }
}

#[test]
fn raw_valid_file_loads() {
    let (l, b) = chain_from_bytes::<f64>(&one_factor(&[3, 2, 1, 0], &[1, 0], "1")).unwrap();
    assert_eq!(l.perms()[0].as_slice(), &[3, 2, 1, 0]);
    assert_eq!(b[0].data(), &[1.0, 2.0, 3.0, 4.0]);
    // x = [1, 10, 100, 1000] -> P_1 x = [1000, 100, 10, 1] -> B = [1000+200, 30+4] -> swap.
    assert_eq!(
        reference_apply(&l, &b, &[1.0, 10.0, 100.0, 1000.0]),
        vec![34.0, 1200.0]
    );
}

#[test]
fn corrupted_and_invalid_inputs_are_rejected() {
    // Not a permutation: repeated index, named tensor.
    match chain_from_bytes::<f64>(&one_factor(&[0, 1, 1, 3], &[0, 1], "1")) {
        Err(Error::NotAPermutation { n, reason }) => {
            assert_eq!(n, 4);
            assert!(
                reason.contains("perm.0") && reason.contains("repeated"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Negative and out-of-range indices.
    assert!(
        io_msg(chain_from_bytes::<f64>(&one_factor(&[0, 1, 2, -1], &[0, 1], "1")).unwrap_err())
            .contains("negative")
    );
    assert!(matches!(
        chain_from_bytes::<f64>(&one_factor(&[0, 1, 2, 4], &[0, 1], "1")),
        Err(Error::NotAPermutation { .. })
    ));
    // Sizes that do not chain: perm.1 of size 3 after a factor with 2 outputs.
    assert!(matches!(
        chain_from_bytes::<f64>(&one_factor(&[0, 1, 2, 3], &[0, 1, 2], "1")),
        Err(Error::BlockMismatch(_))
    ));
    // Metadata says 2 factors, the file has 1.
    assert!(
        io_msg(chain_from_bytes::<f64>(&one_factor(&[0, 1, 2, 3], &[0, 1], "2")).unwrap_err())
            .contains("factor.1.blocks")
    );
    assert!(
        io_msg(chain_from_bytes::<f64>(&one_factor(&[0, 1, 2, 3], &[0, 1], "x")).unwrap_err())
            .contains("'m'")
    );
    // Wrong dtype requested: a dtype error naming the tensor and both dtypes.
    match chain_from_bytes::<f32>(&one_factor(&[0, 1, 2, 3], &[0, 1], "1")) {
        Err(Error::Dtype {
            name,
            expected,
            got,
            ..
        }) => assert_eq!(
            (name.as_str(), expected.as_str(), got.as_str()),
            ("factor.0.blocks", "F32", "F64")
        ),
        other => panic!("expected a dtype error, got {other:?}"),
    }
    // A plain tensor file is not a chain file.
    let t = Tensor::<f64>::zeros(&[2]);
    let plain = tensors_to_bytes(&[("a", &t)], &BTreeMap::new()).unwrap();
    assert!(io_msg(chain_from_bytes::<f64>(&plain).unwrap_err()).contains("format"));
    // Blocks of the wrong rank.
    let flat = raw_file(
        &[
            ("factor.0.blocks", Dtype::F64, vec![4], f64_bytes(&[1.0; 4])),
            ("perm.0", Dtype::I64, vec![4], i64_bytes(&[0, 1, 2, 3])),
            ("perm.1", Dtype::I64, vec![2], i64_bytes(&[0, 1])),
        ],
        &[("format", CHAIN_FORMAT), ("m", "1")],
    );
    assert!(io_msg(chain_from_bytes::<f64>(&flat).unwrap_err()).contains("(k, b1, b2)"));
    // Truncated and garbage bytes.
    let good = one_factor(&[0, 1, 2, 3], &[0, 1], "1");
    for cut in [0, 5, good.len() / 2, good.len() - 1] {
        assert!(
            matches!(
                chain_from_bytes::<f64>(&good[..cut]),
                Err(Error::Format { .. })
            ),
            "cut {cut}"
        );
    }
    let mut garbage = good.clone();
    garbage[9] = b'#';
    assert!(matches!(
        chain_from_bytes::<f64>(&garbage),
        Err(Error::Format { .. })
    ));
    assert!(matches!(
        tensors_from_bytes::<f64>(&good[..good.len() - 3]),
        Err(Error::Format { .. })
    ));
    // Missing file: the error names the path.
    match load_chain::<f64>(tmp("does-not-exist.safetensors")) {
        Err(e @ Error::Io { .. }) => {
            let Error::Io { path, source } = &e else {
                unreachable!()
            };
            assert!(path.contains("does-not-exist"), "{e}");
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn writer_rejects_bad_arguments() {
    let mut r = StdRng::seed_from_u64(5);
    let l = layout(&mut r);
    let b = blocks::<f64>(&l, &mut r);
    let reserved = BTreeMap::from([("m".to_string(), "7".to_string())]);
    assert!(matches!(
        chain_to_bytes(&l, &b, &reserved),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        chain_to_bytes(&l, &b[..1], &BTreeMap::new()),
        Err(Error::BlockMismatch(_))
    ));
    let t = Tensor::<f64>::zeros(&[1]);
    assert!(matches!(
        tensors_to_bytes(&[("a", &t), ("a", &t)], &BTreeMap::new()),
        Err(Error::InvalidArgument(_))
    ));
}

/// Saving replaces a file atomically: the new content is complete, no temporary file is left,
/// and a failed write (missing directory) names the path and leaves nothing behind.
#[test]
fn writes_are_atomic_and_leave_no_temporary_files() {
    let dir = tmp("atomic");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.safetensors");
    let a = Tensor::<f64>::ones(&[3]);
    save_tensors(&path, &[("a", &a)], &BTreeMap::new()).unwrap();
    let b = Tensor::<f64>::zeros(&[1000]);
    save_tensors(&path, &[("b", &b)], &BTreeMap::new()).unwrap();
    let back = load_tensors::<f64>(&path).unwrap();
    assert_eq!(back.keys().collect::<Vec<_>>(), vec!["b"]);
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(left.len(), 1, "a temporary file was left behind");
    let missing = dir.join("no-such-dir").join("x.safetensors");
    match save_tensors(&missing, &[("a", &a)], &BTreeMap::new()) {
        Err(Error::Io { path, .. }) => assert!(path.contains("no-such-dir"), "{path}"),
        other => panic!("expected an Io error, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
