//! Flag groups shared by the commands: clip sampling and the segment (inspect, ask, caption,
//! chat, serve), and the model and generation settings (ask, caption, chat, serve).

use super::bounds::{self, number, Low};
use super::progress::Bars;
use crate::cache::VideoCache;
use crate::checkpoint::hub::{self, HubSettings, DEFAULT_MODEL};
use crate::checkpoint::Checkpoint;
use crate::device::{device_name, select_device, select_dtype, DTypeChoice, DeviceChoice};
use crate::error::{Error, Result};
use crate::generate::run::GenerateOptions;
use crate::generate::sampler::TokenSampling;
use crate::model::check_frames_per_clip;
use crate::pipeline::Pipeline;
use crate::records::answer::{AnswerInputs, RunInfo, Settings};
use crate::records::identity::{self, ModelIdentity};
use crate::video::clips::ClipSampling;
use crate::video::segment::{parse_time, Segment};
use clap::builder::FalseyValueParser;
use clap::Args;
use std::path::{Path, PathBuf};

/// Clip sampling (which frames the model sees): any flag given explicitly overrides the model's
/// own values. Tokens per clip is the model's own and not among them (see `inspect`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Clip sampling")]
pub struct ClipSamplingArgs {
    /// Seconds of video per clip, 0.1 to 3600 [default: the model's, 2].
    #[arg(long, value_name = "SECONDS", value_parser = number(0.1f64, Low::Included, 3600.0))]
    pub clip_duration: Option<f64>,
    /// Frames sampled per clip, 1 to 256; with a model, a count its encoders take
    /// [default: 4].
    #[arg(long, value_name = "N", value_parser = number(1usize, Low::Included, 256))]
    pub frames_per_clip: Option<usize>,
    /// Context length the clip budget is sized against, 1 to 1048576; with a model, at most
    /// its context [default: the model's, 16384].
    #[arg(long, value_name = "TOKENS", value_parser = number(1usize, Low::Included, 1 << 20))]
    pub model_max_length: Option<usize>,
    /// Share of the context that video tokens may take, above 0 and at most 1 [default: 0.65].
    #[arg(long, value_name = "RATIO", value_parser = number(0.0f64, Low::Excluded, 1.0))]
    pub clip_sampling_ratio: Option<f64>,
    /// Only the part of the video from TIME on, seen as if it were the whole video: seconds
    /// (90, 12.5) or [H:]MM:SS[.fff] [default: its start].
    #[arg(long, value_name = "TIME", value_parser = parse_time, help_heading = "Segment")]
    pub start: Option<f64>,
    /// Only the part of the video before TIME (past its end: to its end) [default: its end].
    #[arg(long, value_name = "TIME", value_parser = parse_time, help_heading = "Segment")]
    pub end: Option<f64>,
}

impl ClipSamplingArgs {
    /// `base` (the model's sampling) with the flags given applied.
    pub fn resolve(&self, base: ClipSampling) -> Result<ClipSampling> {
        let mut cfg = base;
        if let Some(v) = self.clip_duration {
            cfg.clip_duration = v;
        }
        if let Some(v) = self.frames_per_clip {
            cfg.frames_per_clip = v;
        }
        if let Some(v) = self.model_max_length {
            cfg.model_max_length = v;
        }
        if let Some(v) = self.clip_sampling_ratio {
            cfg.clip_sampling_ratio = v;
        }
        cfg.segment = Segment::new(self.start, self.end)?;
        cfg.validate().map_err(|e| Error::usage(e.to_string()))?;
        Ok(cfg)
    }

    /// Checks `cfg` (resolved) against the checkpoint that will run it, before any video is
    /// decoded: its encoders must take the clips, and a budget given must fit its context.
    fn check_against(&self, cfg: &ClipSampling, checkpoint: &Checkpoint) -> Result<()> {
        check_frames_per_clip(&checkpoint.config, cfg.frames_per_clip)
            .map_err(|e| Error::usage(format!("--frames-per-clip {}: {e}", cfg.frames_per_clip)))?;
        let context = checkpoint.config.llm.max_position_embeddings;
        match self.model_max_length {
            Some(n) if n > context => Err(Error::usage(format!(
                "--model-max-length {n} is more than the model's context: expected a number \
                 from 1 to {context}"
            ))),
            _ => Ok(()),
        }
    }
}

/// Which checkpoint, on which device, in which precision.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Model")]
pub struct ModelArgs {
    /// Hugging Face repo of an Apollo checkpoint, downloaded into the Hugging Face cache on
    /// first use (HF_HOME, HF_HUB_CACHE, HF_TOKEN and HF_HUB_OFFLINE apply).
    #[arg(long, value_name = "REPO", default_value = DEFAULT_MODEL, value_parser = hub::repo_id)]
    pub model: String,
    /// Branch, tag or commit of --model.
    #[arg(long, default_value = "main", value_parser = hub::revision)]
    pub revision: String,
    /// A local checkpoint directory in the published layout, used instead of --model.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["model", "revision"])]
    pub model_dir: Option<PathBuf>,
    /// auto (CUDA when built with it and a GPU is present), cpu, cuda or cuda:N.
    #[arg(long, value_name = "DEVICE", default_value = "auto")]
    pub device: DeviceChoice,
    /// Weights and activations: auto is bf16 on CUDA, f32 on the CPU.
    #[arg(long, value_enum, default_value_t = DTypeChoice::Auto)]
    pub dtype: DTypeChoice,
    /// Neither read nor write the encoded-video cache (see `apollo cache`).
    #[arg(long, env = "APOLLO_NO_CACHE", value_parser = FalseyValueParser::new())]
    pub no_cache: bool,
    /// Threads for decoding video, 1 to 1024: decoders at work on separate keyframe groups,
    /// the rest shared among their own threads [default: the machine's cores].
    #[arg(long, value_name = "N", value_parser = number(1usize, Low::Included, 1024))]
    pub threads: Option<usize>,
}

/// What `ask` and `caption` hold before the first video: the model opened (its weights load
/// on first use), how records name it, and the clip sampling and generation settings
/// resolved against it.
pub struct Answering {
    pub pipeline: Pipeline,
    pub run: RunInfo,
    pub clips: ClipSampling,
    pub options: GenerateOptions,
    /// --seed, which the records' inputs name (the options hold the seed drawn without it).
    seed_asked: Option<u64>,
}

impl Answering {
    pub fn open(
        model: &ModelArgs,
        generation: &GenerationArgs,
        logprobs: Option<usize>,
        clips: &ClipSamplingArgs,
        bars: &mut Bars,
    ) -> Result<Self> {
        let (pipeline, run) = model.open(bars)?;
        let resolved = clips.resolve(pipeline.checkpoint().clip_sampling())?;
        clips.check_against(&resolved, pipeline.checkpoint())?;
        Ok(Self {
            clips: resolved,
            options: generation.options(&pipeline, logprobs)?,
            seed_asked: generation.seed,
            pipeline,
            run,
        })
    }

    /// The inputs of each question's record about `video`, identified once, as it is before
    /// it is read.
    pub fn inputs(&self, video: &Path, questions: &[String]) -> Vec<AnswerInputs> {
        let first = AnswerInputs::new(video, "", &self.settings());
        questions
            .iter()
            .map(|q| AnswerInputs {
                question: q.clone(),
                ..first.clone()
            })
            .collect()
    }

    /// What records of this session name besides their video and question.
    pub fn settings(&self) -> Settings<'_> {
        Settings {
            run: &self.run,
            clips: &self.clips,
            options: &self.options,
            seed_asked: self.seed_asked,
        }
    }
}

impl ModelArgs {
    /// Finds the checkpoint (downloading what is missing) and reads its configs and tokenizer.
    fn open(&self, bars: &mut Bars) -> Result<(Pipeline, RunInfo)> {
        let (dir, name, identity) = match &self.model_dir {
            Some(dir) => {
                let absolute = identity::absolute(dir).unwrap_or_else(|| dir.display().to_string());
                (
                    dir.clone(),
                    dir.display().to_string(),
                    ModelIdentity::Dir(absolute),
                )
            }
            None => {
                let snapshot =
                    hub::fetch(&self.model, &self.revision, &HubSettings::from_env()?, bars)?;
                let identity = ModelIdentity::Hub {
                    repo: self.model.clone(),
                    commit: snapshot.commit,
                };
                (snapshot.dir, self.model.clone(), identity)
            }
        };
        let device = select_device(self.device)?;
        let dtype = select_dtype(self.dtype, &device);
        let run = RunInfo {
            model: name,
            identity,
            device: device_name(&device),
            dtype: dtype.as_str().to_string(),
        };
        tracing::debug!("checkpoint {dir:?}, on {} in {}", run.device, run.dtype);
        let cache = match self.no_cache {
            true => None,
            false => Some(VideoCache::from_env()?),
        };
        let mut pipeline = Pipeline::new(Checkpoint::open(&dir)?, device, dtype)?.with_cache(cache);
        if let Some(threads) = self.threads {
            pipeline.set_decode_threads(threads);
        }
        Ok((pipeline, run))
    }
}

/// How answers are generated.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Generation")]
pub struct GenerationArgs {
    /// Temperature of the token sampling, 0 to 100; 0 takes the most likely token every time.
    #[arg(
        long,
        default_value_t = 0.4,
        value_name = "T",
        value_parser = bounds::temperature()
    )]
    pub temperature: f32,
    /// Nucleus sampling: draw from the most likely tokens that together hold this probability,
    /// above 0 and at most 1.
    #[arg(
        long,
        default_value_t = 0.7,
        value_name = "P",
        value_parser = bounds::top_p()
    )]
    pub top_p: f32,
    /// Draw from the K most likely tokens, 0 (all) to the model's vocabulary size
    /// [default: the model's generation config].
    #[arg(long, value_name = "K")]
    pub top_k: Option<usize>,
    /// Penalty on tokens already generated, above 0 and at most 100 (1 is none)
    /// [default: the model's generation config].
    #[arg(long, value_name = "X", value_parser = bounds::repetition_penalty())]
    pub repetition_penalty: Option<f32>,
    /// Longest answer, in tokens, 1 to 1048576 (the model's context ends it sooner).
    #[arg(
        long,
        default_value_t = 256,
        value_name = "N",
        value_parser = bounds::max_new_tokens()
    )]
    pub max_new_tokens: usize,
    /// Seed of the token sampling: the same seed, video, question and device give the same answer
    /// [default: random; --json reports it].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

/// Log-probabilities in the records (`apollo serve` takes them per request instead).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Generation")]
pub struct LogprobsArgs {
    /// The top-K log-probabilities of each generated token, 0 to 20, in the JSON record.
    #[arg(long, value_name = "K", value_parser = bounds::logprobs())]
    pub logprobs: Option<usize>,
}

impl GenerationArgs {
    /// The settings for `pipeline`'s model: flags first, then its generation config.
    pub fn options(&self, pipeline: &Pipeline, logprobs: Option<usize>) -> Result<GenerateOptions> {
        let checkpoint = &pipeline.checkpoint().generation;
        let vocab = pipeline.checkpoint().config.llm.vocab_size;
        if let Some(k) = self.top_k.filter(|&k| k > vocab) {
            return Err(Error::usage(format!(
                "--top-k {k} is more than the model's vocabulary: expected a number from 0 to \
                 {vocab}"
            )));
        }
        let sampling = TokenSampling {
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k.unwrap_or(checkpoint.top_k),
            repetition_penalty: self
                .repetition_penalty
                .unwrap_or(checkpoint.repetition_penalty),
        };
        Ok(GenerateOptions {
            sampling,
            // Below 2^53 so that JSON readers (jq, JavaScript) keep every digit.
            seed: self.seed.unwrap_or_else(|| rand::random::<u64>() >> 11),
            max_new_tokens: self.max_new_tokens,
            logprobs,
            eos_token_ids: checkpoint.eos_token_ids.clone(),
            context_length: pipeline.context_length(),
            stop: Vec::new(),
        })
    }
}
