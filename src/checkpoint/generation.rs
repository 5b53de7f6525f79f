//! llm/generation_config.json: the eos ids and the sampling settings transformers' `generate`
//! applies where the caller does not override them.

use super::config::{read_json, Qwen2Config, TokenIds};
use super::layout::Layout;
use crate::error::{Error, Kind, Result};
use serde::Deserialize;

/// What generation takes from the checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    /// Any of these ends the answer.
    pub eos_token_ids: Vec<u32>,
    pub repetition_penalty: f32,
    /// 0 turns top-k off.
    pub top_k: usize,
}

#[derive(Deserialize)]
struct GenerationFile {
    eos_token_id: Option<TokenIds>,
    repetition_penalty: Option<f32>,
    top_k: Option<usize>,
}

/// transformers' `GenerationConfig` defaults for fields the file leaves out.
const DEFAULT_REPETITION_PENALTY: f32 = 1.0;
const DEFAULT_TOP_K: usize = 50;

impl GenerationConfig {
    /// Reads the llm's generation_config.json; without one, transformers derives the
    /// generation config from llm/config.json, so its eos ids and the defaults apply.
    pub fn read(layout: &Layout, llm: &Qwen2Config) -> Result<Self> {
        let file = layout.generation_config();
        if !file.exists() {
            return Ok(Self {
                eos_token_ids: llm.eos_token_ids.clone(),
                repetition_penalty: DEFAULT_REPETITION_PENALTY,
                top_k: DEFAULT_TOP_K,
            });
        }
        let raw: GenerationFile = read_json(&file)?;
        let eos_token_ids = match raw.eos_token_id {
            Some(ids) => ids.to_vec(),
            None => llm.eos_token_ids.clone(),
        };
        let repetition_penalty = raw.repetition_penalty.unwrap_or(DEFAULT_REPETITION_PENALTY);
        if !(repetition_penalty > 0.0 && repetition_penalty.is_finite()) {
            return Err(Error::new(
                Kind::Model,
                Some(&file),
                format!("repetition_penalty must be positive, got {repetition_penalty}"),
            ));
        }
        Ok(Self {
            eos_token_ids,
            repetition_penalty,
            top_k: raw.top_k.unwrap_or(DEFAULT_TOP_K),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::testing::{edit_json, write_tiny_checkpoint};
    use crate::checkpoint::Checkpoint;

    /// The generation config of the checkpoint in `dir`, read again.
    fn reread(dir: &std::path::Path) -> Result<GenerationConfig> {
        let c = Checkpoint::open(dir)?;
        GenerationConfig::read(&c.layout, &c.config.llm)
    }

    #[test]
    fn reads_eos_list_penalty_and_top_k() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_checkpoint(dir.path());
        let file = dir.path().join("llm/generation_config.json");
        std::fs::write(
            &file,
            r#"{"eos_token_id": [7, 3], "repetition_penalty": 1.05, "top_k": 20, "temperature": 0.7}"#,
        )
        .unwrap();
        let generation = reread(dir.path()).unwrap();
        assert_eq!(generation.eos_token_ids, vec![7, 3]);
        assert_eq!(generation.repetition_penalty, 1.05);
        assert_eq!(generation.top_k, 20);

        std::fs::write(&file, r#"{"eos_token_id": 9}"#).unwrap();
        let generation = reread(dir.path()).unwrap();
        assert_eq!(generation.eos_token_ids, vec![9]);
        assert_eq!(generation.repetition_penalty, 1.0);
        assert_eq!(generation.top_k, 50);
    }

    #[test]
    fn without_the_file_the_llm_config_eos_applies() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_checkpoint(dir.path());
        let _ = std::fs::remove_file(dir.path().join("llm/generation_config.json"));
        edit_json(&dir.path().join("llm/config.json"), |c| {
            c["eos_token_id"] = 5.into();
        });
        let generation = reread(dir.path()).unwrap();
        assert_eq!(generation.eos_token_ids, vec![5]);
        assert_eq!(generation.top_k, 50);
    }

    #[test]
    fn a_broken_file_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_checkpoint(dir.path());
        let file = dir.path().join("llm/generation_config.json");
        std::fs::write(&file, "{").unwrap();
        let e = reread(dir.path()).unwrap_err();
        assert!(e.to_string().starts_with(&format!("{file:?}: ")), "{e}");
    }
}
