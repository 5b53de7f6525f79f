//! The record of one inspected video (`inspect --json`), and of a video that failed.

use crate::video::clips::Clip;
use crate::video::decode::VideoInfo;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize)]
pub struct InspectRecord {
    /// path, width, height, fps, total_frames, duration_s, rotation, codec.
    #[serde(flatten)]
    pub video: VideoInfo,
    pub effective_ratio: f64,
    pub clips: Vec<Clip>,
    pub frames_to_decode: usize,
    pub video_tokens: usize,
    /// With a checkpoint, whose tokenizer counts the text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<PromptTokens>,
    /// The exact prompt, video tokens expanded.
    pub video_prompt: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PromptTokens {
    pub text: usize,
    pub video: usize,
    pub total: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct InspectError {
    #[serde(serialize_with = "super::lossy_path")]
    pub path: PathBuf,
    pub error: String,
}
