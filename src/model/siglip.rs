//! SigLIP vision tower (transformers' SiglipVisionModel) up to the hidden state Apollo reads:
//! `hidden_states[mm_vision_select_layer]`, the residual stream after that many encoder layers,
//! without post_layernorm. The pooling head and post_layernorm are never loaded.
//!
//! Tensor names: `embeddings.patch_embedding.{weight,bias}`, `embeddings.position_embedding.weight`,
//! `encoder.layers.{i}.{layer_norm1,layer_norm2}.{weight,bias}`,
//! `encoder.layers.{i}.self_attn.{q,k,v,out}_proj.{weight,bias}`,
//! `encoder.layers.{i}.mlp.{fc1,fc2}.{weight,bias}`, stored with a `vision_model.` prefix by
//! transformers 4.x and without by 5.x.

use super::attention::{attention, Mask};
use super::layers::{residual, LayerNorm, Linear};
use crate::checkpoint::config::{Activation, SiglipConfig};
use crate::checkpoint::safetensors::{WeightFiles, Weights};
use crate::error::{Error, Kind, Result};
use candle_core::Tensor;

/// How far apart the frames of a clip of `frames` frames are that the tower encodes, for a
/// grid of `out_t` token frames; `None` when the clip has fewer frames than the grid.
pub(crate) fn frame_stride(frames: usize, out_t: usize) -> Option<usize> {
    frames.checked_div(out_t).filter(|&s| s > 0)
}

pub struct Siglip {
    channels: usize,
    image_size: usize,
    patch_size: usize,
    heads: usize,
    /// The patch convolution as a matrix over flattened (channel, row, column) patches.
    patch_embedding: Linear,
    position_embedding: Tensor,
    layers: Vec<EncoderLayer>,
}

struct EncoderLayer {
    layer_norm1: LayerNorm,
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    layer_norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    act: Activation,
}

impl Siglip {
    /// Loads the embeddings and the first `layers` encoder layers.
    pub fn load(cfg: &SiglipConfig, layers: usize, ckpt: &WeightFiles) -> Result<Self> {
        let anchor = "embeddings.patch_embedding.weight";
        let prefix = match ckpt.prefix_of(anchor) {
            Some(p) if p.is_empty() || p == "vision_model." => p,
            _ => {
                return Err(Error::new(
                    Kind::Model,
                    Some(ckpt.dir()),
                    format!("no SigLIP tensor {anchor} (with or without vision_model.)"),
                ))
            }
        };
        let w = ckpt.weights(&prefix);
        let hidden = cfg.hidden_size;
        let (c, p) = (cfg.num_channels, cfg.patch_size);
        let emb = w.pp("embeddings");
        let conv = emb.pp("patch_embedding");
        let patch_embedding = Linear::new(
            conv.get("weight", &[hidden, c, p, p])?
                .reshape((hidden, c * p * p))?,
            Some(conv.get("bias", &[hidden])?),
        );
        let patches = cfg.grid() * cfg.grid();
        let position_embedding = emb
            .pp("position_embedding")
            .get("weight", &[patches, hidden])?;
        let enc = w.pp("encoder").pp("layers");
        let layers = (0..layers)
            .map(|i| EncoderLayer::load(cfg, &enc.pp(i)))
            .collect::<Result<_>>()?;
        Ok(Self {
            channels: c,
            image_size: cfg.image_size,
            patch_size: p,
            heads: cfg.num_attention_heads,
            patch_embedding,
            position_embedding,
            layers,
        })
    }

    /// Pixels of the clips, (clips, frames, channels, size, size), to features (clips, T, g, g,
    /// hidden): every (frames / out_t)-th frame is encoded as an image (the hybrid tower's
    /// temporal stride), T frames are kept, g = image_size / patch_size.
    pub fn forward_clips(&self, pixels: &Tensor, out_t: usize) -> candle_core::Result<Tensor> {
        let (clips, frames, c, h, w) = pixels.dims5()?;
        let Some(stride) = frame_stride(frames, out_t) else {
            candle_core::bail!(
                "SigLIP got {frames} frames per clip, fewer than the grid's {out_t}"
            );
        };
        let kept: Vec<u32> = (0..frames as u32).step_by(stride).collect();
        let t = kept.len();
        let pixels = if stride == 1 {
            pixels.clone()
        } else {
            let index = Tensor::new(kept.as_slice(), pixels.device())?;
            pixels.index_select(&index, 1)?
        };
        let images = pixels.reshape((clips * t, c, h, w))?;
        let g = self.image_size / self.patch_size;
        let tokens = self.forward(&images)?;
        tokens.reshape((clips, t, g, g, tokens.dim(2)?))
    }

    /// Images (n, channels, size, size) to the selected hidden state (n, patches, hidden).
    pub fn forward(&self, images: &Tensor) -> candle_core::Result<Tensor> {
        let (n, c, h, w) = images.dims4()?;
        if c != self.channels || h != self.image_size || w != self.image_size {
            candle_core::bail!(
                "SigLIP expects images of {} x {} x {}, got {c} x {h} x {w}",
                self.channels,
                self.image_size,
                self.image_size
            );
        }
        // Conv2d with stride = kernel ("valid" padding) as a matrix product over patches; a
        // side that is not a multiple of the patch loses its last pixels, as the conv does.
        let (p, g) = (self.patch_size, self.image_size / self.patch_size);
        let patches = images
            .to_dtype(self.position_embedding.dtype())?
            .narrow(2, 0, g * p)?
            .narrow(3, 0, g * p)?
            .reshape((n, c, g, p, g, p))?
            .permute(vec![0, 2, 4, 1, 3, 5])?
            .reshape((n, g * g, c * p * p))?;
        let mut x = self
            .patch_embedding
            .forward(&patches)?
            .broadcast_add(&self.position_embedding)?;
        for layer in &self.layers {
            x = layer.forward(&x, self.heads)?;
        }
        Ok(x)
    }
}

impl EncoderLayer {
    fn load(cfg: &SiglipConfig, w: &Weights) -> Result<Self> {
        let (d, eps) = (cfg.hidden_size, cfg.layer_norm_eps);
        let attn = w.pp("self_attn");
        let mlp = w.pp("mlp");
        Ok(Self {
            layer_norm1: LayerNorm::load(&w.pp("layer_norm1"), d, eps)?,
            q_proj: Linear::load(&attn, "q_proj", d, d, true)?,
            k_proj: Linear::load(&attn, "k_proj", d, d, true)?,
            v_proj: Linear::load(&attn, "v_proj", d, d, true)?,
            out_proj: Linear::load(&attn, "out_proj", d, d, true)?,
            layer_norm2: LayerNorm::load(&w.pp("layer_norm2"), d, eps)?,
            fc1: Linear::load(&mlp, "fc1", d, cfg.intermediate_size, true)?,
            fc2: Linear::load(&mlp, "fc2", cfg.intermediate_size, d, true)?,
            act: cfg.hidden_act,
        })
    }

    fn forward(&self, x: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
        let (n, tokens, d) = x.dims3()?;
        let head_dim = d / heads;
        let h = self.layer_norm1.forward(x)?;
        let split = |t: Tensor| t.reshape((n, tokens, heads, head_dim))?.transpose(1, 2);
        let q = split(self.q_proj.forward(&h)?)?;
        let k = split(self.k_proj.forward(&h)?)?;
        let v = split(self.v_proj.forward(&h)?)?;
        let scale = (head_dim as f64).powf(-0.5);
        let a = attention(&q, &k, &v, scale, Mask::None)?
            .transpose(1, 2)?
            .reshape((n, tokens, d))?;
        let x = residual(x, &self.out_proj.forward(&a)?)?;
        let h = self.layer_norm2.forward(&x)?;
        let h = self.fc2.forward(&self.act.apply(&self.fc1.forward(&h)?)?)?;
        residual(&x, &h)
    }
}
