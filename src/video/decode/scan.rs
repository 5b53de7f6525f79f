//! The packet scan that indexes a video at open: every video packet's timestamps and flags,
//! read without decoding. On a long MP4 it is split at a middle keyframe and read by two
//! demuxers at once: it is the one part of opening whose cost grows with the file (~0.25 s an
//! hour at 640x360 on one thread), and the decoders wait for it.
//!
//! Only MP4/MOV are split: their demuxer seeks exactly to a sample of its index and reads on
//! in the order a reading from the start does, so the halves join at the packet the second
//! starts with, without a gap or an overlap. Should they not meet (the seek lands on no
//! keyframe, the second demuxer fails), the first demuxer reads on to the end, as an unsplit
//! scan does.

use super::open::open_input;
use super::refs::RefReader;
use super::{is_discarded, PacketInfo};
use crate::error::{Error, Result};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender};
use video_rs::ffmpeg::format::context::Input;
use video_rs::ffmpeg::{self, Packet};

/// Videos shorter than this are scanned by one demuxer: splitting would save less than
/// opening a second one costs.
const SPLIT_FROM_SECONDS: i64 = 30;

/// The video stream's packets in decode order, and whether every one had a timestamp.
#[derive(Default)]
pub(super) struct Scan {
    pub(super) packets: Vec<PacketInfo>,
    pub(super) has_pts: bool,
    /// Demuxers that read it: 2 when split.
    pub(super) demuxers: usize,
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

/// Scans `input`, just opened, from the start; with a second demuxer for the second half
/// when `threads` allows and the file is a long MP4.
pub(super) fn scan(
    input: &mut Input,
    path: &Path,
    stream: usize,
    refs: Option<RefReader>,
    threads: usize,
) -> Result<Scan> {
    let mut first = Scan {
        has_pts: true,
        demuxers: 1,
        ..Scan::default()
    };
    let splits = threads >= 2
        && input
            .format()
            .name()
            .split(',')
            .any(|n| n == "mov" || n == "mp4")
        && input.duration() >= SPLIT_FROM_SECONDS * i64::from(ffmpeg::ffi::AV_TIME_BASE);
    if !splits {
        read(input, path, stream, refs, None, &mut first)?;
        return Ok(first);
    }
    let middle = input.duration() / 2;
    let abort = AtomicBool::new(false);
    std::thread::scope(|s| {
        let (marks, mark) = mpsc::sync_channel(1);
        let abort = &abort;
        let second = s.spawn(move || second_half(path, stream, refs, middle, marks, abort));
        // Waiting for the second half's first packet costs its open (milliseconds); without
        // the mark the first half could pass that packet before it knew it.
        let stop = mark.recv().ok();
        let boundary = match read(input, path, stream, refs, stop, &mut first) {
            Ok(Some(boundary)) => boundary,
            // Read to the end (the whole stream is here), or failed: the second half's work
            // is not needed.
            end => {
                abort.store(true, Ordering::Relaxed);
                end?;
                return Ok(first);
            }
        };
        match second.join() {
            Ok(Ok(Some(second))) => {
                first.packets.extend(second.packets);
                first.has_pts &= second.has_pts;
                first.demuxers = 2;
            }
            // The second half failed after it began: read it here instead, from the mark.
            _ => {
                first.packets.push(boundary);
                read(input, path, stream, refs, None, &mut first)?;
            }
        }
        Ok(first)
    })
}

/// The packets from the keyframe at or before `middle` (in AV_TIME_BASE units) to the end;
/// the first one's mark goes to `marks` as soon as it is read.
fn second_half(
    path: &Path,
    stream: usize,
    refs: Option<RefReader>,
    middle: i64,
    marks: SyncSender<Mark>,
    abort: &AtomicBool,
) -> Result<Option<Scan>> {
    let mut input = open_input(path)?;
    input
        .seek(middle, ..middle)
        .map_err(|e| Error::input(path, format!("seek error ({e})")))?;
    let mut scan = Scan {
        has_pts: true,
        ..Scan::default()
    };
    let mut marks = Some(marks);
    read_each(&mut input, path, stream, |packet| {
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
