//! Random-weight checkpoints in the published layout at the published widths of
//! Apollo-1.5B/3B/7B-t32, for tests and benchmarks that need real sizes without the real
//! weights (which are never downloaded here).
//!
//! [`write_checkpoint`] writes the directory the loader reads: config.json (with llm_cfg,
//! vision_tower_cfg, mm_connector_cfg), llm/ (config, generation config, tokenizer, sharded
//! safetensors and index), vision_tower/ (config, siglip-so400m-patch14-384/ with `vision_model.`
//! names, internvideo2/ with the distillation heads) and mm_connector/. Weights are bf16,
//! streamed tensor by tensor so that memory stays bounded whatever the size.
//!
//! Widths come from apollo-modules.md (SigLIP-SO400M, InternVideo2-1B, the "-t32" connector)
//! and from the Qwen2.5 configs the llm_cfg of each checkpoint copies.

use super::config::ApolloConfig;
use super::layout::{
    Component, CONFIG, GENERATION_CONFIG, INDEX, PREPROCESSOR_CONFIG, SINGLE, TOKENIZER,
};
use crate::error::{Error, Kind, Result};
use crate::prompt::byte_level::char_of_byte;
use crate::rng::SeededRng;
use crate::video::preprocess::ClipTensor;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
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

/// The Qwen2.5 llm of a preset.
struct Qwen {
    hidden: usize,
    intermediate: usize,
    heads: usize,
    kv_heads: usize,
    vocab: usize,
    layers: usize,
    tied: bool,
}

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

    /// Qwen2.5-{1.5B,3B,7B}-Instruct's config.json.
    fn qwen(self) -> Qwen {
        match self {
            Preset::Apollo1_5B => Qwen {
                hidden: 1536,
                intermediate: 8960,
                heads: 12,
                kv_heads: 2,
                vocab: 151936,
                layers: 28,
                tied: true,
            },
            Preset::Apollo3B => Qwen {
                hidden: 2048,
                intermediate: 11008,
                heads: 16,
                kv_heads: 2,
                vocab: 151936,
                layers: 36,
                tied: true,
            },
            Preset::Apollo7B => Qwen {
                hidden: 3584,
                intermediate: 18944,
                heads: 28,
                kv_heads: 4,
                vocab: 152064,
                layers: 28,
                tied: false,
            },
        }
    }
}

// SigLIP-SO400M/14 at 384 (vision_tower/siglip-so400m-patch14-384/config.json).
const SIGLIP_DIR: &str = "siglip-so400m-patch14-384";
const SIGLIP_HIDDEN: usize = 1152;
const SIGLIP_INTERMEDIATE: usize = 4304;
const SIGLIP_HEADS: usize = 16;
const SIGLIP_IMAGE: usize = 384;
const SIGLIP_LAYERS: usize = 27;
const PATCH: usize = 14;

// InternVideo2-1B (vision_tower/internvideo2/config.json and the training class's constants).
const IV2_DIR: &str = "internvideo2";
const IV2_HIDDEN: usize = 1408;
const IV2_HEADS: usize = 16;
const IV2_IMAGE: usize = 224;
const IV2_FRAMES: usize = 4;
const IV2_DEPTH: usize = 40;
/// int(1408 * 48 / 11).
const IV2_MLP: usize = 6144;
const IV2_CLIP_EMBED: usize = 768;
const IV2_CLIP_TEACHER: usize = 3200;
const IV2_CLIP_TEACHER_FINAL: usize = 768;
const IV2_CLIP_RETURN_LAYERS: usize = 6;

// The "-t32" connector (mm_connector/config.json).
const TOKENS_PER_CLIP: usize = 128;
const RESAMPLER_HEADS: usize = 16;
const RESAMPLER_HEAD_DIM: usize = 96;
const RESAMPLER_KV_HEADS: usize = 4;
const FF_MULTI: usize = 4;
/// The common token grid (T, H, W).
const GRID: [usize; 3] = [4, 27, 27];

// Top-level config.json and Qwen2.5's special tokens.
const MODEL_MAX_LENGTH: usize = 16384;
const BOS: u32 = 151643;
const IM_START: u32 = 151644;
const EOS: u32 = 151645;

/// transformers' default `max_shard_size` ("5GB"), with which the llm shards were saved.
const MAX_SHARD_BYTES: u64 = 5_000_000_000;

impl Layers {
    /// Layers stored per stack: (SigLIP, InternVideo2, llm).
    fn stored(self, preset: Preset) -> Result<(usize, usize, usize)> {
        match self {
            Layers::Published => Ok((SIGLIP_LAYERS, IV2_DEPTH, preset.qwen().layers)),
            Layers::Run(0) => Err(Error::usage("each stack needs at least one layer")),
            Layers::Run(n) => Ok((n + 1, n + 1, n)),
        }
    }

    /// Layers each stack runs with `mm_vision_select_layer` -2.
    pub fn running(self, preset: Preset) -> Result<Running> {
        let (siglip, internvideo2, llm) = self.stored(preset)?;
        Ok(Running {
            siglip: siglip - 1,
            internvideo2: internvideo2 - 1,
            llm,
        })
    }
}

/// Writes a random-weight checkpoint for `preset` into `dir` (created if needed).
pub fn write_checkpoint(dir: &Path, preset: Preset, layers: Layers) -> Result<()> {
    let (siglip_layers, iv2_depth, llm_layers) = layers.stored(preset)?;
    let qwen = Qwen {
        layers: llm_layers,
        ..preset.qwen()
    };
    let vision = dir.join(Component::VisionTower.folder());
    write_siglip(&vision.join(SIGLIP_DIR), siglip_layers)?;
    // The published config has no `depth`: the loader's default of 40 applies.
    let depth = (iv2_depth != IV2_DEPTH).then_some(iv2_depth);
    write_internvideo2(&vision.join(IV2_DIR), iv2_depth, depth)?;
    let vision_cfg = json!({
        "configs": {}, "model_type": "hybrid_vision_tower", "num_vision_encoders": 2,
        "token_output_shape": GRID, "vision_towers": [SIGLIP_DIR, IV2_DIR],
    });
    write_json(&vision.join(CONFIG), &vision_cfg)?;
    let connector_cfg = write_connector(&dir.join(Component::Connector.folder()), qwen.hidden)?;
    let llm_cfg = write_llm(&dir.join(Component::Llm.folder()), &qwen)?;
    write_json(
        &dir.join(CONFIG),
        &top_config(&qwen, llm_cfg, vision_cfg, connector_cfg),
    )
}

/// The top-level config.json: the component configs nested as dicts (so they are read from
/// the folders named after the keys), plus the fields the reference reads.
fn top_config(qwen: &Qwen, llm: Value, vision: Value, connector: Value) -> Value {
    let named = |mut cfg: Value, name: &str| {
        cfg["_name_or_path"] = json!(name);
        cfg
    };
    json!({
        "architectures": ["ApolloForCausalLM"],
        "auto_map": {"AutoConfig": "configuration_apollo.ApolloConfig",
                     "AutoModelForCausalLM": "modeling_apollo.ApolloForCausalLM"},
        "clip_duration": 2,
        "encode_batch_size": 25,
        "hidden_size": qwen.hidden,
        "image_aspect_ratio": "square",
        "interpolate_mode": "linear",
        "llm_cfg": named(llm, "llm"),
        "mm_connector_cfg": named(connector, "mm_connector"),
        "mm_hidden_size": SIGLIP_HIDDEN + IV2_HIDDEN,
        "mm_vision_select_feature": "patch",
        "mm_vision_select_layer": -2,
        "model_max_length": MODEL_MAX_LENGTH,
        "model_type": "apollo",
        "torch_dtype": "bfloat16",
        "use_mm_patch_token": false,
        "use_mm_start_end": false,
        "vision_tower_cfg": named(vision, "vision_tower"),
        "vocab_size": qwen.vocab,
    })
}

fn write_siglip(dir: &Path, layers: usize) -> Result<()> {
    let d = SIGLIP_HIDDEN;
    let grid = SIGLIP_IMAGE / PATCH;
    write_json(
        &dir.join(CONFIG),
        &json!({
            "architectures": ["SiglipVisionModel"], "attention_dropout": 0.0,
            "hidden_act": "gelu_pytorch_tanh", "hidden_size": d, "image_size": SIGLIP_IMAGE,
            "intermediate_size": SIGLIP_INTERMEDIATE, "layer_norm_eps": 1e-6,
            "model_type": "siglip_vision_model", "num_attention_heads": SIGLIP_HEADS,
            "num_channels": 3, "num_hidden_layers": layers, "patch_size": PATCH,
            "torch_dtype": "bfloat16",
        }),
    )?;
    write_json(
        &dir.join(PREPROCESSOR_CONFIG),
        &json!({
            "do_convert_rgb": null, "do_normalize": true, "do_rescale": true, "do_resize": true,
            "image_mean": [0.5, 0.5, 0.5], "image_processor_type": "SiglipImageProcessor",
            "image_std": [0.5, 0.5, 0.5], "resample": 3,
            "rescale_factor": 1.0 / 255.0, "size": {"height": SIGLIP_IMAGE, "width": SIGLIP_IMAGE},
        }),
    )?;
    let mut t = Specs::default();
    t.weight(
        "vision_model.embeddings.patch_embedding.weight",
        &[d, 3, PATCH, PATCH],
    );
    t.bias("vision_model.embeddings.patch_embedding.bias", d);
    t.embedding(
        "vision_model.embeddings.position_embedding.weight",
        &[grid * grid, d],
    );
    for i in 0..layers {
        let l = format!("vision_model.encoder.layers.{i}");
        for n in ["k_proj", "v_proj", "q_proj", "out_proj"] {
            t.linear(&format!("{l}.self_attn.{n}"), d, d, true);
        }
        t.norm(&format!("{l}.layer_norm1"), d, true);
        t.linear(&format!("{l}.mlp.fc1"), d, SIGLIP_INTERMEDIATE, true);
        t.linear(&format!("{l}.mlp.fc2"), SIGLIP_INTERMEDIATE, d, true);
        t.norm(&format!("{l}.layer_norm2"), d, true);
    }
    t.norm("vision_model.post_layernorm", d, true);
    // The pooling head, unused by Apollo but in the published file.
    let h = "vision_model.head";
    t.embedding(&format!("{h}.probe"), &[1, 1, d]);
    t.weight(&format!("{h}.attention.in_proj_weight"), &[3 * d, d]);
    t.bias(&format!("{h}.attention.in_proj_bias"), 3 * d);
    t.linear(&format!("{h}.attention.out_proj"), d, d, true);
    t.norm(&format!("{h}.layernorm"), d, true);
    t.linear(&format!("{h}.mlp.fc1"), d, SIGLIP_INTERMEDIATE, true);
    t.linear(&format!("{h}.mlp.fc2"), SIGLIP_INTERMEDIATE, d, true);
    write_safetensors(&dir.join(SINGLE), &t.0)
}

/// InternVideo2 as the training class saves it (no wrapper prefix), with its image and CLIP
/// position embeddings and distillation heads; `depth` goes into the config only when given.
fn write_internvideo2(dir: &Path, blocks: usize, depth: Option<usize>) -> Result<()> {
    let mut cfg = json!({
        "architectures": ["InternVideo2Model"],
        "attn_pool_num_heads": IV2_HEADS,
        "auto_map": {"AutoConfig": "config.InternVideo2Config",
                     "AutoModel": "modeling_internvideo2.InternVideo2Model"},
        "checkpoint_num": 0, "clip_embed_dim": IV2_CLIP_EMBED, "clip_norm_type": "l2",
        "clip_return_layer": IV2_CLIP_RETURN_LAYERS, "clip_student_return_interval": 1,
        "clip_teacher_embed_dim": IV2_CLIP_TEACHER,
        "clip_teacher_final_dim": IV2_CLIP_TEACHER_FINAL, "d_model": IV2_HIDDEN,
        "img_size": IV2_IMAGE, "model_type": "internvideo2", "num_frames": IV2_FRAMES,
        "num_heads": IV2_HEADS, "patch_size": PATCH, "qkv_bias": false,
        "sep_image_video_pos_embed": true, "torch_dtype": "bfloat16", "tubelet_size": 1,
        "use_checkpoint": false, "use_flash_attn": false, "use_fused_mlp": false,
        "use_fused_rmsnorm": false,
    });
    if let Some(depth) = depth {
        cfg["depth"] = json!(depth);
    }
    write_json(&dir.join(CONFIG), &cfg)?;

    let d = IV2_HIDDEN;
    let image_tokens = 1 + (IV2_IMAGE / PATCH).pow(2);
    let video_tokens = 1 + IV2_FRAMES * (IV2_IMAGE / PATCH).pow(2);
    let mut t = Specs::default();
    t.weight("patch_embed.proj.weight", &[d, 3, 1, PATCH, PATCH]);
    t.bias("patch_embed.proj.bias", d);
    t.embedding("cls_token", &[1, 1, d]);
    t.embedding("pos_embed", &[1, video_tokens, d]);
    t.embedding("img_pos_embed", &[1, image_tokens, d]);
    t.embedding("clip_pos_embed", &[1, video_tokens, d]);
    t.embedding("clip_img_pos_embed", &[1, image_tokens, d]);
    for i in 0..blocks {
        let b = format!("blocks.{i}");
        t.norm(&format!("{b}.norm1"), d, false);
        t.linear(&format!("{b}.attn.qkv"), d, 3 * d, false);
        t.linear(&format!("{b}.attn.proj"), d, d, true);
        t.norm(&format!("{b}.attn.q_norm"), d, false);
        t.norm(&format!("{b}.attn.k_norm"), d, false);
        t.layer_scale(&format!("{b}.ls1.gamma"), d);
        t.norm(&format!("{b}.norm2"), d, false);
        t.linear(&format!("{b}.mlp.fc1"), d, IV2_MLP, true);
        t.linear(&format!("{b}.mlp.fc2"), IV2_MLP, d, true);
        t.layer_scale(&format!("{b}.ls2.gamma"), d);
    }
    let p = "clip_projector";
    for n in ["norm1_q", "norm1_k", "norm1_v"] {
        t.norm(&format!("{p}.{n}"), d, true);
    }
    for n in ["q", "k", "v"] {
        t.linear(&format!("{p}.cross_attn.{n}"), d, d, false);
        t.bias(&format!("{p}.cross_attn.{n}_bias"), d);
    }
    t.linear(&format!("{p}.cross_attn.proj"), d, IV2_CLIP_EMBED, true);
    for i in 0..IV2_CLIP_RETURN_LAYERS {
        t.linear(&format!("clip_decoder.{i}.head"), d, IV2_CLIP_TEACHER, true);
        t.norm(&format!("clip_decoder.{i}.norm"), IV2_CLIP_TEACHER, true);
    }
    t.linear(
        "final_clip_decoder.head",
        IV2_CLIP_EMBED,
        IV2_CLIP_TEACHER_FINAL,
        true,
    );
    t.norm("final_clip_decoder.norm", IV2_CLIP_TEACHER_FINAL, true);
    write_safetensors(&dir.join(SINGLE), &t.0)
}

/// The connector ("mlp1x_gelu" projector, one-layer perceiver); returns its config.
fn write_connector(dir: &Path, hidden: usize) -> Result<Value> {
    let vision = SIGLIP_HIDDEN + IV2_HIDDEN;
    let cfg = json!({
        "architectures": ["Connector"], "attention_dropout": 0.0, "ff_multi": FF_MULTI,
        "hidden_act": "silu", "model_type": "mm_connector",
        "num_key_value_heads": RESAMPLER_KV_HEADS, "num_output_tokens": TOKENS_PER_CLIP,
        "num_patches": 24, "projector_type": "mlp1x_gelu", "resampler_depth": 1,
        "resampler_head_dim": RESAMPLER_HEAD_DIM, "resampler_n_heads": RESAMPLER_HEADS,
        "resampler_type": "perciver", "rms_norm_eps": 1e-6, "text_hidden_size": hidden,
        "token_input_shape": GRID, "torch_dtype": "bfloat16", "vision_hidden_size": vision,
    });
    write_json(&dir.join(CONFIG), &cfg)?;
    let (q, kv) = (
        RESAMPLER_HEADS * RESAMPLER_HEAD_DIM,
        RESAMPLER_KV_HEADS * RESAMPLER_HEAD_DIM,
    );
    let mut t = Specs::default();
    t.linear("proj.0", vision, hidden, true);
    t.embedding("resampler.latents", &[TOKENS_PER_CLIP, hidden]);
    let l = "resampler.layers.0";
    t.weighted_norm(&format!("{l}.input_latents_norm"), hidden);
    t.weighted_norm(&format!("{l}.input_context_norm"), hidden);
    t.linear(&format!("{l}.self_attn.q_proj"), hidden, q, false);
    t.linear(&format!("{l}.self_attn.k_proj"), hidden, kv, false);
    t.linear(&format!("{l}.self_attn.v_proj"), hidden, kv, false);
    t.linear(&format!("{l}.self_attn.o_proj"), q, hidden, false);
    t.weighted_norm(&format!("{l}.post_attention_layernorm"), hidden);
    let inner = hidden * FF_MULTI;
    t.linear(&format!("{l}.mlp.gate_proj"), hidden, inner, false);
    t.linear(&format!("{l}.mlp.up_proj"), hidden, inner, false);
    t.linear(&format!("{l}.mlp.down_proj"), inner, hidden, false);
    t.weighted_norm("resampler.norm", hidden);
    write_safetensors(&dir.join(SINGLE), &t.0)?;
    Ok(cfg)
}

/// The Qwen2 llm in transformers' layout; returns its config.
fn write_llm(dir: &Path, q: &Qwen) -> Result<Value> {
    let cfg = json!({
        "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": BOS,
        "eos_token_id": EOS, "hidden_act": "silu", "hidden_size": q.hidden,
        "initializer_range": 0.02, "intermediate_size": q.intermediate,
        "max_position_embeddings": 32768, "model_max_length": MODEL_MAX_LENGTH,
        "model_type": "qwen2", "num_attention_heads": q.heads, "num_hidden_layers": q.layers,
        "num_key_value_heads": q.kv_heads, "rms_norm_eps": 1e-6, "rope_scaling": null,
        "rope_theta": 1000000.0, "tie_word_embeddings": q.tied, "torch_dtype": "bfloat16",
        "use_cache": true, "use_sliding_window": false, "vocab_size": q.vocab,
    });
    write_json(&dir.join(CONFIG), &cfg)?;
    write_json(
        &dir.join(GENERATION_CONFIG),
        &json!({
            "bos_token_id": BOS, "do_sample": true, "eos_token_id": [EOS, BOS],
            "pad_token_id": BOS, "repetition_penalty": 1.05, "temperature": 0.7, "top_k": 20,
            "top_p": 0.8,
        }),
    )?;
    write_json(&dir.join(TOKENIZER), &byte_level_tokenizer())?;

    let (h, head_dim) = (q.hidden, q.hidden / q.heads);
    let mut t = Specs::default();
    t.embedding("model.embed_tokens.weight", &[q.vocab, h]);
    for i in 0..q.layers {
        let l = format!("model.layers.{i}");
        t.linear(
            &format!("{l}.self_attn.q_proj"),
            h,
            q.heads * head_dim,
            true,
        );
        t.linear(
            &format!("{l}.self_attn.k_proj"),
            h,
            q.kv_heads * head_dim,
            true,
        );
        t.linear(
            &format!("{l}.self_attn.v_proj"),
            h,
            q.kv_heads * head_dim,
            true,
        );
        t.linear(
            &format!("{l}.self_attn.o_proj"),
            q.heads * head_dim,
            h,
            false,
        );
        t.linear(&format!("{l}.mlp.gate_proj"), h, q.intermediate, false);
        t.linear(&format!("{l}.mlp.up_proj"), h, q.intermediate, false);
        t.linear(&format!("{l}.mlp.down_proj"), q.intermediate, h, false);
        t.norm(&format!("{l}.input_layernorm"), h, false);
        t.norm(&format!("{l}.post_attention_layernorm"), h, false);
    }
    t.norm("model.norm", h, false);
    if !q.tied {
        t.linear("lm_head", h, q.vocab, false);
    }
    write_shards(dir, t.0)?;
    Ok(cfg)
}

/// Writes the tensors in shards with their index. The index is written even for one shard, so
/// that the loader's shard path is what runs.
fn write_shards(dir: &Path, specs: Vec<Spec>) -> Result<()> {
    let shards = split_shards(specs, MAX_SHARD_BYTES);
    let count = shards.len();
    let mut weight_map = BTreeMap::new();
    let mut total_size = 0;
    for (i, shard) in shards.iter().enumerate() {
        let file = format!("model-{:05}-of-{count:05}.safetensors", i + 1);
        write_safetensors(&dir.join(&file), shard)?;
        for spec in shard {
            total_size += spec.bytes();
            weight_map.insert(spec.name.clone(), file.clone());
        }
    }
    write_json(
        &dir.join(INDEX),
        &json!({"metadata": {"total_size": total_size}, "weight_map": weight_map}),
    )
}

/// transformers' `shard_checkpoint`: tensors in order, a new shard when the next tensor would
/// take a non-empty one past `limit` bytes.
fn split_shards(specs: Vec<Spec>, limit: u64) -> Vec<Vec<Spec>> {
    let mut shards: Vec<Vec<Spec>> = Vec::new();
    let mut size = 0;
    for spec in specs {
        match shards.last_mut() {
            Some(last) if size + spec.bytes() <= limit => {
                size += spec.bytes();
                last.push(spec);
            }
            _ => {
                size = spec.bytes();
                shards.push(vec![spec]);
            }
        }
    }
    shards
}

/// A byte-level BPE tokenizer without merges: every byte is one token (ids 0..=255, in
/// GPT-2's byte-to-character mapping), and Qwen2's special tokens keep their real ids, which
/// the configs name. Text takes more tokens than with Qwen2's merges; any text can be encoded.
fn byte_level_tokenizer() -> Value {
    let mut vocab = serde_json::Map::new();
    for byte in 0..=255u8 {
        vocab.insert(char_of_byte(byte).to_string(), json!(byte));
    }
    let specials = [
        (BOS, "<|endoftext|>"),
        (IM_START, "<|im_start|>"),
        (EOS, "<|im_end|>"),
    ];
    let added: Vec<Value> = specials
        .iter()
        .map(|&(id, content)| {
            // In the model's vocabulary too, or the tokenizer would renumber them from 256.
            vocab.insert(content.to_string(), json!(id));
            json!({"id": id, "content": content, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false,
                            "trim_offsets": false, "use_regex": false});
    json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": null, "pre_tokenizer": byte_level, "post_processor": null,
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
                  "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": []},
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

fn write_json(path: &Path, value: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("JSON values serialise");
    create_parent(path)?;
    std::fs::write(path, text + "\n").map_err(|e| write_error(path, e))
}

fn create_parent(path: &Path) -> Result<()> {
    let parent = path.parent().expect("a file inside a directory");
    std::fs::create_dir_all(parent).map_err(|e| write_error(parent, e))
}

fn write_error(path: &Path, e: std::io::Error) -> Error {
    Error::new(Kind::Runtime, Some(path), format!("cannot write: {e}"))
}

/// How a tensor is filled.
#[derive(Debug, Clone, Copy)]
enum Fill {
    /// Uniform with this standard deviation.
    Random(f32),
    Constant(f32),
}

/// One tensor to write.
struct Spec {
    name: String,
    shape: Vec<usize>,
    fill: Fill,
}

impl Spec {
    fn len(&self) -> usize {
        self.shape.iter().product()
    }

    fn bytes(&self) -> u64 {
        2 * self.len() as u64
    }
}

/// The tensors of one file, initialised so that activations stay modest at the published
/// depths (largest |value| about 24 in SigLIP's output, 4 in the logits): matrices scaled to
/// unit-variance outputs, norms at one, small biases and embeddings.
#[derive(Default)]
struct Specs(Vec<Spec>);

impl Specs {
    fn push(&mut self, name: &str, shape: &[usize], fill: Fill) {
        self.0.push(Spec {
            name: name.to_string(),
            shape: shape.to_vec(),
            fill,
        });
    }

    /// A Linear or convolution weight (outputs, inputs...).
    fn weight(&mut self, name: &str, shape: &[usize]) {
        let fan_in: usize = shape[1..].iter().product();
        self.push(name, shape, Fill::Random(1.0 / (fan_in as f32).sqrt()));
    }

    fn bias(&mut self, name: &str, size: usize) {
        self.push(name, &[size], Fill::Random(0.02));
    }

    fn embedding(&mut self, name: &str, shape: &[usize]) {
        self.push(name, shape, Fill::Random(0.02));
    }

    /// `{prefix}.weight` (outputs, inputs) and, with `bias`, `{prefix}.bias`.
    fn linear(&mut self, prefix: &str, inputs: usize, outputs: usize, bias: bool) {
        self.weight(&format!("{prefix}.weight"), &[outputs, inputs]);
        if bias {
            self.bias(&format!("{prefix}.bias"), outputs);
        }
    }

    /// A LayerNorm (`bias`) or RMSNorm at its initial values.
    fn norm(&mut self, prefix: &str, size: usize, bias: bool) {
        self.push(&format!("{prefix}.weight"), &[size], Fill::Constant(1.0));
        if bias {
            self.push(&format!("{prefix}.bias"), &[size], Fill::Constant(0.0));
        }
    }

    /// The connector's LayerNorm times `wheight`.
    fn weighted_norm(&mut self, prefix: &str, size: usize) {
        self.norm(&format!("{prefix}.norm"), size, true);
        self.push(&format!("{prefix}.wheight"), &[size], Fill::Constant(1.0));
    }

    /// LayerScale's gamma: larger than the 1e-5 of training so that the blocks count.
    fn layer_scale(&mut self, name: &str, size: usize) {
        self.push(name, &[size], Fill::Constant(0.1));
    }
}

/// Values generated and written at a time: bounds memory whatever the tensor's size.
const CHUNK: usize = 1 << 20;

/// Writes a safetensors file (bf16, `format: pt` as torch's files have) streaming each
/// tensor's values, so that the largest tensor never sits in memory.
fn write_safetensors(path: &Path, specs: &[Spec]) -> Result<()> {
    create_parent(path)?;
    let header = safetensors_header(specs);
    let file = File::create(path).map_err(|e| write_error(path, e))?;
    let mut out = BufWriter::with_capacity(CHUNK, file);
    let mut write = || -> std::io::Result<()> {
        out.write_all(&(header.len() as u64).to_le_bytes())?;
        out.write_all(&header)?;
        let mut buf = Vec::with_capacity(2 * CHUNK);
        for spec in specs {
            write_values(&mut out, spec, &mut buf)?;
        }
        out.flush()
    };
    write().map_err(|e| write_error(path, e))
}

/// The JSON header, padded with spaces to a multiple of 8 bytes as the safetensors library
/// pads it (so that the data is aligned).
fn safetensors_header(specs: &[Spec]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), json!({"format": "pt"}));
    let mut offset = 0;
    for spec in specs {
        let end = offset + spec.bytes();
        header.insert(
            spec.name.clone(),
            json!({"dtype": "BF16", "shape": spec.shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut bytes = serde_json::to_vec(&header).expect("JSON values serialise");
    bytes.resize(bytes.len().next_multiple_of(8), b' ');
    bytes
}

/// Streams one tensor's values as little-endian bf16, `CHUNK` at a time. Random tensors are
/// seeded by their name, so a tensor's values do not depend on which file holds it.
fn write_values(out: &mut impl Write, spec: &Spec, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut rng = SeededRng::new(fnv1a(&spec.name));
    let mut value = || match spec.fill {
        // 16 random bits as a signed fraction: uniform on [-1, 1), variance 1/3.
        Fill::Random(std) => {
            (rng.next_u64() >> 48) as u16 as i16 as f32 * (std * 3f32.sqrt() / 32768.0)
        }
        Fill::Constant(v) => v,
    };
    let mut left = spec.len();
    while left > 0 {
        let n = left.min(CHUNK);
        buf.clear();
        buf.extend((0..n).flat_map(|_| half::bf16::from_f32(value()).to_le_bytes()));
        out.write_all(buf)?;
        left -= n;
    }
    Ok(())
}

/// FNV-1a: a stable hash of a tensor name, for its seed.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::tokens::{reference_ids, PromptTokenizer, VIDEO_SLOT};
    use candle_core::{DType, Device};

    #[test]
    fn writes_safetensors_that_candle_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let mut t = Specs::default();
        t.weight("w", &[300, 400]);
        t.norm("n", 3, true);
        write_safetensors(&path, &t.0).unwrap();
        let tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        let w = tensors["w"].to_dtype(DType::F32).unwrap();
        assert_eq!(
            (w.dims(), tensors["w"].dtype()),
            (&[300, 400][..], DType::BF16)
        );
        let values = w.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let mean = values.iter().sum::<f32>() / values.len() as f32;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / values.len() as f32;
        // Uniform with std 1/sqrt(400) = 0.05.
        assert!(
            mean.abs() < 1e-3 && (var.sqrt() - 0.05).abs() < 1e-3,
            "{mean} {var}"
        );
        let n = |name: &str| {
            let t = tensors[name].to_dtype(DType::F32).unwrap();
            t.to_vec1::<f32>().unwrap()
        };
        assert_eq!((n("n.weight"), n("n.bias")), (vec![1.0; 3], vec![0.0; 3]));
    }

    #[test]
    fn the_tokenizer_encodes_bytes_and_qwen_special_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        write_json(&path, &byte_level_tokenizer()).unwrap();
        let tok = PromptTokenizer::from_file(&path).unwrap();
        let chunks = tok
            .tokenize("<|im_start|>a é\n<|video_token|><|im_end|>")
            .unwrap();
        // "é" is two bytes, 0xC3 0xA9.
        let want = [151644, 97, 32, 0xC3, 0xA9, 10, VIDEO_SLOT, 151645];
        assert_eq!(reference_ids(&chunks), want);
    }

    #[test]
    fn shards_as_save_pretrained_does() {
        let mut t = Specs::default();
        for (name, len) in [("a", 3), ("b", 2), ("c", 8), ("d", 1)] {
            t.embedding(name, &[len]);
        }
        // Bytes 6, 4, 16, 2 with a 10-byte limit; a tensor above the limit gets its own shard.
        let names: Vec<Vec<String>> = split_shards(t.0, 10)
            .iter()
            .map(|s| s.iter().map(|t| t.name.clone()).collect())
            .collect();
        assert_eq!(names, [vec!["a", "b"], vec!["c"], vec!["d"]]);
    }

    #[test]
    fn counts_the_layers_each_stack_runs() {
        assert!(Layers::Run(0).running(Preset::Apollo3B).is_err());
        let one = Layers::Run(1).running(Preset::Apollo7B).unwrap();
        assert_eq!((one.siglip, one.internvideo2, one.llm), (1, 1, 1));
        let full = Layers::Published.running(Preset::Apollo3B).unwrap();
        assert_eq!((full.siglip, full.internvideo2, full.llm), (26, 39, 36));
    }
}
