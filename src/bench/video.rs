//! The benchmark's synthetic video: a moving pattern encoded as H.264 (libx264, veryfast, a
//! keyframe every 250 frames), like a typical long recording. Written to a temporary name and
//! renamed, so a half-written file is never taken for a finished one.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use video_rs::encode::{Encoder, Settings};
use video_rs::ffmpeg::format::Pixel;
use video_rs::ffmpeg::util::frame::Video as RawFrame;
use video_rs::Options;

/// Frames between keyframes: 8.3 s at 30 fps, as screen and camera recordings often have.
const KEYFRAME_INTERVAL: u64 = 250;

/// The video's file name in the work folder: one per size, rate and length.
pub fn file_name(seconds: u64, width: usize, height: usize, fps: u32) -> PathBuf {
    PathBuf::from(format!(
        "synthetic-{width}x{height}-{fps}fps-{seconds}s.mp4"
    ))
}

/// Writes `seconds` of video at `path` unless it is there already.
pub fn ensure(path: &Path, seconds: u64, width: usize, height: usize, fps: u32) -> Result<()> {
    if path.is_file() {
        return Ok(());
    }
    let fail = |e: video_rs::Error| Error::runtime(Some(path), format!("cannot encode: {e}"));
    let partial = path.with_extension("partial.mp4");
    let options: HashMap<String, String> = [("preset", "veryfast")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let settings =
        Settings::preset_h264_custom(width, height, Pixel::YUV420P, Options::from(options))
            .with_keyframe_interval(KEYFRAME_INTERVAL);
    let mut encoder = Encoder::new(partial.as_path(), settings).map_err(fail)?;
    let time_base = encoder.time_base();
    for n in 0..seconds * u64::from(fps) {
        let mut frame = pattern(n, width, height);
        // Frame n at n / fps seconds, in the encoder's time base.
        let (num, den) = (time_base.numerator(), time_base.denominator());
        frame.set_pts(Some(
            (n as i64 * i64::from(den)) / (i64::from(fps) * i64::from(num)),
        ));
        encoder.encode_raw(frame).map_err(fail)?;
    }
    encoder.finish().map_err(fail)?;
    drop(encoder);
    std::fs::rename(&partial, path)
        .map_err(|e| Error::runtime(Some(path), format!("cannot rename: {e}")))
}

/// Frame `n`: diagonal bands and a square moving at different speeds, so every frame differs.
fn pattern(n: u64, width: usize, height: usize) -> RawFrame {
    let mut frame = RawFrame::new(Pixel::RGB24, width as u32, height as u32);
    let stride = frame.stride(0);
    let data = frame.data_mut(0);
    let t = n as usize;
    let (sx, sy) = ((t * 3) % width, (t * 2) % height);
    for y in 0..height {
        for x in 0..width {
            let i = y * stride + x * 3;
            let inside = x.abs_diff(sx) < 40 && y.abs_diff(sy) < 40;
            data[i] = ((x + t) & 0xff) as u8;
            data[i + 1] = ((y + 2 * t) & 0xff) as u8;
            data[i + 2] = if inside {
                255
            } else {
                ((x + y + t / 3) & 0xff) as u8
            };
        }
    }
    frame
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::decode::Video;

    #[test]
    fn writes_a_video_of_the_asked_length_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(2, 64, 48, 30));
        ensure(&path, 2, 64, 48, 30).unwrap();
        let info = Video::open(&path).unwrap().info().clone();
        assert_eq!((info.width, info.height, info.total_frames), (64, 48, 60));
        // The muxer averages over the span between first and last frame (no packet
        // durations): 60 frames over 59/30 s. Over an hour the difference vanishes.
        assert!(
            (info.fps - 60.0 / (59.0 / 30.0)).abs() < 1e-9,
            "{}",
            info.fps
        );
        let written = std::fs::metadata(&path).unwrap().modified().unwrap();
        ensure(&path, 2, 64, 48, 30).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            written
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
