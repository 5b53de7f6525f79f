//! Apollo's clip sampling (`calculate_sample_indices` and the token budget of
//! `ApolloMMLoader.load_video` in the reference `mm_utils.py`), ported operation for operation
//! so that every index and timestamp equals the reference's.

use super::segment::Segment;
use serde::Serialize;

/// The knobs of the sampling; defaults are those of Apollo-3B-t32.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipSampling {
    /// Seconds of video per clip.
    pub clip_duration: f64,
    /// Frames sampled per clip.
    pub frames_per_clip: usize,
    /// Video tokens the connector emits per clip.
    pub tokens_per_clip: usize,
    /// The language model's context budget the clips are sized against.
    pub model_max_length: usize,
    /// Share of `model_max_length` that video tokens may take.
    pub clip_sampling_ratio: f64,
    /// The part of the video sampled, as if it were the whole video; none: all of it.
    pub segment: Option<Segment>,
}

impl Default for ClipSampling {
    fn default() -> Self {
        Self {
            clip_duration: 2.0,
            frames_per_clip: 4,
            tokens_per_clip: 128,
            model_max_length: 16384,
            clip_sampling_ratio: 0.65,
            segment: None,
        }
    }
}

/// One clip: the frames it samples (indices in presentation order, may repeat) and its span.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Clip {
    pub start_s: f64,
    pub end_s: f64,
    pub frame_indices: Vec<u64>,
}

/// What the model will see of one video.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipPlan {
    /// The share of the video's clips kept under the token budget (1 for short videos).
    pub effective_ratio: f64,
    pub clips: Vec<Clip>,
}

impl ClipPlan {
    /// Distinct frame indices, ascending: what the decoder must produce.
    pub fn frames_to_decode(&self) -> Vec<u64> {
        let mut all: Vec<u64> = self
            .clips
            .iter()
            .flat_map(|c| c.frame_indices.iter().copied())
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("the video has no frames")]
    NoFrames,
    #[error("the frame rate is not a positive number ({0})")]
    BadFrameRate(f64),
    #[error("invalid sampling setting: {0}")]
    BadConfig(&'static str),
    #[error("the frame rate ({fps} fps) is too low for {frames_per_clip} frames per {clip_duration} s clip")]
    FrameRateTooLow {
        fps: f64,
        frames_per_clip: usize,
        clip_duration: f64,
    },
}

impl ClipSampling {
    pub fn validate(&self) -> Result<(), PlanError> {
        if !(self.clip_duration.is_finite() && self.clip_duration > 0.0) {
            return Err(PlanError::BadConfig("clip duration must be positive"));
        }
        if self.frames_per_clip == 0 {
            return Err(PlanError::BadConfig("frames per clip must be at least 1"));
        }
        if self.tokens_per_clip == 0 {
            return Err(PlanError::BadConfig("tokens per clip must be at least 1"));
        }
        if self.model_max_length == 0 {
            return Err(PlanError::BadConfig("model max length must be at least 1"));
        }
        if !(self.clip_sampling_ratio.is_finite() && self.clip_sampling_ratio > 0.0) {
            return Err(PlanError::BadConfig("clip sampling ratio must be positive"));
        }
        Ok(())
    }

    /// `min(1, model_max_length * ratio / (duration * tokens_per_clip / clip_duration))`,
    /// evaluated in the reference's order so the float result is identical.
    pub fn effective_ratio(&self, duration_s: f64) -> f64 {
        let budget = self.model_max_length as f64 * self.clip_sampling_ratio;
        let wanted = duration_s * self.tokens_per_clip as f64 / self.clip_duration;
        (budget / wanted).min(1.0)
    }
}

/// Plans the clips of a video with `total_frames` frames at `fps` (average) frames per second.
pub fn plan_clips(total_frames: u64, fps: f64, cfg: &ClipSampling) -> Result<ClipPlan, PlanError> {
    cfg.validate()?;
    if total_frames == 0 {
        return Err(PlanError::NoFrames);
    }
    if !(fps.is_finite() && fps > 0.0) {
        return Err(PlanError::BadFrameRate(fps));
    }
    let duration = total_frames as f64 / fps;
    let ratio = cfg.effective_ratio(duration);
    let clip_indices = sample_indices(cfg, total_frames, fps, duration, ratio)?;
    let clips = clip_indices
        .into_iter()
        .map(|idx| {
            let to_u64 = |i: i64| -> Result<u64, PlanError> {
                u64::try_from(i).map_err(|_| PlanError::FrameRateTooLow {
                    fps,
                    frames_per_clip: cfg.frames_per_clip,
                    clip_duration: cfg.clip_duration,
                })
            };
            Ok(Clip {
                start_s: idx[0] as f64 / fps,
                end_s: idx[idx.len() - 1] as f64 / fps,
                frame_indices: idx.into_iter().map(to_u64).collect::<Result<_, _>>()?,
            })
        })
        .collect::<Result<Vec<_>, PlanError>>()?;
    Ok(ClipPlan {
        effective_ratio: ratio,
        clips,
    })
}

/// `np.arange(start, stop, step)` for integers.
fn arange(start: i64, stop: i64, step: i64) -> Vec<i64> {
    (start..stop).step_by(step as usize).collect()
}

/// `np.clip(x, lo, hi)`: `min(max(x, lo), hi)`, so `hi` wins when `lo > hi`.
fn np_clip(x: i64, lo: i64, hi: i64) -> i64 {
    x.max(lo).min(hi)
}

/// `clip_step` of the reference: how far apart clips start when partitions are too short.
fn clip_step(total_frames: i64, clip_len: i64, num_clips: i64) -> i64 {
    if total_frames > clip_len {
        (total_frames - clip_len).div_euclid((num_clips - 1).max(1))
    } else {
        0
    }
}

/// The reference's `calculate_sample_indices`; indices may be negative in its degenerate
/// low-fps case, which the caller rejects.
fn sample_indices(
    cfg: &ClipSampling,
    total_frames: u64,
    fps: f64,
    duration: f64,
    ratio: f64,
) -> Result<Vec<Vec<i64>>, PlanError> {
    let fpc = cfg.frames_per_clip as i64;
    let total = total_frames as i64;
    let sample_fps = cfg.frames_per_clip as f64 / cfg.clip_duration;
    let num_clips_f = ((duration / cfg.clip_duration) * ratio).ceil();
    if !(num_clips_f >= 1.0 && num_clips_f <= total as f64 * fpc as f64 + 1.0) {
        return Err(PlanError::BadConfig(
            "the settings give no usable number of clips",
        ));
    }
    let num_clips = num_clips_f as i64;
    let frame_step = fps / sample_fps;
    let partition_len = total / num_clips;
    let pad = |mut v: Vec<i64>, with: i64| {
        if (v.len() as i64) < fpc {
            v.resize(fpc as usize, with);
        }
        v
    };
    let mut clips = Vec::with_capacity(num_clips as usize);
    if frame_step > 0.5 {
        let step = ((fps / sample_fps) as i64).max(1);
        // A clip longer than any index can count (absurd durations or frame rates).
        let clip_len = fpc.checked_mul(step).ok_or(PlanError::BadConfig(
            "the settings give clips too long to index",
        ))?;
        let sample_len = clip_len.min(total);
        let cstep = clip_step(total, clip_len, num_clips);
        for i in 0..num_clips {
            let idx: Vec<i64> = if partition_len > clip_len {
                let start = (partition_len - clip_len) / 2;
                arange(start, start + clip_len, step)
                    .into_iter()
                    .map(|x| np_clip(x, 0, partition_len - 1) + i * partition_len)
                    .collect()
            } else {
                pad(arange(0, sample_len, step), sample_len)
                    .into_iter()
                    .map(|x| np_clip(x, 0, sample_len - 1) + i * cstep)
                    .collect()
            };
            clips.push(idx);
        }
    } else {
        // Fewer source frames than sample slots: each frame is used several times.
        let num_sample = (1.0 / frame_step).ceil() as usize;
        let clip_len0 = (fpc as f64 * frame_step) as i64;
        let repeated: Vec<i64> = (0..clip_len0)
            .flat_map(|x| std::iter::repeat_n(x, num_sample))
            .collect();
        let clip_len = clip_len0.min(repeated.len() as i64);
        let cstep = clip_step(total, clip_len, num_clips);
        let sample_len = clip_len.min(total);
        let base = pad(repeated, sample_len);
        for i in 0..num_clips {
            clips.push(
                base.iter()
                    .map(|&x| np_clip(x, 0, sample_len - 1) + i * cstep)
                    .collect(),
            );
        }
    }
    Ok(clips)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_video_is_one_clip_of_every_other_frame() {
        let p = plan_clips(10, 5.0, &ClipSampling::default()).unwrap();
        assert_eq!(p.effective_ratio, 1.0);
        assert_eq!(p.clips.len(), 1);
        assert_eq!(p.clips[0].frame_indices, vec![1, 3, 5, 7]);
        assert_eq!(p.frames_to_decode(), vec![1, 3, 5, 7]);
    }

    #[test]
    fn hour_long_video_is_capped_by_the_budget() {
        let p = plan_clips(108_000, 30.0, &ClipSampling::default()).unwrap();
        assert_eq!(p.clips.len(), 84);
        assert!(p.effective_ratio < 1.0);
        // frame_step 15 at 30 fps: each clip covers 60 frames in the middle of its partition.
        let c = &p.clips[0].frame_indices;
        assert_eq!(
            c.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>(),
            [15; 3]
        );
    }

    #[test]
    fn degenerate_inputs_are_errors() {
        let cfg = ClipSampling::default();
        assert_eq!(plan_clips(0, 30.0, &cfg), Err(PlanError::NoFrames));
        assert!(matches!(
            plan_clips(10, 0.0, &cfg),
            Err(PlanError::BadFrameRate(_))
        ));
        assert!(matches!(
            plan_clips(10, f64::NAN, &cfg),
            Err(PlanError::BadFrameRate(_))
        ));
        // Below 0.5 fps the reference computes index -1: refuse rather than guess.
        assert!(matches!(
            plan_clips(10, 0.2, &cfg),
            Err(PlanError::FrameRateTooLow { .. })
        ));
        let bad = ClipSampling {
            frames_per_clip: 0,
            ..cfg.clone()
        };
        assert!(matches!(
            plan_clips(10, 30.0, &bad),
            Err(PlanError::BadConfig(_))
        ));
        // Absurd but finite durations and frame rates are errors, not overflows.
        let long = ClipSampling {
            clip_duration: 1e300,
            ..cfg.clone()
        };
        assert!(matches!(
            plan_clips(250, 25.0, &long),
            Err(PlanError::BadConfig(_))
        ));
        assert!(matches!(
            plan_clips(250, 1e300, &cfg),
            Err(PlanError::BadConfig(_))
        ));
    }
}
