//! An Apollo checkpoint on disk, in the published layout (config.json, llm/,
//! vision_tower/{siglip..,internvideo2}/, mm_connector/): everything that knows files, as
//! opposed to the network in `model`.
//!
//! [`layout`] finds the parts, [`config`] and [`generation`] read the configuration files,
//! [`Checkpoint`] holds them read once for everything that runs the model (the pipeline, the
//! loader, bench); [`safetensors`] reads the weights, [`hub`] fetches checkpoints into the
//! Hugging Face cache, and [`synthetic`] writes random-weight checkpoints for tests and bench.

pub mod config;
pub mod generation;
pub mod hub;
pub mod layout;
pub mod safetensors;
pub mod synthetic;
#[cfg(test)]
pub(crate) mod testing;

pub use config::ApolloConfig;
pub use generation::GenerationConfig;
pub use layout::Layout;

use crate::error::Result;
use crate::video::clips::ClipSampling;
use config::connector::read_tokens_per_clip;
use layout::TopConfig;
use std::path::Path;

/// A checkpoint directory with its layout and every configuration file read.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub layout: Layout,
    pub config: ApolloConfig,
    pub generation: GenerationConfig,
}

impl Checkpoint {
    /// Reads the configs of the checkpoint in `dir` (not its weights nor its tokenizer).
    pub fn open(dir: &Path) -> Result<Self> {
        let (top, layout) = TopConfig::read(dir)?;
        let config = ApolloConfig::read(&top, &layout)?;
        let generation = GenerationConfig::read(&layout, &config.llm)?;
        Ok(Self {
            layout,
            config,
            generation,
        })
    }

    /// The clip sampling this checkpoint implies.
    pub fn clip_sampling(&self) -> ClipSampling {
        ClipDefaults {
            clip_duration: Some(self.config.clip_duration),
            tokens_per_clip: self.config.connector.num_output_tokens,
            model_max_length: self.config.model_max_length,
        }
        .sampling()
    }
}

/// What a checkpoint says about clip sampling: its clip duration, tokens per clip and, when it
/// states one, the context the clip budget is sized against.
struct ClipDefaults {
    clip_duration: Option<f64>,
    tokens_per_clip: usize,
    model_max_length: Option<usize>,
}

impl ClipDefaults {
    /// The reference's defaults with the checkpoint's values put in.
    fn sampling(&self) -> ClipSampling {
        let defaults = ClipSampling::default();
        ClipSampling {
            clip_duration: self.clip_duration.unwrap_or(defaults.clip_duration),
            tokens_per_clip: self.tokens_per_clip,
            model_max_length: self.model_max_length.unwrap_or(defaults.model_max_length),
            ..defaults
        }
    }
}

/// The clip sampling of the checkpoint in `dir`, read from config.json and the connector's
/// config alone, so that a partial download (configs and tokenizer) can be planned for.
pub fn read_clip_sampling(dir: &Path) -> Result<(ClipSampling, Layout)> {
    let (top, layout) = TopConfig::read(dir)?;
    let defaults = ClipDefaults {
        clip_duration: top.clip_duration,
        tokens_per_clip: read_tokens_per_clip(&layout.connector_config())?,
        model_max_length: top.model_max_length(),
    };
    Ok((defaults.sampling(), layout))
}
