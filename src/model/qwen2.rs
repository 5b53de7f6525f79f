//! The Qwen2 language model (transformers' Qwen2ForCausalLM) run from input embeddings, so that
//! video rows can stand in for token embeddings, with a KV cache.
//!
//! candle-transformers' qwen2 takes token ids only and computes its rotary table in the model
//! dtype; the reference computes cos/sin in f32 and rounds them once (a table in another
//! precision moves the logits), so this is its own implementation.
//!
//! Tensor names: `model.embed_tokens.weight`, `model.layers.{i}.{input_layernorm,
//! post_attention_layernorm}.weight`, `model.layers.{i}.self_attn.{q,k,v}_proj.{weight,bias}`,
//! `model.layers.{i}.self_attn.o_proj.weight`, `model.layers.{i}.mlp.{gate,up,down}_proj.weight`,
//! `model.norm.weight`, and `lm_head.weight` unless the embeddings are tied.

use super::attention::{attention, Mask};
use super::kv_cache::KvCache;
use super::layers::{gated, residual, Linear, RmsNorm};
use crate::checkpoint::config::{Activation, Qwen2Config};
use crate::checkpoint::safetensors::Weights;
use crate::error::Result;
use candle_core::{DType, Device, Tensor};

pub struct Qwen2 {
    embed_tokens: Tensor,
    layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    lm_head: Linear,
    rotary: Rotary,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

struct DecoderLayer {
    input_layernorm: RmsNorm,
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    post_attention_layernorm: RmsNorm,
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
    act: Activation,
    cache: KvCache,
}

/// Rotary position embedding: the inverse frequencies as transformers computes them in f32.
struct Rotary {
    inv_freq: Vec<f32>,
}

impl Rotary {
    fn new(theta: f64, head_dim: usize) -> Self {
        let base = theta as f32;
        let inv_freq = (0..head_dim)
            .step_by(2)
            .map(|i| 1.0 / base.powf(i as f32 / head_dim as f32))
            .collect();
        Self { inv_freq }
    }

    /// cos and sin (len, head_dim / 2) for positions offset.., computed in f32 and rounded to
    /// `dtype` once.
    fn tables(
        &self,
        offset: usize,
        len: usize,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let half = self.inv_freq.len();
        let angles: Vec<f32> = (offset..offset + len)
            .flat_map(|p| self.inv_freq.iter().map(move |f| p as f32 * f))
            .collect();
        let cos: Vec<f32> = angles.iter().map(|a| a.cos()).collect();
        let sin: Vec<f32> = angles.iter().map(|a| a.sin()).collect();
        let table = |v: Vec<f32>| Tensor::from_vec(v, (len, half), device)?.to_dtype(dtype);
        Ok((table(cos)?, table(sin)?))
    }
}

impl Qwen2 {
    pub fn load(cfg: &Qwen2Config, w: &Weights) -> Result<Self> {
        let m = w.pp("model");
        let embed_tokens = m
            .pp("embed_tokens")
            .get("weight", &[cfg.vocab_size, cfg.hidden_size])?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| DecoderLayer::load(cfg, &m.pp("layers").pp(i)))
            .collect::<Result<_>>()?;
        let lm_head = if cfg.tie_word_embeddings {
            Linear::new(embed_tokens.clone(), None)
        } else {
            Linear::load(w, "lm_head", cfg.hidden_size, cfg.vocab_size, false)?
        };
        Ok(Self {
            embed_tokens,
            layers,
            norm: RmsNorm::load(&m.pp("norm"), cfg.hidden_size, cfg.rms_norm_eps)?,
            lm_head,
            rotary: Rotary::new(cfg.rope_theta, cfg.head_dim),
            heads: cfg.num_attention_heads,
            kv_heads: cfg.num_key_value_heads,
            head_dim: cfg.head_dim,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.embed_tokens.dims()[0]
    }

    /// Token embeddings (ids.len(), hidden); every id must be below the vocabulary size.
    pub fn embed(&self, ids: &[u32]) -> candle_core::Result<Tensor> {
        let ids = Tensor::new(ids, self.embed_tokens.device())?;
        self.embed_tokens.index_select(&ids, 0)
    }

    /// Positions already in the cache.
    pub fn cached(&self) -> usize {
        self.layers.first().map_or(0, |l| l.cache.len())
    }

    /// Keeps the cache's positions `..len`; the next forward pass continues at `len`.
    pub fn truncate_cache(&mut self, len: usize) {
        for layer in &mut self.layers {
            layer.cache.truncate(len);
        }
    }

    /// Runs `embeds` (seq, hidden) at positions offset..offset+seq, the cache holding the
    /// `offset` positions before them, and returns the final normed hidden states (seq, hidden).
    pub fn forward_hidden(
        &mut self,
        embeds: &Tensor,
        offset: usize,
    ) -> candle_core::Result<Tensor> {
        let (seq, _) = embeds.dims2()?;
        let (cos, sin) = self
            .rotary
            .tables(offset, seq, embeds.dtype(), embeds.device())?;
        let mut x = embeds.unsqueeze(0)?;
        let shape = (self.heads, self.kv_heads, self.head_dim);
        for layer in &mut self.layers {
            x = layer.forward(&x, &cos, &sin, shape)?;
        }
        self.norm.forward(&x.squeeze(0)?)
    }

    /// Logits (rows, vocab) in f32 for hidden states (rows, hidden).
    pub fn logits(&self, hidden: &Tensor) -> candle_core::Result<Tensor> {
        self.lm_head.forward(hidden)?.to_dtype(DType::F32)
    }
}

impl DecoderLayer {
    fn load(cfg: &Qwen2Config, w: &Weights) -> Result<Self> {
        let (d, eps) = (cfg.hidden_size, cfg.rms_norm_eps);
        let q_width = cfg.num_attention_heads * cfg.head_dim;
        let kv_width = cfg.num_key_value_heads * cfg.head_dim;
        let attn = w.pp("self_attn");
        let mlp = w.pp("mlp");
        let inner = cfg.intermediate_size;
        Ok(Self {
            input_layernorm: RmsNorm::load(&w.pp("input_layernorm"), d, eps)?,
            q_proj: Linear::load(&attn, "q_proj", d, q_width, true)?,
            k_proj: Linear::load(&attn, "k_proj", d, kv_width, true)?,
            v_proj: Linear::load(&attn, "v_proj", d, kv_width, true)?,
            o_proj: Linear::load(&attn, "o_proj", q_width, d, false)?,
            post_attention_layernorm: RmsNorm::load(&w.pp("post_attention_layernorm"), d, eps)?,
            gate_proj: Linear::load(&mlp, "gate_proj", d, inner, false)?,
            up_proj: Linear::load(&mlp, "up_proj", d, inner, false)?,
            down_proj: Linear::load(&mlp, "down_proj", inner, d, false)?,
            act: cfg.hidden_act,
            cache: KvCache::default(),
        })
    }

    fn forward(
        &mut self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        (heads, kv_heads, head_dim): (usize, usize, usize),
    ) -> candle_core::Result<Tensor> {
        let (b, seq, _) = x.dims3()?;
        let h = self.input_layernorm.forward(x)?;
        let split = |t: Tensor, n: usize| {
            t.reshape((b, seq, n, head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split(self.q_proj.forward(&h)?, heads)?;
        let k = split(self.k_proj.forward(&h)?, kv_heads)?;
        let v = split(self.v_proj.forward(&h)?, kv_heads)?;
        let q = candle_nn::rotary_emb::rope(&q, cos, sin)?;
        let k = candle_nn::rotary_emb::rope(&k, cos, sin)?;
        let (k, v) = self.cache.append(&k, &v)?;
        // One new position sees every cached one: no mask needed.
        let mask = if seq > 1 { Mask::Causal } else { Mask::None };
        let scale = (head_dim as f64).powf(-0.5);
        let a = attention(&q, &k, &v, scale, mask)?
            .transpose(1, 2)?
            .reshape((b, seq, heads * head_dim))?;
        let x = residual(x, &self.o_proj.forward(&a)?)?;
        let h = self.post_attention_layernorm.forward(&x)?;
        let hidden = gated(
            self.act,
            &self.gate_proj.forward(&h)?,
            &self.up_proj.forward(&h)?,
        )?;
        residual(&x, &self.down_proj.forward(&hidden)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotary_tables_follow_transformers() {
        let rotary = Rotary::new(10000.0, 4);
        // inv_freq = 1 / 10000^(0/4, 2/4) = (1, 0.01).
        assert_eq!(rotary.inv_freq, vec![1.0, 0.01]);
        let (cos, sin) = rotary.tables(3, 2, DType::F32, &Device::Cpu).unwrap();
        let cos = cos.to_vec2::<f32>().unwrap();
        let sin = sin.to_vec2::<f32>().unwrap();
        for (row, p) in [3f32, 4.0].iter().enumerate() {
            assert_eq!(cos[row], vec![p.cos(), (p * 0.01).cos()]);
            assert_eq!(sin[row], vec![p.sin(), (p * 0.01).sin()]);
        }
    }

    #[test]
    fn rope_rotates_the_two_halves_as_rotate_half_does() {
        // q = (x1, x2) per pair of halves: (x1 cos - x2 sin, x2 cos + x1 sin).
        let rotary = Rotary::new(10000.0, 2);
        let (cos, sin) = rotary.tables(1, 1, DType::F32, &Device::Cpu).unwrap();
        let q = Tensor::new(&[2f32, 3.0], &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 1, 2))
            .unwrap();
        let y = candle_nn::rotary_emb::rope(&q, &cos, &sin).unwrap();
        let y = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let (c, s) = (1f32.cos(), 1f32.sin());
        assert!((y[0] - (2.0 * c - 3.0 * s)).abs() < 1e-6);
        assert!((y[1] - (3.0 * c + 2.0 * s)).abs() < 1e-6);
    }
}
