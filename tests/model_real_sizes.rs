//! The model at the published widths of Apollo-1.5B/3B/7B-t32: a random-weight checkpoint with
//! one layer per stack (checkpoint::synthetic), loaded through the real loader in bf16 on the CPU,
//! must hold every tensor at the shape apollo-modules.md gives and carry one clip of real-size
//! pixels through the encoders, the connector and the llm to finite logits.
//!
//! The presets run one at a time (the 7B one alone holds 2.7 GB of weights).

use apollo::checkpoint::synthetic::{random_clip, write_checkpoint, Layers, Preset};
use apollo::checkpoint::Checkpoint;
use apollo::model::input::{positions, video_rows};
use apollo::model::ApolloModel;
use apollo::pipeline::batch::encode_clips;
use apollo::prompt::tokens::PromptTokenizer;
use apollo::prompt::video::VIDEO_TOKEN;
use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The published llm widths (Qwen2.5 of each size).
struct Llm {
    hidden: usize,
    intermediate: usize,
    heads: usize,
    kv_heads: usize,
    vocab: usize,
    tied: bool,
}

/// Every tensor in the safetensors files of one component folder.
fn tensors(dir: &Path) -> MmapedSafetensors {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    // SAFETY: read-only maps of files this test wrote and does not change.
    unsafe { MmapedSafetensors::multi(&files) }.unwrap()
}

fn assert_shapes(dir: &Path, want: &[(&str, Vec<usize>)]) {
    let stored = tensors(dir);
    for (name, shape) in want {
        let view = stored
            .get(name)
            .unwrap_or_else(|e| panic!("{}: {name}: {e}", dir.display()));
        assert_eq!(view.shape(), shape.as_slice(), "{name}");
        assert!(
            DType::try_from(view.dtype()).is_ok_and(|d| d == DType::BF16),
            "{name}"
        );
    }
}

/// Shapes from apollo-modules.md (SigLIP-SO400M, InternVideo2-1B, the "-t32" connector) and
/// the Qwen2.5 configs.
fn assert_published_shapes(dir: &Path, llm: &Llm) {
    let h = llm.hidden;
    assert_shapes(
        &dir.join("vision_tower/siglip-so400m-patch14-384"),
        &[
            (
                "vision_model.embeddings.patch_embedding.weight",
                vec![1152, 3, 14, 14],
            ),
            (
                "vision_model.embeddings.position_embedding.weight",
                vec![729, 1152],
            ),
            (
                "vision_model.encoder.layers.0.self_attn.q_proj.weight",
                vec![1152, 1152],
            ),
            (
                "vision_model.encoder.layers.0.mlp.fc1.weight",
                vec![4304, 1152],
            ),
            ("vision_model.head.probe", vec![1, 1, 1152]),
        ],
    );
    assert_shapes(
        &dir.join("vision_tower/internvideo2"),
        &[
            ("patch_embed.proj.weight", vec![1408, 3, 1, 14, 14]),
            ("cls_token", vec![1, 1, 1408]),
            ("pos_embed", vec![1, 1025, 1408]),
            ("blocks.0.attn.qkv.weight", vec![3 * 1408, 1408]),
            ("blocks.0.mlp.fc1.weight", vec![6144, 1408]),
            ("clip_decoder.5.head.weight", vec![3200, 1408]),
        ],
    );
    assert_shapes(
        &dir.join("mm_connector"),
        &[
            ("proj.0.weight", vec![h, 2560]),
            ("resampler.latents", vec![128, h]),
            ("resampler.layers.0.self_attn.q_proj.weight", vec![1536, h]),
            ("resampler.layers.0.self_attn.k_proj.weight", vec![384, h]),
            ("resampler.layers.0.self_attn.o_proj.weight", vec![h, 1536]),
            ("resampler.layers.0.mlp.gate_proj.weight", vec![4 * h, h]),
        ],
    );
    let mut want = vec![
        ("model.embed_tokens.weight", vec![llm.vocab, h]),
        (
            "model.layers.0.self_attn.q_proj.weight",
            vec![llm.heads * 128, h],
        ),
        (
            "model.layers.0.self_attn.k_proj.weight",
            vec![llm.kv_heads * 128, h],
        ),
        (
            "model.layers.0.mlp.gate_proj.weight",
            vec![llm.intermediate, h],
        ),
    ];
    if !llm.tied {
        want.push(("lm_head.weight", vec![llm.vocab, h]));
    }
    assert_shapes(&dir.join("llm"), &want);
    assert_eq!(
        tensors(&dir.join("llm")).get("lm_head.weight").is_ok(),
        !llm.tied
    );
}

fn assert_finite(what: &str, t: &Tensor) {
    let values = t
        .to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!(values.iter().all(|v| v.is_finite()), "{what} not finite");
}

/// Writes the preset with one layer per stack, checks its tensors, and runs one clip through
/// the whole model.
fn run_preset(preset: Preset, llm: Llm) {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(dir.path(), preset, Layers::Run(1)).unwrap();
    assert_published_shapes(dir.path(), &llm);

    let checkpoint = Checkpoint::open(dir.path()).unwrap();
    let mut model = ApolloModel::load(&checkpoint, &Device::Cpu, DType::BF16)
        .unwrap_or_else(|e| panic!("{}: {e}", preset.name()));
    assert_eq!(model.tokens_per_clip(), 128);
    let (siglip, internvideo2) = random_clip(model.config(), 1);
    assert_eq!(
        (siglip.shape, internvideo2.shape),
        ([4, 3, 384, 384], [3, 4, 224, 224])
    );
    let rows = encode_clips(&model, &[siglip], &[internvideo2]).unwrap();
    assert_eq!(rows.dims(), &[128, llm.hidden]);
    assert_finite("video rows", &rows);

    // A short ChatML turn around the clip, through the checkpoint's own tokenizer.
    let tokenizer = PromptTokenizer::from_file(&checkpoint.layout.tokenizer()).unwrap();
    let prompt = format!(
        "<|im_start|>user\n{}\nWhat?<|im_end|>\n<|im_start|>assistant\n",
        VIDEO_TOKEN.repeat(128)
    );
    let chunks = tokenizer.tokenize(&prompt).unwrap();
    assert_eq!(video_rows(&chunks), 128);
    let embeds = model.embed_prompt(&chunks, &rows).unwrap();
    let logits = model.forward(&embeds, 0).unwrap();
    assert_eq!(logits.dims(), &[llm.vocab]);
    assert_finite("prefill logits", &logits);

    let next: u32 = logits.argmax(0).unwrap().to_scalar().unwrap();
    let step = model.embed_tokens(&[next]).unwrap();
    let logits = model.forward(&step, positions(&chunks)).unwrap();
    assert_eq!(logits.dims(), &[llm.vocab]);
    assert_finite("decode logits", &logits);
}

#[test]
fn apollo_1_5b_widths() {
    run_preset(
        Preset::Apollo1_5B,
        Llm {
            hidden: 1536,
            intermediate: 8960,
            heads: 12,
            kv_heads: 2,
            vocab: 151936,
            tied: true,
        },
    );
}

#[test]
fn apollo_3b_widths() {
    run_preset(
        Preset::Apollo3B,
        Llm {
            hidden: 2048,
            intermediate: 11008,
            heads: 16,
            kv_heads: 2,
            vocab: 151936,
            tied: true,
        },
    );
}

#[test]
fn apollo_7b_widths() {
    run_preset(
        Preset::Apollo7B,
        Llm {
            hidden: 3584,
            intermediate: 18944,
            heads: 28,
            kv_heads: 4,
            vocab: 152064,
            tied: false,
        },
    );
}
