//! Decoding a sampling plan's frames and regrouping them into clips, keeping each decoded
//! frame only until the last clip that uses it has been handed out.

use super::clips::ClipPlan;
use super::decode::Video;
use super::frame::RgbFrame;
use crate::error::Result;
use std::collections::HashMap;
use std::sync::Arc;

/// Decodes what `plan` needs from `video` and calls `f(clip_number, frames)` for each clip in
/// order, with the clip's frames in sampling order (a repeated index repeats the frame).
pub fn for_each_clip(
    video: &mut Video,
    plan: &ClipPlan,
    mut f: impl FnMut(usize, &[Arc<RgbFrame>]) -> Result<()>,
) -> Result<()> {
    let mut last_use: HashMap<u64, usize> = HashMap::new();
    for (c, clip) in plan.clips.iter().enumerate() {
        for &i in &clip.frame_indices {
            last_use.insert(i, c);
        }
    }
    let mut held: HashMap<u64, Arc<RgbFrame>> = HashMap::new();
    let mut next_clip = 0;
    video.frames_at(&plan.frames_to_decode(), |index, frame| {
        held.insert(index, Arc::new(frame));
        while let Some(clip) = plan.clips.get(next_clip) {
            let Some(frames) = clip
                .frame_indices
                .iter()
                .map(|i| held.get(i).cloned())
                .collect::<Option<Vec<_>>>()
            else {
                break;
            };
            f(next_clip, &frames)?;
            held.retain(|i, _| last_use[i] > next_clip);
            next_clip += 1;
        }
        Ok(())
    })
}
