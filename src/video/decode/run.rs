//! Runs of decoding: packets in, wanted frames out. A run either decodes everything from where
//! the demuxer stands ([`Video::decode_sequentially`]) or starts at a keyframe and skips what
//! no wanted frame needs ([`Video::decode_from_keyframe`]); both are made of the same steps.

use super::Video;
use crate::error::{Error, Result};
use crate::video::frame::RgbFrame;
use std::ops::Range;
use video_rs::ffmpeg::{self, frame, util::error::EAGAIN, Discard, Packet};

/// Where one run of decoding stands.
pub(super) struct Run<'a> {
    /// The wanted presentation indices, ascending, the next one to hand over, and where this
    /// run ends.
    indices: &'a [u64],
    next: usize,
    end: usize,
    /// Decode-order position of the next packet to feed.
    fed: usize,
    /// Frames output so far, for streams numbered by counting.
    counted: u64,
    /// No more packets are fed: the end of the stream was reached, or every wanted frame
    /// has been; the decoder gives what it still holds.
    draining: bool,
}

impl<'a> Run<'a> {
    /// A run handing over `indices[wanted]`, feeding from decode position `fed`.
    pub(super) fn new(indices: &'a [u64], wanted: Range<usize>, fed: usize) -> Self {
        Self {
            indices,
            next: wanted.start,
            end: wanted.end,
            fed,
            counted: 0,
            draining: false,
        }
    }

    fn done(&self) -> bool {
        self.next == self.end
    }

    /// The wanted frames not yet handed over.
    fn pending(&self) -> &[u64] {
        &self.indices[self.next..self.end]
    }
}

impl Video {
    /// Decodes from the demuxer's position to the end and hands over `indices` (ascending),
    /// converting those for which `convert` says so: every frame is decoded.
    pub(super) fn decode_sequentially(
        &mut self,
        indices: &[u64],
        convert: &dyn Fn(u64) -> bool,
        sink: &mut dyn FnMut(u64, RgbFrame) -> Result<()>,
    ) -> Result<()> {
        let mut run = Run::new(indices, 0..indices.len(), 0);
        if run.done() {
            return Ok(());
        }
        let mut frame = frame::Video::empty();
        loop {
            while let Some(shown) = self.receive_wanted(&mut run, &mut frame)? {
                if convert(shown) {
                    sink(shown, self.convert_rgb(&frame)?)?;
                }
                if run.done() {
                    return Ok(());
                }
            }
            if let Some((packet, _)) = self.next_packet(&mut run)? {
                self.stats.decoded += 1;
                self.send(&packet)?;
            }
        }
    }

    /// Decodes from the keyframe just sought to (`run.fed`) and hands over the run's frames:
    /// frames that are neither wanted nor referenced by others are not decoded at all, and
    /// once the last wanted frame is fed the decoder is drained rather than fed further.
    pub(super) fn decode_from_keyframe(
        &mut self,
        mut run: Run,
        sink: &mut dyn FnMut(u64, RgbFrame) -> Result<()>,
    ) -> Result<()> {
        let mut frame = frame::Video::empty();
        let index = self.index.clone();
        let last = run.pending().iter().map(|&i| index.order_of(i)).max();
        loop {
            while let Some(shown) = self.receive_wanted(&mut run, &mut frame)? {
                sink(shown, self.convert_rgb(&frame)?)?;
                if run.done() {
                    return Ok(());
                }
            }
            if let Some((packet, order)) = self.next_packet(&mut run)? {
                let packet_info = index.packets.get(order);
                let wanted = packet_info
                    .and_then(|p| index.shown_index(p.pts))
                    .is_some_and(|i| run.pending().binary_search(&i).is_ok());
                self.decoder.skip_frame(if wanted {
                    Discard::Default
                } else {
                    Discard::NonReference
                });
                self.stats.decoded += u64::from(wanted || packet_info.is_none_or(|p| p.reference));
                self.send(&packet)?;
                if Some(order) == last {
                    self.drain(&mut run)?;
                }
            }
        }
    }

    /// The next wanted frame the decoder has ready, in `frame`, with its presentation index
    /// (`run.next` moves past it); `None` when the decoder needs more packets.
    fn receive_wanted(&mut self, run: &mut Run, frame: &mut frame::Video) -> Result<Option<u64>> {
        let path = &self.info.path;
        let broken = |i: u64| Error::input(path, format!("frame {i} could not be decoded"));
        loop {
            match self.decoder.receive_frame(frame) {
                Ok(()) => {}
                Err(ffmpeg::Error::Other { errno }) if errno == EAGAIN => return Ok(None),
                Err(ffmpeg::Error::Eof) => return Err(broken(run.indices[run.next])),
                Err(e) => return Err(Error::input(path, format!("decode error ({e})"))),
            }
            let shown = if self.index.has_pts {
                let Some(shown) = frame
                    .timestamp()
                    .or(frame.pts())
                    .and_then(|t| self.index.shown_index(t))
                else {
                    continue;
                };
                shown
            } else {
                // Streams numbered by counting the frames output.
                run.counted += 1;
                run.counted - 1
            };
            let wanted = run.indices[run.next];
            if shown > wanted {
                // The decoder dropped a wanted frame (a broken reference).
                return Err(broken(wanted));
            }
            if shown == wanted {
                run.next += 1;
                return Ok(Some(shown));
            }
        }
    }

    /// The next packet of the stream to feed, with its decode-order position; `None` after
    /// the end (the decoder is then drained) or for a packet to pass over.
    fn next_packet(&mut self, run: &mut Run) -> Result<Option<(Packet, usize)>> {
        if run.draining {
            return Ok(None);
        }
        // A fresh packet per read: reading into a used one leaks its buffer.
        let mut packet = Packet::empty();
        match packet.read(&mut self.input) {
            Ok(()) => {}
            Err(ffmpeg::Error::Eof) => {
                self.drain(run)?;
                return Ok(None);
            }
            Err(ffmpeg::Error::InvalidData) => return Ok(None),
            Err(e) => return Err(Error::input(&self.info.path, format!("read error ({e})"))),
        }
        if packet.stream() != self.stream {
            return Ok(None);
        }
        // After a seek the demuxer may land before the wanted keyframe: drop the packets
        // before it without decoding them.
        let order = packet
            .pts()
            .or(packet.dts())
            .filter(|_| self.index.has_pts)
            .and_then(|t| self.index.order_of_pts.get(&t).copied())
            .unwrap_or(run.fed);
        if order < run.fed {
            return Ok(None);
        }
        run.fed = order + 1;
        Ok(Some((packet, order)))
    }

    /// Feeds no more packets: the decoder hands over what it holds.
    fn drain(&mut self, run: &mut Run) -> Result<()> {
        self.decoder
            .send_eof()
            .map_err(|e| Error::input(&self.info.path, format!("decode error ({e})")))?;
        run.draining = true;
        Ok(())
    }

    fn send(&mut self, packet: &Packet) -> Result<()> {
        match self.decoder.send_packet(packet) {
            Ok(()) | Err(ffmpeg::Error::InvalidData) => Ok(()),
            Err(e) => Err(Error::input(&self.info.path, format!("decode error ({e})"))),
        }
    }
}
