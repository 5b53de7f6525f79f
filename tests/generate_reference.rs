//! Greedy decoding with the checkpoint's repetition penalty must pick the ids transformers'
//! `generate(inputs_embeds=..., do_sample=False)` picked on the tiny reference checkpoint
//! (tests/fixtures/tiny-apollo-reference, made by tests/reference/make_model_fixtures.py).

use apollo::checkpoint::Checkpoint;
use apollo::generate::sampler::{TokenSampler, TokenSampling};
use apollo::model::ApolloModel;
use candle_core::{DType, Device, Tensor};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The tiny checkpoint with `llm/` taken from `llm_dir`.
fn checkpoint_with_llm(llm_dir: &Path, tmp: &Path) -> PathBuf {
    let base = fixtures().join("tiny-apollo");
    for entry in ["config.json", "vision_tower", "mm_connector"] {
        std::os::unix::fs::symlink(base.join(entry), tmp.join(entry)).unwrap();
    }
    std::os::unix::fs::symlink(llm_dir, tmp.join("llm")).unwrap();
    tmp.to_path_buf()
}

/// Greedy decoding with the KV cache, each step through the token sampler.
fn generate(
    model: &mut ApolloModel,
    embeds: &Tensor,
    params: TokenSampling,
    steps: usize,
) -> Vec<u32> {
    let mut sampler = TokenSampler::new(params, 0);
    let prompt_len = embeds.dim(0).unwrap();
    let mut logits = model.forward(embeds, 0).unwrap();
    let mut out = Vec::new();
    for offset in prompt_len..prompt_len + steps {
        let scores: Vec<f32> = logits.to_vec1().unwrap();
        let next = sampler.next_token(&scores, &out);
        out.push(next);
        let row = model.embed_tokens(&[next]).unwrap();
        logits = model.forward(&row, offset).unwrap();
    }
    out
}

#[test]
fn greedy_with_repetition_penalty_matches_transformers() {
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("tiny-apollo-reference/reference.json")).unwrap(),
    )
    .unwrap();
    let tensors = candle_core::safetensors::load(
        fixtures().join("tiny-apollo-reference/reference.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let embeds = &tensors["inputs_embeds"];
    let cases = [
        (
            fixtures().join("tiny-apollo/llm"),
            "greedy_ids_repetition_penalty",
        ),
        (
            fixtures().join("tiny-apollo-reference/llm-tied"),
            "llm_tied_greedy_ids_repetition_penalty",
        ),
    ];
    for (llm, key) in cases {
        let generation: Value = serde_json::from_str(
            &std::fs::read_to_string(llm.join("generation_config.json")).unwrap(),
        )
        .unwrap();
        let params = TokenSampling {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            repetition_penalty: generation["repetition_penalty"].as_f64().unwrap() as f32,
        };
        let tmp = tempfile::tempdir().unwrap();
        let dir = checkpoint_with_llm(&llm, tmp.path());
        let checkpoint = Checkpoint::open(&dir).unwrap();
        let mut model = ApolloModel::load(&checkpoint, &Device::Cpu, DType::F32).unwrap();
        let want: Vec<u32> = serde_json::from_value(reference[key].clone()).unwrap();
        assert_eq!(
            generate(&mut model, embeds, params, want.len()),
            want,
            "{key}"
        );
    }
}
