//! The record of one answered question (`ask --json`, each line of `caption`), and of a video
//! that failed.

use crate::generate::logprobs::{shortest, TokenLogprob};
use crate::generate::run::{Finish, GenerateOptions};
use crate::pipeline::{millis, Answer, Prepared, Timings};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize)]
pub struct AnswerRecord {
    #[serde(serialize_with = "super::lossy_path")]
    pub video: PathBuf,
    pub question: String,
    pub answer: String,
    /// The repo id, or the directory given.
    pub model: String,
    pub clips: Vec<ClipSpan>,
    pub tokens: TokenCounts,
    pub timings_ms: TimingsMs,
    /// Decode speed; null for a one-token answer.
    pub tokens_per_s: Option<f64>,
    pub finish: Finish,
    pub seed: u64,
    /// The token sampling (not the clip sampling).
    pub sampling: SamplingRecord,
    pub device: String,
    pub dtype: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Vec<TokenLogprob>>,
}

/// A sampled clip's span in seconds.
#[derive(Debug, Clone, Serialize)]
pub struct ClipSpan {
    pub start_s: f64,
    pub end_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenCounts {
    /// Prompt positions: text tokens and video rows.
    pub prompt: usize,
    pub video: usize,
    /// Generated tokens, a final eos counted.
    pub generated: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimingsMs {
    /// Zero when the model was already loaded.
    pub load: f64,
    #[serde(flatten)]
    pub stages: StagesMs,
}

/// Milliseconds of each stage after loading, in the records of `ask` and `bench`.
#[derive(Debug, Clone, Serialize)]
pub struct StagesMs {
    pub decode: f64,
    pub preprocess: f64,
    pub encode: f64,
    pub prefill: f64,
    pub generate: f64,
}

impl StagesMs {
    pub fn of(t: &Timings) -> Self {
        Self {
            decode: millis(t.decode),
            preprocess: millis(t.preprocess),
            encode: millis(t.encode),
            prefill: millis(t.prefill),
            generate: millis(t.generate),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SamplingRecord {
    pub temperature: f64,
    pub top_p: f64,
    pub top_k: usize,
    pub repetition_penalty: f64,
    pub max_new_tokens: usize,
}

/// What the record needs of a prepared video; taken before answering consumes it.
pub struct VideoSummary {
    pub clips: Vec<ClipSpan>,
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
                .map(|c| ClipSpan {
                    start_s: c.start_s,
                    end_s: c.end_s,
                })
                .collect(),
            prompt_tokens: prepared.prompt_tokens(),
            video_tokens: prepared.video_tokens(),
        }
    }
}

/// The model, device and precision a record names.
pub struct RunInfo {
    pub model: String,
    pub device: String,
    pub dtype: String,
}

impl AnswerRecord {
    pub fn new(
        video: &Path,
        question: &str,
        run: &RunInfo,
        summary: VideoSummary,
        answer: Answer,
        options: &GenerateOptions,
    ) -> Self {
        let g = answer.generation;
        let t = answer.timings;
        // Decode speed: the first token comes out of the prefill, each later one from one step.
        let steps = g.ids.len().saturating_sub(1);
        let tokens_per_s =
            (steps > 0 && !t.generate.is_zero()).then(|| steps as f64 / t.generate.as_secs_f64());
        let s = &options.sampling;
        Self {
            video: video.to_path_buf(),
            question: question.to_string(),
            answer: g.text,
            model: run.model.clone(),
            clips: summary.clips,
            tokens: TokenCounts {
                prompt: summary.prompt_tokens,
                video: summary.video_tokens,
                generated: g.ids.len(),
            },
            timings_ms: TimingsMs {
                load: millis(t.load),
                stages: StagesMs::of(&t),
            },
            tokens_per_s,
            finish: g.finish,
            seed: options.seed,
            sampling: SamplingRecord {
                temperature: shortest(s.temperature),
                top_p: shortest(s.top_p),
                top_k: s.top_k,
                repetition_penalty: shortest(s.repetition_penalty),
                max_new_tokens: options.max_new_tokens,
            },
            device: run.device.clone(),
            dtype: run.dtype.clone(),
            logprobs: g.logprobs,
        }
    }
}

/// The record of a video that failed.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerError {
    #[serde(serialize_with = "super::lossy_path")]
    pub video: PathBuf,
    pub error: String,
}
