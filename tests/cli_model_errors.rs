//! Broken checkpoints end to end: weights that make a stage compute NaN or infinity (exit 5,
//! naming the stage; in `caption` an error record per video), and a connector config no model
//! can have (exit 4, naming the file). Each case is the tiny checkpoint of tests/fixtures with
//! one thing changed.

mod common;

use candle_core::{Device, Tensor};
use common::{apollo, copy_of_tiny, run};
use serde_json::Value;
use std::path::Path;

/// Rewrites the tensor whose name ends with `tensor` in `file` through `edit`.
fn edit_tensor(file: &Path, tensor: &str, edit: impl Fn(&Tensor) -> Tensor) {
    let mut tensors = candle_core::safetensors::load(file, &Device::Cpu).unwrap();
    let name = tensors
        .keys()
        .find(|k| k.ends_with(tensor))
        .unwrap()
        .clone();
    let edited = edit(&tensors[&name]);
    tensors.insert(name, edited);
    candle_core::safetensors::save(&tensors, file).unwrap();
}

fn ask(model: &Path, extra: &[&str]) -> common::Run {
    run(apollo()
        .args(["ask", "--json", "--max-new-tokens", "3", "--model-dir"])
        .arg(model)
        .args(extra)
        .arg(common::real_video("bikes.mp4"))
        .arg("What is this?"))
}

#[test]
fn non_finite_weights_fail_the_stage_they_reach_with_exit_5() {
    let cases = [
        (
            "vision_tower/siglip-so400m-patch14-384/model.safetensors",
            "patch_embedding.bias",
            f64::NAN,
            "SigLIP features hold NaN or infinite values",
        ),
        (
            "mm_connector/model.safetensors",
            "proj.0.bias",
            f64::INFINITY,
            "video rows (connector output) hold NaN",
        ),
        (
            "llm/model-00002-of-00002.safetensors",
            "model.norm.weight",
            f64::NAN,
            "prefill logits hold NaN",
        ),
    ];
    for (file, tensor, bad, stage) in cases {
        let dir = tempfile::tempdir().unwrap();
        let model = copy_of_tiny(dir.path());
        // Every value of the tensor, as one value would do.
        edit_tensor(&model.join(file), tensor, |t| t.affine(0.0, bad).unwrap());
        let r = ask(&model, &[]);
        assert_eq!(r.code, 5, "{file}: {}", r.stderr);
        assert_eq!(r.stdout, "", "{file}");
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(r.stderr.contains(stage), "{file}: {}", r.stderr);
        assert!(r.stderr.contains("bikes.mp4"), "{}", r.stderr);
    }
}

#[test]
fn an_f16_overflow_is_told_apart_and_f32_answers() {
    let dir = tempfile::tempdir().unwrap();
    let model = copy_of_tiny(dir.path());
    // Logits of some 10^6: finite in f32, beyond f16's 65504.
    edit_tensor(
        &model.join("llm/model-00002-of-00002.safetensors"),
        "lm_head.weight",
        |t| t.affine(1e5, 0.0).unwrap(),
    );
    let r = ask(&model, &["--dtype", "f16"]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(r.stderr.contains("logits"), "{}", r.stderr);
    assert!(
        r.stderr.contains("or f16 overflows (try --dtype f32)"),
        "{}",
        r.stderr
    );
    let r = ask(&model, &["--dtype", "f32"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn caption_gives_each_video_an_error_record_for_non_finite_values() {
    let dir = tempfile::tempdir().unwrap();
    let model = copy_of_tiny(dir.path());
    edit_tensor(
        &model.join("vision_tower/internvideo2/model.safetensors"),
        "patch_embed.proj.bias",
        |t| t.affine(0.0, f64::NAN).unwrap(),
    );
    let videos = [
        common::real_video("bikes.mp4"),
        common::real_video("carphone_pristine.mp4"),
    ];
    let r = run(apollo()
        .args(["caption", "--model-dir"])
        .arg(&model)
        .args(&videos));
    assert_eq!(r.code, 5, "{}", r.stderr);
    let records: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2);
    for (record, video) in records.iter().zip(&videos) {
        assert_eq!(record["video"], video.display().to_string());
        let error = record["error"].as_str().unwrap();
        assert!(error.contains("InternVideo2 features hold NaN"), "{error}");
        assert!(record.get("answer").is_none());
    }
}

#[test]
fn a_connector_config_with_no_output_tokens_is_a_model_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = copy_of_tiny(dir.path());
    let file = model.join("mm_connector/config.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    config["num_output_tokens"] = 0.into();
    std::fs::write(&file, config.to_string()).unwrap();
    let expected = format!("apollo: {file:?}: num_output_tokens is 0; it must be at least 1\n");
    let r = ask(&model, &[]);
    assert_eq!((r.code, r.stderr.as_str()), (4, expected.as_str()));
    let r = run(apollo()
        .args(["inspect", "--model-dir"])
        .arg(&model)
        .arg(common::real_video("bikes.mp4")));
    assert_eq!((r.code, r.stderr.as_str()), (4, expected.as_str()));
}
