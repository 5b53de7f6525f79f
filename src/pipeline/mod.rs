//! One question about one video, stage by stage: open and plan (cheap, so a bad file or an
//! over-long prompt fails before any heavy work), then decode, preprocess and encode the clips
//! (interleaved, so only one encoder batch of pixels is held at a time), then prefill and
//! generate. The model is loaded once, on first use, and serves any number of videos.

pub mod batch;
pub mod stages;

pub use stages::{millis, Observer, Silent, Stage, Timings};

use crate::checkpoint::config::PixelSpec;
use crate::checkpoint::Checkpoint;
use crate::error::{Error, Kind, Result};
use crate::generate::run::{generate, GenerateOptions, Generation};
use crate::model::input::{positions, video_rows};
use crate::model::{ApolloModel, PromptChunk};
use crate::prompt::chat::ChatPrompt;
use crate::prompt::tokens::PromptTokenizer;
use crate::prompt::video::video_prompt;
use crate::video::clips::{plan_clips, ClipPlan, ClipSampling};
use crate::video::decode::{Video, VideoInfo};
use crate::video::extract::for_each_clip;
use crate::video::preprocess::{EncoderSpec, Preprocessor};
use crate::video::segment;
use batch::ClipQueue;
use candle_core::{DType, Device, Tensor};
use std::path::Path;
use std::time::{Duration, Instant};

/// A video opened and planned, with its prompt tokenised: everything before the heavy work.
pub struct Prepared {
    pub video: Video,
    pub info: VideoInfo,
    pub plan: ClipPlan,
    /// The whole chat prompt, video placeholders included.
    pub prompt: String,
    /// The prompt as the model takes it: text ids and video rows.
    pub chunks: Vec<PromptChunk>,
}

impl Prepared {
    /// Positions of the prompt: text tokens and video rows.
    pub fn prompt_tokens(&self) -> usize {
        positions(&self.chunks)
    }

    pub fn video_tokens(&self) -> usize {
        video_rows(&self.chunks)
    }
}

pub struct Answer {
    pub generation: Generation,
    pub timings: Timings,
}

pub struct Pipeline {
    checkpoint: Checkpoint,
    tokenizer: PromptTokenizer,
    preprocessor: Preprocessor,
    device: Device,
    dtype: DType,
    model: Option<ApolloModel>,
    /// Time the last load took, until an answer reports it (so only the first answer after
    /// loading counts it).
    unreported_load: Duration,
}

impl Pipeline {
    /// Reads the checkpoint's tokenizer; the weights load on first use.
    pub fn new(checkpoint: Checkpoint, device: Device, dtype: DType) -> Result<Self> {
        let tokenizer = PromptTokenizer::from_file(&checkpoint.layout.tokenizer())?;
        let vision = &checkpoint.config.vision;
        let preprocessor = Preprocessor::new(
            encoder_spec(EncoderSpec::siglip(), &vision.siglip.pixels),
            encoder_spec(EncoderSpec::internvideo2(), &vision.internvideo2.pixels),
        );
        Ok(Self {
            checkpoint,
            tokenizer,
            preprocessor,
            device,
            dtype,
            model: None,
            unreported_load: Duration::ZERO,
        })
    }

    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    pub fn preprocessor(&self) -> &Preprocessor {
        &self.preprocessor
    }

    /// The model, loaded first if need be.
    pub fn model(&mut self) -> Result<&mut ApolloModel> {
        self.load(&mut Silent)?;
        Ok(self.model.as_mut().expect("loaded above"))
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The longest prompt plus answer the language model can hold.
    pub fn context_length(&self) -> usize {
        self.checkpoint.config.llm.max_position_embeddings
    }

    /// Opens `path`, plans its clips and tokenises the prompt; fails if the prompt does not
    /// fit the model's context.
    pub fn prepare(&self, path: &Path, question: &str, cfg: &ClipSampling) -> Result<Prepared> {
        let tokens_per_clip = self.checkpoint.config.connector.num_output_tokens;
        if cfg.tokens_per_clip != tokens_per_clip {
            return Err(Error::usage(format!(
                "this model emits {tokens_per_clip} tokens per clip, not {}",
                cfg.tokens_per_clip
            )));
        }
        let video = segment::open(path, cfg.segment.as_ref())?;
        let info = video.info().clone();
        let plan = plan_clips(info.total_frames, info.fps, cfg)
            .map_err(|e| Error::input(path, e.to_string()))?;
        let video_prompt = video_prompt(
            &plan,
            info.duration_s,
            cfg.clip_duration,
            cfg.tokens_per_clip,
        );
        let prompt = ChatPrompt::new(&video_prompt, question);
        let chunks = self.tokenizer.tokenize_chat(&prompt)?;
        tracing::debug!(
            "{path:?}: {}x{}, {} fps, {} frames; {} clips of {} frames, {} frames to decode; \
             prompt of {} positions, {} of them video rows",
            info.width,
            info.height,
            info.fps,
            info.total_frames,
            plan.clips.len(),
            cfg.frames_per_clip,
            plan.frames_to_decode().len(),
            positions(&chunks),
            video_rows(&chunks)
        );
        if positions(&chunks) >= self.context_length() {
            return Err(self.too_long(path, &video_prompt, &chunks, &plan, cfg));
        }
        Ok(Prepared {
            video,
            info,
            plan,
            prompt: prompt.text,
            chunks,
        })
    }

    /// Why a prompt does not fit the context, and what to change: the question when the
    /// video's prompt alone would fit, else the clip budget.
    fn too_long(
        &self,
        path: &Path,
        video_prompt: &str,
        chunks: &[PromptChunk],
        plan: &ClipPlan,
        cfg: &ClipSampling,
    ) -> Error {
        let (needed, context) = (positions(chunks), self.context_length());
        let without_question = self
            .tokenizer
            .tokenize_chat(&ChatPrompt::new(video_prompt, ""))
            .map_or(needed, |c| positions(&c));
        if without_question < context {
            return Error::new(
                Kind::Usage,
                Some(path),
                format!(
                    "the prompt needs {needed} tokens but the model's context holds {context}: \
                     the question takes {} of them and at most {} fit beside this video's \
                     prompt; shorten the question",
                    needed - without_question,
                    context - 1 - without_question
                ),
            );
        }
        Error::input(
            path,
            format!(
                "the prompt needs {needed} tokens ({} video tokens for {} clips) but the model's \
                 context holds {context}; lower --clip-sampling-ratio (now {})",
                video_rows(chunks),
                plan.clips.len(),
                cfg.clip_sampling_ratio
            ),
        )
    }

    /// Loads the weights unless loaded. The next answer reports the time it took.
    pub fn load(&mut self, observer: &mut dyn Observer) -> Result<()> {
        if self.model.is_some() {
            return Ok(());
        }
        let start = Instant::now();
        observer.begin(Stage::Load, 0);
        let model = ApolloModel::load(&self.checkpoint, &self.device, self.dtype);
        observer.end(Stage::Load);
        self.model = Some(model?);
        self.unreported_load = start.elapsed();
        tracing::debug!(
            "weights of {:?} loaded in {} ms",
            self.checkpoint.layout.dir,
            millis(self.unreported_load)
        );
        Ok(())
    }

    /// Answers the prepared question, calling `on_text` with the answer as it streams.
    pub fn answer(
        &mut self,
        mut prepared: Prepared,
        options: &GenerateOptions,
        observer: &mut dyn Observer,
        mut on_text: impl FnMut(&str) -> Result<()>,
    ) -> Result<Answer> {
        let path = prepared.info.path.clone();
        self.load(observer)?;
        let (rows, mut timings) = self
            .encode_video(&mut prepared, observer)
            .map_err(|e| e.or_path(&path))?;
        timings.load = std::mem::take(&mut self.unreported_load);
        let model = self.model.as_mut().expect("loaded above");
        let embeds = model
            .embed_prompt(&prepared.chunks, &rows)
            .map_err(|e| e.or_path(&path))?;
        observer.begin(Stage::Prefill, 0);
        let mut prefilled = false;
        let generation = generate(model, &embeds, &self.tokenizer, options, |text| {
            if !prefilled {
                observer.end(Stage::Prefill);
                prefilled = true;
            }
            on_text(text)
        });
        if !prefilled {
            observer.end(Stage::Prefill);
        }
        let generation = generation.map_err(|e| e.or_path(&path))?;
        timings.prefill = generation.prefill;
        timings.generate = generation.generate;
        tracing::debug!(
            "{path:?}: decode {} ms, preprocess {} ms, encode {} ms, prefill {} ms, {} tokens \
             in {} ms",
            millis(timings.decode),
            millis(timings.preprocess),
            millis(timings.encode),
            millis(timings.prefill),
            generation.ids.len(),
            millis(timings.generate)
        );
        Ok(Answer {
            generation,
            timings,
        })
    }

    /// Every clip's video rows (clips * tokens_per_clip, hidden), encoding a batch as soon as
    /// its clips are preprocessed.
    fn encode_video(
        &self,
        prepared: &mut Prepared,
        observer: &mut dyn Observer,
    ) -> Result<(Tensor, Timings)> {
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
        let start = Instant::now();
        let mut busy = Duration::ZERO;
        let result = for_each_clip(&mut prepared.video, &prepared.plan, |_, frames| {
            let t = Instant::now();
            let clip = self.preprocessor.preprocess_clip(frames);
            timings.preprocess += t.elapsed();
            observer.advance(Stage::Decode);
            let encoding = Instant::now();
            record(queue.push(model, clip)?, encoding, observer, &mut timings)?;
            busy += t.elapsed();
            Ok(())
        });
        observer.end(Stage::Decode);
        result?;
        timings.decode = start.elapsed() - busy;
        let encoding = Instant::now();
        record(queue.flush(model)?, encoding, observer, &mut timings)?;
        observer.end(Stage::Encode);
        Ok((Tensor::cat(&rows, 0)?, timings))
    }
}

/// A processor's resize and normalisation with the size and statistics the checkpoint gives.
fn encoder_spec(base: EncoderSpec, pixels: &PixelSpec) -> EncoderSpec {
    EncoderSpec {
        size: pixels.size,
        mean: pixels.mean,
        std: pixels.std,
        ..base
    }
}
