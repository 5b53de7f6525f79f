//! Softmax attention as the reference's eager code computes it: scores in the model dtype,
//! softmax in f32, the weights rounded back before they meet the values.
//!
//! Keys and values may have fewer heads than queries (grouped-query attention): query head h
//! reads key head h / (heads / kv_heads), as transformers' `repeat_kv` arranges it, without
//! copying the keys. Long sequences are processed in slices of query rows so that the score
//! matrix stays bounded (a 10k-token prompt would otherwise need gigabytes).

use super::{bf16_matmul, bf16_ops, layers};
use candle_core::{DType, Device, Result, Tensor};

/// Score elements materialised at once (256 MiB in f32).
const SCORE_BUDGET: usize = 1 << 26;

/// Which keys a query may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mask {
    /// Every key (encoders, resampler).
    None,
    /// Causal, the queries being the last of the keys: query i sits at position
    /// `keys - queries + i` and sees keys up to that position.
    Causal,
}

/// `softmax(q k^T * scale) v` for q (batch, heads, queries, d) and k, v (batch, kv_heads,
/// keys, d); returns (batch, heads, queries, d).
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64, mask: Mask) -> Result<Tensor> {
    sliced_attention(q, k, v, scale, mask, SCORE_BUDGET)
}

fn sliced_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
    mask: Mask,
    budget: usize,
) -> Result<Tensor> {
    let (batch, heads, queries, d) = q.dims4()?;
    let (_, kv_heads, keys, _) = k.dims4()?;
    let group = heads / kv_heads;
    let q = q
        .contiguous()?
        .reshape((batch, kv_heads, group, queries, d))?;
    // The bf16 product reads views as they are (a cache's first positions, heads split off
    // the projection's columns); candle's wants its batches evenly spaced.
    let (k, v) = if bf16_matmul::reads_views(k) {
        (k.clone(), v.clone())
    } else {
        (k.contiguous()?, v.contiguous()?)
    };
    let k_t = k.t()?;
    let rows = (budget / (batch * heads * keys).max(1)).clamp(1, queries);
    let mut outputs = Vec::new();
    for start in (0..queries).step_by(rows) {
        let len = rows.min(queries - start);
        let q_part = q
            .narrow(3, start, len)?
            .reshape((batch, kv_heads, group * len, d))?;
        let scores = bf16_matmul::matmul(&q_part, &k_t)?;
        if bf16_ops::fuses(&scores) {
            let causal_first = (mask == Mask::Causal).then_some(keys - queries + start);
            let score_rows = batch * kv_heads * group * len;
            let weights = bf16_ops::attention_softmax(
                &scores.reshape((score_rows, keys))?,
                scale,
                causal_first,
                len,
            )?
            .reshape((batch, kv_heads, group * len, keys))?;
            let out = bf16_matmul::matmul(&weights, &v)?;
            outputs.push(out.reshape((batch, kv_heads, group, len, d))?);
            continue;
        }
        let mut scores = scores;
        if scale != 1.0 {
            scores = layers::scale(&scores, scale)?;
        }
        let mut scores = scores.to_dtype(DType::F32)?;
        if mask == Mask::Causal {
            let bias = causal_bias(keys - queries + start, len, keys, q.device())?;
            scores = scores
                .reshape((batch, kv_heads, group, len, keys))?
                .broadcast_add(&bias)?
                .reshape((batch, kv_heads, group * len, keys))?;
        }
        let weights = candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(v.dtype())?;
        let out = bf16_matmul::matmul(&weights, &v)?;
        outputs.push(out.reshape((batch, kv_heads, group, len, d))?);
    }
    let out = if outputs.len() == 1 {
        outputs.pop().expect("one slice")
    } else {
        Tensor::cat(&outputs, 3)?
    };
    out.reshape((batch, heads, queries, d))
}

/// (len, keys): 0 where query `first + i` may see key j (j <= first + i), the most negative
/// f32 elsewhere (as transformers' eager mask). Made on the device: a long prompt needs one
/// per slice and layer.
fn causal_bias(first: usize, len: usize, keys: usize, device: &Device) -> Result<Tensor> {
    let queries = Tensor::arange(first as u32, (first + len) as u32, device)?.reshape((len, 1))?;
    let keys = Tensor::arange(0, keys as u32, device)?.reshape((1, keys))?;
    keys.broadcast_gt(&queries)?
        .to_dtype(DType::F32)?
        .affine(f64::from(f32::MIN), 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::random_tensor;

    /// Per head, with explicit repetition of the key heads and an explicit loop over queries.
    fn naive(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64, causal: bool) -> Vec<f32> {
        let (_, heads, queries, _) = q.dims4().unwrap();
        let (_, kv_heads, keys, _) = k.dims4().unwrap();
        let mut out = Vec::new();
        for h in 0..heads {
            let kh = h / (heads / kv_heads);
            let qh = q.get(0).unwrap().get(h).unwrap();
            let kt = k.get(0).unwrap().get(kh).unwrap().t().unwrap();
            let vh = v.get(0).unwrap().get(kh).unwrap();
            for i in 0..queries {
                let visible = if causal { keys - queries + i + 1 } else { keys };
                let s = (qh.narrow(0, i, 1).unwrap().matmul(&kt).unwrap() * scale).unwrap();
                let s = s.narrow(1, 0, visible).unwrap();
                let w = candle_nn::ops::softmax_last_dim(&s).unwrap();
                let o = w.matmul(&vh.narrow(0, 0, visible).unwrap()).unwrap();
                out.extend(o.flatten_all().unwrap().to_vec1::<f32>().unwrap());
            }
        }
        out
    }

    #[test]
    fn grouped_causal_attention_matches_a_naive_loop() {
        let q = random_tensor(&[1, 4, 3, 5], 1);
        let k = random_tensor(&[1, 2, 7, 5], 2);
        let v = random_tensor(&[1, 2, 7, 5], 3);
        // A budget of 8 score elements per slice forces one query row at a time.
        for budget in [SCORE_BUDGET, 8] {
            for (mask, causal) in [(Mask::None, false), (Mask::Causal, true)] {
                let got = sliced_attention(&q, &k, &v, 0.5, mask, budget).unwrap();
                let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let want = naive(&q, &k, &v, 0.5, causal);
                assert_eq!(got.len(), want.len());
                for (a, b) in got.iter().zip(&want) {
                    assert!((a - b).abs() < 1e-6, "{a} vs {b}");
                }
            }
        }
    }
}
