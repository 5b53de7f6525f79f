//! Where a checkpoint's parts are. config.json names each component folder (`llm_cfg`,
//! `vision_tower_cfg`, `mm_connector_cfg`): a dict means the folder named after the key, a
//! string is a path, as the reference's `get_model_config` reads them; a key that is absent
//! means the published folder of that name. Loading, planning (`inspect --model-dir`) and
//! downloading all find files through this module, so they cannot disagree.

use super::config::{config_error, read_json};
use crate::error::Result;
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The top-level configuration file.
pub const CONFIG: &str = "config.json";
/// A component's weights in one file ...
pub const SINGLE: &str = "model.safetensors";
/// ... or split into shards listed by this index.
pub const INDEX: &str = "model.safetensors.index.json";
/// The llm's tokenizer and generation settings.
pub const TOKENIZER: &str = "tokenizer.json";
pub const GENERATION_CONFIG: &str = "generation_config.json";
/// SigLIP's image processor settings.
pub const PREPROCESSOR_CONFIG: &str = "preprocessor_config.json";

/// One of the three component folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    Llm,
    VisionTower,
    Connector,
}

impl Component {
    /// The config.json key that names it.
    fn key(self) -> &'static str {
        match self {
            Component::Llm => "llm_cfg",
            Component::VisionTower => "vision_tower_cfg",
            Component::Connector => "mm_connector_cfg",
        }
    }

    /// Its folder in the published layout: the key without `_cfg`.
    pub fn folder(self) -> &'static str {
        self.key().trim_end_matches("_cfg")
    }
}

/// The folders of one checkpoint directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub dir: PathBuf,
    pub llm: PathBuf,
    pub vision_tower: PathBuf,
    pub connector: PathBuf,
}

impl Layout {
    pub fn config_file(&self) -> PathBuf {
        self.dir.join(CONFIG)
    }

    pub fn tokenizer(&self) -> PathBuf {
        self.llm.join(TOKENIZER)
    }

    pub fn generation_config(&self) -> PathBuf {
        self.llm.join(GENERATION_CONFIG)
    }

    pub fn connector_config(&self) -> PathBuf {
        self.connector.join(CONFIG)
    }
}

/// config.json: the component folders and the values the whole model shares. Only what some
/// reader needs is required, and by that reader: planning needs none of it.
#[derive(Debug, Deserialize)]
pub struct TopConfig {
    llm_cfg: Option<Value>,
    vision_tower_cfg: Option<Value>,
    mm_connector_cfg: Option<Value>,
    /// Seconds per clip (the prompt's "{clip_duration} second clips").
    pub clip_duration: Option<f64>,
    /// Clips encoded together.
    pub encode_batch_size: Option<usize>,
    #[serde(default = "default_select_layer")]
    pub mm_vision_select_layer: i64,
    #[serde(default = "default_select_feature")]
    pub mm_vision_select_feature: String,
    model_max_length: Option<usize>,
}

fn default_select_layer() -> i64 {
    -2
}

fn default_select_feature() -> String {
    "patch".into()
}

impl TopConfig {
    /// Reads `dir`/config.json and resolves the folders it names.
    pub fn read(dir: &Path) -> Result<(Self, Layout)> {
        let file = dir.join(CONFIG);
        let top: Self = read_json(&file)?;
        // The clip sampling's own bounds (those of its flags): anything else is a broken file.
        if let Some(d) = top.clip_duration.filter(|d| !(0.1..=3600.0).contains(d)) {
            return Err(config_error(
                &file,
                format!("clip_duration {d} is not a number of seconds from 0.1 to 3600"),
            ));
        }
        if top.model_max_length() == Some(0) {
            return Err(config_error(&file, "model_max_length is 0"));
        }
        let folder = |component: Component| top.component_dir(dir, &file, component);
        let layout = Layout {
            dir: dir.to_path_buf(),
            llm: folder(Component::Llm)?,
            vision_tower: folder(Component::VisionTower)?,
            connector: folder(Component::Connector)?,
        };
        Ok((top, layout))
    }

    fn component_dir(&self, dir: &Path, file: &Path, component: Component) -> Result<PathBuf> {
        let value = match component {
            Component::Llm => &self.llm_cfg,
            Component::VisionTower => &self.vision_tower_cfg,
            Component::Connector => &self.mm_connector_cfg,
        };
        match value {
            None | Some(Value::Object(_)) => Ok(dir.join(component.folder())),
            Some(Value::String(path)) => Ok(dir.join(path)),
            Some(other) => Err(config_error(
                file,
                format!("{} must be a dict or a path, not {other}", component.key()),
            )),
        }
    }

    /// The context the clip budget is sized against, when the checkpoint states it:
    /// `llm_cfg.model_max_length`, else the top-level `model_max_length`.
    pub fn model_max_length(&self) -> Option<usize> {
        self.llm_cfg
            .as_ref()
            .and_then(|llm| llm["model_max_length"].as_u64())
            .map(|m| m as usize)
            .or(self.model_max_length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Result<(TopConfig, Layout)> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG), json).unwrap();
        TopConfig::read(dir.path()).map(|(top, layout)| {
            let strip = |p: &Path| p.strip_prefix(dir.path()).unwrap().to_path_buf();
            let layout = Layout {
                dir: PathBuf::new(),
                llm: strip(&layout.llm),
                vision_tower: strip(&layout.vision_tower),
                connector: strip(&layout.connector),
            };
            (top, layout)
        })
    }

    #[test]
    fn folders_come_from_the_keys_as_the_reference_reads_them() {
        let (top, layout) = read(
            r#"{"llm_cfg": {"model_max_length": 128}, "vision_tower_cfg": "towers",
                "model_max_length": 64}"#,
        )
        .unwrap();
        assert_eq!(layout.llm, Path::new("llm"));
        assert_eq!(layout.vision_tower, Path::new("towers"));
        assert_eq!(layout.connector, Path::new("mm_connector"));
        assert_eq!(top.model_max_length(), Some(128));
        assert_eq!(read("{}").unwrap().0.model_max_length(), None);
        let e = read(r#"{"llm_cfg": 3}"#).unwrap_err().to_string();
        assert!(e.contains("llm_cfg must be a dict or a path"), "{e}");
    }
}
