//! The record of one inspected video (`inspect --json`), and of a video that failed.

use super::answer::ClipSpan;
use crate::video::clips::Clip;
use crate::video::decode::VideoInfo;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize)]
pub struct InspectRecord {
    /// path, width, height, fps, total_frames, duration_s, rotation, codec, and segment (with
    /// --start or --end).
    #[serde(flatten)]
    pub video: VideoInfo,
    pub effective_ratio: f64,
    pub clips: Vec<InspectClip>,
    pub frames_to_decode: usize,
    pub video_tokens: usize,
    /// With a checkpoint, whose tokenizer counts the text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<PromptTokens>,
    /// The exact prompt, video tokens expanded.
    pub video_prompt: String,
}

/// A sampled clip: its span (in the video the model sees and in the whole video) and its
/// frames, counted in the video the model sees (a segment is its own video).
#[derive(Debug, Clone, Serialize)]
pub struct InspectClip {
    #[serde(flatten)]
    pub span: ClipSpan,
    pub frame_indices: Vec<u64>,
}

impl InspectClip {
    pub fn of(info: &VideoInfo, clip: &Clip) -> Self {
        Self {
            span: ClipSpan::of(info, clip),
            frame_indices: clip.frame_indices.clone(),
        }
    }
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
