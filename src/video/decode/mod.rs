//! Video decoding with ffmpeg (through video-rs' bindings): metadata, and frame-accurate
//! random access by presentation index.
//!
//! Opening a file scans its video packets once (no decoding) to learn every frame's
//! timestamp and where the keyframes are, as decord does. Frame `n` is the n-th frame in
//! presentation order, i.e. the n-th frame a sequential decode yields. To fetch a set of
//! frames the decoder seeks to the keyframe before each needed region, drops packets before
//! it without decoding them, and decodes forward, converting only the frames that are kept;
//! regions are decoded once each, and side by side with several threads (`parallel`).
//!
//! Packets an edit list hides (flagged discard: a clip cut with `-c copy` starts at the
//! keyframe before the cut) are decoded, as they hold the reference pictures, but are not
//! frames: ffmpeg's decoder drops their pictures, and they have no index.

mod open;
mod parallel;
mod refs;
mod rgb;
mod run;
mod scan;

use super::frame::RgbFrame;
use super::rotate::{rotation_degrees, Rotation};
use super::segment::SegmentSpan;
use crate::error::{Error, Result};
use open::open_input;
use refs::RefReader;
use rgb::Scaler;
use run::Run;
use scan::SecondHalf;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use video_rs::ffmpeg::packet::Ref as _;
use video_rs::ffmpeg::{self, codec, decoder, format, media, Discard, Packet};

/// What the reference reads of a video (decord: frame count and average frame rate).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VideoInfo {
    #[serde(serialize_with = "crate::records::lossy_path")]
    pub path: PathBuf,
    /// Frame size after the container's rotation is applied.
    pub width: usize,
    pub height: usize,
    pub fps: f64,
    pub total_frames: u64,
    /// total_frames / fps, as the reference computes it.
    pub duration_s: f64,
    /// Clockwise rotation applied to every decoded frame, in degrees.
    pub rotation: u32,
    pub codec: String,
    /// Where the frames lie in the video when they are a segment of it: frame counts and
    /// durations above are then the segment's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<SegmentSpan>,
}

/// One video packet as the demuxer gave it, in decode order.
#[derive(Debug, Clone, Copy)]
struct PacketInfo {
    pts: i64,
    dts: Option<i64>,
    key: bool,
    /// Hidden by an edit list: decoded for its references, never shown.
    discard: bool,
    /// Its picture may be referenced by others (see `refs`).
    reference: bool,
}

/// What the packet scan learned of the stream: shared by every decoder of the video.
#[derive(Default)]
struct Index {
    /// Packets in decode order, discarded ones included.
    packets: Vec<PacketInfo>,
    /// Timestamp of each shown frame in presentation order.
    frame_pts: Vec<i64>,
    /// Decode-order position of a timestamp.
    order_of_pts: HashMap<i64, usize>,
    /// Decode-order positions of keyframes.
    keyframes: Vec<usize>,
    /// Whether every packet carries a presentation timestamp. Without them (AVI with
    /// B-frames) frames are numbered by counting from the start, and random access becomes a
    /// sequential decode.
    has_pts: bool,
    /// Demuxers that read the packet scan (see `scan`).
    scan_demuxers: usize,
}

/// An open video, ready to hand out frames by presentation index.
pub struct Video {
    info: VideoInfo,
    input: format::context::Input,
    stream: usize,
    decoder: decoder::Video,
    index: Arc<Index>,
    rotation: Rotation,
    scaler: Option<Scaler>,
    /// The first frame of the segment the indices count from (0: the whole video).
    first: u64,
    /// Threads decoding may use (see `parallel`).
    threads: usize,
    stats: DecodeStats,
    /// The keyframe last sought to in this request.
    last_seek: Option<usize>,
    /// A second demuxer left open by the packet scan: the first parallel decode's first
    /// worker takes it instead of opening one.
    spare: Option<format::context::Input>,
}

/// What decoding did: its distance to the floor of what the frames need.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DecodeStats {
    /// Pictures the decoder decoded: packets fed to it and not skipped.
    pub decoded: u64,
    /// Seeks to a keyframe.
    pub seeks: u64,
    /// Seeks to a keyframe before the one a decoder last sought to, within one request:
    /// none, by construction.
    pub backward_seeks: u64,
}

impl std::ops::AddAssign for DecodeStats {
    fn add_assign(&mut self, other: Self) {
        self.decoded += other.decoded;
        self.seeks += other.seeks;
        self.backward_seeks += other.backward_seeks;
    }
}

fn ffmpeg_init() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let _ = ffmpeg::init();
        // ffmpeg's own chatter would break the one-line error contract; `-v` lets it through.
        let level = if tracing::enabled!(tracing::Level::DEBUG) {
            ffmpeg::util::log::Level::Warning
        } else {
            ffmpeg::util::log::Level::Quiet
        };
        ffmpeg::util::log::set_level(level);
    });
}

/// The machine's cores: what decoding uses unless told otherwise.
pub fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The video stream ffmpeg ranks first: the one decoded.
fn best_video_stream(input: &format::context::Input) -> Option<format::stream::Stream<'_>> {
    input.streams().best(media::Type::Video)
}

/// The best video stream of `input`: its index, and a decoder for it with `threads` threads of
/// its own.
fn open_decoder(
    input: &format::context::Input,
    path: &Path,
    threads: usize,
) -> Result<(usize, decoder::Video)> {
    let stream = best_video_stream(input).ok_or_else(|| Error::input(path, "no video stream"))?;
    let params = stream.parameters();
    let codec_name = params.id().name().to_string();
    let mut context = codec::context::Context::from_parameters(params)
        .map_err(|e| Error::input(path, format!("unsupported video codec ({e})")))?;
    context.set_threading(codec::threading::Config {
        kind: codec::threading::Type::Frame,
        count: threads,
        ..Default::default()
    });
    let decoder = context
        .decoder()
        .video()
        .map_err(|e| Error::input(path, format!("no decoder for codec {codec_name} ({e})")))?;
    Ok((stream.index(), decoder))
}

impl Video {
    /// Opens `path` and indexes its video stream, to decode with the machine's cores.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_threads(path, available_threads())
    }

    /// Opens `path` and indexes its video stream with up to `threads` threads (at least 1),
    /// the threads decoding may then use (see [`Video::set_threads`]).
    pub fn open_with_threads(path: &Path, threads: usize) -> Result<Self> {
        ffmpeg_init();
        let threads = threads.max(1);
        if threads == 1 {
            return Self::open_scanning(path, 1, None);
        }
        let abort = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let second = scan::SecondHalf::start(scope, path, &abort);
            let video = Self::open_scanning(path, threads, second);
            // Opened or failed, the second half's work is over or not wanted.
            abort.store(true, Ordering::Relaxed);
            video
        })
    }

    /// Opens `path` and indexes it, with `second` reading the second half of the packet
    /// scan if it can.
    fn open_scanning(path: &Path, threads: usize, second: Option<SecondHalf>) -> Result<Self> {
        let input = open_input(path)?;
        let (stream_index, decoder) = open_decoder(&input, path, threads)?;
        let stream = input.stream(stream_index).expect("the stream just found");
        let rotation = Rotation::from_degrees(rotation_degrees(&stream));
        let time_base = stream.time_base();
        let avg_rate = stream.avg_frame_rate();
        let real_rate = stream.rate();
        let params = stream.parameters();
        let codec_name = params.id().name().to_string();
        let refs = RefReader::of(&params);
        if decoder.width() == 0 || decoder.height() == 0 {
            return Err(Error::input(path, "the video stream has no frame size"));
        }
        let (width, height) = rotation.size(decoder.width() as usize, decoder.height() as usize);

        let mut video = Video {
            info: VideoInfo {
                path: path.to_path_buf(),
                width,
                height,
                fps: 0.0,
                total_frames: 0,
                duration_s: 0.0,
                rotation: rotation.degrees(),
                codec: codec_name,
                segment: None,
            },
            input,
            stream: stream_index,
            decoder,
            index: Arc::default(),
            rotation,
            scaler: None,
            first: 0,
            threads,
            stats: DecodeStats::default(),
            last_seek: None,
            spare: None,
        };
        video.index = Arc::new(video.scan_packets(refs, second)?);
        let frame_pts = &video.index.frame_pts;
        let total = frame_pts.len() as u64;
        if total == 0 {
            return Err(Error::input(path, "the video stream has no frames"));
        }
        let fps = [avg_rate, real_rate]
            .into_iter()
            .map(f64::from)
            .find(|r| r.is_finite() && *r > 0.0)
            .or_else(|| fps_from_timestamps(frame_pts, time_base))
            .ok_or_else(|| Error::input(path, "the video stream has no frame rate"))?;
        video.info.fps = fps;
        video.info.total_frames = total;
        video.info.duration_s = total as f64 / fps;
        Ok(video)
    }

    pub fn info(&self) -> &VideoInfo {
        &self.info
    }

    /// Lets decoding use `threads` threads (at least 1): decoders working on separate
    /// keyframe groups at once, and ffmpeg's threads inside each (see `parallel`).
    pub fn set_threads(&mut self, threads: usize) -> Result<()> {
        let threads = threads.max(1);
        if threads != self.threads {
            self.decoder = open_decoder(&self.input, &self.info.path, threads)?.1;
            self.scaler = None;
            self.threads = threads;
        }
        Ok(())
    }

    /// How many demuxers read the packet scan at open: 2 where it was split (a long MP4 with
    /// 2 threads or more), else 1.
    pub fn scan_demuxers(&self) -> usize {
        self.index.scan_demuxers
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// What decoding did since the video was opened.
    pub fn stats(&self) -> DecodeStats {
        self.stats
    }

    /// Keeps only `frames` (of the whole video), numbered from 0: from now on the video is
    /// that segment, as a file cut frame-exactly would be.
    pub(crate) fn cut(&mut self, frames: Range<u64>) {
        let fps = self.info.fps;
        let count = frames.end - frames.start;
        self.info.segment = Some(SegmentSpan {
            first_frame: frames.start,
            start_s: frames.start as f64 / fps,
            end_s: frames.end as f64 / fps,
            video_frames: self.info.total_frames,
            video_duration_s: self.info.duration_s,
        });
        self.info.total_frames = count;
        self.info.duration_s = count as f64 / fps;
        self.first = frames.start;
    }

    /// Reads every video packet's timestamps and flags (no decoding), then orders frames by
    /// presentation time.
    fn scan_packets(
        &mut self,
        refs: Option<RefReader>,
        second: Option<SecondHalf>,
    ) -> Result<Index> {
        let path = self.info.path.clone();
        let scan = scan::scan(&mut self.input, &path, self.stream, refs, second)?;
        let scan_demuxers = scan.demuxers();
        self.spare = scan.spare;
        let read = scan.packets.len() as i64;
        let mut index = Index {
            packets: scan.packets,
            has_pts: scan.has_pts,
            scan_demuxers,
            ..Index::default()
        };
        let declared = self.input.stream(self.stream).map_or(0, |s| s.frames());
        if declared > read {
            return Err(Error::input(
                &path,
                format!(
                    "the file is truncated: its header lists {declared} frames, {read} are present"
                ),
            ));
        }
        index.order_of_pts = index
            .packets
            .iter()
            .enumerate()
            .map(|(i, p)| (p.pts, i))
            .collect();
        // Shared timestamps cannot be told apart: count frames instead.
        index.has_pts &= index.order_of_pts.len() == index.packets.len();
        index.frame_pts = index
            .packets
            .iter()
            .filter(|p| !p.discard)
            .map(|p| p.pts)
            .collect();
        index.frame_pts.sort_unstable();
        index.keyframes = (0..index.packets.len())
            .filter(|&i| index.packets[i].key)
            .collect();
        if index.keyframes.first() != Some(&0) {
            // Decoding must start somewhere: treat the first packet as an entry point.
            index.keyframes.insert(0, 0);
        }
        Ok(index)
    }

    /// Decodes the frames at the given presentation indices (ascending, distinct) and hands
    /// each to `sink` in that order. Each stretch of frames reached from one keyframe is
    /// decoded once, from that keyframe to its last wanted frame, skipping pictures nothing
    /// wanted refers to; with several threads, stretches are decoded side by side.
    pub fn frames_at(
        &mut self,
        indices: &[u64],
        mut sink: impl FnMut(u64, RgbFrame) -> Result<()>,
    ) -> Result<()> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.info.total_frames) {
            return Err(Error::input(
                &self.info.path,
                format!(
                    "frame {bad} is past the end ({} frames)",
                    self.info.total_frames
                ),
            ));
        }
        // A segment's frames are the video's, from its first frame on.
        let first = self.first;
        let indices: Vec<u64> = indices.iter().map(|i| i + first).collect();
        let mut sink = |i: u64, frame| sink(i - first, frame);
        // Used now or never: an open demuxer holds a file and its index.
        let spare = self.spare.take();
        if !self.index.has_pts {
            self.seek_to_packet(0)?;
            return self.decode_sequentially(&indices, &|_| true, &mut sink);
        }
        let runs = self.index.runs(&indices);
        self.last_seek = None;
        if self.threads > 1 && runs.len() > 1 {
            return self.decode_in_parallel(&indices, &runs, spare, &mut sink);
        }
        self.decode_runs(&indices, &runs, &mut sink)
    }

    /// Decodes `runs` one after the other, each from its keyframe.
    fn decode_runs(
        &mut self,
        indices: &[u64],
        runs: &[Range<usize>],
        sink: &mut dyn FnMut(u64, RgbFrame) -> Result<()>,
    ) -> Result<()> {
        for run in runs {
            let key = self.index.keyframe_of(indices[run.start]);
            if self.last_seek.is_some_and(|last| key < last) {
                self.stats.backward_seeks += 1;
            }
            self.last_seek = Some(key);
            self.seek_to_packet(key)?;
            self.stats.seeks += 1;
            self.decode_from_keyframe(Run::new(indices, run.clone(), key), sink)?;
        }
        Ok(())
    }

    /// Decodes every frame in order and hands the ones in `keep` (ascending) to `sink`;
    /// the others are decoded but not converted. The baseline that random access must equal.
    pub fn decode_all(
        &mut self,
        keep: &[u64],
        mut sink: impl FnMut(u64, RgbFrame) -> Result<()>,
    ) -> Result<()> {
        let first = self.first;
        let all: Vec<u64> = (first..first + self.info.total_frames).collect();
        let keep: HashSet<u64> = keep.iter().map(|i| i + first).collect();
        let mut sink = |i: u64, frame| sink(i - first, frame);
        self.seek_to_packet(0)?;
        self.decode_sequentially(&all, &|i| keep.contains(&i), &mut sink)
    }

    /// The fewest pictures any decoder must decode to show the frames at `indices`
    /// (ascending, distinct): for each, the reference pictures from its keyframe up to it in
    /// decode order, and itself. [`DecodeStats::decoded`] is measured against this.
    pub fn minimum_decodes(&self, indices: &[u64]) -> u64 {
        let index = &self.index;
        let first = self.first;
        if !index.has_pts {
            // Numbered by counting: everything up to the last frame.
            return indices.last().map_or(0, |&i| i + first + 1);
        }
        let mut needed = vec![false; index.packets.len()];
        for &i in indices {
            let target = index.order_of(i + first);
            needed[target] = true;
            let key = index.keyframe_of(i + first);
            for (n, p) in needed[key..target].iter_mut().zip(&index.packets[key..]) {
                *n |= p.reference;
            }
        }
        needed.iter().filter(|&&n| n).count() as u64
    }

    /// Positions the demuxer at or before the packet at decode position `target` and resets
    /// the decoder.
    fn seek_to_packet(&mut self, target: usize) -> Result<()> {
        let p = self.index.packets[target];
        // Demuxers index by pts or by dts: the smaller one lands at or before the packet.
        let ts = p.dts.map_or(p.pts, |d| d.min(p.pts));
        // SAFETY: the context and stream index are valid for the life of `self.input`.
        let ret = unsafe {
            ffmpeg::ffi::av_seek_frame(
                self.input.as_mut_ptr(),
                self.stream as i32,
                ts,
                ffmpeg::ffi::AVSEEK_FLAG_BACKWARD,
            )
        };
        if ret < 0 {
            // Not seekable that way: start again from the top; packets before the target
            // are then skipped without decoding.
            self.input = open_input(&self.info.path)?;
        }
        self.decoder.flush();
        self.decoder.skip_frame(Discard::Default);
        Ok(())
    }
}

impl Index {
    /// Presentation index of a timestamp: its place among the sorted frame timestamps.
    fn shown_index(&self, pts: i64) -> Option<u64> {
        self.frame_pts.binary_search(&pts).ok().map(|i| i as u64)
    }

    /// Decode-order position of the frame at presentation index `index`.
    fn order_of(&self, index: u64) -> usize {
        self.order_of_pts[&self.frame_pts[index as usize]]
    }

    /// Decode-order position of the keyframe from which decoding reaches frame `index`: the
    /// last keyframe shown no later than the frame.
    fn keyframe_of(&self, index: u64) -> usize {
        let target = self.frame_pts[index as usize];
        let after = self
            .keyframes
            .partition_point(|&k| self.packets[k].pts <= target);
        self.keyframes[after.saturating_sub(1)]
    }

    /// `indices` (ascending) cut into runs, each decoded from one seek: the frames reached
    /// from one keyframe, joined by those of the next keyframes when that keyframe is fed
    /// anyway before the run's last frame (open GOPs: frames shown before a keyframe that
    /// refer to it), so that no picture is decoded twice.
    fn runs(&self, indices: &[u64]) -> Vec<Range<usize>> {
        let mut runs: Vec<Range<usize>> = Vec::new();
        let mut last_order = 0;
        for (n, &i) in indices.iter().enumerate() {
            let key = self.keyframe_of(i);
            match runs.last_mut() {
                Some(run) if key <= last_order || key == self.keyframe_of(indices[run.start]) => {
                    run.end = n + 1;
                }
                _ => runs.push(n..n + 1),
            }
            last_order = last_order.max(self.order_of(i));
        }
        runs
    }
}

/// Packets the demuxer marks as decoded but never shown (edit lists): not frames.
fn is_discarded(packet: &Packet) -> bool {
    // ffmpeg-next's flag set does not name AV_PKT_FLAG_DISCARD; read the raw bits.
    // SAFETY: the packet pointer is valid while `packet` lives.
    let flags = unsafe { (*packet.as_ptr()).flags };
    flags & ffmpeg::ffi::AV_PKT_FLAG_DISCARD != 0
}

/// A frame rate from the timestamps themselves, for streams that declare none.
fn fps_from_timestamps(pts: &[i64], time_base: ffmpeg::Rational) -> Option<f64> {
    let span = (pts.last()? - pts.first()?) as f64 * f64::from(time_base);
    (pts.len() > 1 && span > 0.0).then(|| (pts.len() - 1) as f64 / span)
}
