use super::*;
use crate::rng::random_tensor;
use candle_core::{DType, Tensor};

fn bf16(shape: &[usize], seed: u64) -> Tensor {
    random_tensor(shape, seed).to_dtype(DType::BF16).unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// `got` (bf16) against candle's f32 product of the same (exactly widened) operands: within
/// one bf16 rounding of it, plus f32 summation-order error bounded by the sum of |a||b|.
fn check(a: &Tensor, b: &Tensor, got: &Tensor) {
    assert_eq!(got.dtype(), DType::BF16);
    let (af, bf) = (
        a.to_dtype(DType::F32).unwrap(),
        b.to_dtype(DType::F32).unwrap(),
    );
    let want = af.matmul(&bf).unwrap();
    assert_eq!(got.dims(), want.dims());
    let bound = af.abs().unwrap().matmul(&bf.abs().unwrap()).unwrap();
    let (got, want, bound) = (values(got), values(&want), values(&bound));
    for ((g, w), s) in got.iter().zip(&want).zip(&bound) {
        let tolerance = w.abs() / 256.0 + s * 1e-6;
        assert!((g - w).abs() <= tolerance, "{g} vs {w} (|a||b| {s})");
    }
}

#[test]
fn products_of_every_size_match_the_f32_product_rounded() {
    // Few rows and many, lengths off and on the lanes, wide and narrow outputs.
    for (i, &(m, k, n)) in [
        (1, 1, 1),
        (1, 37, 300),
        (3, 64, 65),
        (FEW_ROWS, 100, 17),
        (FEW_ROWS + 1, 33, 40),
        (70, 129, 257),
        // Past a task's block of rows and of columns, and over several passes along k.
        (200, 301, 300),
        (130, 513, 520),
    ]
    .iter()
    .enumerate()
    {
        let seed = 10 * i as u64;
        let a = bf16(&[m, k], seed);
        // A weight (n, k) used transposed, as Linear does, and the same values row-major.
        let w = bf16(&[n, k], seed + 1);
        check(&a, &w.t().unwrap(), &matmul(&a, &w.t().unwrap()).unwrap());
        let b = w.t().unwrap().contiguous().unwrap();
        check(&a, &b, &matmul(&a, &b).unwrap());
    }
}

#[test]
fn batches_strides_and_views_match() {
    // Attention's shapes: (batch, heads) of (rows, d) by keys transposed, then by values,
    // the keys a view of a longer buffer (a cache) and the queries a transposed view.
    for rows in [1, 5, 20] {
        let q = bf16(&[1, rows, 3, 16], 1).transpose(1, 2).unwrap();
        let buffer = bf16(&[1, 3, 40, 16], 2);
        let k = buffer.narrow(2, 0, 29).unwrap();
        let k_t = k.t().unwrap();
        let scores = matmul(&q, &k_t).unwrap();
        check(&q, &k_t, &scores);
        let v = bf16(&[1, 3, 40, 16], 3).narrow(2, 0, 29).unwrap();
        check(&scores, &v, &matmul(&scores, &v).unwrap());
    }
    // A broadcast operand (stride 0 over the batch), an operand with neither dim contiguous
    // (every other element of a wider one) and one whose rows are a window of longer rows.
    let a = bf16(&[1, 4, 6], 4).broadcast_as((3, 4, 6)).unwrap();
    let b = bf16(&[3, 6, 14, 2], 5)
        .narrow(3, 1, 1)
        .unwrap()
        .squeeze(3)
        .unwrap();
    assert_eq!(b.stride(), &[168, 28, 2]);
    check(&a, &b, &matmul(&a, &b).unwrap());
    let a = bf16(&[2, 9, 12], 6)
        .narrow(1, 1, 6)
        .unwrap()
        .narrow(2, 2, 4)
        .unwrap();
    let b = bf16(&[2, 4, 20], 7).narrow(2, 3, 12).unwrap();
    check(&a, &b, &matmul(&a, &b).unwrap());
    let a = bf16(&[2, 30, 10], 8).narrow(2, 0, 5).unwrap().t().unwrap();
    let b = bf16(&[2, 30, 300], 9);
    check(&a, &b, &matmul(&a, &b).unwrap());
}

#[test]
fn every_instruction_set_computes_the_same_few_row_products() {
    let a = bf16(&[3, 70], 9);
    let w = bf16(&[90, 70], 10);
    let b = w.t().unwrap();
    let v = bf16(&[70, 300], 11);
    let storage = |t: &Tensor| {
        t.to_dtype(DType::BF16)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<bf16>()
            .unwrap()
    };
    let (ad, wd, vd) = (storage(&a), storage(&w), storage(&v));
    let run = |isa: Isa, b_data: &[bf16], b_layout: &Layout, n: usize| {
        let a_layout = Layout::contiguous((3, 70));
        let (am, bm) = (
            Matrices::new(&ad, &a_layout),
            Matrices::new(b_data, b_layout),
        );
        let mut out = vec![0f32; 3 * n];
        assert!(few_rows::product(
            isa,
            &am,
            &bm,
            Size { m: 3, k: 70, n },
            &mut out
        ));
        out
    };
    let columns = Layout::contiguous((90, 70)).transpose(0, 1).unwrap();
    let rows = Layout::contiguous((70, 300));
    let want_columns = values(
        &a.to_dtype(DType::F32)
            .unwrap()
            .matmul(&b.to_dtype(DType::F32).unwrap())
            .unwrap(),
    );
    let want_rows = values(
        &a.to_dtype(DType::F32)
            .unwrap()
            .matmul(&v.to_dtype(DType::F32).unwrap())
            .unwrap(),
    );
    for isa in Isa::available() {
        for (got, want) in [
            (run(isa, &wd, &columns, 90), &want_columns),
            (run(isa, &vd, &rows, 300), &want_rows),
        ] {
            for (g, w) in got.iter().zip(want) {
                assert!(
                    (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                    "{isa:?}: {g} vs {w}"
                );
            }
        }
    }
}

#[test]
fn other_dtypes_and_empty_products_go_through() {
    let a = random_tensor(&[2, 3], 12);
    let b = random_tensor(&[3, 4], 13);
    let got = matmul(&a, &b).unwrap();
    assert_eq!(values(&got), values(&a.matmul(&b).unwrap()));
    let empty = matmul(&bf16(&[2, 0], 14), &bf16(&[0, 4], 15)).unwrap();
    assert_eq!(values(&empty), vec![0.0; 8]);
}

#[test]
fn widened_and_paired_products_agree_where_both_run() {
    // The widened kernel is what CPUs without bf16 dot products run: both must match f32.
    let a = bf16(&[2, 37, 67], 16);
    let b = bf16(&[2, 45, 67], 17).transpose(1, 2).unwrap();
    let storage = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<bf16>().unwrap();
    let (ad, bd) = (storage(&a), storage(&b.transpose(1, 2).unwrap()));
    let a_layout = Layout::contiguous((2, 37, 67));
    let b_layout = Layout::contiguous((2, 45, 67)).transpose(1, 2).unwrap();
    let (am, bm) = (Matrices::new(&ad, &a_layout), Matrices::new(&bd, &b_layout));
    let size = Size {
        m: 37,
        k: 67,
        n: 45,
    };
    let want = values(
        &a.to_dtype(DType::F32)
            .unwrap()
            .matmul(&b.to_dtype(DType::F32).unwrap())
            .unwrap(),
    );
    let mut out = vec![0f32; 2 * 37 * 45];
    widened::product(&am, &bm, size, &mut out);
    for (g, w) in out.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{g} vs {w}");
    }
    #[cfg(target_arch = "x86_64")]
    if paired::available() {
        // Rounded to bf16 where it sums, as the widened product is by `narrow`.
        for (g, w) in paired::product(&am, &bm, size).iter().zip(&want) {
            let g = g.to_f32();
            assert!((g - w).abs() <= w.abs() / 256.0 + 1e-4, "{g} vs {w}");
        }
    }
}
