//! The packet scan that indexes a video at open: every video packet's timestamps and flags,
//! read without decoding. On a long MP4 it is split at a middle keyframe and read by two
//! demuxers at once: it is the one part of opening whose cost grows with the file (~0.25 s an
//! hour at 640x360 on one thread), and the decoders wait for it. The second demuxer opens
//! beside the first, not after it, so the first waits only for its seek; once done, the
//! second is handed to a decoder rather than closed.
//!
//! Only MP4/MOV are split: their demuxer seeks exactly to a sample of its index and reads on
//! in the order a reading from the start does, so the halves join at the packet the second
//! starts with, without a gap or an overlap. Should they not meet (the seek lands on no
//! keyframe, the second demuxer fails), the first demuxer reads on to the end, as an unsplit
//! scan does.

use super::open::open_input;
use super::refs::RefReader;
use super::{best_video_stream, is_discarded, PacketInfo};
use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::{Scope, ScopedJoinHandle};
use video_rs::ffmpeg::format::context::Input;
use video_rs::ffmpeg::{self, Packet};

/// Videos shorter than this are scanned by one demuxer: splitting would save less than
/// opening a second one costs.
const SPLIT_FROM_SECONDS: i64 = 30;

/// The video stream's packets in decode order, and whether every one had a timestamp.
pub(super) struct Scan {
    pub(super) packets: Vec<PacketInfo>,
    pub(super) has_pts: bool,
    /// The second half's demuxer, when one read it (the scan was split): open, for a
    /// decoder to use.
    pub(super) spare: Option<Input>,
    /// The next timestamp given to a packet without one.
    next_synthetic: i64,
}

/// A packet by its place in the file, where the first half of a split scan stops.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Mark {
    position: isize,
    dts: Option<i64>,
}

impl Mark {
    fn of(packet: &Packet) -> Self {
        Mark {
            position: packet.position(),
            dts: packet.dts(),
        }
    }
}

/// The second half of a split scan, started before the first demuxer opens: it opens its
/// own, checks that the file can be split and seeks to the middle while the first demuxer
/// opens.
pub(super) struct SecondHalf<'scope> {
    marks: Receiver<Mark>,
    abort: &'scope AtomicBool,
    thread: ScopedJoinHandle<'scope, Result<Option<Scan>>>,
}

impl<'scope> SecondHalf<'scope> {
    /// Starts reading the second half of `path` in `scope` if it may be an MP4; setting
    /// `abort` stops it.
    pub(super) fn start(
        scope: &'scope Scope<'scope, '_>,
        path: &'scope Path,
        abort: &'scope AtomicBool,
    ) -> Option<Self> {
        if !starts_like_mp4(path) {
            return None;
        }
        let (sender, marks) = mpsc::sync_channel(1);
        let thread = scope.spawn(move || second_half(path, sender, abort));
        Some(SecondHalf {
            marks,
            abort,
            thread,
        })
    }
}

/// Whether the file is a regular one that begins with an ISO media box (MP4, MOV), the only
/// files split: a cheap look that spares other files a second open. Anything else (a pipe,
/// which opening could block on, included) is left to the first demuxer's checks.
fn starts_like_mp4(path: &Path) -> bool {
    let mut head = [0u8; 8];
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
        && std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut head))
            .is_ok()
        && [b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide"]
            .iter()
            .any(|&b| head[4..] == b[..])
}

/// Scans `input`, just opened, from the start; `second`, when given, reads the second half
/// at once if the file turns out to be a long MP4.
pub(super) fn scan(
    input: &mut Input,
    path: &Path,
    stream: usize,
    refs: Option<RefReader>,
    second: Option<SecondHalf>,
) -> Result<Scan> {
    let mut first = Scan::new();
    let Some(second) = second else {
        read(input, path, stream, refs, None, &mut first)?;
        return Ok(first);
    };
    // The second half has been opening since before this demuxer did, so this wait is
    // short; without the mark this half could pass that packet before it knew it.
    let stop = second.marks.recv().ok();
    let boundary = match read(input, path, stream, refs, stop, &mut first) {
        Ok(Some(boundary)) => boundary,
        // Read to the end (the whole stream is here), or failed: the second half's work is
        // not needed.
        end => {
            second.abort.store(true, Ordering::Relaxed);
            end?;
            return Ok(first);
        }
    };
    match second.thread.join() {
        Ok(Ok(Some(second))) => {
            first.packets.extend(second.packets);
            first.has_pts &= second.has_pts;
            first.spare = second.spare;
        }
        // The second half failed after it began: read it here instead, from the mark.
        _ => {
            first.packets.push(boundary);
            read(input, path, stream, refs, None, &mut first)?;
        }
    }
    Ok(first)
}

/// The packets from the keyframe at or before the middle to the end, if `path` is an MP4
/// long enough to split; the first one's mark goes to `marks` as soon as it is read.
fn second_half(path: &Path, marks: SyncSender<Mark>, abort: &AtomicBool) -> Result<Option<Scan>> {
    let mut input = open_input(path)?;
    let splits = input
        .format()
        .name()
        .split(',')
        .any(|n| n == "mov" || n == "mp4")
        && input.duration() >= SPLIT_FROM_SECONDS * i64::from(ffmpeg::ffi::AV_TIME_BASE);
    let Some(stream) = splits.then(|| best_video_stream(&input)).flatten() else {
        return Ok(None);
    };
    let stream_index = stream.index();
    let refs = RefReader::of(&stream.parameters());
    let middle = input.duration() / 2;
    input
        .seek(middle, ..middle)
        .map_err(|e| Error::input(path, format!("seek error ({e})")))?;
    let mut scan = Scan::new();
    let mut marks = Some(marks);
    read_each(&mut input, path, stream_index, |packet| {
        if let Some(marks) = marks.take() {
            if !packet.is_key() {
                // Not a place the halves can join at: dropping `marks` tells the first half.
                return Ok(false);
            }
            // An error means the first half has stopped waiting; `abort` then ends this.
            let _ = marks.send(Mark::of(packet));
        }
        scan.push(packet, refs);
        Ok(!abort.load(Ordering::Relaxed))
    })?;
    let whole = !scan.packets.is_empty() && !abort.load(Ordering::Relaxed);
    scan.spare = Some(input);
    Ok(whole.then_some(scan))
}

/// Reads the stream's packets into `scan` until `stop`; returns the packet it stopped at
/// (not pushed), or None at the end of the file.
fn read(
    input: &mut Input,
    path: &Path,
    stream: usize,
    refs: Option<RefReader>,
    stop: Option<Mark>,
    scan: &mut Scan,
) -> Result<Option<PacketInfo>> {
    let mut boundary = None;
    read_each(input, path, stream, |packet| {
        if stop.is_some_and(|mark| mark == Mark::of(packet)) {
            boundary = Some(scan.info(packet, refs));
            return Ok(false);
        }
        scan.push(packet, refs);
        Ok(true)
    })?;
    Ok(boundary)
}

/// `f` on each packet of `stream` in file order until the end or until it returns false.
fn read_each(
    input: &mut Input,
    path: &Path,
    stream: usize,
    mut f: impl FnMut(&Packet) -> Result<bool>,
) -> Result<()> {
    loop {
        // A fresh packet per read: reading into a used one leaks its buffer.
        let mut packet = Packet::empty();
        match packet.read(input) {
            Ok(()) => {}
            Err(ffmpeg::Error::Eof) => return Ok(()),
            Err(ffmpeg::Error::InvalidData) => continue,
            Err(e) => {
                return Err(Error::input(path, format!("read error in the video ({e})")));
            }
        }
        if packet.stream() == stream && !f(&packet)? {
            return Ok(());
        }
    }
}

impl Scan {
    /// Nothing read yet, by one demuxer.
    fn new() -> Self {
        Scan {
            packets: Vec::new(),
            has_pts: true,
            spare: None,
            next_synthetic: 0,
        }
    }

    /// Demuxers that read it: 2 when split, the second's then kept in `spare`.
    pub(super) fn demuxers(&self) -> usize {
        1 + usize::from(self.spare.is_some())
    }

    fn info(&mut self, packet: &Packet, refs: Option<RefReader>) -> PacketInfo {
        self.has_pts &= packet.pts().is_some();
        // Timestamps are only keys here; frames without them get unique ones.
        let pts = packet.pts().or(packet.dts()).unwrap_or(self.next_synthetic);
        self.next_synthetic = pts + 1;
        PacketInfo {
            pts,
            dts: packet.dts(),
            key: packet.is_key(),
            discard: is_discarded(packet),
            reference: refs.is_none_or(|r| r.is_reference(packet.data().unwrap_or(&[]))),
        }
    }

    fn push(&mut self, packet: &Packet, refs: Option<RefReader>) {
        let info = self.info(packet, refs);
        self.packets.push(info);
    }
}
