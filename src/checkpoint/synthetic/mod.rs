//! Random-weight checkpoints in the published layout, for tests and benchmarks that need a
//! checkpoint without the real weights (which are never downloaded here): at the published
//! widths of Apollo-1.5B/3B/7B-t32 ([`write_checkpoint`]), or at any [`Sizes`] (the unit
//! tests' tiny one). The tensor layout of every component is written down once, in
//! `components`.
//!
//! The directory is the one the loader reads: config.json (with llm_cfg, vision_tower_cfg,
//! mm_connector_cfg), llm/ (config, generation config, tokenizer, sharded safetensors and
//! index), vision_tower/ (config, SigLIP with `vision_model.` names, InternVideo2 with the
//! distillation heads) and mm_connector/. Weights are bf16, streamed tensor by tensor so that
//! memory stays bounded whatever the size.
//!
//! Widths come from apollo-modules.md (SigLIP-SO400M, InternVideo2-1B, the "-t32" connector)
//! and from the Qwen2.5 configs the llm_cfg of each checkpoint copies.

mod components;
mod tensors;
mod tokenizer;

pub use tensors::Sharding;

use super::config::ApolloConfig;
use super::layout::{Component, CONFIG};
use crate::error::{Error, Result};
use crate::rng::SeededRng;
use crate::video::preprocess::ClipTensor;
use serde_json::{json, Value};
use std::path::Path;

/// A published checkpoint whose widths [`write_checkpoint`] reproduces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Apollo1_5B,
    Apollo3B,
    Apollo7B,
}

/// How many layers each stack gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layers {
    /// The published depths: SigLIP 27, InternVideo2 40, Qwen2.5 28 / 36 / 28.
    Published,
    /// Each stack runs this many layers (at least 1). With `mm_vision_select_layer` -2 the
    /// encoders skip their last layer, so they store one more than they run, as the published
    /// ones do (26 of 27, 39 of 40).
    Run(usize),
}

/// Layers each stack runs for a given [`Layers`]: what a per-layer cost multiplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Running {
    pub siglip: usize,
    pub internvideo2: usize,
    pub llm: usize,
}

/// Everything that differs between the checkpoints the writer makes.
#[derive(Debug, Clone)]
pub struct Sizes {
    pub siglip: SiglipSizes,
    pub internvideo2: InternVideo2Sizes,
    pub connector: ConnectorSizes,
    pub llm: QwenSizes,
    pub encode_batch_size: usize,
    pub llm_sharding: Sharding,
}

#[derive(Debug, Clone)]
pub struct SiglipSizes {
    /// Its folder under vision_tower/ (the name must contain "siglip").
    pub folder: &'static str,
    pub hidden: usize,
    pub intermediate: usize,
    pub heads: usize,
    pub image: usize,
    pub patch: usize,
    /// Layers of the published model.
    pub layers: usize,
}

#[derive(Debug, Clone)]
pub struct InternVideo2Sizes {
    /// Put before every tensor name: "" as the training class saves it, or a wrapper's.
    pub prefix: &'static str,
    pub hidden: usize,
    pub heads: usize,
    pub image: usize,
    pub patch: usize,
    pub frames: usize,
    /// Blocks of the published model (the config omits `depth` when it is 40).
    pub depth: usize,
    /// The distillation heads' widths and count (stored, never run).
    pub clip_embed: usize,
    pub clip_teacher: usize,
    pub clip_teacher_final: usize,
    pub clip_return_layers: usize,
}

#[derive(Debug, Clone)]
pub struct ConnectorSizes {
    pub tokens_per_clip: usize,
    /// Linear layers of the projector ("mlp{N}x_gelu").
    pub projector_depth: usize,
    pub heads: usize,
    pub head_dim: usize,
    pub kv_heads: usize,
    pub ff_multi: usize,
}

/// The Qwen2 llm.
#[derive(Debug, Clone)]
pub struct QwenSizes {
    pub hidden: usize,
    pub intermediate: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub vocab: usize,
    /// Layers of the published model.
    pub layers: usize,
    pub tied: bool,
}

/// transformers' default `max_shard_size` ("5GB"), with which the llm shards were saved.
const MAX_SHARD_BYTES: u64 = 5_000_000_000;
/// The top-level config's context, as the published checkpoints state it.
const MODEL_MAX_LENGTH: usize = 16384;
/// InternVideo2's depth when its config does not say (the training class's constant).
const IV2_DEFAULT_DEPTH: usize = 40;

impl Preset {
    pub const ALL: [Preset; 3] = [Preset::Apollo1_5B, Preset::Apollo3B, Preset::Apollo7B];

    /// The checkpoint's name as published.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Apollo1_5B => "Apollo-1_5B-t32",
            Preset::Apollo3B => "Apollo-3B-t32",
            Preset::Apollo7B => "Apollo-7B-t32",
        }
    }

    pub fn sizes(self) -> Sizes {
        Sizes {
            // SigLIP-SO400M/14 at 384.
            siglip: SiglipSizes {
                folder: "siglip-so400m-patch14-384",
                hidden: 1152,
                intermediate: 4304,
                heads: 16,
                image: 384,
                patch: 14,
                layers: 27,
            },
            // InternVideo2-1B, and its training class's constants.
            internvideo2: InternVideo2Sizes {
                prefix: "",
                hidden: 1408,
                heads: 16,
                image: 224,
                patch: 14,
                frames: 4,
                depth: IV2_DEFAULT_DEPTH,
                clip_embed: 768,
                clip_teacher: 3200,
                clip_teacher_final: 768,
                clip_return_layers: 6,
            },
            // The "-t32" connector.
            connector: ConnectorSizes {
                tokens_per_clip: 128,
                projector_depth: 1,
                heads: 16,
                head_dim: 96,
                kv_heads: 4,
                ff_multi: 4,
            },
            llm: self.qwen(),
            encode_batch_size: 25,
            llm_sharding: Sharding::MaxBytes(MAX_SHARD_BYTES),
        }
    }

    /// Qwen2.5-{1.5B,3B,7B}-Instruct's config.json.
    fn qwen(self) -> QwenSizes {
        let (hidden, intermediate, heads, kv_heads) = match self {
            Preset::Apollo1_5B => (1536, 8960, 12, 2),
            Preset::Apollo3B => (2048, 11008, 16, 2),
            Preset::Apollo7B => (3584, 18944, 28, 4),
        };
        QwenSizes {
            hidden,
            intermediate,
            heads,
            kv_heads,
            vocab: if self == Preset::Apollo7B {
                152064
            } else {
                151936
            },
            layers: if self == Preset::Apollo3B { 36 } else { 28 },
            tied: self != Preset::Apollo7B,
        }
    }
}

impl Layers {
    /// Layers stored per stack: (SigLIP, InternVideo2, llm).
    fn stored(self, sizes: &Sizes) -> Result<(usize, usize, usize)> {
        match self {
            Layers::Published => Ok((
                sizes.siglip.layers,
                sizes.internvideo2.depth,
                sizes.llm.layers,
            )),
            Layers::Run(0) => Err(Error::usage("each stack needs at least one layer")),
            Layers::Run(n) => Ok((n + 1, n + 1, n)),
        }
    }

    /// Layers each stack runs with `mm_vision_select_layer` -2.
    pub fn running(self, preset: Preset) -> Result<Running> {
        let (siglip, internvideo2, llm) = self.stored(&preset.sizes())?;
        Ok(Running {
            siglip: siglip - 1,
            internvideo2: internvideo2 - 1,
            llm,
        })
    }
}

/// Writes a random-weight checkpoint for `preset` into `dir` (created if needed).
pub fn write_checkpoint(dir: &Path, preset: Preset, layers: Layers) -> Result<()> {
    write(dir, &preset.sizes(), layers)
}

/// Writes a random-weight checkpoint of `sizes` into `dir` (created if needed).
pub fn write(dir: &Path, sizes: &Sizes, layers: Layers) -> Result<()> {
    let (siglip_layers, iv2_depth, llm_layers) = layers.stored(sizes)?;
    let vision = dir.join(Component::VisionTower.folder());
    let siglip = &sizes.siglip;
    components::write_siglip(&vision.join(siglip.folder), siglip, siglip_layers)?;
    let iv2 = &sizes.internvideo2;
    components::write_internvideo2(&vision.join("internvideo2"), iv2, iv2_depth)?;
    let grid = sizes.token_grid();
    let vision_cfg = json!({
        "configs": {}, "model_type": "hybrid_vision_tower", "num_vision_encoders": 2,
        "token_output_shape": grid, "vision_towers": [siglip.folder, "internvideo2"],
    });
    tensors::write_json(&vision.join(CONFIG), &vision_cfg)?;
    let connector_cfg =
        components::write_connector(&dir.join(Component::Connector.folder()), sizes, grid)?;
    let llm = QwenSizes {
        layers: llm_layers,
        ..sizes.llm.clone()
    };
    let llm_cfg =
        components::write_llm(&dir.join(Component::Llm.folder()), &llm, sizes.llm_sharding)?;
    tensors::write_json(
        &dir.join(CONFIG),
        &top_config(sizes, llm_cfg, vision_cfg, connector_cfg),
    )
}

impl Sizes {
    /// The common token grid (T, H, W) the hybrid tower derives from its encoders.
    fn token_grid(&self) -> [usize; 3] {
        let side = (self.siglip.image / self.siglip.patch)
            .max(self.internvideo2.image / self.internvideo2.patch);
        [self.internvideo2.frames, side, side]
    }
}

/// The top-level config.json: the component configs nested as dicts (so they are read from
/// the folders named after the keys), plus the fields the reference reads.
fn top_config(sizes: &Sizes, llm: Value, vision: Value, connector: Value) -> Value {
    let named = |mut cfg: Value, name: &str| {
        cfg["_name_or_path"] = json!(name);
        cfg
    };
    json!({
        "architectures": ["ApolloForCausalLM"],
        "auto_map": {"AutoConfig": "configuration_apollo.ApolloConfig",
                     "AutoModelForCausalLM": "modeling_apollo.ApolloForCausalLM"},
        "clip_duration": 2,
        "encode_batch_size": sizes.encode_batch_size,
        "hidden_size": sizes.llm.hidden,
        "image_aspect_ratio": "square",
        "interpolate_mode": "linear",
        "llm_cfg": named(llm, "llm"),
        "mm_connector_cfg": named(connector, "mm_connector"),
        "mm_hidden_size": sizes.siglip.hidden + sizes.internvideo2.hidden,
        "mm_vision_select_feature": "patch",
        "mm_vision_select_layer": -2,
        "model_max_length": MODEL_MAX_LENGTH,
        "model_type": "apollo",
        "torch_dtype": "bfloat16",
        "use_mm_patch_token": false,
        "use_mm_start_end": false,
        "vision_tower_cfg": named(vision, "vision_tower"),
        "vocab_size": sizes.llm.vocab,
    })
}

/// Random pixels for one clip of each encoder, shaped as the preprocessor makes them
/// (SigLIP (frames, 3, size, size), InternVideo2 (3, frames, size, size)), values in [-1, 1).
pub fn random_clip(config: &ApolloConfig, seed: u64) -> (ClipTensor, ClipTensor) {
    let frames = config.vision.internvideo2.num_frames;
    let (s, i) = (
        config.vision.siglip.pixels.size,
        config.vision.internvideo2.pixels.size,
    );
    let clip = |shape: [usize; 4], seed: u64| {
        let mut rng = SeededRng::new(seed);
        let data = (0..shape.iter().product()).map(|_| rng.signed()).collect();
        ClipTensor { shape, data }
    };
    (
        clip([frames, 3, s, s], seed),
        clip([3, frames, i, i], seed ^ 0x5eed),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_layers_each_stack_runs() {
        assert!(Layers::Run(0).running(Preset::Apollo3B).is_err());
        let one = Layers::Run(1).running(Preset::Apollo7B).unwrap();
        assert_eq!((one.siglip, one.internvideo2, one.llm), (1, 1, 1));
        let full = Layers::Published.running(Preset::Apollo3B).unwrap();
        assert_eq!((full.siglip, full.internvideo2, full.llm), (26, 39, 36));
    }

    #[test]
    fn the_presets_grid_is_the_published_one() {
        assert_eq!(Preset::Apollo3B.sizes().token_grid(), [4, 27, 27]);
    }
}
