//! Questions about videos, stage by stage: open and plan (cheap, so a bad file or an
//! over-long prompt fails before any heavy work), then the video's rows (from the
//! encoded-video cache, or decoded, preprocessed and encoded, interleaved so that only one
//! encoder batch of pixels is held at a time), then prefill and generate, as many times as
//! there are questions. The model is loaded once, on first use, and serves any number of
//! videos.

pub mod batch;
pub mod rows;
pub mod stages;

pub use rows::EncodedVideo;
pub use stages::{millis, Observer, Silent, Stage, Timings};

use crate::cache::hash::Digest;
use crate::cache::{CacheUse, VideoCache};
use crate::checkpoint::config::PixelSpec;
use crate::checkpoint::Checkpoint;
use crate::error::{Error, Kind, Result};
use crate::generate::run::{generate, GenerateOptions, Generation};
use crate::model::input::{positions, video_rows};
use crate::model::{ApolloModel, BlockPrompt, PromptChunk, TokenId};
use crate::prompt::blocks::block_ends;
use crate::prompt::chat::{ChatPrompt, Exchange, ASSISTANT_HEADER};
use crate::prompt::tokens::PromptTokenizer;
use crate::prompt::video::video_prompt;
use crate::video::clips::{plan_clips, ClipPlan, ClipSampling};
use crate::video::decode::{available_threads, Video, VideoInfo};
use crate::video::preprocess::{EncoderSpec, Preprocessor};
use crate::video::segment;
use candle_core::{DType, Device};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A video opened and planned, with its video prompt: everything before the heavy work.
pub struct Prepared {
    pub video: Video,
    pub info: VideoInfo,
    pub plan: ClipPlan,
    /// The clip sampling it was planned with.
    pub sampling: ClipSampling,
    /// The video prompt, one placeholder per video row.
    pub video_prompt: String,
}

/// A prompt about a prepared video: tokenised, and cut into its prefill blocks.
pub struct Prompt {
    /// The whole chat prompt, video placeholders included.
    pub text: String,
    /// The prompt as the model takes it: text ids and video rows.
    pub chunks: Vec<PromptChunk>,
    /// Where its prefill blocks end (see `prompt::blocks`).
    pub ends: Vec<usize>,
}

impl Prompt {
    /// Positions of the prompt: text tokens and video rows.
    pub fn positions(&self) -> usize {
        positions(&self.chunks)
    }

    pub fn video_tokens(&self) -> usize {
        video_rows(&self.chunks)
    }
}

pub struct Answer {
    pub generation: Generation,
    /// This answer's stages; the video's (decode, preprocess, encode, cache) only in the
    /// first answer about it.
    pub timings: Timings,
    /// Where the video's rows came from.
    pub cache: CacheUse,
}

pub struct Pipeline {
    checkpoint: Checkpoint,
    tokenizer: PromptTokenizer,
    /// The ids of `<|im_start|>assistant\n`, where prefill blocks end.
    assistant_header: Vec<TokenId>,
    preprocessor: Preprocessor,
    device: Device,
    dtype: DType,
    model: Option<ApolloModel>,
    /// The encoded-video cache; `None` with `--no-cache`.
    cache: Option<VideoCache>,
    /// The content hash of the encoders' files, once computed.
    encoders_hash: Option<Digest>,
    /// Set (by a Ctrl-C handler) to stop the answer being generated.
    interrupt: Option<Arc<AtomicBool>>,
    /// Time the last load took, until an answer reports it (so only the first answer after
    /// loading counts it).
    unreported_load: Duration,
    /// Threads for decoding video.
    decode_threads: usize,
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
            assistant_header: tokenizer.encode(ASSISTANT_HEADER)?,
            checkpoint,
            tokenizer,
            preprocessor,
            device,
            dtype,
            model: None,
            cache: None,
            encoders_hash: None,
            interrupt: None,
            unreported_load: Duration::ZERO,
            decode_threads: available_threads(),
        })
    }

    /// Keeps encoded videos in `cache` and reads them back from it.
    pub fn with_cache(mut self, cache: Option<VideoCache>) -> Self {
        self.cache = cache;
        self
    }

    /// Decodes videos with `threads` threads (see `video::decode`).
    pub fn set_decode_threads(&mut self, threads: usize) {
        self.decode_threads = threads.max(1);
    }

    pub fn decode_threads(&self) -> usize {
        self.decode_threads
    }

    /// Answers stop early once `flag` is set.
    pub fn set_interrupt(&mut self, flag: Arc<AtomicBool>) {
        self.interrupt = Some(flag);
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

    /// Whether `prompt` leaves room in the context for at least one answer token.
    pub fn fits(&self, prompt: &Prompt) -> bool {
        prompt.positions() < self.context_length()
    }

    /// Opens `path` and plans its clips (cheap: no frame is decoded).
    pub fn prepare(&self, path: &Path, cfg: &ClipSampling) -> Result<Prepared> {
        let tokens_per_clip = self.checkpoint.config.connector.num_output_tokens;
        if cfg.tokens_per_clip != tokens_per_clip {
            return Err(Error::usage(format!(
                "this model emits {tokens_per_clip} tokens per clip, not {}",
                cfg.tokens_per_clip
            )));
        }
        let video = segment::open(path, cfg.segment.as_ref(), self.decode_threads)?;
        let info = video.info().clone();
        let plan = plan_clips(info.total_frames, info.fps, cfg)
            .map_err(|e| Error::input(path, e.to_string()))?;
        let video_prompt = video_prompt(
            &plan,
            info.duration_s,
            cfg.clip_duration,
            cfg.tokens_per_clip,
        );
        tracing::debug!(
            "{path:?}: {}x{}, {} fps, {} frames; {} clips of {} frames, {} frames to decode",
            info.width,
            info.height,
            info.fps,
            info.total_frames,
            plan.clips.len(),
            cfg.frames_per_clip,
            plan.frames_to_decode().len(),
        );
        Ok(Prepared {
            video,
            info,
            plan,
            sampling: cfg.clone(),
            video_prompt,
        })
    }

    /// The prompt of `question` about `prepared` after the `earlier` exchanges, tokenised and
    /// cut into blocks (whether it fits the context is the caller's to check).
    pub fn prompt(
        &self,
        prepared: &Prepared,
        earlier: &[Exchange],
        question: &str,
    ) -> Result<Prompt> {
        self.chat_prompt(
            prepared,
            ChatPrompt::turn(&prepared.video_prompt, earlier, question),
        )
    }

    /// `chat`, a prompt about `prepared`, tokenised and cut into blocks.
    pub fn chat_prompt(&self, prepared: &Prepared, chat: ChatPrompt) -> Result<Prompt> {
        let chunks = self.tokenizer.tokenize_chat(&chat)?;
        let ends = block_ends(&chunks, &self.assistant_header)?;
        tracing::debug!(
            "{:?}: prompt of {} positions, {} of them video rows, in blocks ending at {ends:?}",
            prepared.info.path,
            positions(&chunks),
            video_rows(&chunks)
        );
        Ok(Prompt {
            text: chat.text,
            chunks,
            ends,
        })
    }

    /// The prompt of one question about `prepared`, which must fit the model's context.
    pub fn question_prompt(
        &self,
        prepared: &Prepared,
        question: &str,
        cfg: &ClipSampling,
    ) -> Result<Prompt> {
        let prompt = self.prompt(prepared, &[], question)?;
        if !self.fits(&prompt) {
            return Err(self.too_long(prepared, &prompt, cfg));
        }
        Ok(prompt)
    }

    /// Why a prompt does not fit the context, and what to change: the question when the
    /// video's prompt alone would fit, else the clip budget.
    fn too_long(&self, prepared: &Prepared, prompt: &Prompt, cfg: &ClipSampling) -> Error {
        let path = &prepared.info.path;
        let (needed, context) = (prompt.positions(), self.context_length());
        let without_question = self
            .prompt(prepared, &[], "")
            .map_or(needed, |p| p.positions());
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
                prompt.video_tokens(),
                prepared.plan.clips.len(),
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

    /// Answers `prompt` about `video`, calling `on_text` with the answer as it streams. The
    /// first answer about a video reports what getting its rows took.
    pub fn answer(
        &mut self,
        video: &mut EncodedVideo,
        prompt: &Prompt,
        options: &GenerateOptions,
        observer: &mut dyn Observer,
        mut on_text: impl FnMut(&str) -> Result<()>,
    ) -> Result<Answer> {
        let path = video.path.clone();
        self.load(observer)?;
        let mut timings = std::mem::take(&mut video.unreported);
        timings.load = std::mem::take(&mut self.unreported_load);
        let model = self.model.as_mut().expect("loaded above");
        let blocks = BlockPrompt {
            chunks: &prompt.chunks,
            ends: &prompt.ends,
            video: &video.rows,
        };
        observer.begin(Stage::Prefill, 0);
        let mut prefilled = false;
        let generation = generate(
            model,
            &blocks,
            &self.tokenizer,
            options,
            self.interrupt.as_deref(),
            |text| {
                if !prefilled {
                    observer.end(Stage::Prefill);
                    prefilled = true;
                }
                on_text(text)
            },
        );
        if !prefilled {
            observer.end(Stage::Prefill);
        }
        let generation = generation.map_err(|e| e.or_path(&path))?;
        timings.prefill = generation.prefill;
        timings.generate = generation.generate;
        tracing::debug!(
            "{path:?}: prefill {} ms ({} positions, {} reused), {} tokens in {} ms",
            millis(timings.prefill),
            prompt.positions(),
            generation.reused,
            generation.ids.len(),
            millis(timings.generate)
        );
        Ok(Answer {
            generation,
            timings,
            cache: video.cache,
        })
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
