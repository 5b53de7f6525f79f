//! Each kernel against candle's unfused computation in f32, rounded to bf16 where the
//! reference rounds.

use super::*;
use crate::rng::random_tensor;
use candle_core::{DType, D};

const BF: DType = DType::BF16;

/// Values uniform in [-spread, spread), rounded to bf16.
fn bf16_tensor(shape: &[usize], seed: u64, spread: f64) -> Tensor {
    (random_tensor(shape, seed) * spread)
        .unwrap()
        .to_dtype(BF)
        .unwrap()
}

fn f32_of(t: &Tensor) -> Tensor {
    t.to_dtype(DType::F32).unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    f32_of(t).flatten_all().unwrap().to_vec1().unwrap()
}

fn assert_equal(got: &Tensor, want: &Tensor) {
    assert_eq!(got.dtype(), BF);
    assert_eq!(got.dims(), want.dims());
    assert_eq!(values(got), values(want));
}

/// Within one bf16 rounding: where f32 sums are taken in another order, a value near a
/// rounding boundary may round the other way.
fn assert_within_one_rounding(got: &Tensor, want: &Tensor) {
    assert_eq!(got.dtype(), BF);
    assert_eq!(got.dims(), want.dims());
    for (g, w) in values(got).iter().zip(values(want)) {
        assert!((g - w).abs() <= w.abs() / 128.0, "{g} vs {w}");
    }
}

const ACTIVATIONS: [Activation; 3] = [Activation::Silu, Activation::Gelu, Activation::GeluTanh];

fn candle_activation(act: Activation, x: &Tensor) -> Tensor {
    match act {
        Activation::Silu => x.silu(),
        Activation::Gelu => x.gelu_erf(),
        Activation::GeluTanh => x.gelu(),
    }
    .unwrap()
}

/// candle's formula in f64, rounded to bf16: in f32, `1 + erf` and `1 + tanh` lose the far
/// negative tail of GELU to cancellation, which the kernels' formulas keep.
fn exact_activation(act: Activation, x: &Tensor) -> Tensor {
    candle_activation(act, &x.to_dtype(DType::F64).unwrap())
        .to_dtype(BF)
        .unwrap()
}

#[test]
fn activations_are_the_exact_values_rounded_once() {
    // Long enough for several parallel tasks, wide enough to reach the tails.
    let x = bf16_tensor(&[3, 10_007], 1, 6.0);
    for act in ACTIVATIONS {
        let want = exact_activation(act, &x);
        assert_within_one_rounding(&activation(act, &x).unwrap(), &want);
    }
}

#[test]
fn gated_rounds_after_the_activation_and_after_the_product() {
    let gate = bf16_tensor(&[5, 3001], 2, 5.0);
    let up = bf16_tensor(&[5, 3001], 3, 2.0);
    for act in ACTIVATIONS {
        let a = exact_activation(act, &gate);
        let want = (f32_of(&a) * f32_of(&up)).unwrap().to_dtype(BF).unwrap();
        assert_within_one_rounding(&gated(act, &gate, &up).unwrap(), &want);
    }
    assert!(gated(Activation::Silu, &gate, &up.narrow(1, 0, 3000).unwrap()).is_err());
}

#[test]
fn residual_layer_scale_rounds_the_scaled_branch_then_the_sum() {
    let x = bf16_tensor(&[2, 7, 96], 4, 3.0);
    let y = bf16_tensor(&[2, 7, 96], 5, 3.0);
    let gamma = random_tensor(&[96], 6);
    let scaled = f32_of(&y)
        .broadcast_mul(&gamma)
        .unwrap()
        .to_dtype(BF)
        .unwrap();
    let want = (f32_of(&x) + f32_of(&scaled))
        .unwrap()
        .to_dtype(BF)
        .unwrap();
    assert_equal(&residual_layer_scale(&x, &y, &gamma).unwrap(), &want);
}

#[test]
fn sums_round_once() {
    let x = bf16_tensor(&[4, 5000], 7, 3.0);
    let y = bf16_tensor(&[4, 5000], 8, 0.01);
    let want = (f32_of(&x) + f32_of(&y)).unwrap().to_dtype(BF).unwrap();
    assert_equal(&add(&x, &y).unwrap(), &want);
}

/// The unfused steps of attention.rs: scale in f32 rounded, the additive causal mask in f32,
/// softmax in f32, rounded.
fn candle_softmax(
    scores: &Tensor,
    scale: f64,
    causal_first: Option<usize>,
    queries: usize,
) -> Tensor {
    let scaled = if scale == 1.0 {
        scores.clone()
    } else {
        super::super::layers::scale(scores, scale).unwrap()
    };
    let mut s = f32_of(&scaled);
    if let Some(first) = causal_first {
        let (rows, keys) = s.dims2().unwrap();
        let bias: Vec<f32> = (0..rows)
            .flat_map(|r| {
                (0..keys).map(move |j| {
                    if j > first + r % queries {
                        f32::MIN
                    } else {
                        0.0
                    }
                })
            })
            .collect();
        s = (s + Tensor::from_vec(bias, (rows, keys), &candle_core::Device::Cpu).unwrap()).unwrap();
    }
    candle_nn::ops::softmax_last_dim(&s)
        .unwrap()
        .to_dtype(BF)
        .unwrap()
}

#[test]
fn attention_softmax_follows_the_unfused_steps() {
    // 2 groups of 3 queries over 9 keys: causal rows see keys up to 6 + (row % 3).
    let scores = bf16_tensor(&[6, 9], 9, 8.0);
    for scale in [1.0, 0.125, 0.3] {
        for first in [None, Some(6), Some(0)] {
            let got = attention_softmax(&scores, scale, first, 3).unwrap();
            assert_within_one_rounding(&got, &candle_softmax(&scores, scale, first, 3));
        }
    }
    // Rows long enough to be split into several tasks.
    let scores = bf16_tensor(&[40, 2917], 10, 20.0);
    let got = attention_softmax(&scores, 1.0, None, 40).unwrap();
    assert_within_one_rounding(&got, &candle_softmax(&scores, 1.0, None, 40));
}

#[test]
fn rms_norm_rounds_the_normed_rows_then_the_weighted() {
    let x = bf16_tensor(&[3, 11, 160], 11, 4.0);
    let weight = bf16_tensor(&[160], 12, 2.0);
    let xf = f32_of(&x);
    let var = xf.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
    let normed = xf
        .broadcast_div(&(var + 1e-6).unwrap().sqrt().unwrap())
        .unwrap()
        .to_dtype(BF)
        .unwrap();
    let want = normed.broadcast_mul(&weight).unwrap();
    assert_within_one_rounding(&rms_norm(&x, &weight, 1e-6).unwrap(), &want);
}

#[test]
fn layer_norm_rounds_once_and_again_after_the_weighted_norms_vector() {
    let x = bf16_tensor(&[2, 13, 200], 13, 4.0);
    let (weight, bias) = (random_tensor(&[200], 14), random_tensor(&[200], 15));
    let times = bf16_tensor(&[200], 16, 2.0);
    let xf = f32_of(&x);
    let centred = xf
        .broadcast_sub(&xf.mean_keepdim(D::Minus1).unwrap())
        .unwrap();
    let var = centred.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
    let want = centred
        .broadcast_div(&(var + 1e-5).unwrap().sqrt().unwrap())
        .unwrap()
        .broadcast_mul(&weight)
        .unwrap()
        .broadcast_add(&bias)
        .unwrap()
        .to_dtype(BF)
        .unwrap();
    let got = layer_norm(&x, &weight, &bias, 1e-5, None).unwrap();
    assert_within_one_rounding(&got, &want);
    let got = layer_norm(&x, &weight, &bias, 1e-5, Some(&times)).unwrap();
    assert_within_one_rounding(&got, &want.broadcast_mul(&times).unwrap());
}

#[test]
fn scales_and_biases_round_once() {
    let x = bf16_tensor(&[9, 3000], 17, 3.0);
    let want = super::super::layers::scale(&x.to_dtype(DType::F32).unwrap(), 0.3)
        .unwrap()
        .to_dtype(BF)
        .unwrap();
    assert_equal(&scale(&x, 0.3).unwrap(), &want);
    let bias = bf16_tensor(&[3000], 18, 1.0);
    let want = x.broadcast_add(&bias).unwrap();
    assert_equal(&add_bias(&x, &bias).unwrap(), &want);
}

#[test]
fn exp_is_within_two_ulp_of_libm() {
    for i in 0..=200_000 {
        let x = -88.0 * i as f32 / 200_000.0;
        let (got, want) = (exp(x), x.exp());
        if want < f32::MIN_POSITIVE * 2.0 {
            assert!(got < 1e-37, "{x}: {got} vs {want}");
            continue;
        }
        let ulps = (got.to_bits() as i64 - want.to_bits() as i64).abs();
        assert!(ulps <= 2, "{x}: {got} vs {want} ({ulps} ulp)");
    }
}

/// f32 values within `relative` of candle's f32 computation of the same ops.
fn assert_f32_close(got: &Tensor, want: &Tensor, relative: f32) {
    assert_eq!(got.dtype(), DType::F32);
    assert_eq!(got.dims(), want.dims());
    for (g, w) in values(got).iter().zip(values(want)) {
        assert!((g - w).abs() <= w.abs() * relative + 1e-30, "{g} vs {w}");
    }
}

#[test]
fn f32_tensors_take_the_same_steps_unrounded() {
    let (gate, up) = (random_tensor(&[5, 300], 20), random_tensor(&[5, 300], 21));
    let (gate, up) = ((gate * 6.0).unwrap(), (up * 3.0).unwrap());
    for act in ACTIVATIONS {
        let want = (candle_activation(act, &gate.to_dtype(DType::F64).unwrap())
            * up.to_dtype(DType::F64).unwrap())
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
        assert_f32_close(&gated(act, &gate, &up).unwrap(), &want, 1e-5);
    }
    let scores = (random_tensor(&[40, 2917], 22) * 20.0).unwrap();
    for (scale, first) in [(1.0, None), (0.125, Some(2000)), (0.3, Some(0))] {
        let mut s = (&scores * scale).unwrap();
        if let Some(first) = first {
            let bias: Vec<f32> = (0..40 * 2917)
                .map(|i| {
                    if i % 2917 > first + (i / 2917) % 8 {
                        f32::MIN
                    } else {
                        0.0
                    }
                })
                .collect();
            let bias = Tensor::from_vec(bias, (40, 2917), &candle_core::Device::Cpu).unwrap();
            s = (s + bias).unwrap();
        }
        let want = candle_nn::ops::softmax_last_dim(&s).unwrap();
        let got = attention_softmax(&scores, scale, first, 8).unwrap();
        assert_f32_close(&got, &want, 1e-5);
    }
}
