//! A video's rows, the connector's output for every clip: read from the encoded-video cache
//! when it holds them, else decoded, preprocessed and encoded, then stored there.

use super::batch::{self, ClipQueue};
use super::{millis, Observer, Pipeline, Prepared, Stage, Timings};
use crate::cache::entry::Expected;
use crate::cache::hash::Digest;
use crate::cache::key::{encoder_files, rows_key, RowsInputs};
use crate::cache::CacheUse;
use crate::error::{Error, Result};
use crate::model::VideoRows;
use crate::video::extract::for_each_clip;
use candle_core::Tensor;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A video ready for questions.
pub struct EncodedVideo {
    pub path: PathBuf,
    pub rows: VideoRows,
    /// Where the rows came from.
    pub cache: CacheUse,
    /// What getting the rows took, until the first answer about the video reports it.
    pub(super) unreported: Timings,
}

impl Pipeline {
    /// The rows of `prepared`, from the cache or computed (and then cached).
    pub fn encode(
        &mut self,
        prepared: &mut Prepared,
        observer: &mut dyn Observer,
    ) -> Result<EncodedVideo> {
        let path = prepared.info.path.clone();
        self.load(observer)?;
        let start = Instant::now();
        let key = self.cache_key(prepared);
        let expected = |key| Expected {
            key,
            dtype: self.dtype,
            rows: prepared.plan.clips.len() * self.checkpoint.config.connector.num_output_tokens,
            width: self.checkpoint.config.llm.hidden_size,
        };
        let done = |rows, cache, timings| EncodedVideo {
            path: path.clone(),
            rows: VideoRows::new(rows),
            cache,
            unreported: timings,
        };
        let (Some(cache), Some(key)) = (&self.cache, key) else {
            let (rows, timings) = self.encode_video(prepared, observer)?;
            return Ok(done(rows, CacheUse::Off, timings));
        };
        if let Some(rows) = cache.load(&expected(&key), &self.device) {
            tracing::debug!("{path:?}: video rows from the cache");
            let timings = Timings {
                cache: start.elapsed(),
                ..Timings::default()
            };
            return Ok(done(rows, CacheUse::Hit, timings));
        }
        let lookup = start.elapsed();
        let (rows, mut timings) = self.encode_video(prepared, observer)?;
        let store = Instant::now();
        if let Some(cache) = &self.cache {
            cache.store(&key, &rows);
        }
        timings.cache = lookup + store.elapsed();
        Ok(done(rows, CacheUse::Miss, timings))
    }

    /// The cache key of `prepared`'s rows; `None` without a cache, or when a file cannot be
    /// hashed (a warning: the video is then computed and not cached).
    fn cache_key(&mut self, prepared: &Prepared) -> Option<Digest> {
        let hashes = self.cache.as_ref()?.hashes();
        let encoders = match self.encoders_hash {
            Some(hash) => Ok(hash),
            None => encoder_files(&self.checkpoint).and_then(|files| hashes.of_files(&files)),
        };
        let inputs = encoders.and_then(|encoders| {
            self.encoders_hash = Some(encoders);
            Ok((encoders, hashes.of(&prepared.info.path)?))
        });
        match inputs {
            Ok((encoders, video)) => Some(rows_key(&RowsInputs {
                video,
                first_frame: prepared.info.segment.as_ref().map_or(0, |s| s.first_frame),
                plan: &prepared.plan,
                sampling: &prepared.sampling,
                encoders,
                dtype: self.dtype,
                device: &self.device,
            })),
            Err(e) => {
                tracing::warn!("cache: cannot hash {:?}: {e}", prepared.info.path);
                None
            }
        }
    }

    /// Every clip's video rows (clips * tokens_per_clip, hidden), encoding a batch as soon as
    /// its clips are preprocessed while the next clips are decoded.
    fn encode_video(
        &self,
        prepared: &mut Prepared,
        observer: &mut dyn Observer,
    ) -> Result<(Tensor, Timings)> {
        let path = prepared.info.path.clone();
        let model = self.model.as_ref().expect("loaded before encoding");
        let clips = prepared.plan.clips.len() as u64;
        let mut timings = Timings::default();
        let mut queue = ClipQueue::default();
        let mut rows = Vec::new();
        // A batch encoded since `start`: its time, its rows, its clips' progress.
        let mut record = |done: Option<batch::Encoded>,
                          start: Instant,
                          observer: &mut dyn Observer,
                          timings: &mut Timings|
         -> Result<()> {
            if let Some(done) = done {
                self.device.synchronize()?;
                timings.encode += start.elapsed();
                tracing::debug!(
                    "encoded a batch of {} clips in {} ms",
                    done.clips,
                    millis(start.elapsed())
                );
                rows.push(done.rows);
                for _ in 0..done.clips {
                    observer.advance(Stage::Encode);
                }
            }
            Ok(())
        };
        observer.begin(Stage::Decode, clips);
        observer.begin(Stage::Encode, clips);
        // Decoding and preprocessing run on a thread of their own, ahead of the encoders by
        // at most one batch of clips: the video stage costs about the longer of the two, not
        // their sum, and holds at most two batches of pixels (the channel's and the queue's).
        let (clips_out, clips_in) = mpsc::sync_channel(model.config().encode_batch_size);
        let (video, plan, preprocessor) = (&mut prepared.video, &prepared.plan, &self.preprocessor);
        let result = std::thread::scope(|scope| {
            let producer = scope.spawn(move || {
                let start = Instant::now();
                let (mut preprocess, mut waiting) = (Duration::ZERO, Duration::ZERO);
                let result = for_each_clip(video, plan, |_, frames| {
                    let t = Instant::now();
                    let clip = preprocessor.preprocess_clip(frames);
                    preprocess += t.elapsed();
                    let t = Instant::now();
                    // A closed channel: the encoders failed, and say why.
                    clips_out
                        .send(clip)
                        .map_err(|_| Error::runtime(None, "encoding stopped"))?;
                    waiting += t.elapsed();
                    Ok(())
                });
                (result, start.elapsed() - preprocess - waiting, preprocess)
            });
            let mut encoded = Ok(());
            for clip in clips_in.iter() {
                observer.advance(Stage::Decode);
                let encoding = Instant::now();
                encoded = queue
                    .push(model, clip)
                    .and_then(|done| record(done, encoding, observer, &mut timings));
                if encoded.is_err() {
                    break;
                }
            }
            drop(clips_in);
            let (decoded, decode, preprocess) = match producer.join() {
                Ok(done) => done,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            observer.end(Stage::Decode);
            timings.decode = decode;
            timings.preprocess = preprocess;
            encoded.and(decoded).and_then(|()| {
                let encoding = Instant::now();
                record(queue.flush(model)?, encoding, observer, &mut timings)
            })
        });
        observer.end(Stage::Encode);
        result.map_err(|e| e.or_path(&path))?;
        tracing::debug!(
            "{path:?}: decode {} ms, preprocess {} ms, encode {} ms",
            millis(timings.decode),
            millis(timings.preprocess),
            millis(timings.encode)
        );
        Ok((Tensor::cat(&rows, 0)?, timings))
    }
}
