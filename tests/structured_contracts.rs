//! The structured operators' contracts with their callers: every constructor error names the
//! offending value, the tape-free and `_into` entry points panic on wrong shapes naming them,
//! empty batches work, and the `_into` kernels overwrite whatever the caller's outputs held.
//! (The operators' values and gradients are checked in `tests/structured_ops.rs`.)

use gslab::kernels::chain::{
    chain_backward, chain_backward_into, chain_forward_into, chain_forward_saved,
    chain_forward_saved_into, chunk_rows,
};
use gslab::structured::*;
use gslab::{Blocks, Error, Perm, Tensor};

mod common;
use common::{blocks_kb, rng};

// ---------------------------------------------------------------- constructor errors

fn block_mismatch<T: std::fmt::Debug>(r: Result<T, Error>, needle: &str) {
    match r {
        Err(Error::BlockMismatch(msg)) => assert!(msg.contains(needle), "{msg:?} lacks {needle:?}"),
        other => panic!("expected BlockMismatch containing {needle:?}, got {other:?}"),
    }
}

fn invalid_arg<T: std::fmt::Debug>(r: Result<T, Error>, needle: &str) {
    match r {
        Err(Error::InvalidArgument(msg)) => {
            assert!(msg.contains(needle), "{msg:?} lacks {needle:?}")
        }
        other => panic!("expected InvalidArgument containing {needle:?}, got {other:?}"),
    }
}

#[test]
fn block_diag_errors() {
    block_mismatch(BlockDiag::<f64>::new(BlockShape::new(0, 2, 2)), "k=0");
    block_mismatch(BlockDiag::<f64>::new(BlockShape::new(2, 0, 2)), "b1=0");
    block_mismatch(
        BlockDiag::<f64>::from_blocks(Tensor::zeros(&[4, 4])),
        "[4, 4]",
    );
}

#[test]
fn gs_errors() {
    let id = Perm::identity;
    // s mismatch: b_L²·k_L = 4·2 = 8 but b_R¹·k_R = 3·3 = 9.
    block_mismatch(
        Gs::<f64>::new(
            id(6),
            BlockShape::new(2, 3, 4),
            id(8),
            BlockShape::new(3, 3, 3),
            id(9),
        ),
        "b_L²=4, k_L=2 (s=8) and b_R¹=3, k_R=3 (s=9)",
    );
    let (l, r) = (BlockShape::new(2, 3, 4), BlockShape::new(4, 2, 5)); // s = 8, m = 6, n = 20
    block_mismatch(Gs::<f64>::new(id(7), l, id(8), r, id(20)), "P_L has size 7");
    block_mismatch(Gs::<f64>::new(id(6), l, id(9), r, id(20)), "P has size 9");
    block_mismatch(
        Gs::<f64>::new(id(6), l, id(8), r, id(19)),
        "P_R has size 19",
    );
    assert!(Gs::<f64>::new(id(6), l, id(8), r, id(20)).is_ok());
    block_mismatch(
        Gs::<f64>::new(id(6), BlockShape::new(2, 3, 0), id(8), r, id(20)),
        "L",
    );
    block_mismatch(
        Gs::<f64>::from_blocks(
            id(6),
            Tensor::zeros(&[6, 4]),
            id(8),
            Tensor::zeros(&[4, 2, 5]),
            id(20),
        ),
        "L must be",
    );
    block_mismatch(
        Gs::<f64>::gsoft(Tensor::zeros(&[4, 3, 3]), Tensor::zeros(&[3, 3, 3])),
        "b_L²=3, k_L=4 (s=12) and b_R¹=3, k_R=3 (s=9)",
    );
    // A zero block count cannot even be written as blocks.
    assert!(Blocks::count(0, 0).is_err() && Blocks::size(3, 0).is_err());
}

#[test]
fn gs_chain_errors() {
    let id = Perm::identity;
    // factor 0 outputs 12 but factor 1 takes 3·3 = 9
    block_mismatch(
        GsChain::<f64>::new(
            vec![BlockShape::new(4, 3, 2), BlockShape::new(3, 2, 3)],
            vec![id(8), id(12), id(6)],
        ),
        "factor 1",
    );
    block_mismatch(
        GsChain::<f64>::new(vec![BlockShape::new(4, 3, 2)], vec![id(8)]),
        "m + 1 permutations",
    );
    block_mismatch(
        GsChain::<f64>::with_shuffles(vec![Tensor::zeros(&[4, 3, 2]), Tensor::zeros(&[3, 2, 3])]),
        "factor 0 outputs length 12",
    );
    block_mismatch(GsChain::<f64>::with_shuffles(vec![]), "at least one factor");
    block_mismatch(
        GsChain::from_blocks(vec![Tensor::<f64>::zeros(&[2, 2, 2])], vec![id(4), id(4)])
            .and_then(|mut c| c.set_blocks(vec![Tensor::zeros(&[2, 2, 3])])),
        "factor 0 needs blocks of shape",
    );
}

#[test]
fn monarch_errors() {
    // Digest T16: n = 768 with square blocks of 8 in both factors (k_L = k_R = 96) is GS but
    // not Monarch; (96, 8) is Monarch.
    let b8 = BlockShape::square(96, 8);
    block_mismatch(
        Monarch::<f32>::new(b8, b8),
        "k_L=96, b_R¹=8, k_R=96, b_L²=8",
    );
    assert!(Gs::<f32>::gsoft(Tensor::zeros(&[96, 8, 8]), Tensor::zeros(&[96, 8, 8])).is_ok());
    assert!(Monarch::<f32>::new(BlockShape::square(96, 8), BlockShape::square(8, 96)).is_ok());
    block_mismatch(
        Monarch::<f64>::from_blocks(Tensor::zeros(&[4, 3, 2]), Tensor::zeros(&[2, 3, 5])),
        "k_L=4, b_R¹=3",
    );
}

#[test]
fn butterfly_errors() {
    // PEFT's rule: m >= 1; for m >= 2 an even block size and 2^(m-1) | r.
    let at = |n, r| Blocks::count(n, r).unwrap();
    assert!(
        Butterfly::<f64>::new(at(12, 3), 1).is_ok(),
        "OFT: any block count"
    );
    invalid_arg(
        Butterfly::<f64>::new(at(12, 3), 2),
        "r=3 is not a multiple of 2^1",
    );
    invalid_arg(
        Butterfly::<f64>::new(at(16, 4), 4),
        "r=4 is not a multiple of 2^3",
    );
    invalid_arg(Butterfly::<f64>::new(at(16, 4), 0), "got m=0");
    invalid_arg(
        Butterfly::<f64>::new(at(4, 4), 2),
        "even block size, got b=1",
    );
    assert!(Blocks::count(18, 4).is_err());
    invalid_arg(Butterfly::<f64>::from_blocks(vec![]), "at least one factor");
    block_mismatch(
        Butterfly::<f64>::from_blocks(vec![Tensor::zeros(&[4, 3, 2])]),
        "square",
    );
    block_mismatch(
        Butterfly::<f64>::from_blocks(vec![Tensor::zeros(&[4, 4, 4]), Tensor::zeros(&[4, 2, 2])]),
        "factor 1 needs blocks of shape [4, 4, 4]",
    );
    invalid_arg(
        Butterfly::<f64>::from_blocks(vec![Tensor::zeros(&[4, 3, 3]); 4]),
        "even block size, got b=3",
    );
}

#[test]
fn low_rank_and_dense_errors() {
    invalid_arg(LowRank::<f64>::new(4, 5, 0), "rank=0");
    invalid_arg(
        LowRank::from_factors(&Tensor::<f64>::zeros(&[4, 2]), &Tensor::zeros(&[5, 3])),
        "U has rank 2 columns but V has 3",
    );
    invalid_arg(
        LowRank::from_factors(&Tensor::<f64>::zeros(&[4, 2, 1]), &Tensor::zeros(&[5, 2])),
        "2-D",
    );
    invalid_arg(
        LowRank::<f64>::from_blocks(vec![Tensor::zeros(&[1, 2, 5])]),
        "LowRank::from_blocks",
    );
    block_mismatch(
        LowRank::<f64>::from_blocks(vec![Tensor::zeros(&[1, 2, 5]), Tensor::zeros(&[1, 4, 3])]),
        "factor 1 needs blocks of shape [1, 4, 2]",
    );
    invalid_arg(Dense::<f64>::new(0, 3), "got 0 x 3");
    invalid_arg(Dense::<f64>::from_matrix(&Tensor::zeros(&[2, 2, 2])), "2-D");
    invalid_arg(
        Dense::<f64>::from_blocks(Tensor::zeros(&[2, 2, 2])),
        "(1, n_out, n_in)",
    );
}

/// An empty batch gives empty outputs and zero block gradients.
#[test]
fn empty_batch() {
    let op = Gs::<f64>::gsoft_random(blocks_kb(3, 2), &mut rng(61)).unwrap();
    let x = Tensor::<f64>::zeros(&[0, 6]);
    assert_eq!(op.apply(&x).shape(), &[0, 6]);
    let (y, saved) = chain_forward_saved(op.layout(), &op.blocks(), &x, faer::Par::rayon(0));
    assert_eq!(y.shape(), &[0, 6]);
    let (dx, dbs) = chain_backward(
        op.layout(),
        &op.blocks(),
        (&x, &saved),
        &y,
        faer::Par::rayon(0),
    );
    assert_eq!(dx.shape(), &[0, 6]);
    assert!(dbs.iter().all(|d| d.max_abs() == 0.0));
}

#[test]
#[should_panic(expected = "chain_forward: input of shape [2, 5]")]
fn apply_panics_on_wrong_width() {
    let op = BlockDiag::<f64>::new(BlockShape::new(2, 2, 2)).unwrap();
    op.apply(&Tensor::zeros(&[2, 5]));
}

/// The `_into` entry points write exactly what the allocating ones return, into outputs that
/// start out holding garbage (every element must be overwritten), over several chunks.
#[test]
fn into_entry_points_overwrite_caller_outputs() {
    let r = &mut rng(43);
    let op = Gs::<f64>::gsoft_random(blocks_kb(8, 16), r).unwrap(); // n = 128
    let batch = 2 * chunk_rows(op.layout()) + 3;
    let x = Tensor::<f64>::randn(&[batch, 128], 1.0, r);
    let dy = Tensor::<f64>::randn(&[batch, 128], 1.0, r);
    let (l, b) = (op.layout(), &op.blocks());
    let (y, saved) = chain_forward_saved(l, b, &x, faer::Par::rayon(0));
    let (dx, dbs) = chain_backward(l, b, (&x, &saved), &dy, faer::Par::rayon(0));
    let garbage = |shape: &[usize]| Tensor::<f64>::full(shape, f64::NAN);
    let mut y1 = garbage(&[batch, 128]);
    chain_forward_into(l, b, &x, &mut y1, faer::Par::Seq);
    assert_eq!(y1.data(), y.data());
    let mut y2 = garbage(&[batch, 128]);
    let sv = chain_forward_saved_into(l, b, &x, &mut y2, faer::Par::rayon(0));
    assert_eq!(y2.data(), y.data());
    let mut dx2 = garbage(&[batch, 128]);
    let mut dbs2: Vec<Tensor<f64>> = dbs.iter().map(|d| garbage(d.shape())).collect();
    chain_backward_into(
        l,
        b,
        (&x, &sv),
        &dy,
        (&mut dx2, &mut dbs2),
        faer::Par::rayon(0),
    );
    assert_eq!(dx2.data(), dx.data());
    for (a, e) in dbs2.iter().zip(&dbs) {
        assert_eq!(a.data(), e.data());
    }
}

#[test]
#[should_panic(expected = "chain_forward_into: output of shape [3, 4] where (3, 6) is needed")]
fn forward_into_panics_on_wrong_output_shape() {
    let op = BlockDiag::<f64>::new(BlockShape::new(3, 2, 2)).unwrap();
    let mut y = Tensor::zeros(&[3, 4]);
    chain_forward_into(
        op.layout(),
        &op.blocks(),
        &Tensor::zeros(&[3, 6]),
        &mut y,
        faer::Par::Seq,
    );
}

#[test]
#[should_panic(expected = "chain_backward_into: weight gradients of shapes [[3, 2, 3]]")]
fn backward_into_panics_on_wrong_gradient_shape() {
    let op = BlockDiag::<f64>::new(BlockShape::new(3, 2, 2)).unwrap();
    let (l, b) = (op.layout(), &op.blocks());
    let x = Tensor::zeros(&[1, 6]);
    let (y, saved) = chain_forward_saved(l, b, &x, faer::Par::Seq);
    let mut dx = Tensor::zeros(&[1, 6]);
    let mut dbs = vec![Tensor::zeros(&[3, 2, 3])];
    chain_backward_into(l, b, (&x, &saved), &y, (&mut dx, &mut dbs), faer::Par::Seq);
}

#[test]
#[should_panic(
    expected = "chain_backward: forward input of shape [2, 6] for a saved batch of (3, 6)"
)]
fn backward_panics_on_a_forward_input_of_another_batch() {
    let op = Gs::<f64>::gsoft_random(blocks_kb(3, 2), &mut rng(62)).unwrap();
    let (l, b) = (op.layout(), &op.blocks());
    let (y, saved) = chain_forward_saved(l, b, &Tensor::zeros(&[3, 6]), faer::Par::Seq);
    chain_backward(l, b, (&Tensor::zeros(&[2, 6]), &saved), &y, faer::Par::Seq);
}
