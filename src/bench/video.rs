//! The benchmark's synthetic video: a moving pattern encoded as H.264 (libx264, veryfast, a
//! keyframe every 250 frames), like a typical long recording. Written to a temporary name and
//! renamed, so a half-written file is never taken for a finished one.
//!
//! A video longer than [`SEGMENT_SECONDS`] is that segment encoded once and repeated by stream
//! copy (plus a shorter segment for any remainder): each segment starts with an IDR frame, so
//! the result decodes as one recording, the hour is written 36 times faster than encoding it,
//! and a build without an encoder (the portable one) can assemble it from a carried segment.

use super::BenchConfig;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use video_rs::encode::{Encoder, Settings};
use video_rs::ffmpeg::format::Pixel;
use video_rs::ffmpeg::util::frame::Video as RawFrame;
use video_rs::Options;

/// Frames between keyframes: 8.3 s at 30 fps, as screen and camera recordings often have.
const KEYFRAME_INTERVAL: u64 = 250;

/// The longest piece encoded; 12 keyframe intervals at 30 fps.
pub const SEGMENT_SECONDS: u64 = 100;

/// The video's file name in the work folder: one per size, rate and length.
pub fn file_name(seconds: u64, width: usize, height: usize, fps: u32) -> PathBuf {
    PathBuf::from(format!(
        "synthetic-{width}x{height}-{fps}fps-{seconds}s.mp4"
    ))
}

/// The synthetic video of `cfg`'s length, size and rate in its work folder, written unless it
/// is there already.
pub fn ensure_in(cfg: &BenchConfig) -> Result<PathBuf> {
    super::create_work_dir(cfg)?;
    let path = cfg
        .work_dir
        .join(file_name(cfg.video_seconds, cfg.width, cfg.height, cfg.fps));
    ensure(&path, cfg.video_seconds, cfg.width, cfg.height, cfg.fps)?;
    Ok(path)
}

/// Writes `seconds` of video at `path` unless it is there already: encoded when it is at most
/// a segment long, else assembled from segments beside it (encoded first where missing).
pub fn ensure(path: &Path, seconds: u64, width: usize, height: usize, fps: u32) -> Result<()> {
    if path.is_file() {
        return Ok(());
    }
    if seconds <= SEGMENT_SECONDS {
        return encode(path, seconds, width, height, fps);
    }
    let segment = |s: u64| -> Result<PathBuf> {
        let p = path.with_file_name(file_name(s, width, height, fps));
        ensure(&p, s, width, height, fps)?;
        Ok(p)
    };
    let mut pieces = vec![segment(SEGMENT_SECONDS)?; (seconds / SEGMENT_SECONDS) as usize];
    if !seconds.is_multiple_of(SEGMENT_SECONDS) {
        pieces.push(segment(seconds % SEGMENT_SECONDS)?);
    }
    concatenate(&pieces, path)
}

/// Writes `pieces` one after the other into `path` by stream copy, each shifted to start
/// where the one before ends.
fn concatenate(pieces: &[PathBuf], path: &Path) -> Result<()> {
    use video_rs::ffmpeg::{codec, encoder, format, media, Packet};
    let fail = |p: &Path, e: video_rs::ffmpeg::Error| {
        Error::runtime(Some(p), format!("cannot assemble the video: {e}"))
    };
    let partial = path.with_extension("partial.mp4");
    let mut output = format::output(&partial).map_err(|e| fail(&partial, e))?;
    let mut offset = 0i64;
    for piece in pieces {
        let mut input = format::input(piece).map_err(|e| fail(piece, e))?;
        let stream = input
            .streams()
            .best(media::Type::Video)
            .ok_or_else(|| Error::runtime(Some(piece), "no video stream"))?;
        let (index, in_tb) = (stream.index(), stream.time_base());
        if output.nb_streams() == 0 {
            // The first piece's parameters serve all: they differ only in length.
            let mut out = output
                .add_stream(encoder::find(codec::Id::None))
                .map_err(|e| fail(&partial, e))?;
            out.set_parameters(stream.parameters());
            out.set_time_base(in_tb);
            output.write_header().map_err(|e| fail(&partial, e))?;
        }
        let out_tb = output.stream(0).expect("added above").time_base();
        let packets: Vec<Packet> = input
            .packets()
            .filter(|(s, _)| s.index() == index)
            .map(|(_, mut p)| {
                p.rescale_ts(in_tb, out_tb);
                p
            })
            .collect();
        // Constant frame rate: the piece lasts its frame count times the step between frames.
        let mut pts: Vec<i64> = packets.iter().filter_map(Packet::pts).collect();
        pts.sort_unstable();
        let step = match pts[..] {
            [a, b, ..] => b - a,
            _ => return Err(Error::runtime(Some(piece), "fewer than two frames")),
        };
        for mut packet in packets {
            packet.set_pts(packet.pts().map(|t| t + offset));
            packet.set_dts(packet.dts().map(|t| t + offset));
            // The encoder leaves durations out; with them the container states the exact rate.
            packet.set_duration(step);
            packet.set_stream(0);
            packet.set_position(-1);
            packet
                .write_interleaved(&mut output)
                .map_err(|e| fail(&partial, e))?;
        }
        offset += step * pts.len() as i64;
    }
    output.write_trailer().map_err(|e| fail(&partial, e))?;
    drop(output);
    std::fs::rename(&partial, path)
        .map_err(|e| Error::runtime(Some(path), format!("cannot rename: {e}")))
}

/// Encodes `seconds` of the pattern at `path`.
fn encode(path: &Path, seconds: u64, width: usize, height: usize, fps: u32) -> Result<()> {
    // The portable build's ffmpeg decodes only (scripts/build-portable.sh).
    if video_rs::ffmpeg::encoder::find(video_rs::ffmpeg::codec::Id::H264).is_none() {
        return Err(Error::usage(
            "this build of apollo has no H.264 encoder to write the synthetic video: pass \
             --video FILE (e.g. one written by another build's `apollo bench`)",
        ));
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

    /// Frames `wanted` of the video at `path`, as RGB bytes.
    fn frames(path: &Path, wanted: &[u64]) -> Vec<Vec<u8>> {
        let mut video = Video::open(path).unwrap();
        let mut out = Vec::new();
        video
            .frames_at(wanted, |_, frame| {
                out.push(frame.data.clone());
                Ok(())
            })
            .unwrap();
        out
    }

    #[test]
    fn a_long_video_is_its_segments_back_to_back() {
        let dir = tempfile::tempdir().unwrap();
        let seconds = 2 * SEGMENT_SECONDS + 3;
        let path = dir.path().join(file_name(seconds, 32, 32, 30));
        ensure(&path, seconds, 32, 32, 30).unwrap();
        let info = Video::open(&path).unwrap().info().clone();
        assert_eq!(info.total_frames, seconds * 30);
        assert!((info.fps - 30.0).abs() < 1e-3, "{}", info.fps);
        // The segment and the remainder were written beside it, and nothing else.
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let mut want: Vec<String> = [seconds, 3, SEGMENT_SECONDS]
            .map(|s| file_name(s, 32, 32, 30).display().to_string())
            .into();
        want.sort();
        assert_eq!(names, want);
        // Frame k of each repeat is frame k of its piece.
        let segment = dir.path().join(file_name(SEGMENT_SECONDS, 32, 32, 30));
        let n = SEGMENT_SECONDS * 30;
        let want = frames(&segment, &[0, 1, 7, n - 1]);
        assert_eq!(frames(&path, &[n, n + 1, n + 7, 2 * n - 1]), want);
        let remainder = dir.path().join(file_name(3, 32, 32, 30));
        assert_eq!(
            frames(&path, &[2 * n + 1, 2 * n + 7]),
            frames(&remainder, &[1, 7])
        );
        assert_ne!(want[1], want[2]);
    }
}
