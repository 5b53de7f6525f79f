//! mm_connector/config.json: the projector and the perceiver resampler.

use super::{config_error, read_json, Activation};
use crate::error::Result;
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    /// Linear layers of the projector ("mlpNx_gelu": N; "linear": 1).
    pub projector_depth: usize,
    pub vision_hidden_size: usize,
    pub text_hidden_size: usize,
    pub num_output_tokens: usize,
    pub resampler_depth: usize,
    pub resampler_n_heads: usize,
    pub resampler_head_dim: usize,
    pub num_key_value_heads: usize,
    pub ff_multi: usize,
    pub hidden_act: Activation,
}

#[derive(Deserialize)]
struct ConnectorFile {
    projector_type: String,
    resampler_type: String,
    vision_hidden_size: VisionHidden,
    text_hidden_size: usize,
    num_output_tokens: usize,
    resampler_depth: usize,
    resampler_n_heads: usize,
    resampler_head_dim: usize,
    num_key_value_heads: usize,
    ff_multi: usize,
    hidden_act: String,
}

/// The vision width: one number, or one per encoder (their sum is the concatenated width).
#[derive(Deserialize)]
#[serde(untagged)]
enum VisionHidden {
    Total(usize),
    PerEncoder(Vec<usize>),
}

/// The connector's video tokens per clip, read alone (to plan clips from a partial download).
pub fn read_tokens_per_clip(file: &Path) -> Result<usize> {
    #[derive(Deserialize)]
    struct Tokens {
        num_output_tokens: usize,
    }
    let raw: Tokens = read_json(file)?;
    at_least_one(file, [("num_output_tokens", raw.num_output_tokens)])?;
    Ok(raw.num_output_tokens)
}

/// Sizes of zero make no network (and no clip budget): the file is broken.
fn at_least_one<const N: usize>(file: &Path, sizes: [(&str, usize); N]) -> Result<()> {
    match sizes.iter().find(|(_, n)| *n == 0) {
        Some((name, _)) => Err(config_error(
            file,
            format!("{name} is 0; it must be at least 1"),
        )),
        None => Ok(()),
    }
}

impl ConnectorConfig {
    pub(super) fn read(file: &Path) -> Result<Self> {
        let raw: ConnectorFile = read_json(file)?;
        at_least_one(
            file,
            [
                ("num_output_tokens", raw.num_output_tokens),
                ("text_hidden_size", raw.text_hidden_size),
                ("resampler_n_heads", raw.resampler_n_heads),
                ("resampler_head_dim", raw.resampler_head_dim),
                ("ff_multi", raw.ff_multi),
            ],
        )?;
        let projector_depth = match raw.projector_type.as_str() {
            "linear" => 1,
            t => t
                .strip_suffix("x_gelu")
                .and_then(|rest| rest.rsplit_once("mlp"))
                .and_then(|(_, n)| n.parse::<usize>().ok())
                .filter(|&n| n >= 1)
                .ok_or_else(|| config_error(file, format!("unsupported projector_type {t:?}")))?,
        };
        if raw.resampler_type != "perciver" {
            return Err(config_error(
                file,
                format!("unsupported resampler_type {:?}", raw.resampler_type),
            ));
        }
        if raw.num_key_value_heads == 0
            || !raw
                .resampler_n_heads
                .is_multiple_of(raw.num_key_value_heads)
        {
            return Err(config_error(
                file,
                "resampler_n_heads is not a multiple of num_key_value_heads",
            ));
        }
        Ok(Self {
            projector_depth,
            vision_hidden_size: match raw.vision_hidden_size {
                VisionHidden::Total(n) => n,
                VisionHidden::PerEncoder(v) => v.iter().sum(),
            },
            text_hidden_size: raw.text_hidden_size,
            num_output_tokens: raw.num_output_tokens,
            resampler_depth: raw.resampler_depth,
            resampler_n_heads: raw.resampler_n_heads,
            resampler_head_dim: raw.resampler_head_dim,
            num_key_value_heads: raw.num_key_value_heads,
            ff_multi: raw.ff_multi,
            hidden_act: Activation::parse(&raw.hidden_act, file)?,
        })
    }
}
