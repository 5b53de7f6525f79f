//! llm/config.json: transformers' Qwen2Config.

use super::{config_error, read_json, Activation};
use crate::error::Result;
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct Qwen2Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rope_theta: f64,
    pub rms_norm_eps: f64,
    pub tie_word_embeddings: bool,
    pub hidden_act: Activation,
    /// Longest sequence the rotary positions were trained for: the hard context limit.
    pub max_position_embeddings: usize,
    /// `eos_token_id` of llm/config.json (an id or a list), used when the checkpoint has no
    /// generation_config.json.
    pub eos_token_ids: Vec<u32>,
}

/// Qwen2Config with transformers' defaults for omitted keys. transformers 4.x writes
/// `rope_theta` at the top level, 5.x inside `rope_parameters`.
#[derive(Deserialize)]
struct Qwen2File {
    #[serde(default = "qwen2_defaults::vocab_size")]
    vocab_size: usize,
    #[serde(default = "qwen2_defaults::hidden_size")]
    hidden_size: usize,
    #[serde(default = "qwen2_defaults::intermediate_size")]
    intermediate_size: usize,
    #[serde(default = "qwen2_defaults::num_hidden_layers")]
    num_hidden_layers: usize,
    #[serde(default = "qwen2_defaults::num_attention_heads")]
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    rope_theta: Option<f64>,
    rope_parameters: Option<RopeParameters>,
    rope_scaling: Option<serde_json::Value>,
    #[serde(default = "qwen2_defaults::rms_norm_eps")]
    rms_norm_eps: f64,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default)]
    use_sliding_window: bool,
    #[serde(default = "qwen2_defaults::hidden_act")]
    hidden_act: String,
    #[serde(default = "qwen2_defaults::max_position_embeddings")]
    max_position_embeddings: usize,
    #[serde(default)]
    eos_token_id: Option<TokenIds>,
}

/// A token id field that transformers accepts as one id or a list of them.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
pub enum TokenIds {
    One(u32),
    Many(Vec<u32>),
}

impl TokenIds {
    pub fn to_vec(&self) -> Vec<u32> {
        match self {
            TokenIds::One(id) => vec![*id],
            TokenIds::Many(ids) => ids.clone(),
        }
    }
}

#[derive(Deserialize)]
struct RopeParameters {
    rope_theta: Option<f64>,
    rope_type: Option<String>,
}

mod qwen2_defaults {
    pub fn max_position_embeddings() -> usize {
        32768
    }
    pub fn vocab_size() -> usize {
        151936
    }
    pub fn hidden_size() -> usize {
        4096
    }
    pub fn intermediate_size() -> usize {
        22016
    }
    pub fn num_hidden_layers() -> usize {
        32
    }
    pub fn num_attention_heads() -> usize {
        32
    }
    pub fn rms_norm_eps() -> f64 {
        1e-6
    }
    pub fn hidden_act() -> String {
        "silu".into()
    }
}

impl Qwen2Config {
    pub(super) fn read(file: &Path) -> Result<Self> {
        let raw: Qwen2File = read_json(file)?;
        // Only plain rotary embeddings are implemented; a scaled variant would be silently wrong.
        let scaled = raw.rope_scaling.as_ref().is_some_and(|v| !v.is_null())
            || raw
                .rope_parameters
                .as_ref()
                .and_then(|p| p.rope_type.as_deref())
                .is_some_and(|t| t != "default");
        if scaled {
            return Err(config_error(file, "rope scaling is not supported"));
        }
        if raw.use_sliding_window {
            return Err(config_error(
                file,
                "sliding-window attention is not supported",
            ));
        }
        let rope_theta = raw
            .rope_theta
            .or(raw.rope_parameters.and_then(|p| p.rope_theta))
            .unwrap_or(10000.0);
        let heads = raw.num_attention_heads;
        let kv_heads = raw.num_key_value_heads.unwrap_or(heads);
        if heads == 0 || kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            return Err(config_error(
                file,
                "num_attention_heads is not a multiple of num_key_value_heads",
            ));
        }
        let head_dim = raw.head_dim.unwrap_or(raw.hidden_size / heads);
        if !head_dim.is_multiple_of(2) {
            return Err(config_error(
                file,
                "head_dim must be even for rotary embeddings",
            ));
        }
        Ok(Self {
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_hidden_layers: raw.num_hidden_layers,
            num_attention_heads: heads,
            num_key_value_heads: kv_heads,
            head_dim,
            rope_theta,
            rms_norm_eps: raw.rms_norm_eps,
            tie_word_embeddings: raw.tie_word_embeddings,
            hidden_act: Activation::parse(&raw.hidden_act, file)?,
            max_position_embeddings: raw.max_position_embeddings,
            eos_token_ids: raw.eos_token_id.map(|ids| ids.to_vec()).unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rope_theta_from_either_transformers_layout() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, json: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, json).unwrap();
            path
        };
        let v4 = write(
            "v4.json",
            r#"{"rope_theta": 1000000.0, "rope_scaling": null}"#,
        );
        let v5 = write(
            "v5.json",
            r#"{"rope_parameters": {"rope_theta": 500000.0, "rope_type": "default"}}"#,
        );
        assert_eq!(Qwen2Config::read(&v4).unwrap().rope_theta, 1e6);
        assert_eq!(Qwen2Config::read(&v5).unwrap().rope_theta, 5e5);
        // Omitted keys take transformers' Qwen2Config defaults.
        let c = Qwen2Config::read(&v4).unwrap();
        assert_eq!(
            (c.hidden_size, c.num_key_value_heads, c.head_dim),
            (4096, 32, 128)
        );
        assert!(!c.tie_word_embeddings);
        let yarn = write("yarn.json", r#"{"rope_scaling": {"type": "yarn"}}"#);
        let e = Qwen2Config::read(&yarn).unwrap_err().to_string();
        assert!(e.contains("rope scaling is not supported"), "{e}");
    }
}
