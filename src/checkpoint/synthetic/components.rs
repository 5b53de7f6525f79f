//! The tensor layout of each component, written down once: names and shapes as the
//! published files hold them, at any [`Sizes`](super::Sizes), with each component's config.

use super::tensors::{write_json, write_safetensors, write_shards, Sharding, Specs};
use super::tokenizer::{byte_level_tokenizer, BOS, EOS};
use super::{
    InternVideo2Sizes, QwenSizes, SiglipSizes, Sizes, IV2_DEFAULT_DEPTH, MODEL_MAX_LENGTH,
};
use crate::checkpoint::layout::{
    CONFIG, GENERATION_CONFIG, PREPROCESSOR_CONFIG, SINGLE, TOKENIZER,
};
use crate::error::Result;
use serde_json::{json, Value};
use std::path::Path;

/// SigLIP as transformers 4.x saves a SiglipVisionModel (`vision_model.` names), with the
/// pooling head that Apollo does not use.
pub(super) fn write_siglip(dir: &Path, s: &SiglipSizes, layers: usize) -> Result<()> {
    let (d, patch) = (s.hidden, s.patch);
    let grid = s.image / patch;
    write_json(
        &dir.join(CONFIG),
        &json!({
            "architectures": ["SiglipVisionModel"], "attention_dropout": 0.0,
            "hidden_act": "gelu_pytorch_tanh", "hidden_size": d, "image_size": s.image,
            "intermediate_size": s.intermediate, "layer_norm_eps": 1e-6,
            "model_type": "siglip_vision_model", "num_attention_heads": s.heads,
            "num_channels": 3, "num_hidden_layers": layers, "patch_size": patch,
            "torch_dtype": "bfloat16",
        }),
    )?;
    write_json(
        &dir.join(PREPROCESSOR_CONFIG),
        &json!({
            "do_convert_rgb": null, "do_normalize": true, "do_rescale": true, "do_resize": true,
            "image_mean": [0.5, 0.5, 0.5], "image_processor_type": "SiglipImageProcessor",
            "image_std": [0.5, 0.5, 0.5], "resample": 3,
            "rescale_factor": 1.0 / 255.0, "size": {"height": s.image, "width": s.image},
        }),
    )?;
    let mut t = Specs::default();
    t.weight(
        "vision_model.embeddings.patch_embedding.weight",
        &[d, 3, patch, patch],
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
        t.linear(&format!("{l}.mlp.fc1"), d, s.intermediate, true);
        t.linear(&format!("{l}.mlp.fc2"), s.intermediate, d, true);
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
    t.linear(&format!("{h}.mlp.fc1"), d, s.intermediate, true);
    t.linear(&format!("{h}.mlp.fc2"), s.intermediate, d, true);
    write_safetensors(&dir.join(SINGLE), &t.specs)
}

/// InternVideo2 as the training class saves it (under `v.prefix`), with its image and CLIP
/// position embeddings and distillation heads; `depth` goes into the config only when it is
/// not the training class's 40.
pub(super) fn write_internvideo2(dir: &Path, v: &InternVideo2Sizes, blocks: usize) -> Result<()> {
    let (d, patch) = (v.hidden, v.patch);
    let mut cfg = json!({
        "architectures": ["InternVideo2Model"],
        "attn_pool_num_heads": v.heads,
        "auto_map": {"AutoConfig": "config.InternVideo2Config",
                     "AutoModel": "modeling_internvideo2.InternVideo2Model"},
        "checkpoint_num": 0, "clip_embed_dim": v.clip_embed, "clip_norm_type": "l2",
        "clip_return_layer": v.clip_return_layers, "clip_student_return_interval": 1,
        "clip_teacher_embed_dim": v.clip_teacher,
        "clip_teacher_final_dim": v.clip_teacher_final, "d_model": d,
        "img_size": v.image, "model_type": "internvideo2", "num_frames": v.frames,
        "num_heads": v.heads, "patch_size": patch, "qkv_bias": false,
        "sep_image_video_pos_embed": true, "torch_dtype": "bfloat16", "tubelet_size": 1,
        "use_checkpoint": false, "use_flash_attn": false, "use_fused_mlp": false,
        "use_fused_rmsnorm": false,
    });
    if blocks != IV2_DEFAULT_DEPTH {
        cfg["depth"] = json!(blocks);
    }
    write_json(&dir.join(CONFIG), &cfg)?;

    let image_tokens = 1 + (v.image / patch).pow(2);
    let video_tokens = 1 + v.frames * (v.image / patch).pow(2);
    // int(d_model * 48 / 11), as timm's Block computes it.
    let mlp = (d as f64 * 48.0 / 11.0) as usize;
    let mut t = Specs::under(v.prefix);
    t.weight("patch_embed.proj.weight", &[d, 3, 1, patch, patch]);
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
        t.linear(&format!("{b}.mlp.fc1"), d, mlp, true);
        t.linear(&format!("{b}.mlp.fc2"), mlp, d, true);
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
    t.linear(&format!("{p}.cross_attn.proj"), d, v.clip_embed, true);
    for i in 0..v.clip_return_layers {
        t.linear(&format!("clip_decoder.{i}.head"), d, v.clip_teacher, true);
        t.norm(&format!("clip_decoder.{i}.norm"), v.clip_teacher, true);
    }
    let (embed, last) = (v.clip_embed, v.clip_teacher_final);
    t.linear("final_clip_decoder.head", embed, last, true);
    t.norm("final_clip_decoder.norm", last, true);
    write_safetensors(&dir.join(SINGLE), &t.specs)
}

/// The connector (an "mlp{N}x_gelu" projector, a one-layer perceiver); returns its config.
pub(super) fn write_connector(dir: &Path, sizes: &Sizes, grid: [usize; 3]) -> Result<Value> {
    let c = &sizes.connector;
    let hidden = sizes.llm.hidden;
    let vision = sizes.siglip.hidden + sizes.internvideo2.hidden;
    let cfg = json!({
        "architectures": ["Connector"], "attention_dropout": 0.0, "ff_multi": c.ff_multi,
        "hidden_act": "silu", "model_type": "mm_connector",
        "num_key_value_heads": c.kv_heads, "num_output_tokens": c.tokens_per_clip,
        "num_patches": 24, "projector_type": format!("mlp{}x_gelu", c.projector_depth),
        "resampler_depth": 1, "resampler_head_dim": c.head_dim,
        "resampler_n_heads": c.heads, "resampler_type": "perciver", "rms_norm_eps": 1e-6,
        "text_hidden_size": hidden, "token_input_shape": grid, "torch_dtype": "bfloat16",
        "vision_hidden_size": vision,
    });
    write_json(&dir.join(CONFIG), &cfg)?;
    let (q, kv) = (c.heads * c.head_dim, c.kv_heads * c.head_dim);
    let mut t = Specs::default();
    // Linear layers at 0, 2, 4...: a GELU between each two.
    for layer in 0..c.projector_depth {
        let inputs = if layer == 0 { vision } else { hidden };
        t.linear(&format!("proj.{}", 2 * layer), inputs, hidden, true);
    }
    t.embedding("resampler.latents", &[c.tokens_per_clip, hidden]);
    let l = "resampler.layers.0";
    t.weighted_norm(&format!("{l}.input_latents_norm"), hidden);
    t.weighted_norm(&format!("{l}.input_context_norm"), hidden);
    t.linear(&format!("{l}.self_attn.q_proj"), hidden, q, false);
    t.linear(&format!("{l}.self_attn.k_proj"), hidden, kv, false);
    t.linear(&format!("{l}.self_attn.v_proj"), hidden, kv, false);
    t.linear(&format!("{l}.self_attn.o_proj"), q, hidden, false);
    t.weighted_norm(&format!("{l}.post_attention_layernorm"), hidden);
    let inner = hidden * c.ff_multi;
    t.linear(&format!("{l}.mlp.gate_proj"), hidden, inner, false);
    t.linear(&format!("{l}.mlp.up_proj"), hidden, inner, false);
    t.linear(&format!("{l}.mlp.down_proj"), inner, hidden, false);
    t.weighted_norm("resampler.norm", hidden);
    write_safetensors(&dir.join(SINGLE), &t.specs)?;
    Ok(cfg)
}

/// The Qwen2 llm in transformers' layout; returns its config.
pub(super) fn write_llm(dir: &Path, q: &QwenSizes, sharding: Sharding) -> Result<Value> {
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
    write_shards(dir, t.specs, sharding)?;
    Ok(cfg)
}
