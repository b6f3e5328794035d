//! Permutations: the digest's T11 shuffle values, P_(k,n) in both readings, PEFT's butterfly
//! permutation on small cases worked by hand, validation errors, and the group laws.

use gslab::{Error, Perm};
use rand::{SeedableRng, rngs::StdRng};

fn iota(n: usize) -> Vec<usize> {
    (0..n).collect()
}

/// `channel_shuffle(groups=k)` computes `out[σ_(k,C)(i)] = in[i]` (T11): the scatter reading.
#[test]
fn t11_channel_shuffle_values() {
    let out = Perm::shuffle_scatter(2, 8).unwrap().apply(&iota(8));
    assert_eq!(out, vec![0, 2, 4, 6, 1, 3, 5, 7]);
    let out = Perm::shuffle_scatter(4, 8).unwrap().apply(&iota(8));
    assert_eq!(out, vec![0, 4, 1, 5, 2, 6, 3, 7]);
}

/// Paired shuffles of T11: `out[σ^paired(i)] = in[i]`.
#[test]
fn t11_paired_shuffle_values() {
    let out = Perm::paired_shuffle_scatter(2, 8).unwrap().apply(&iota(8));
    // σ^paired = [0,1,4,5,2,3,6,7] is an involution, so out = σ^paired as well.
    assert_eq!(out, vec![0, 1, 4, 5, 2, 3, 6, 7]);
    let p = Perm::paired_shuffle_scatter(4, 16).unwrap();
    assert_eq!(
        p.apply(&iota(16)),
        vec![0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15]
    );
    // The gather reading reproduces σ^paired itself.
    assert_eq!(
        Perm::paired_shuffle_gather(4, 16).unwrap().as_slice(),
        &[0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15]
    );
    assert!(Perm::paired_shuffle_scatter(4, 8).unwrap().is_identity());
}

/// σ_(k,12) of digest §2.2, in the gather reading `(P x)[i] = x[σ(i)]`.
#[test]
fn sigma_k_12_gather_values() {
    let cases: [(usize, [usize; 12]); 4] = [
        (2, [0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11]),
        (3, [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]),
        (4, [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]),
        (6, [0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11]),
    ];
    for (k, want) in cases {
        let p = Perm::shuffle_gather(k, 12).unwrap();
        assert_eq!(p.as_slice(), &want, "k={k}");
        assert_eq!(p.apply(&iota(12)), want.to_vec(), "k={k}");
    }
}

/// σ_(k,n)⁻¹ = σ_(n/k,n), so the scatter reading of P_(k,n) is the gather reading of P_(n/k,n).
#[test]
fn shuffle_inverse_identity() {
    for (k, n) in [(2, 12), (3, 12), (4, 16), (8, 64), (5, 35)] {
        let g = Perm::shuffle_gather(k, n).unwrap();
        let s = Perm::shuffle_scatter(k, n).unwrap();
        assert_eq!(g.inverse(), Perm::shuffle_gather(n / k, n).unwrap());
        assert_eq!(s, Perm::shuffle_gather(n / k, n).unwrap());
        assert!(g.compose(&s).is_identity());
    }
}

/// PEFT `block_butterfly_perm(n, nb, r_half)`, worked by hand: in each of the `nb` chunks the
/// sub-blocks of size `r_half` are reordered evens first, then odds.
#[test]
fn block_butterfly_small_cases() {
    // n=8, nb=2: chunks {0..4},{4..8}, r_half=1: order 0,2,1,3 within each chunk.
    let p = Perm::block_butterfly(8, 2, 1).unwrap();
    assert_eq!(p.as_slice(), &[0, 2, 1, 3, 4, 6, 5, 7]);
    // n=8, nb=1, r_half=2: sub-blocks [0,1],[2,3],[4,5],[6,7] -> 0,2,1,3.
    let p = Perm::block_butterfly(8, 1, 2).unwrap();
    assert_eq!(p.as_slice(), &[0, 1, 4, 5, 2, 3, 6, 7]);
    // n=8, nb=4, r_half=1: two sub-blocks per chunk, order 0,1: identity.
    assert!(Perm::block_butterfly(8, 4, 1).unwrap().is_identity());
    // n=12, nb=2, r_half=1: six sub-blocks per chunk, order 0,2,4,1,3,5.
    let p = Perm::block_butterfly(12, 2, 1).unwrap();
    assert_eq!(p.as_slice(), &[0, 2, 4, 1, 3, 5, 6, 8, 10, 7, 9, 11]);
    // n=16, nb=1, r_half=4: [0..4],[4..8],[8..12],[12..16] -> 0,2,1,3.
    let p = Perm::block_butterfly(16, 1, 4).unwrap();
    assert_eq!(
        p.as_slice(),
        &[0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15]
    );
}

#[test]
fn block_butterfly_errors() {
    // 2·nb·r_half > n ("Invalid number of blocks").
    assert!(Perm::block_butterfly(8, 4, 2).is_err());
    assert!(Perm::block_butterfly(8, 3, 1).is_err()); // nb does not divide n
    assert!(Perm::block_butterfly(8, 2, 0).is_err());
    assert!(Perm::block_butterfly(8, 0, 1).is_err());
    assert!(Perm::block_butterfly(12, 2, 4).is_err()); // r_half does not divide 6
}

#[test]
fn from_vec_errors_name_the_index() {
    match Perm::from_vec(vec![0, 2, 2]) {
        Err(Error::NotAPermutation { n, reason }) => {
            assert_eq!(n, 3);
            assert!(reason.contains("index 2 is repeated"), "{reason}");
        }
        other => panic!("expected NotAPermutation, got {other:?}"),
    }
    match Perm::from_vec(vec![0, 3, 1]) {
        Err(Error::NotAPermutation { n, reason }) => {
            assert_eq!(n, 3);
            assert!(
                reason.contains("index 3") && reason.contains("out of range"),
                "{reason}"
            );
        }
        other => panic!("expected NotAPermutation, got {other:?}"),
    }
    assert_eq!(
        Perm::from_vec(vec![2, 0, 1]).unwrap().as_slice(),
        &[2, 0, 1]
    );
}

#[test]
fn shuffle_errors() {
    assert!(Perm::shuffle_gather(5, 12).is_err());
    assert!(Perm::shuffle_scatter(0, 12).is_err());
    assert!(Perm::paired_shuffle_scatter(4, 12).is_err()); // 2k = 8 does not divide 12
}

/// Compose is the matrix product: `(A B) x = A (B x)`; associativity, inverses, identity.
#[test]
fn compose_and_inverse_laws() {
    let mut rng = StdRng::seed_from_u64(7);
    let n = 13;
    let x: Vec<f64> = (0..n).map(|i| (i * i) as f64 + 0.5).collect();
    for _ in 0..20 {
        let (a, b, c) = (
            Perm::random(n, &mut rng),
            Perm::random(n, &mut rng),
            Perm::random(n, &mut rng),
        );
        assert_eq!(a.compose(&b).apply(&x), a.apply(&b.apply(&x)));
        assert_eq!(a.compose(&b).compose(&c), a.compose(&b.compose(&c)));
        assert!(a.compose(&a.inverse()).is_identity());
        assert!(a.inverse().compose(&a).is_identity());
        assert_eq!(a.compose(&Perm::identity(n)), a);
        assert_eq!(a.compose(&b).inverse(), b.inverse().compose(&a.inverse()));
        assert_eq!(a.inverse().apply(&a.apply(&x)), x);
    }
}

/// Matrix convention: `P[i, σ(i)] = 1`, checked against an explicit 0/1 matrix product.
#[test]
fn gather_matrix_convention() {
    let p = Perm::from_vec(vec![2, 0, 3, 1]).unwrap();
    let x = [10.0, 20.0, 30.0, 40.0];
    let mut mat = [[0.0; 4]; 4];
    for (i, &s) in p.as_slice().iter().enumerate() {
        mat[i][s] = 1.0;
    }
    let y: Vec<f64> = (0..4)
        .map(|i| (0..4).map(|j| mat[i][j] * x[j]).sum())
        .collect();
    assert_eq!(p.apply(&x), y);
    assert_eq!(y, vec![30.0, 10.0, 40.0, 20.0]);
}
