//! The checkpoint's configuration files, read into one [`ApolloConfig`]. Every value comes from
//! the files; where a file may omit a key, the default is the one the reference class applies
//! (transformers' config defaults, or what Apollo's code does when the key is absent).
//!
//! One file per component: [`vision`] (the tower list, SigLIP, InternVideo2), [`connector`],
//! [`qwen2`] (the llm).

pub mod connector;
pub mod qwen2;
pub mod vision;

pub use connector::ConnectorConfig;
pub use qwen2::{Qwen2Config, TokenIds};
pub use vision::{InternVideo2Config, PixelSpec, SiglipConfig, Tower, TowerKind, VisionConfig};

use super::layout::{Layout, TopConfig, CONFIG};
use crate::error::{Error, Kind, Result};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// An activation named by a config's `hidden_act`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Silu,
    /// Exact GELU (erf), torch's `nn.GELU()`.
    Gelu,
    /// tanh approximation (`gelu_pytorch_tanh`, `gelu_new`).
    GeluTanh,
}

impl Activation {
    fn parse(name: &str, file: &Path) -> Result<Self> {
        match name {
            "silu" | "swish" => Ok(Self::Silu),
            "gelu" => Ok(Self::Gelu),
            "gelu_pytorch_tanh" | "gelu_new" => Ok(Self::GeluTanh),
            other => Err(config_error(
                file,
                format!("unsupported hidden_act {other:?}"),
            )),
        }
    }
}

/// What the network needs of a checkpoint: the top-level config.json and one config per
/// component folder.
#[derive(Debug, Clone)]
pub struct ApolloConfig {
    /// config.json, which problems with the shared values are reported against.
    file: PathBuf,
    /// Seconds per clip (the prompt's "{clip_duration} second clips").
    pub clip_duration: f64,
    /// Clips encoded together.
    pub encode_batch_size: usize,
    /// Index into each encoder's hidden states, Python style (negative counts from the end).
    pub select_layer: i64,
    pub llm: Qwen2Config,
    pub vision: VisionConfig,
    pub connector: ConnectorConfig,
    /// The context the clip budget is sized against (`llm_cfg.model_max_length`, else the
    /// top-level `model_max_length`), when the checkpoint states it.
    pub model_max_length: Option<usize>,
}

pub(crate) fn config_error(file: &Path, message: impl Into<String>) -> Error {
    Error::new(Kind::Model, Some(file), message)
}

/// A checkpoint's JSON file; a missing or malformed one is a model problem naming the file.
pub(crate) fn read_json<T: DeserializeOwned>(file: &Path) -> Result<T> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| config_error(file, format!("cannot read config: {e}")))?;
    serde_json::from_str(&text).map_err(|e| config_error(file, format!("invalid config: {e}")))
}

impl ApolloConfig {
    /// The configs of the component folders `layout` names, with config.json's shared values.
    pub fn read(top: &TopConfig, layout: &Layout) -> Result<Self> {
        let file = layout.config_file();
        let missing = |key: &str| config_error(&file, format!("{key} is missing"));
        let encode_batch_size = top
            .encode_batch_size
            .ok_or_else(|| missing("encode_batch_size"))?;
        if encode_batch_size == 0 {
            return Err(config_error(&file, "encode_batch_size must be at least 1"));
        }
        // SigLIP keeps all its tokens whatever this says; for InternVideo2 only "patch" (drop
        // the class token) works: with "cls_patch" the reference fails on its reshape.
        if top.mm_vision_select_feature != "patch" {
            return Err(config_error(
                &file,
                format!(
                    "unsupported mm_vision_select_feature {:?} (InternVideo2 needs \"patch\")",
                    top.mm_vision_select_feature
                ),
            ));
        }
        let config = Self {
            clip_duration: top.clip_duration.ok_or_else(|| missing("clip_duration"))?,
            encode_batch_size,
            select_layer: top.mm_vision_select_layer,
            llm: Qwen2Config::read(&layout.llm.join(CONFIG))?,
            vision: VisionConfig::read(&layout.vision_tower)?,
            connector: ConnectorConfig::read(&layout.connector_config())?,
            model_max_length: top.model_max_length(),
            file,
        };
        config.check_consistency(layout)?;
        Ok(config)
    }

    /// The widths where components meet must agree, or no weight shape would reveal the problem
    /// until a forward pass.
    fn check_consistency(&self, layout: &Layout) -> Result<()> {
        let file = layout.connector_config();
        let vision = self.vision.siglip.hidden_size + self.vision.internvideo2.d_model;
        if self.connector.vision_hidden_size != vision {
            return Err(config_error(
                &file,
                format!(
                    "vision_hidden_size {} differs from the encoders' total width {vision}",
                    self.connector.vision_hidden_size
                ),
            ));
        }
        if self.connector.text_hidden_size != self.llm.hidden_size {
            return Err(config_error(
                &file,
                format!(
                    "text_hidden_size {} differs from the llm's hidden_size {}",
                    self.connector.text_hidden_size, self.llm.hidden_size
                ),
            ));
        }
        self.siglip_layers()?;
        Ok(())
    }

    /// Encoder layers SigLIP runs: `hidden_states[select_layer]` is the residual stream after
    /// that many layers (`hidden_states[0]` is the embeddings).
    pub fn siglip_layers(&self) -> Result<usize> {
        let layers = self.vision.siglip.num_hidden_layers as i64;
        let index = if self.select_layer < 0 {
            layers + 1 + self.select_layer
        } else {
            self.select_layer
        };
        if !(0..=layers).contains(&index) {
            return Err(config_error(
                &self.file,
                format!(
                    "mm_vision_select_layer {} is out of range for SigLIP's {layers} layers",
                    self.select_layer
                ),
            ));
        }
        Ok(index as usize)
    }

    /// Blocks InternVideo2 runs: its loop stops after block `depth + select_layer` when that
    /// index exists, and otherwise runs every block.
    pub fn internvideo2_blocks(&self) -> usize {
        let depth = self.vision.internvideo2.depth;
        let last = depth as i64 + self.select_layer;
        if (0..depth as i64).contains(&last) {
            last as usize + 1
        } else {
            depth
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::checkpoint::testing::{edit_json, write_tiny_checkpoint};
    use crate::checkpoint::Checkpoint;
    use crate::error::Kind;

    #[test]
    fn counts_the_layers_each_encoder_runs() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_checkpoint(dir.path());
        let mut c = Checkpoint::open(dir.path()).unwrap().config;
        // SigLIP 2 layers, InternVideo2 depth 2.
        for (select, siglip, internvideo2) in [(-2, 1, 1), (-1, 2, 2), (0, 0, 2), (-3, 0, 2)] {
            c.select_layer = select;
            assert_eq!(c.siglip_layers().unwrap(), siglip, "{select}");
            assert_eq!(c.internvideo2_blocks(), internvideo2, "{select}");
        }
        c.select_layer = -4;
        assert!(c.siglip_layers().is_err());
        assert_eq!(c.vision.token_output_shape, [2, 2, 2]);
        assert_eq!(c.vision.siglip.pixels.size, 28);
        assert_eq!(c.connector.projector_depth, 2);
    }

    #[test]
    fn rejects_a_grid_the_encoders_do_not_make() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_checkpoint(dir.path());
        let file = dir.path().join("vision_tower/config.json");
        edit_json(&file, |c| {
            c["token_output_shape"] = serde_json::json!([1, 2, 2])
        });
        let e = Checkpoint::open(dir.path()).err().unwrap().to_string();
        assert!(
            e.contains("token_output_shape [1, 2, 2] does not match"),
            "{e}"
        );
    }

    #[test]
    fn sizes_and_clip_settings_no_model_can_have_are_model_errors_naming_the_file() {
        let cases: [(&str, &str, serde_json::Value, &str); 4] = [
            (
                "mm_connector/config.json",
                "num_output_tokens",
                0.into(),
                "is 0",
            ),
            ("mm_connector/config.json", "ff_multi", 0.into(), "is 0"),
            (
                "config.json",
                "clip_duration",
                1e300.into(),
                "from 0.1 to 3600",
            ),
            ("config.json", "model_max_length", 0.into(), "is 0"),
        ];
        for (name, key, value, what) in cases {
            let dir = tempfile::tempdir().unwrap();
            write_tiny_checkpoint(dir.path());
            let file = dir.path().join(name);
            edit_json(&file, |c| {
                c[key] = value.clone();
                // The llm's own value comes first where there is one.
                if let Some(llm) = c["llm_cfg"]
                    .as_object_mut()
                    .filter(|_| key == "model_max_length")
                {
                    llm.insert(key.into(), value);
                }
            });
            let errors = [
                Checkpoint::open(dir.path()).err(),
                crate::checkpoint::read_clip_sampling(dir.path()).err(),
            ];
            // Planning reads only what it needs: it need not see the connector's widths.
            for e in errors.into_iter().flatten() {
                assert_eq!(e.kind, Kind::Model, "{key}: {e}");
                assert_eq!(e.path.as_deref(), Some(file.as_path()), "{key}: {e}");
                assert!(e.message.contains(key) && e.message.contains(what), "{e}");
            }
            assert!(Checkpoint::open(dir.path()).is_err(), "{key}");
            if key != "ff_multi" {
                assert!(crate::checkpoint::read_clip_sampling(dir.path()).is_err());
            }
        }
    }
}
