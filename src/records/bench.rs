//! `apollo bench`'s report, and the plan it leaves in the work folder for
//! benches/pytorch_baseline.py (which prints the report's keys too).

use super::answer::StagesMs;
use crate::cache::CacheUse;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub device: String,
    pub dtype: String,
    pub model: BenchModel,
    pub video: BenchVideo,
    pub load_s: f64,
    pub decode_preprocess_frames_per_s: f64,
    pub siglip_frames_per_s: f64,
    pub internvideo2_frames_per_s: f64,
    pub connector_clips_per_s: f64,
    pub prompt_tokens: usize,
    pub video_tokens: usize,
    pub prefill_tokens_per_s: f64,
    pub generated_tokens: usize,
    pub decode_tokens_per_s: f64,
    pub time_to_first_token_s: f64,
    pub answer_timings_ms: AnswerTimingsMs,
    /// Null without a GPU (or without nvidia-smi).
    pub peak_gpu_memory_mib: Option<u64>,
    /// Null off Linux.
    pub peak_host_memory_mib: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchModel {
    /// "1.5b", "3b" or "7b"; null for a checkpoint given with --model-dir.
    pub preset: Option<&'static str>,
    /// Null for a checkpoint given with --model-dir.
    pub layers: Option<LayersRecord>,
    pub checkpoint: PathBuf,
}

/// "published", or the layers each stack runs.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum LayersRecord {
    Published(&'static str),
    Run(usize),
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchVideo {
    pub path: PathBuf,
    pub duration_s: f64,
    pub clips: usize,
    pub frames: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct AnswerTimingsMs {
    /// Opening the video, planning, tokenising.
    pub prepare: f64,
    #[serde(flatten)]
    pub stages: StagesMs,
}

/// `apollo bench --cache`: questions about one video, each to its first token.
#[derive(Debug, Clone, Serialize)]
pub struct QuestionsReport {
    pub device: String,
    pub dtype: String,
    pub model: BenchModel,
    pub video: BenchVideo,
    pub load_s: f64,
    pub questions: Vec<QuestionTiming>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QuestionTiming {
    /// Which question: the first (cache miss), a later run's (cache hit), a follow-up, another.
    pub case: String,
    pub cache: CacheUse,
    pub prompt_tokens: usize,
    /// Prompt positions whose keys and values came from an earlier question or turn.
    pub reused_tokens: usize,
    /// Opening and planning the video (its first question only), tokenising, the video's rows
    /// (hashing and the cache, or decoding, preprocessing and encoding) and the prefill.
    pub time_to_first_token_s: f64,
    pub timings_ms: AnswerTimingsMs,
}

/// What the baseline needs to run the same work: the checkpoint, the video, each clip's frame
/// indices, the prompt and its ids in the reference's form (`video_slot` for each video row).
#[derive(Debug, Clone, Serialize)]
pub struct BenchPlan {
    pub checkpoint: PathBuf,
    pub video: PathBuf,
    pub question: String,
    pub clip_frame_indices: Vec<Vec<u64>>,
    pub prompt: String,
    pub input_ids: Vec<i64>,
    pub video_slot: i64,
}
