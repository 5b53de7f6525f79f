//! The JSON record of one answered question (`ask --json`, each line of `caption`), schema in
//! README.md.

use crate::generate::logprobs::shortest;
use crate::generate::run::GenerateOptions;
use crate::pipeline::{millis, Answer, Prepared};
use serde_json::{json, Value};
use std::path::Path;

/// What the record needs of a prepared video; taken before answering consumes it.
pub struct VideoSummary {
    pub clips: Vec<(f64, f64)>,
    pub prompt_tokens: usize,
    pub video_tokens: usize,
}

impl VideoSummary {
    pub fn of(prepared: &Prepared) -> Self {
        Self {
            clips: prepared
                .plan
                .clips
                .iter()
                .map(|c| (c.start_s, c.end_s))
                .collect(),
            prompt_tokens: prepared.ids.len(),
            video_tokens: prepared.video_tokens,
        }
    }
}

/// The model, device and precision a record names.
pub struct RunInfo<'a> {
    pub model: &'a str,
    pub device: &'a str,
    pub dtype: String,
}

pub fn answer_record(
    video: &Path,
    question: &str,
    run: &RunInfo,
    summary: &VideoSummary,
    answer: &Answer,
    options: &GenerateOptions,
) -> Value {
    let g = &answer.generation;
    let t = &answer.timings;
    // Decode speed: the first token comes out of the prefill, each later one from one step.
    let steps = g.ids.len().saturating_sub(1);
    let tokens_per_s = if steps > 0 && !t.generate.is_zero() {
        json!(steps as f64 / t.generate.as_secs_f64())
    } else {
        Value::Null
    };
    let s = &options.sampling;
    let mut record = json!({
        "video": video,
        "question": question,
        "answer": g.text,
        "model": run.model,
        "clips": summary.clips.iter().map(|(start, end)| json!({"start_s": start, "end_s": end})).collect::<Vec<_>>(),
        "tokens": {
            "prompt": summary.prompt_tokens,
            "video": summary.video_tokens,
            "generated": g.ids.len(),
        },
        "timings_ms": {
            "load": millis(t.load),
            "decode": millis(t.decode),
            "preprocess": millis(t.preprocess),
            "encode": millis(t.encode),
            "prefill": millis(t.prefill),
            "generate": millis(t.generate),
        },
        "tokens_per_s": tokens_per_s,
        "finish": g.finish,
        "seed": options.seed,
        "sampling": {
            "temperature": shortest(s.temperature),
            "top_p": shortest(s.top_p),
            "top_k": s.top_k,
            "repetition_penalty": shortest(s.repetition_penalty),
            "max_new_tokens": options.max_new_tokens,
        },
        "device": run.device,
        "dtype": run.dtype,
    });
    if let Some(logprobs) = &g.logprobs {
        record["logprobs"] = json!(logprobs);
    }
    record
}

/// The record of a video that failed.
pub fn error_record(video: &Path, error: &crate::error::Error) -> Value {
    json!({"video": video, "error": error.to_string()})
}
