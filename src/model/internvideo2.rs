//! InternVideo2 (PretrainInternVideo2 as Apollo runs it: `x_vis_only`, `x_vis_return_idx =
//! mm_vision_select_layer`): tubelet patch embedding, class token, video position embedding,
//! then pre-norm blocks with RMSNorm, q/k RMSNorm over the full width, LayerScale in f32 and
//! an exact-GELU MLP; no final norm. The class token is dropped from the output.
//!
//! Tensor names, with or without one leading wrapper component: `patch_embed.proj.{weight,bias}`,
//! `cls_token`, `pos_embed`, `blocks.{i}.{norm1,norm2}.weight`, `blocks.{i}.attn.qkv.weight`,
//! `blocks.{i}.attn.{q_norm,k_norm}.weight`, `blocks.{i}.attn.proj.{weight,bias}`,
//! `blocks.{i}.{ls1,ls2}.gamma`, `blocks.{i}.mlp.{fc1,fc2}.{weight,bias}`. The distillation
//! heads (`clip_projector.*`, `clip_decoder.*`, `final_clip_decoder.*`), the image and CLIP
//! position embeddings and blocks past the selected one are not loaded.

use super::attention::{attention, Mask};
use super::bf16_ops;
use super::layers::{scale, Linear, RmsNorm};
use crate::checkpoint::config::Activation;
use crate::checkpoint::config::InternVideo2Config;
use crate::checkpoint::safetensors::{WeightFiles, Weights};
use crate::error::{Error, Kind, Result};
use candle_core::{DType, Tensor};

/// The frames of a clip of `frames` frames that the tower encodes, as its frame adjustment
/// picks them (see `fit_frames`); `None` when they cannot make `num_frames`.
pub(crate) fn fitted_frames(frames: usize, num_frames: usize) -> Option<Vec<u32>> {
    if frames == 0 || num_frames == 0 {
        return None;
    }
    let index: Vec<u32> = if frames < num_frames {
        (0..frames as u32)
            .flat_map(|f| std::iter::repeat_n(f, num_frames))
            .collect()
    } else {
        (0..frames as u32).step_by(frames / num_frames).collect()
    };
    (index.len() == num_frames).then_some(index)
}

pub struct InternVideo2 {
    img_size: usize,
    patch_size: usize,
    num_frames: usize,
    tubelet: usize,
    heads: usize,
    /// The Conv3d over (channel, time, row, column) tubelets as a matrix.
    patch_embed: Linear,
    cls_token: Tensor,
    pos_embed: Tensor,
    blocks: Vec<Block>,
}

struct Block {
    norm1: RmsNorm,
    qkv: Linear,
    /// q_norm and k_norm (absent without qk normalisation).
    qk_norm: Option<(RmsNorm, RmsNorm)>,
    proj: Linear,
    ls1: Tensor,
    norm2: RmsNorm,
    fc1: Linear,
    fc2: Linear,
    ls2: Tensor,
}

impl InternVideo2 {
    /// Loads the embeddings and the first `blocks` blocks.
    pub fn load(cfg: &InternVideo2Config, blocks: usize, ckpt: &WeightFiles) -> Result<Self> {
        let anchor = "patch_embed.proj.weight";
        let prefix = ckpt.prefix_of(anchor).ok_or_else(|| {
            Error::new(
                Kind::Model,
                Some(ckpt.dir()),
                format!("no InternVideo2 tensor {anchor} (with or without one leading component)"),
            )
        })?;
        let w = ckpt.weights(&prefix);
        let (d, p, tt) = (cfg.d_model, cfg.patch_size, cfg.tubelet_size);
        let conv = w.pp("patch_embed").pp("proj");
        let patch_embed = Linear::new(
            conv.get("weight", &[d, 3, tt, p, p])?
                .reshape((d, 3 * tt * p * p))?,
            Some(conv.get("bias", &[d])?),
        );
        let tokens = cfg.temporal() * cfg.grid() * cfg.grid();
        let cls_token = w.get("cls_token", &[1, 1, d])?;
        let pos_embed = w.get("pos_embed", &[1, tokens + 1, d])?;
        let blocks = (0..blocks)
            .map(|i| Block::load(cfg, &w.pp("blocks").pp(i)))
            .collect::<Result<_>>()?;
        Ok(Self {
            img_size: cfg.img_size,
            patch_size: p,
            num_frames: cfg.num_frames,
            tubelet: tt,
            heads: cfg.num_heads,
            patch_embed,
            cls_token,
            pos_embed,
            blocks,
        })
    }

    /// Clips (clips, 3, frames, size, size) to features (clips, T, g, g, d_model), without the
    /// class token.
    pub fn forward_clips(&self, pixels: &Tensor) -> candle_core::Result<Tensor> {
        let video = self.fit_frames(pixels)?;
        let (clips, _, _, _, _) = video.dims5()?;
        let g = self.img_size / self.patch_size;
        let t = self.num_frames / self.tubelet;
        let x = self.forward(&video)?;
        let d = x.dim(2)?;
        x.narrow(1, 1, t * g * g)?.reshape((clips, t, g, g, d))
    }

    /// The tower's frame adjustment: fewer frames than num_frames are each repeated num_frames
    /// times (repeat_interleave), more are strided by frames / num_frames. Anything but
    /// num_frames afterwards cannot meet the position embedding (the reference fails too).
    fn fit_frames(&self, pixels: &Tensor) -> candle_core::Result<Tensor> {
        let frames = pixels.dim(2)?;
        let n = self.num_frames;
        let Some(index) = fitted_frames(frames, n) else {
            candle_core::bail!(
                "InternVideo2 cannot encode clips of {frames} frames (num_frames {n})"
            );
        };
        if frames == n {
            return Ok(pixels.clone());
        }
        pixels.index_select(&Tensor::new(index.as_slice(), pixels.device())?, 2)
    }

    /// (b, 3, num_frames, size, size) to the selected block's output (b, 1 + tokens, d).
    fn forward(&self, video: &Tensor) -> candle_core::Result<Tensor> {
        let (b, c, f, h, w) = video.dims5()?;
        if c != 3 || h != self.img_size || w != self.img_size {
            candle_core::bail!(
                "InternVideo2 expects 3 x {0} x {0} frames, got {c} x {h} x {w}",
                self.img_size
            );
        }
        let (p, tt) = (self.patch_size, self.tubelet);
        let (t, g) = (f / tt, self.img_size / p);
        // Conv3d with stride = kernel as a product over tubelets, ordered frame, row, column.
        let tubelets = video
            .to_dtype(self.pos_embed.dtype())?
            .narrow(2, 0, t * tt)?
            .narrow(3, 0, g * p)?
            .narrow(4, 0, g * p)?
            .reshape(vec![b, c, t, tt, g, p, g, p])?
            .permute(vec![0, 2, 4, 6, 1, 3, 5, 7])?
            .reshape((b, t * g * g, c * tt * p * p))?;
        let x = self.patch_embed.forward(&tubelets)?;
        let d = x.dim(2)?;
        let cls = self.cls_token.broadcast_as((b, 1, d))?;
        let mut x = Tensor::cat(&[&cls, &x], 1)?.broadcast_add(&self.pos_embed)?;
        for block in &self.blocks {
            x = block.forward(&x, self.heads)?;
        }
        Ok(x)
    }
}

/// `x + (y.float() * gamma.float()).to(x.dtype)`: the residual sum of a branch with
/// LayerScale forced to f32.
fn add_layer_scaled(x: &Tensor, y: &Tensor, gamma: &Tensor) -> candle_core::Result<Tensor> {
    if bf16_ops::applies(x) && bf16_ops::applies(y) {
        return bf16_ops::residual_layer_scale(x, y, gamma);
    }
    x + y
        .to_dtype(DType::F32)?
        .broadcast_mul(gamma)?
        .to_dtype(y.dtype())?
}

impl Block {
    fn load(cfg: &InternVideo2Config, w: &Weights) -> Result<Self> {
        let (d, eps) = (cfg.d_model, cfg.norm_eps);
        let attn = w.pp("attn");
        let mlp = w.pp("mlp");
        let qk_norm = if cfg.qk_normalization {
            Some((
                RmsNorm::load(&attn.pp("q_norm"), d, eps)?,
                RmsNorm::load(&attn.pp("k_norm"), d, eps)?,
            ))
        } else {
            None
        };
        // The gamma is a parameter in the model dtype, promoted to f32 when applied.
        let gamma = |name: &str| -> Result<Tensor> {
            Ok(w.pp(name).get("gamma", &[d])?.to_dtype(DType::F32)?)
        };
        Ok(Self {
            norm1: RmsNorm::load(&w.pp("norm1"), d, eps)?,
            qkv: Linear::load(&attn, "qkv", d, 3 * d, cfg.qkv_bias)?,
            qk_norm,
            proj: Linear::load(&attn, "proj", d, d, true)?,
            ls1: gamma("ls1")?,
            norm2: RmsNorm::load(&w.pp("norm2"), d, eps)?,
            fc1: Linear::load(&mlp, "fc1", d, cfg.mlp_hidden, true)?,
            fc2: Linear::load(&mlp, "fc2", cfg.mlp_hidden, d, true)?,
            ls2: gamma("ls2")?,
        })
    }

    fn forward(&self, x: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
        let (b, n, d) = x.dims3()?;
        let head_dim = d / heads;
        let qkv = self.qkv.forward(&self.norm1.forward(x)?)?;
        // The qkv columns are (3, heads, head_dim): q is the first d of them, heads merged,
        // which is the width q_norm and k_norm normalise over.
        let (mut q, mut k) = (qkv.narrow(2, 0, d)?, qkv.narrow(2, d, d)?);
        let v = qkv.narrow(2, 2 * d, d)?;
        if let Some((q_norm, k_norm)) = &self.qk_norm {
            q = q_norm.forward(&q)?;
            k = k_norm.forward(&k)?;
        }
        // The reference scales q before the product.
        let q = scale(&q, (head_dim as f64).powf(-0.5))?;
        let split = |t: &Tensor| t.reshape((b, n, heads, head_dim))?.transpose(1, 2);
        let a = attention(&split(&q)?, &split(&k)?, &split(&v)?, 1.0, Mask::None)?
            .transpose(1, 2)?
            .reshape((b, n, d))?;
        let x = add_layer_scaled(x, &self.proj.forward(&a)?, &self.ls1)?;
        let h = Activation::Gelu.apply(&self.fc1.forward(&self.norm2.forward(&x)?)?)?;
        add_layer_scaled(&x, &self.fc2.forward(&h)?, &self.ls2)
    }
}
