//! A segment of a video (`--start`, `--end`), seen by the model exactly as if it were its own
//! video: the frames it holds, renumbered from 0, with the video's frame rate.
//!
//! Frame `n` is shown at `n / fps` seconds (fps the stream's average rate: the time the plan
//! and the prompt give it). A segment holds the frames shown at or after its start and before
//! its end, the times compared in whole microseconds (each rounded to the nearest), so that a
//! time written to the millisecond names the frame shown then. Its frame count and duration
//! are then those a frame-exact cut of these frames reports (`ffmpeg -vf select`, re-encoded).

use super::clips::Clip;
use super::decode::{Video, VideoInfo};
use crate::error::{Error, Kind, Result};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::path::Path;

/// `--start` and `--end` as given, in seconds; no end is the video's end.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub start_s: f64,
    pub end_s: Option<f64>,
}

/// Where a segment lies in its video (`inspect --json`'s `segment`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentSpan {
    /// The segment's first frame in the video.
    pub first_frame: u64,
    /// When the first frame is shown, and when the frame after the last one would be.
    pub start_s: f64,
    pub end_s: f64,
    /// The whole video's frame count and duration.
    pub video_frames: u64,
    pub video_duration_s: f64,
}

impl Segment {
    /// The segment of `--start` and `--end`; none when neither is given. A start at or after
    /// the end is a usage error.
    pub fn new(start: Option<f64>, end: Option<f64>) -> Result<Option<Self>> {
        if start.is_none() && end.is_none() {
            return Ok(None);
        }
        let start_s = start.unwrap_or(0.0);
        if let Some(end) = end.filter(|&end| micros(end) <= micros(start_s)) {
            return Err(Error::usage(format!(
                "--start {start_s} is not before --end {end}: the segment would be empty"
            )));
        }
        Ok(Some(Self {
            start_s,
            end_s: end,
        }))
    }

    /// The frames of a video of `total_frames` at `fps` that the segment holds. An end past
    /// the video's end is its end; a segment that holds no frame is an error.
    pub fn frames(&self, total_frames: u64, fps: f64) -> Result<Range<u64>, String> {
        let first = first_shown_at(micros(self.start_s), total_frames, fps);
        let end = self.end_s.map_or(total_frames, |end| {
            first_shown_at(micros(end), total_frames, fps)
        });
        if first == total_frames {
            return Err(format!(
                "--start {} is at or after the end of the video ({:.3} s, {total_frames} frames)",
                self.start_s,
                total_frames as f64 / fps
            ));
        }
        if end <= first {
            return Err(format!(
                "the segment from {} s to {} s holds no frame (frames are {:.3} s apart)",
                self.start_s,
                self.end_s.unwrap_or_default(),
                1.0 / fps
            ));
        }
        Ok(first..end)
    }
}

/// A time in whole microseconds, as segments compare times.
fn micros(seconds: f64) -> f64 {
    (seconds * 1e6).round()
}

/// The first frame (of `total`) shown at or after `us` microseconds; `total` when none is.
fn first_shown_at(us: f64, total: u64, fps: f64) -> u64 {
    // Frame times only grow with the index: a binary search.
    let (mut lo, mut hi) = (0, total);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if micros(mid as f64 / fps) < us {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Opens `path` to decode with `threads` threads and, with a segment, keeps only its frames: a
/// segment outside the video or holding no frame is a usage error naming the file.
pub fn open(path: &Path, segment: Option<&Segment>, threads: usize) -> Result<Video> {
    let mut video = Video::open_with_threads(path, threads)?;
    if let Some(segment) = segment {
        let info = video.info();
        let frames = segment
            .frames(info.total_frames, info.fps)
            .map_err(|e| Error::new(Kind::Usage, Some(path), e))?;
        tracing::debug!(
            "{path:?}: segment of frames {} to {} ({} frames)",
            frames.start,
            frames.end - 1,
            frames.end - frames.start
        );
        video.cut(frames);
    }
    Ok(video)
}

/// A clip's span in the whole video's time (the same as its own without a segment).
pub fn absolute_span(info: &VideoInfo, clip: &Clip) -> (f64, f64) {
    let first = info.segment.as_ref().map_or(0, |s| s.first_frame);
    let at = |i: Option<&u64>| (first + i.copied().unwrap_or_default()) as f64 / info.fps;
    (
        at(clip.frame_indices.first()),
        at(clip.frame_indices.last()),
    )
}

/// `--start`/`--end`: seconds (`90`, `12.5`) or `[H:]MM:SS[.fff]` (`1:30`, `0:01:30.5`).
pub fn parse_time(text: &str) -> Result<f64, String> {
    let bad = || "expected seconds (90, 12.5) or [H:]MM:SS[.fff]".to_string();
    let parts: Vec<&str> = text.trim().split(':').collect();
    if parts.len() > 3 {
        return Err(bad());
    }
    let (last, units) = parts.split_last().ok_or_else(bad)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let seconds_ok = match last.split_once('.') {
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => digits(last),
    };
    if !seconds_ok || !units.iter().all(|u| digits(u)) {
        return Err(bad());
    }
    let seconds: f64 = last.parse().map_err(|_| bad())?;
    // In H:MM:SS and MM:SS the seconds, and the minutes after hours, stay below 60.
    if !units.is_empty() && seconds >= 60.0 {
        return Err(bad());
    }
    let mut minutes = 0.0;
    for (n, unit) in units.iter().enumerate() {
        let value: f64 = unit.parse().map_err(|_| bad())?;
        if n == 1 && value >= 60.0 {
            return Err(bad());
        }
        minutes = minutes * 60.0 + value;
    }
    let total = minutes * 60.0 + seconds;
    if total.is_finite() {
        Ok(total)
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_seconds_or_clock_times() {
        for (text, seconds) in [
            ("90", 90.0),
            ("12.5", 12.5),
            ("0", 0.0),
            ("1:30", 90.0),
            ("90:00", 5400.0),
            ("0:01:30.5", 90.5),
            ("2:00:00", 7200.0),
            ("01:02:03.250", 3723.25),
            (" 7 ", 7.0),
        ] {
            assert_eq!(parse_time(text), Ok(seconds), "{text}");
        }
        for bad in [
            "", "-1", "1e3", "nan", "inf", ".5", "5.", "1:60", "1:61:00", "1:2:3:4", "a", "1::2",
            "1:30.5.5", "+3",
        ] {
            assert!(parse_time(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_segment_holds_the_frames_shown_from_its_start_to_before_its_end() {
        let seg = |start, end| Segment::new(start, end).unwrap().unwrap();
        // 25 fps: frame n at n * 0.04 s.
        assert_eq!(seg(Some(2.0), Some(4.0)).frames(250, 25.0), Ok(50..100));
        assert_eq!(seg(Some(2.5), Some(7.3)).frames(250, 25.0), Ok(63..183));
        assert_eq!(seg(None, Some(1.0)).frames(250, 25.0), Ok(0..25));
        assert_eq!(seg(Some(9.0), None).frames(250, 25.0), Ok(225..250));
        // Past the end: to the end.
        assert_eq!(seg(Some(9.0), Some(99.0)).frames(250, 25.0), Ok(225..250));
        // 29.97 fps: frame 30 is at 1.001 s, which float division makes 1.0009999...
        let ntsc = 30000.0 / 1001.0;
        assert_eq!(seg(Some(1.001), Some(2.002)).frames(120, ntsc), Ok(30..60));
        assert!(seg(Some(10.0), None).frames(250, 25.0).is_err());
        assert!(seg(Some(1.01), Some(1.02)).frames(250, 25.0).is_err());
    }

    #[test]
    fn an_empty_or_reversed_segment_is_a_usage_error_and_no_flags_no_segment() {
        assert_eq!(Segment::new(None, None).unwrap(), None);
        for (start, end) in [(5.0, 3.0), (5.0, 5.0)] {
            let e = Segment::new(Some(start), Some(end)).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains("not before --end"), "{e}");
        }
    }
}
