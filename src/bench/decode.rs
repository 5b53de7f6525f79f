//! `apollo bench --decode-only`: how fast the frames of a video's default plan are decoded to
//! RGB (opening and indexing the file included, no preprocessing), with how many pictures that
//! took against the fewest the frames need. `benches/decode_baseline.py` times other decoders
//! on the same frames and prints the same fields.

use crate::error::{Error, Result};
use crate::video::clips::{plan_clips, ClipSampling};
use crate::video::decode::Video;
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

#[derive(Debug, Serialize)]
pub struct DecodeReport {
    /// Distinct frames the plan samples, all decoded and converted to RGB.
    pub frames: usize,
    pub decode_s: f64,
    pub frames_per_s: f64,
    pub threads: usize,
    /// Pictures the decoders decoded, and the fewest any decoder must (from each frame's
    /// keyframe to it, references only).
    pub decoded_frames: u64,
    pub minimum_frames: u64,
    /// Seeks to a keyframe; backward ones, within a decoder (none by design).
    pub seeks: u64,
    pub backward_seeks: u64,
    /// Demuxers that read the packet scan at open (2: split, on a long MP4).
    pub scan_demuxers: usize,
}

/// Decodes the default plan's frames of `path` with `threads` threads.
pub fn run(path: &Path, threads: usize) -> Result<DecodeReport> {
    let start = Instant::now();
    let mut video = Video::open_with_threads(path, threads)?;
    let info = video.info().clone();
    let wanted = plan_clips(info.total_frames, info.fps, &ClipSampling::default())
        .map_err(|e| Error::input(path, e.to_string()))?
        .frames_to_decode();
    let mut bytes = 0usize;
    video.frames_at(&wanted, |_, frame| {
        bytes += frame.data.len();
        Ok(())
    })?;
    let decode_s = start.elapsed().as_secs_f64();
    let stats = video.stats();
    tracing::debug!("{path:?}: {} frames, {bytes} bytes of RGB", wanted.len());
    Ok(DecodeReport {
        frames: wanted.len(),
        decode_s,
        frames_per_s: wanted.len() as f64 / decode_s,
        threads,
        decoded_frames: stats.decoded,
        minimum_frames: video.minimum_decodes(&wanted),
        seeks: stats.seeks,
        backward_seeks: stats.backward_seeks,
        scan_demuxers: video.scan_demuxers(),
    })
}
