//! The video prompt of `ApolloMMLoader.load_video`: a header naming the clip count and the
//! video's duration, then one line per clip with its time span and its video tokens.

use super::{pyfmt, words};
use crate::video::clips::ClipPlan;

/// The placeholder each video embedding row replaces.
pub const VIDEO_TOKEN: &str = "<|video_token|>";

/// The exact prompt text, with `tokens_per_clip` placeholders per clip.
pub fn video_prompt(
    plan: &ClipPlan,
    duration_s: f64,
    clip_duration: f64,
    tokens_per_clip: usize,
) -> String {
    video_prompt_with(
        plan,
        duration_s,
        clip_duration,
        &VIDEO_TOKEN.repeat(tokens_per_clip),
    )
}

/// The prompt with `tokens` standing for each clip's placeholders (the golden files write
/// `{VIDEO_TOKENS}`; a human-readable listing may too).
pub fn video_prompt_with(
    plan: &ClipPlan,
    duration_s: f64,
    clip_duration: f64,
    tokens: &str,
) -> String {
    let header = format!(
        "You are provided the following series of {}, {} second clips from a {} [H:MM:SS] video.\n",
        words::num2words(plan.clips.len() as u64),
        pyfmt::number(clip_duration),
        pyfmt::timedelta(duration_s),
    );
    let lines: Vec<String> = plan
        .clips
        .iter()
        .map(|c| {
            format!(
                "{}-{} seconds: {tokens}",
                pyfmt::float_repr(pyfmt::numpy_round1(c.start_s)),
                pyfmt::float_repr(pyfmt::numpy_round1(c.end_s)),
            )
        })
        .collect();
    header + &lines.join(",\n")
}
