//! Runs (the frames reached from one seek, see `Index::runs`) decoded side by side by several
//! decoders, each with its own demuxer and seek position, and handed over in order.
//!
//! Why workers rather than ffmpeg's own threads: frame threading pipelines consecutive
//! pictures, and a sampled decode is short stretches between seeks, each flushing that
//! pipeline; on small frames it gains nothing. Runs are independent, so they scale with the
//! cores as long as there are more runs than workers. `--threads N` gives `min(N, runs)`
//! workers and splits the rest among their decoders (a 20-second video has one or two runs:
//! its decoder gets the threads).
//!
//! On a 16-core GPU machine: a 1-hour video's default plan is about 100 runs (~76 pictures
//! each, 5 to 150 ms on one core), so 16 workers get ~6 runs each and the decoding itself
//! should speed up ~12-14x (the uneven last runs set the end). The packet scan that opens the
//! file (~0.25 s for an hour on one thread) is split in two on an MP4 (`scan`; ~0.12 s
//! measured with 2 threads, the second demuxer then serving a worker) and no further, so the
//! whole stage should take ~0.45 s instead of ~4.3 s: ~10x. Beyond that, the scan is the next
//! thing to split more finely.
//!
//! Workers take runs in order from a shared counter and wait while they are more than
//! `2 * workers` runs ahead of the one handed over, so memory holds at most that many runs'
//! frames however uneven they are.

use super::{open_decoder, open_input, DecodeStats, Index, Video, VideoInfo};
use crate::error::{Error, Result};
use crate::video::frame::RgbFrame;
use crate::video::rotate::Rotation;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use video_rs::ffmpeg::format::context::Input;

/// Decoders at work and the threads ffmpeg gets inside each, for `threads` threads and `runs`
/// runs.
pub(super) fn split_threads(threads: usize, runs: usize) -> (usize, usize) {
    let workers = threads.min(runs).max(1);
    (workers, (threads / workers).max(1))
}

/// What the workers and the one handing frames over share.
#[derive(Default)]
struct State {
    /// Runs handed over so far.
    delivered: usize,
    /// Decoded runs waiting for their turn, by number.
    ready: BTreeMap<usize, Result<Vec<(u64, RgbFrame)>>>,
    /// Workers still running.
    live: usize,
    /// Set when the frames are no longer wanted.
    stop: bool,
    /// Why a worker could not open the video.
    broken: Option<Error>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Counts a worker out however it ends, a panic included, so the receiver never waits for it.
struct Leaving<'a>(&'a Shared);

impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        self.0.lock().live -= 1;
        self.0.changed.notify_all();
    }
}

impl Video {
    /// Decodes `runs` of `indices` with several decoders and hands the frames to `sink` in
    /// order, as [`Video::decode_runs`] does with one. A worker takes `spare`, a demuxer of
    /// this video already open, instead of opening one.
    pub(super) fn decode_in_parallel(
        &mut self,
        indices: &[u64],
        runs: &[Range<usize>],
        mut spare: Option<Input>,
        sink: &mut dyn FnMut(u64, RgbFrame) -> Result<()>,
    ) -> Result<()> {
        let (workers, inner) = split_threads(self.threads, runs.len());
        let window = 2 * workers;
        let shared = Shared {
            state: Mutex::new(State {
                live: workers,
                ..State::default()
            }),
            changed: Condvar::new(),
        };
        let next = AtomicUsize::new(0);
        let spec = WorkerSpec {
            info: self.info.clone(),
            index: self.index.clone(),
            rotation: self.rotation,
            first: self.first,
        };
        let (shared, next, spec) = (&shared, &next, &spec);
        let (result, stats) = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    let input = spare.take();
                    scope.spawn(move || {
                        let _leaving = Leaving(shared);
                        let mut worker = match spec.open(inner, input) {
                            Ok(w) => w,
                            Err(e) => {
                                shared.lock().broken.get_or_insert(e);
                                shared.changed.notify_all();
                                return DecodeStats::default();
                            }
                        };
                        loop {
                            let r = next.fetch_add(1, Ordering::SeqCst);
                            if r >= runs.len() {
                                break;
                            }
                            {
                                let mut state = shared.lock();
                                while !state.stop && r >= state.delivered + window {
                                    state = shared
                                        .changed
                                        .wait(state)
                                        .unwrap_or_else(|e| e.into_inner());
                                }
                                if state.stop {
                                    break;
                                }
                            }
                            let mut frames = Vec::new();
                            let decoded =
                                worker.decode_runs(indices, &runs[r..r + 1], &mut |i, f| {
                                    frames.push((i, f));
                                    Ok(())
                                });
                            let failed = decoded.is_err();
                            shared.lock().ready.insert(r, decoded.map(|()| frames));
                            shared.changed.notify_all();
                            if failed {
                                break;
                            }
                        }
                        worker.stats
                    })
                })
                .collect();
            let result = hand_over(shared, runs.len(), sink);
            shared.lock().stop = true;
            shared.changed.notify_all();
            let mut stats = DecodeStats::default();
            for handle in handles {
                match handle.join() {
                    Ok(s) => stats += s,
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            (result, stats)
        });
        self.stats += stats;
        result
    }
}

/// What a worker needs to open a decoder of its own.
struct WorkerSpec {
    info: VideoInfo,
    index: Arc<Index>,
    rotation: Rotation,
    first: u64,
}

impl WorkerSpec {
    /// A decoder of its own for this video (own demuxer, own seek position), sharing the
    /// packet index, with `threads` threads inside; on `input` if given, else on a demuxer
    /// opened here.
    fn open(&self, threads: usize, input: Option<Input>) -> Result<Video> {
        let path = &self.info.path;
        let input = match input {
            Some(input) => input,
            None => open_input(path)?,
        };
        let (stream, decoder) = open_decoder(&input, path, threads)?;
        Ok(Video {
            info: self.info.clone(),
            input,
            stream,
            decoder,
            index: self.index.clone(),
            rotation: self.rotation,
            scaler: None,
            first: self.first,
            threads,
            stats: DecodeStats::default(),
            last_seek: None,
            spare: None,
        })
    }
}

/// Hands the runs' frames to `sink` in order as they come; the first failure in that order
/// ends it.
fn hand_over(
    shared: &Shared,
    runs: usize,
    sink: &mut dyn FnMut(u64, RgbFrame) -> Result<()>,
) -> Result<()> {
    let mut state = shared.lock();
    while state.delivered < runs {
        if let Some(e) = state.broken.take() {
            return Err(e);
        }
        let turn = state.delivered;
        match state.ready.remove(&turn) {
            Some(frames) => {
                state.delivered += 1;
                shared.changed.notify_all();
                drop(state);
                for (i, frame) in frames? {
                    sink(i, frame)?;
                }
                state = shared.lock();
            }
            None if state.live == 0 => {
                return Err(Error::runtime(None, "the video decoders stopped early"));
            }
            None => {
                state = shared
                    .changed
                    .wait(state)
                    .unwrap_or_else(|e| e.into_inner())
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::split_threads;

    #[test]
    fn threads_go_to_workers_first_then_inside_them() {
        assert_eq!(split_threads(2, 80), (2, 1));
        assert_eq!(split_threads(16, 80), (16, 1));
        assert_eq!(split_threads(16, 3), (3, 5));
        assert_eq!(split_threads(4, 1), (1, 4));
        assert_eq!(split_threads(1, 0), (1, 1));
    }
}
