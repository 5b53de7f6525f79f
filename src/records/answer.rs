//! The record of one answered question (`ask --json`, each line of `caption`), and of a video
//! that failed.

use super::identity::{ModelIdentity, VideoIdentity};
use crate::cache::CacheUse;
use crate::generate::logprobs::{shortest, TokenLogprob};
use crate::generate::run::{Finish, GenerateOptions};
use crate::pipeline::{millis, Answer, Prepared, Prompt, Timings};
use crate::prompt::chat::Exchange;
use crate::video::clips::{Clip, ClipSampling};
use crate::video::decode::VideoInfo;
use crate::video::segment::{absolute_span, Segment};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Read back too (`caption --skip-existing`): a file that does not parse as a whole record is
/// not one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnswerRecord {
    #[serde(serialize_with = "super::lossy_path")]
    pub video: PathBuf,
    pub question: String,
    pub answer: String,
    /// The conversation's turn (`apollo chat`), from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<usize>,
    /// The repo id, or the directory given.
    pub model: String,
    pub clips: Vec<ClipSpan>,
    pub tokens: TokenCounts,
    /// Where the video's rows came from: the encoded-video cache (hit), computed and cached
    /// (miss), computed without the cache (off).
    #[serde(default = "cache_off")]
    pub cache: CacheUse,
    pub timings_ms: TimingsMs,
    /// Decode speed; null for a one-token answer.
    pub tokens_per_s: Option<f64>,
    pub finish: Finish,
    pub seed: u64,
    /// The token sampling (not the clip sampling).
    pub sampling: SamplingRecord,
    pub device: String,
    pub dtype: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Vec<TokenLogprob>>,
    pub inputs: AnswerInputs,
}

/// Everything the answer depends on (see [`super::identity`]): `caption --skip-existing`
/// reuses a record only when its inputs equal those of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswerInputs {
    /// Null when the video is not a regular file: such a record is never reused.
    pub video: Option<VideoIdentity>,
    pub question: String,
    /// The conversation before this question (`apollo chat`): each earlier question and the
    /// answer put back in the prompt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Exchange>,
    pub model: ModelIdentity,
    pub device: String,
    pub dtype: String,
    pub clip_sampling: ClipSamplingRecord,
    pub generation: GenerationInputs,
}

/// The clip sampling as resolved against the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipSamplingRecord {
    pub clip_duration: f64,
    pub frames_per_clip: usize,
    pub tokens_per_clip: usize,
    pub model_max_length: usize,
    pub clip_sampling_ratio: f64,
    /// `--start` and `--end` as given; null: the whole video.
    pub segment: Option<Segment>,
}

/// The token sampling, with the seed asked for (null: a random one) and the logprobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationInputs {
    #[serde(flatten)]
    pub sampling: SamplingRecord,
    pub seed: Option<u64>,
    pub logprobs: Option<usize>,
}

/// What a session holds of the inputs before a video and question are given.
pub struct Settings<'a> {
    pub run: &'a RunInfo,
    pub clips: &'a ClipSampling,
    pub options: &'a GenerateOptions,
    pub seed_asked: Option<u64>,
}

fn cache_off() -> CacheUse {
    CacheUse::Off
}

impl AnswerInputs {
    pub fn new(video: &Path, question: &str, settings: &Settings) -> Self {
        Self {
            video: VideoIdentity::of(video),
            ..Self::of_run(question, settings)
        }
    }

    /// What every video of a run shares: the inputs less the video (null).
    pub fn of_run(question: &str, settings: &Settings) -> Self {
        let c = settings.clips;
        Self {
            video: None,
            question: question.to_string(),
            history: Vec::new(),
            model: settings.run.identity.clone(),
            device: settings.run.device.clone(),
            dtype: settings.run.dtype.clone(),
            clip_sampling: ClipSamplingRecord {
                clip_duration: c.clip_duration,
                frames_per_clip: c.frames_per_clip,
                tokens_per_clip: c.tokens_per_clip,
                model_max_length: c.model_max_length,
                clip_sampling_ratio: c.clip_sampling_ratio,
                segment: c.segment,
            },
            generation: GenerationInputs {
                sampling: SamplingRecord::of(settings.options),
                seed: settings.seed_asked,
                logprobs: settings.options.logprobs,
            },
        }
    }
}

/// A sampled clip's span in seconds: in the video the model saw (a segment is its own video),
/// and in the whole video.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "StoredSpan")]
pub struct ClipSpan {
    pub start_s: f64,
    pub end_s: f64,
    pub absolute_start_s: f64,
    pub absolute_end_s: f64,
}

impl ClipSpan {
    pub fn of(info: &VideoInfo, clip: &Clip) -> Self {
        let (absolute_start_s, absolute_end_s) = absolute_span(info, clip);
        Self {
            start_s: clip.start_s,
            end_s: clip.end_s,
            absolute_start_s,
            absolute_end_s,
        }
    }
}

/// A span as a record holds it: one written before segments existed is of a whole video,
/// whose times are absolute.
#[derive(Deserialize)]
struct StoredSpan {
    start_s: f64,
    end_s: f64,
    absolute_start_s: Option<f64>,
    absolute_end_s: Option<f64>,
}

impl From<StoredSpan> for ClipSpan {
    fn from(s: StoredSpan) -> Self {
        Self {
            absolute_start_s: s.absolute_start_s.unwrap_or(s.start_s),
            absolute_end_s: s.absolute_end_s.unwrap_or(s.end_s),
            start_s: s.start_s,
            end_s: s.end_s,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenCounts {
    /// Prompt positions: text tokens and video rows.
    pub prompt: usize,
    pub video: usize,
    /// Prompt positions whose keys and values were computed for an earlier question or turn.
    #[serde(default)]
    pub reused: usize,
    /// Generated tokens, a final eos counted.
    pub generated: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimingsMs {
    /// Zero when the model was already loaded.
    pub load: f64,
    #[serde(flatten)]
    pub stages: StagesMs,
}

/// Milliseconds of each stage after loading, in the records of `ask` and `bench`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StagesMs {
    pub decode: f64,
    pub preprocess: f64,
    pub encode: f64,
    /// Hashing the video and reading or writing its cache entry.
    #[serde(default)]
    pub cache: f64,
    pub prefill: f64,
    pub generate: f64,
}

impl StagesMs {
    pub fn of(t: &Timings) -> Self {
        Self {
            decode: millis(t.decode),
            preprocess: millis(t.preprocess),
            encode: millis(t.encode),
            cache: millis(t.cache),
            prefill: millis(t.prefill),
            generate: millis(t.generate),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingRecord {
    pub temperature: f64,
    pub top_p: f64,
    pub top_k: usize,
    pub repetition_penalty: f64,
    pub max_new_tokens: usize,
}

impl SamplingRecord {
    pub fn of(options: &GenerateOptions) -> Self {
        let s = &options.sampling;
        Self {
            temperature: shortest(s.temperature),
            top_p: shortest(s.top_p),
            top_k: s.top_k,
            repetition_penalty: shortest(s.repetition_penalty),
            max_new_tokens: options.max_new_tokens,
        }
    }
}

/// The clips of a prepared video as records show them; taken before encoding consumes it.
pub fn clip_spans(prepared: &Prepared) -> Vec<ClipSpan> {
    prepared
        .plan
        .clips
        .iter()
        .map(|c| ClipSpan::of(&prepared.info, c))
        .collect()
}

/// The model, device and precision a record names.
pub struct RunInfo {
    pub model: String,
    pub identity: ModelIdentity,
    pub device: String,
    pub dtype: String,
}

impl AnswerRecord {
    /// The record of `answer` to `prompt`, the question of `inputs`, about `video` as it was
    /// named, whose clips are `clips`.
    pub fn new(
        video: &Path,
        inputs: AnswerInputs,
        settings: &Settings,
        clips: Vec<ClipSpan>,
        prompt: &Prompt,
        answer: Answer,
    ) -> Self {
        let g = answer.generation;
        let t = answer.timings;
        // Decode speed: the first token comes out of the prefill, each later one from one step.
        let steps = g.ids.len().saturating_sub(1);
        let tokens_per_s =
            (steps > 0 && !t.generate.is_zero()).then(|| steps as f64 / t.generate.as_secs_f64());
        Self {
            video: video.to_path_buf(),
            question: inputs.question.clone(),
            answer: g.text,
            turn: None,
            model: settings.run.model.clone(),
            clips,
            tokens: TokenCounts {
                prompt: prompt.positions(),
                video: prompt.video_tokens(),
                reused: g.reused,
                generated: g.ids.len(),
            },
            cache: answer.cache,
            timings_ms: TimingsMs {
                load: millis(t.load),
                stages: StagesMs::of(&t),
            },
            tokens_per_s,
            finish: g.finish,
            seed: settings.options.seed,
            sampling: SamplingRecord::of(settings.options),
            device: settings.run.device.clone(),
            dtype: settings.run.dtype.clone(),
            logprobs: g.logprobs,
            inputs,
        }
    }
}

/// The record of a video that failed (of one of its questions, when several are asked).
#[derive(Debug, Clone, Serialize)]
pub struct AnswerError {
    #[serde(serialize_with = "super::lossy_path")]
    pub video: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_recorded_before_segments_existed_reads_back_as_absolute() {
        let old: ClipSpan = serde_json::from_str(r#"{"start_s": 1.5, "end_s": 3.0}"#).unwrap();
        assert_eq!((old.absolute_start_s, old.absolute_end_s), (1.5, 3.0));
        let text = r#"{"start_s":0.0,"end_s":1.0,"absolute_start_s":5.0,"absolute_end_s":6.0}"#;
        let new: ClipSpan = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&new).unwrap(), text);
    }
}
