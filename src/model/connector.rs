//! Apollo's connector: `resampler(proj(x))`. The projector ("mlpNx_gelu") is Linear, then
//! (exact GELU, Linear) N-1 times; the resampler is Apollo's own perceiver ("perciver"): fixed
//! latents attend to the concatenation of the normalised context and the normalised latents,
//! with grouped key/value heads, a gated MLP, and "WeightedNorm" (LayerNorm times a learned
//! vector) everywhere.
//!
//! Tensor names: `proj.{0,2,..}.{weight,bias}`, `resampler.latents`,
//! `resampler.layers.{i}.{input_latents_norm,input_context_norm,post_attention_layernorm}.{norm.weight,norm.bias,wheight}`,
//! `resampler.layers.{i}.self_attn.{q,k,v,o}_proj.weight`,
//! `resampler.layers.{i}.mlp.{gate,up,down}_proj.weight`, `resampler.norm.{norm.weight,norm.bias,wheight}`.

use super::attention::{attention, Mask};
use super::layers::{gated, residual, LayerNorm, Linear};
use crate::checkpoint::config::{Activation, ConnectorConfig};
use crate::checkpoint::safetensors::Weights;
use crate::error::Result;
use candle_core::Tensor;

/// nn.LayerNorm's default epsilon, which WeightedNorm keeps.
const WEIGHTED_NORM_EPS: f64 = 1e-5;

pub struct Connector {
    projector: Vec<Linear>,
    latents: Tensor,
    layers: Vec<PerceiverLayer>,
    norm: WeightedNorm,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

/// `LayerNorm(x) * wheight`.
struct WeightedNorm {
    norm: LayerNorm,
    wheight: Tensor,
}

struct PerceiverLayer {
    input_latents_norm: WeightedNorm,
    input_context_norm: WeightedNorm,
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    post_attention_layernorm: WeightedNorm,
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
    act: Activation,
}

impl Connector {
    pub fn load(cfg: &ConnectorConfig, w: &Weights) -> Result<Self> {
        let hidden = cfg.text_hidden_size;
        let projector = (0..cfg.projector_depth)
            .map(|i| {
                let inputs = if i == 0 {
                    cfg.vision_hidden_size
                } else {
                    hidden
                };
                Linear::load(&w.pp("proj"), &(2 * i).to_string(), inputs, hidden, true)
            })
            .collect::<Result<_>>()?;
        let r = w.pp("resampler");
        let layers = (0..cfg.resampler_depth)
            .map(|i| PerceiverLayer::load(cfg, &r.pp("layers").pp(i)))
            .collect::<Result<_>>()?;
        Ok(Self {
            projector,
            latents: r.get("latents", &[cfg.num_output_tokens, hidden])?,
            layers,
            norm: WeightedNorm::load(&r.pp("norm"), hidden)?,
            heads: cfg.resampler_n_heads,
            kv_heads: cfg.num_key_value_heads,
            head_dim: cfg.resampler_head_dim,
        })
    }

    /// Token grids (clips, tokens, vision width) to (clips, num_output_tokens, llm width).
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut context = self.projector[0].forward(x)?;
        for layer in &self.projector[1..] {
            context = layer.forward(&Activation::Gelu.apply(&context)?)?;
        }
        let clips = x.dim(0)?;
        let (n, hidden) = self.latents.dims2()?;
        let mut latents = self
            .latents
            .unsqueeze(0)?
            .broadcast_as((clips, n, hidden))?;
        for layer in &self.layers {
            latents = layer.forward(&latents, &context, self)?;
        }
        self.norm.forward(&latents)
    }
}

impl WeightedNorm {
    fn load(w: &Weights, size: usize) -> Result<Self> {
        Ok(Self {
            norm: LayerNorm::load(&w.pp("norm"), size, WEIGHTED_NORM_EPS)?,
            wheight: w.get("wheight", &[size])?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.norm.forward_times(x, &self.wheight)
    }
}

impl PerceiverLayer {
    fn load(cfg: &ConnectorConfig, w: &Weights) -> Result<Self> {
        let hidden = cfg.text_hidden_size;
        let q_width = cfg.resampler_n_heads * cfg.resampler_head_dim;
        let kv_width = cfg.num_key_value_heads * cfg.resampler_head_dim;
        let inner = hidden * cfg.ff_multi;
        let attn = w.pp("self_attn");
        let mlp = w.pp("mlp");
        Ok(Self {
            input_latents_norm: WeightedNorm::load(&w.pp("input_latents_norm"), hidden)?,
            input_context_norm: WeightedNorm::load(&w.pp("input_context_norm"), hidden)?,
            q_proj: Linear::load(&attn, "q_proj", hidden, q_width, false)?,
            k_proj: Linear::load(&attn, "k_proj", hidden, kv_width, false)?,
            v_proj: Linear::load(&attn, "v_proj", hidden, kv_width, false)?,
            o_proj: Linear::load(&attn, "o_proj", q_width, hidden, false)?,
            post_attention_layernorm: WeightedNorm::load(
                &w.pp("post_attention_layernorm"),
                hidden,
            )?,
            gate_proj: Linear::load(&mlp, "gate_proj", hidden, inner, false)?,
            up_proj: Linear::load(&mlp, "up_proj", hidden, inner, false)?,
            down_proj: Linear::load(&mlp, "down_proj", inner, hidden, false)?,
            act: cfg.hidden_act,
        })
    }

    fn forward(
        &self,
        latents: &Tensor,
        context: &Tensor,
        c: &Connector,
    ) -> candle_core::Result<Tensor> {
        let (clips, n, _) = latents.dims3()?;
        let l = self.input_latents_norm.forward(latents)?;
        let kv = Tensor::cat(&[&self.input_context_norm.forward(context)?, &l], 1)?;
        let keys = kv.dim(1)?;
        let q = self
            .q_proj
            .forward(&l)?
            .reshape((clips, n, c.heads, c.head_dim))?
            .transpose(1, 2)?;
        let split_kv = |t: Tensor| {
            t.reshape((clips, keys, c.kv_heads, c.head_dim))?
                .transpose(1, 2)
        };
        let k = split_kv(self.k_proj.forward(&kv)?)?;
        let v = split_kv(self.v_proj.forward(&kv)?)?;
        let scale = 1.0 / (c.head_dim as f64).sqrt();
        let a = attention(&q, &k, &v, scale, Mask::None)?
            .transpose(1, 2)?
            .reshape((clips, n, c.heads * c.head_dim))?;
        let latents = residual(latents, &self.o_proj.forward(&a)?)?;
        let h = self.post_attention_layernorm.forward(&latents)?;
        let hidden = gated(
            self.act,
            &self.gate_proj.forward(&h)?,
            &self.up_proj.forward(&h)?,
        )?;
        residual(&latents, &self.down_proj.forward(&hidden)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn weighted_norm_is_layer_norm_times_wheight() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let t = |v: &[f32]| Tensor::new(v, &Device::Cpu).unwrap();
        let tensors = std::collections::HashMap::from([
            ("n.norm.weight".to_string(), t(&[1.0, 2.0])),
            ("n.norm.bias".to_string(), t(&[0.5, 0.0])),
            ("n.wheight".to_string(), t(&[2.0, -1.0])),
        ]);
        candle_core::safetensors::save(&tensors, &path).unwrap();
        let ckpt = crate::checkpoint::safetensors::WeightFiles::open(
            dir.path(),
            &Device::Cpu,
            candle_core::DType::F32,
        )
        .unwrap();
        let norm = WeightedNorm::load(&ckpt.weights("n."), 2).unwrap();
        // [1, 3]: mean 2, variance 1, so the normalised row is +-1/sqrt(1 + 1e-5).
        let y = norm
            .forward(&t(&[1.0, 3.0]))
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let s = 1.0 / (1.0f32 + 1e-5).sqrt();
        let want = [(-s + 0.5) * 2.0, -(2.0 * s)];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
}
