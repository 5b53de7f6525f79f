//! Flag groups shared by the commands: clip sampling (inspect, ask, caption), and the model
//! and generation settings (ask, caption).

use super::progress::Bars;
use crate::checkpoint::hub::{self, HubSettings, DEFAULT_MODEL};
use crate::checkpoint::Checkpoint;
use crate::device::{device_name, select_device, select_dtype, DTypeChoice, DeviceChoice};
use crate::error::{Error, Result};
use crate::generate::run::GenerateOptions;
use crate::generate::sampler::TokenSampling;
use crate::pipeline::Pipeline;
use crate::records::answer::RunInfo;
use crate::video::clips::ClipSampling;
use clap::Args;
use std::path::PathBuf;

/// Clip sampling (which frames the model sees): any flag given explicitly overrides the model's
/// own values. Tokens per clip is the model's own and not among them (see `inspect`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Clip sampling")]
pub struct ClipSamplingArgs {
    /// Seconds of video per clip [default: the model's, 2].
    #[arg(long, value_name = "SECONDS")]
    pub clip_duration: Option<f64>,
    /// Frames sampled per clip [default: 4].
    #[arg(long, value_name = "N")]
    pub frames_per_clip: Option<usize>,
    /// Context length the clip budget is sized against [default: the model's, 16384].
    #[arg(long, value_name = "TOKENS")]
    pub model_max_length: Option<usize>,
    /// Share of the context that video tokens may take [default: 0.65].
    #[arg(long, value_name = "RATIO")]
    pub clip_sampling_ratio: Option<f64>,
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
        cfg.validate().map_err(|e| Error::usage(e.to_string()))?;
        Ok(cfg)
    }
}

/// Which checkpoint, on which device, in which precision.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Model")]
pub struct ModelArgs {
    /// Hugging Face repo of an Apollo checkpoint, downloaded into the Hugging Face cache on
    /// first use (HF_HOME, HF_HUB_CACHE, HF_TOKEN and HF_HUB_OFFLINE apply).
    #[arg(long, value_name = "REPO", default_value = DEFAULT_MODEL)]
    pub model: String,
    /// Branch, tag or commit of --model.
    #[arg(long, default_value = "main")]
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
}

/// What `ask` and `caption` hold before the first video: the model opened (its weights load
/// on first use), how records name it, and the clip sampling and generation settings
/// resolved against it.
pub struct Answering {
    pub pipeline: Pipeline,
    pub run: RunInfo,
    pub clips: ClipSampling,
    pub options: GenerateOptions,
}

impl Answering {
    pub fn open(
        model: &ModelArgs,
        generation: &GenerationArgs,
        clips: &ClipSamplingArgs,
        bars: &mut Bars,
    ) -> Result<Self> {
        let (pipeline, run) = model.open(bars)?;
        Ok(Self {
            clips: clips.resolve(pipeline.checkpoint().clip_sampling())?,
            options: generation.options(&pipeline)?,
            pipeline,
            run,
        })
    }
}

impl ModelArgs {
    /// Finds the checkpoint (downloading what is missing) and reads its configs and tokenizer.
    fn open(&self, bars: &mut Bars) -> Result<(Pipeline, RunInfo)> {
        let (dir, name) = match &self.model_dir {
            Some(dir) => (dir.clone(), dir.display().to_string()),
            None => {
                let dir = hub::fetch(&self.model, &self.revision, &HubSettings::from_env(), bars)?;
                (dir, self.model.clone())
            }
        };
        let device = select_device(self.device)?;
        let dtype = select_dtype(self.dtype, &device);
        let run = RunInfo {
            model: name,
            device: device_name(&device),
            dtype: dtype.as_str().to_string(),
        };
        let pipeline = Pipeline::new(Checkpoint::open(&dir)?, device, dtype)?;
        Ok((pipeline, run))
    }
}

/// How answers are generated.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Generation")]
pub struct GenerationArgs {
    /// Temperature of the token sampling; 0 takes the most likely token every time.
    #[arg(long, default_value_t = 0.4, value_name = "T")]
    pub temperature: f32,
    /// Nucleus sampling: draw from the most likely tokens that together hold this probability.
    #[arg(long, default_value_t = 0.7, value_name = "P")]
    pub top_p: f32,
    /// Draw from the K most likely tokens; 0 for all [default: the model's generation config].
    #[arg(long, value_name = "K")]
    pub top_k: Option<usize>,
    /// Penalty on tokens already generated [default: the model's generation config].
    #[arg(long, value_name = "X")]
    pub repetition_penalty: Option<f32>,
    /// Longest answer, in tokens.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_new_tokens: usize,
    /// Seed of the token sampling: the same seed, video, question and device give the same answer
    /// [default: random; --json reports it].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// The top-K log-probabilities of each generated token, in the JSON record.
    #[arg(long, value_name = "K")]
    pub logprobs: Option<usize>,
}

impl GenerationArgs {
    /// The settings for `pipeline`'s model: flags first, then its generation config.
    pub fn options(&self, pipeline: &Pipeline) -> Result<GenerateOptions> {
        let checkpoint = &pipeline.checkpoint().generation;
        let sampling = TokenSampling {
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k.unwrap_or(checkpoint.top_k),
            repetition_penalty: self
                .repetition_penalty
                .unwrap_or(checkpoint.repetition_penalty),
        };
        if !(sampling.temperature >= 0.0 && sampling.temperature.is_finite()) {
            return Err(Error::usage("--temperature must be 0 or more"));
        }
        if !(sampling.top_p > 0.0 && sampling.top_p <= 1.0) {
            return Err(Error::usage("--top-p must be in (0, 1]"));
        }
        if !(sampling.repetition_penalty > 0.0 && sampling.repetition_penalty.is_finite()) {
            return Err(Error::usage("--repetition-penalty must be positive"));
        }
        if self.max_new_tokens == 0 {
            return Err(Error::usage("--max-new-tokens must be at least 1"));
        }
        Ok(GenerateOptions {
            sampling,
            // Below 2^53 so that JSON readers (jq, JavaScript) keep every digit.
            seed: self.seed.unwrap_or_else(|| rand::random::<u64>() >> 11),
            max_new_tokens: self.max_new_tokens,
            logprobs: self.logprobs,
            eos_token_ids: checkpoint.eos_token_ids.clone(),
            context_length: pipeline.context_length(),
        })
    }
}
