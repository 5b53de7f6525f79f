//! One question about one video, stage by stage: open and plan (cheap, so a bad file or an
//! over-long prompt fails before any heavy work), then decode, preprocess and encode the clips
//! (interleaved, so only one encoder batch of pixels is held at a time), then prefill and
//! generate. The model is loaded once, on first use, and serves any number of videos.

use crate::error::{Error, Result};
use crate::generate::config::GenerationConfig;
use crate::generate::run::{generate, GenerateOptions, Generation};
use crate::model::config::PixelSpec;
use crate::model::{ApolloConfig, ApolloModel};
use crate::prompt::chat::{chat_prompt, user_message};
use crate::prompt::tokens::{PromptTokenizer, VIDEO_SLOT};
use crate::prompt::video::video_prompt;
use crate::video::decode::{Video, VideoInfo};
use crate::video::extract::for_each_clip;
use crate::video::preprocess::{ClipTensor, EncoderSpec, Preprocessor};
use crate::video::sample::{plan, SamplingConfig, SamplingPlan};
use candle_core::{DType, Device, Tensor};
use std::path::Path;
use std::time::{Duration, Instant};

/// The stages a caller may show progress for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading the weights (no steps).
    Load,
    /// Decoding and preprocessing, in clips.
    Decode,
    /// Both encoders and the connector, in clips.
    Encode,
    /// The prompt's forward pass (no steps).
    Prefill,
}

/// Receives progress; every method does nothing by default.
pub trait Observer {
    fn begin(&mut self, _stage: Stage, _steps: u64) {}
    fn advance(&mut self, _stage: Stage) {}
    fn end(&mut self, _stage: Stage) {}
}

/// An observer that shows nothing.
pub struct Silent;
impl Observer for Silent {}

/// A video opened and planned, with its prompt tokenised: everything before the heavy work.
pub struct Prepared {
    pub video: Video,
    pub info: VideoInfo,
    pub plan: SamplingPlan,
    /// The whole chat prompt, video placeholders included.
    pub prompt: String,
    /// Prompt ids with `VIDEO_SLOT` for each video row.
    pub ids: Vec<i64>,
    pub video_tokens: usize,
}

/// Wall-clock time of each stage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Loading the model; zero when it was already loaded.
    pub load: Duration,
    pub decode: Duration,
    pub preprocess: Duration,
    pub encode: Duration,
    pub prefill: Duration,
    pub generate: Duration,
}

/// Milliseconds to the microsecond, as the JSON reports give durations.
pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

pub struct Answer {
    pub generation: Generation,
    pub timings: Timings,
}

pub struct Pipeline {
    config: ApolloConfig,
    tokenizer: PromptTokenizer,
    generation: GenerationConfig,
    preprocessor: Preprocessor,
    device: Device,
    dtype: DType,
    model: Option<ApolloModel>,
    /// Time the last load took, until an answer reports it (so only the first answer after
    /// loading counts it).
    unreported_load: Duration,
}

impl Pipeline {
    /// Reads a checkpoint's configs and tokenizer; the weights load on first use.
    pub fn open(dir: &Path, device: Device, dtype: DType) -> Result<Self> {
        let config = ApolloConfig::load(dir)?;
        let tokenizer = PromptTokenizer::from_file(&config.llm_dir.join("tokenizer.json"))?;
        let generation = GenerationConfig::load(&config)?;
        let preprocessor = Preprocessor::new(
            encoder_spec(EncoderSpec::siglip(), &config.vision.siglip.pixels),
            encoder_spec(
                EncoderSpec::internvideo2(),
                &config.vision.internvideo2.pixels,
            ),
        );
        Ok(Self {
            config,
            tokenizer,
            generation,
            preprocessor,
            device,
            dtype,
            model: None,
            unreported_load: Duration::ZERO,
        })
    }

    pub fn config(&self) -> &ApolloConfig {
        &self.config
    }

    pub fn generation_config(&self) -> &GenerationConfig {
        &self.generation
    }

    pub fn tokenizer(&self) -> &PromptTokenizer {
        &self.tokenizer
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

    /// The sampling this checkpoint implies: its clip duration, tokens per clip and context.
    pub fn sampling_defaults(&self) -> SamplingConfig {
        sampling_defaults(&self.config)
    }

    /// The longest prompt plus answer the language model can hold.
    pub fn context_length(&self) -> usize {
        self.config.llm.max_position_embeddings
    }

    /// Opens `path`, plans its clips and tokenises the prompt; fails if the prompt does not
    /// fit the model's context.
    pub fn prepare(&self, path: &Path, question: &str, cfg: &SamplingConfig) -> Result<Prepared> {
        if cfg.num_output_tokens != self.config.connector.num_output_tokens {
            return Err(Error::usage(format!(
                "this model emits {} tokens per clip, not {}",
                self.config.connector.num_output_tokens, cfg.num_output_tokens
            )));
        }
        let video = Video::open(path)?;
        let info = video.info().clone();
        let plan = plan(info.total_frames, info.fps, cfg)
            .map_err(|e| Error::input(path, e.to_string()))?;
        let prompt = chat_prompt(&user_message(
            &video_prompt(
                &plan,
                info.duration_s,
                cfg.clip_duration,
                cfg.num_output_tokens,
            ),
            question,
        ));
        let ids = self.tokenizer.tokenize(&prompt)?;
        let video_tokens = ids.iter().filter(|&&id| id == VIDEO_SLOT).count();
        let context = self.context_length();
        if ids.len() >= context {
            return Err(Error::input(
                path,
                format!(
                    "the prompt needs {} tokens ({video_tokens} video tokens for {} clips) but the \
                     model's context holds {context}; lower --clip-sampling-ratio (now {})",
                    ids.len(),
                    plan.clips.len(),
                    cfg.clip_sampling_ratio
                ),
            ));
        }
        Ok(Prepared {
            video,
            info,
            plan,
            prompt,
            ids,
            video_tokens,
        })
    }

    /// Loads the weights unless loaded. The next answer reports the time it took.
    pub fn load(&mut self, observer: &mut dyn Observer) -> Result<()> {
        if self.model.is_some() {
            return Ok(());
        }
        let start = Instant::now();
        observer.begin(Stage::Load, 0);
        let model = ApolloModel::load(&self.config.dir, &self.device, self.dtype);
        observer.end(Stage::Load);
        self.model = Some(model?);
        self.unreported_load = start.elapsed();
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
            .embed_prompt(&prepared.ids, &rows)
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
        let batch = self.config.encode_batch_size;
        let clips = prepared.plan.clips.len() as u64;
        let mut timings = Timings::default();
        let mut pending: (Vec<ClipTensor>, Vec<ClipTensor>) = (Vec::new(), Vec::new());
        let mut rows = Vec::new();
        let mut encode = |pending: &mut (Vec<ClipTensor>, Vec<ClipTensor>),
                          observer: &mut dyn Observer,
                          timings: &mut Timings|
         -> Result<()> {
            let start = Instant::now();
            rows.push(model.encode_clips(&pending.0, &pending.1)?);
            self.device.synchronize().map_err(crate::model::runtime)?;
            timings.encode += start.elapsed();
            for _ in 0..pending.0.len() {
                observer.advance(Stage::Encode);
            }
            pending.0.clear();
            pending.1.clear();
            Ok(())
        };
        observer.begin(Stage::Decode, clips);
        observer.begin(Stage::Encode, clips);
        let start = Instant::now();
        let mut busy = Duration::ZERO;
        let result = for_each_clip(&mut prepared.video, &prepared.plan, |_, frames| {
            let t = Instant::now();
            let (siglip, internvideo2) = self.preprocessor.preprocess_clip(frames);
            timings.preprocess += t.elapsed();
            observer.advance(Stage::Decode);
            pending.0.push(siglip);
            pending.1.push(internvideo2);
            if pending.0.len() == batch {
                encode(&mut pending, observer, &mut timings)?;
            }
            busy += t.elapsed();
            Ok(())
        });
        observer.end(Stage::Decode);
        result?;
        timings.decode = start.elapsed() - busy;
        if !pending.0.is_empty() {
            encode(&mut pending, observer, &mut timings)?;
        }
        observer.end(Stage::Encode);
        let rows = Tensor::cat(&rows, 0).map_err(crate::model::runtime)?;
        Ok((rows, timings))
    }
}

/// The sampling a checkpoint implies: its clip duration, tokens per clip and, when it states
/// one, the context the clip budget is sized against; the reference's defaults otherwise.
pub fn sampling_defaults(config: &ApolloConfig) -> SamplingConfig {
    let defaults = SamplingConfig::default();
    SamplingConfig {
        clip_duration: config.clip_duration,
        num_output_tokens: config.connector.num_output_tokens,
        model_max_length: config.model_max_length.unwrap_or(defaults.model_max_length),
        ..defaults
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
