//! Test helpers: deterministic pseudo-random tensors, and a tiny random Apollo checkpoint in
//! the published layout (with the extras a real one carries: SigLIP's head, InternVideo2's
//! distillation heads, a sharded llm) for load and failure tests.

use crate::rng::random_tensor;
use candle_core::Tensor;
use std::collections::HashMap;
use std::path::Path;

/// Collects named random tensors for one safetensors file.
#[derive(Default)]
struct Tensors {
    map: HashMap<String, Tensor>,
}

impl Tensors {
    fn add(&mut self, name: impl Into<String>, shape: &[usize]) {
        let seed = self.map.len() as u64 + 1;
        // Scaled down so that deep products stay in a tame range.
        let t = (random_tensor(shape, seed) * 0.5).unwrap();
        self.map.insert(name.into(), t);
    }

    fn save(&self, path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        candle_core::safetensors::save(&self.map, path).unwrap();
    }
}

fn write_json(path: &Path, value: serde_json::Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
}

/// Rewrites a JSON file through `edit`.
pub fn edit_json(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut value);
    write_json(path, value);
}

/// Sizes of the tiny checkpoint.
pub const SIGLIP_HIDDEN: usize = 8;
pub const IMAGE: usize = 28;
pub const FRAMES: usize = 2;
pub const IV_HIDDEN: usize = 6;
pub const LLM_HIDDEN: usize = 8;
pub const VOCAB: usize = 20;
pub const TOKENS_PER_CLIP: usize = 3;

/// Writes the checkpoint into `dir`: SigLIP (2 layers, 2x2 patches), InternVideo2 (depth 2,
/// 2 frames, 2x2 patches, under a wrapper prefix), grid (2, 2, 2), a one-layer perceiver with
/// grouped heads, and a one-layer untied Qwen2 in two shards.
pub fn write_tiny_checkpoint(dir: &Path) {
    use serde_json::json;
    write_json(
        &dir.join("config.json"),
        json!({"architectures": ["ApolloForCausalLM"], "llm_cfg": {}, "vision_tower_cfg": {},
               "mm_connector_cfg": {}, "clip_duration": 2, "encode_batch_size": 2,
               "mm_vision_select_layer": -2, "mm_vision_select_feature": "patch"}),
    );
    write_json(
        &dir.join("vision_tower/config.json"),
        json!({"model_type": "hybrid_vision_tower", "token_output_shape": [2, 2, 2],
               "vision_towers": ["siglip-tiny", "internvideo2"], "configs": {}}),
    );

    let s = dir.join("vision_tower/siglip-tiny");
    write_json(
        &s.join("config.json"),
        json!({"model_type": "siglip_vision_model", "hidden_size": SIGLIP_HIDDEN,
               "intermediate_size": 12, "num_hidden_layers": 2, "num_attention_heads": 2,
               "image_size": IMAGE, "patch_size": 14}),
    );
    write_json(
        &s.join("preprocessor_config.json"),
        json!({"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
               "size": {"height": IMAGE, "width": IMAGE}}),
    );
    let mut t = Tensors::default();
    let d = SIGLIP_HIDDEN;
    t.add(
        "vision_model.embeddings.patch_embedding.weight",
        &[d, 3, 14, 14],
    );
    t.add("vision_model.embeddings.patch_embedding.bias", &[d]);
    t.add("vision_model.embeddings.position_embedding.weight", &[4, d]);
    for i in 0..2 {
        let l = format!("vision_model.encoder.layers.{i}");
        for n in ["layer_norm1", "layer_norm2"] {
            t.add(format!("{l}.{n}.weight"), &[d]);
            t.add(format!("{l}.{n}.bias"), &[d]);
        }
        for n in ["q_proj", "k_proj", "v_proj", "out_proj"] {
            t.add(format!("{l}.self_attn.{n}.weight"), &[d, d]);
            t.add(format!("{l}.self_attn.{n}.bias"), &[d]);
        }
        t.add(format!("{l}.mlp.fc1.weight"), &[12, d]);
        t.add(format!("{l}.mlp.fc1.bias"), &[12]);
        t.add(format!("{l}.mlp.fc2.weight"), &[d, 12]);
        t.add(format!("{l}.mlp.fc2.bias"), &[d]);
    }
    t.add("vision_model.post_layernorm.weight", &[d]);
    t.add("vision_model.head.probe", &[1, 1, d]);
    t.save(&s.join("model.safetensors"));

    let v = dir.join("vision_tower/internvideo2");
    write_json(
        &v.join("config.json"),
        json!({"model_type": "internvideo2", "d_model": IV_HIDDEN, "num_heads": 2,
               "img_size": IMAGE, "patch_size": 14, "num_frames": FRAMES, "tubelet_size": 1,
               "depth": 2, "qkv_bias": false}),
    );
    let mut t = Tensors::default();
    let d = IV_HIDDEN;
    let mlp = (d as f64 * 48.0 / 11.0) as usize;
    t.add("vision_tower.patch_embed.proj.weight", &[d, 3, 1, 14, 14]);
    t.add("vision_tower.patch_embed.proj.bias", &[d]);
    t.add("vision_tower.cls_token", &[1, 1, d]);
    t.add("vision_tower.pos_embed", &[1, 1 + FRAMES * 4, d]);
    t.add("vision_tower.img_pos_embed", &[1, 5, d]);
    for i in 0..2 {
        let b = format!("vision_tower.blocks.{i}");
        for n in ["norm1", "norm2", "attn.q_norm", "attn.k_norm"] {
            t.add(format!("{b}.{n}.weight"), &[d]);
        }
        t.add(format!("{b}.attn.qkv.weight"), &[3 * d, d]);
        t.add(format!("{b}.attn.proj.weight"), &[d, d]);
        t.add(format!("{b}.attn.proj.bias"), &[d]);
        t.add(format!("{b}.ls1.gamma"), &[d]);
        t.add(format!("{b}.ls2.gamma"), &[d]);
        t.add(format!("{b}.mlp.fc1.weight"), &[mlp, d]);
        t.add(format!("{b}.mlp.fc1.bias"), &[mlp]);
        t.add(format!("{b}.mlp.fc2.weight"), &[d, mlp]);
        t.add(format!("{b}.mlp.fc2.bias"), &[d]);
    }
    t.add("vision_tower.clip_projector.norm1_q.weight", &[d]);
    t.add("vision_tower.clip_decoder.0.head.weight", &[5, d]);
    t.save(&v.join("model.safetensors"));

    let c = dir.join("mm_connector");
    let h = LLM_HIDDEN;
    let vision = SIGLIP_HIDDEN + IV_HIDDEN;
    write_json(
        &c.join("config.json"),
        json!({"model_type": "mm_connector", "projector_type": "mlp2x_gelu",
               "resampler_type": "perciver", "num_output_tokens": TOKENS_PER_CLIP,
               "resampler_depth": 1, "resampler_n_heads": 2, "resampler_head_dim": 3,
               "num_key_value_heads": 1, "ff_multi": 2, "hidden_act": "silu",
               "text_hidden_size": h, "vision_hidden_size": vision,
               "token_input_shape": [2, 2, 2]}),
    );
    let mut t = Tensors::default();
    t.add("proj.0.weight", &[h, vision]);
    t.add("proj.0.bias", &[h]);
    t.add("proj.2.weight", &[h, h]);
    t.add("proj.2.bias", &[h]);
    t.add("resampler.latents", &[TOKENS_PER_CLIP, h]);
    let norms = |t: &mut Tensors, n: &str| {
        t.add(format!("{n}.norm.weight"), &[h]);
        t.add(format!("{n}.norm.bias"), &[h]);
        t.add(format!("{n}.wheight"), &[h]);
    };
    let l = "resampler.layers.0";
    for n in [
        "input_latents_norm",
        "input_context_norm",
        "post_attention_layernorm",
    ] {
        norms(&mut t, &format!("{l}.{n}"));
    }
    norms(&mut t, "resampler.norm");
    t.add(format!("{l}.self_attn.q_proj.weight"), &[6, h]);
    t.add(format!("{l}.self_attn.k_proj.weight"), &[3, h]);
    t.add(format!("{l}.self_attn.v_proj.weight"), &[3, h]);
    t.add(format!("{l}.self_attn.o_proj.weight"), &[h, 6]);
    t.add(format!("{l}.mlp.gate_proj.weight"), &[2 * h, h]);
    t.add(format!("{l}.mlp.up_proj.weight"), &[2 * h, h]);
    t.add(format!("{l}.mlp.down_proj.weight"), &[h, 2 * h]);
    t.save(&c.join("model.safetensors"));

    let q = dir.join("llm");
    write_json(
        &q.join("config.json"),
        json!({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
               "vocab_size": VOCAB, "hidden_size": h, "intermediate_size": 16,
               "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
               "rope_parameters": {"rope_theta": 1000.0, "rope_type": "default"},
               "rms_norm_eps": 1e-6, "tie_word_embeddings": false}),
    );
    let mut first = Tensors::default();
    first.add("model.embed_tokens.weight", &[VOCAB, h]);
    let l = "model.layers.0";
    first.add(format!("{l}.input_layernorm.weight"), &[h]);
    first.add(format!("{l}.post_attention_layernorm.weight"), &[h]);
    first.add(format!("{l}.self_attn.q_proj.weight"), &[h, h]);
    first.add(format!("{l}.self_attn.q_proj.bias"), &[h]);
    for n in ["k_proj", "v_proj"] {
        first.add(format!("{l}.self_attn.{n}.weight"), &[4, h]);
        first.add(format!("{l}.self_attn.{n}.bias"), &[4]);
    }
    first.add(format!("{l}.self_attn.o_proj.weight"), &[h, h]);
    let mut second = Tensors::default();
    second.add(format!("{l}.mlp.gate_proj.weight"), &[16, h]);
    second.add(format!("{l}.mlp.up_proj.weight"), &[16, h]);
    second.add(format!("{l}.mlp.down_proj.weight"), &[h, 16]);
    second.add("model.norm.weight", &[h]);
    second.add("lm_head.weight", &[VOCAB, h]);
    let shards = [
        ("model-00001-of-00002.safetensors", &first),
        ("model-00002-of-00002.safetensors", &second),
    ];
    let mut weight_map = serde_json::Map::new();
    for (file, tensors) in shards {
        tensors.save(&q.join(file));
        for name in tensors.map.keys() {
            weight_map.insert(name.clone(), json!(file));
        }
    }
    write_json(
        &q.join("model.safetensors.index.json"),
        json!({"metadata": {}, "weight_map": weight_map}),
    );
}
