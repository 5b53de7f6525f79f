//! Every case of ../shared/golden/sampling_plans.json (computed with the reference's own
//! functions) must come out identical: clip indices, timestamps, ratio and the prompt bytes.

use apollo::prompt::video::video_prompt_with;
use apollo::video::clips::{plan_clips, ClipSampling};
use serde_json::Value;
use std::path::PathBuf;

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/golden/sampling_plans.json")
}

#[test]
fn every_golden_case_matches_the_reference() {
    let text = std::fs::read_to_string(golden_path())
        .expect("../shared/golden/sampling_plans.json must be beside the checkout");
    let doc: Value = serde_json::from_str(&text).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 664, "golden file has {} cases", cases.len());
    let mut failures = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        let cfg = ClipSampling {
            clip_duration: case["clip_duration"].as_f64().unwrap(),
            frames_per_clip: case["frames_per_clip"].as_u64().unwrap() as usize,
            tokens_per_clip: case["num_repeat_token"].as_u64().unwrap() as usize,
            model_max_length: case["model_max_length"].as_u64().unwrap() as usize,
            clip_sampling_ratio: case["clip_sampling_ratio"].as_f64().unwrap(),
            segment: None,
        };
        let fps = case["fps"].as_f64().unwrap();
        let total = case["total_frames"].as_u64().unwrap();
        let expected = &case["expected"];
        let got = plan_clips(total, fps, &cfg).unwrap_or_else(|e| panic!("case {n}: {e}"));

        let want_indices: Vec<Vec<u64>> =
            serde_json::from_value(expected["clip_indices"].clone()).unwrap();
        let got_indices: Vec<Vec<u64>> =
            got.clips.iter().map(|c| c.frame_indices.clone()).collect();
        let want_ts: Vec<(f64, f64)> =
            serde_json::from_value(expected["timestamps"].clone()).unwrap();
        let got_ts: Vec<(f64, f64)> = got.clips.iter().map(|c| (c.start_s, c.end_s)).collect();
        let prompt = video_prompt_with(
            &got,
            total as f64 / fps,
            cfg.clip_duration,
            "{VIDEO_TOKENS}",
        );

        if got.effective_ratio != expected["effective_ratio"].as_f64().unwrap() {
            failures.push(format!("case {n}: ratio {}", got.effective_ratio));
        }
        if got_indices != want_indices {
            failures.push(format!(
                "case {n} (fps {fps}, {total} frames): indices differ"
            ));
        }
        if got_ts != want_ts {
            failures.push(format!(
                "case {n} (fps {fps}, {total} frames): timestamps differ"
            ));
        }
        if prompt != expected["video_prompt"].as_str().unwrap() {
            failures.push(format!(
                "case {n} (fps {fps}, {total} frames): prompt differs"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
