//! Flags shared by the commands that sample videos.

use crate::error::{Error, Kind, Result};
use crate::video::sample::SamplingConfig;
use clap::Args;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Sampling settings: the defaults of Apollo-3B-t32, then a checkpoint's own values when
/// `--model-dir` is given, then any flag given explicitly.
#[derive(Debug, Clone, Args)]
pub struct SamplingArgs {
    /// Local Apollo checkpoint directory: tokens per clip, clip duration and context length
    /// come from its configs, and its tokenizer counts the prompt's text tokens.
    #[arg(long, value_name = "DIR")]
    pub model_dir: Option<PathBuf>,
    /// Seconds of video per clip [default: 2].
    #[arg(long, value_name = "SECONDS")]
    pub clip_duration: Option<f64>,
    /// Frames sampled per clip [default: 4].
    #[arg(long, value_name = "N")]
    pub frames_per_clip: Option<usize>,
    /// Video tokens per clip (the connector's num_output_tokens) [default: 128].
    #[arg(long, value_name = "N")]
    pub tokens_per_clip: Option<usize>,
    /// Context length the clip budget is sized against [default: 16384].
    #[arg(long, value_name = "TOKENS")]
    pub model_max_length: Option<usize>,
    /// Share of the context that video tokens may take [default: 0.65].
    #[arg(long, value_name = "RATIO")]
    pub clip_sampling_ratio: Option<f64>,
}

impl SamplingArgs {
    pub fn resolve(&self) -> Result<SamplingConfig> {
        let mut cfg = SamplingConfig::default();
        if let Some(dir) = &self.model_dir {
            apply_checkpoint(&mut cfg, dir)?;
        }
        if let Some(v) = self.clip_duration {
            cfg.clip_duration = v;
        }
        if let Some(v) = self.frames_per_clip {
            cfg.frames_per_clip = v;
        }
        if let Some(v) = self.tokens_per_clip {
            cfg.num_output_tokens = v;
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

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::new(Kind::Model, Some(path), format!("cannot read: {e}")))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::new(Kind::Model, Some(path), format!("not valid JSON: {e}")))
}

/// Reads the sampling-relevant values of a published checkpoint layout.
fn apply_checkpoint(cfg: &mut SamplingConfig, dir: &Path) -> Result<()> {
    let connector_path = dir.join("mm_connector/config.json");
    let connector = read_json(&connector_path)?;
    cfg.num_output_tokens = connector["num_output_tokens"]
        .as_u64()
        .ok_or_else(|| Error::new(Kind::Model, Some(&connector_path), "no num_output_tokens"))?
        as usize;
    let top = read_json(&dir.join("config.json"))?;
    if let Some(d) = top["clip_duration"].as_f64() {
        cfg.clip_duration = d;
    }
    let max_len = top["llm_cfg"]["model_max_length"]
        .as_u64()
        .or(top["model_max_length"].as_u64());
    if let Some(m) = max_len {
        cfg.model_max_length = m as usize;
    }
    Ok(())
}
