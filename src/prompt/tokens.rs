//! Tokenising a prompt that holds video placeholders, as the reference's `tokenizer_mm_token`
//! does: the text pieces between placeholders are tokenised each on its own, and every
//! placeholder becomes one slot for a video embedding row.

use super::video::VIDEO_TOKEN;
use crate::error::{Error, Kind, Result};
use std::path::Path;

/// The id the reference puts at each placeholder (`X_TOKEN_INDEX`); never a vocabulary id.
pub const VIDEO_SLOT: i64 = -200;

pub struct PromptTokenizer {
    tokenizer: tokenizers::Tokenizer,
}

impl PromptTokenizer {
    /// Loads a Hugging Face `tokenizer.json` (a checkpoint's llm/tokenizer.json).
    pub fn from_file(path: &Path) -> Result<Self> {
        let tokenizer = tokenizers::Tokenizer::from_file(path).map_err(|e| {
            Error::new(
                Kind::Model,
                Some(path),
                format!("cannot load tokenizer: {e}"),
            )
        })?;
        Ok(Self { tokenizer })
    }

    /// Ids of one text piece as `tokenizer(text).input_ids` gives them in transformers.
    fn encode(&self, text: &str) -> Result<Vec<i64>> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| Error::runtime(None, format!("tokenizer failed: {e}")))?;
        Ok(encoding.get_ids().iter().map(|&i| i64::from(i)).collect())
    }

    /// The prompt's ids with `VIDEO_SLOT` at each placeholder.
    pub fn tokenize(&self, prompt: &str) -> Result<Vec<i64>> {
        let mut ids = Vec::new();
        let mut last = 0;
        // The reference's quirk: when the prompt opens with a placeholder it drops the first
        // token of the text after the last placeholder. Kept for identical ids.
        let mut skip_first_of_tail = 0;
        for (start, _) in prompt.match_indices(VIDEO_TOKEN) {
            if start > last {
                ids.extend(self.encode(&prompt[last..start])?);
            } else if start == 0 {
                ids = self.encode("")?;
                skip_first_of_tail = 1;
            }
            ids.push(VIDEO_SLOT);
            last = start + VIDEO_TOKEN.len();
        }
        if last < prompt.len() {
            ids.extend(
                self.encode(&prompt[last..])?
                    .into_iter()
                    .skip(skip_first_of_tail),
            );
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tokenizer")
            .join(name)
    }

    #[test]
    fn ids_match_the_reference_algorithm_run_with_hugging_face_tokenizers() {
        // Made by tests/reference/make_tokenizer_fixtures.py.
        let tok = PromptTokenizer::from_file(&fixture("tokenizer.json")).unwrap();
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(fixture("mm_prompts.json")).unwrap())
                .unwrap();
        let cases = doc["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 4);
        for case in cases {
            let prompt = case["prompt"].as_str().unwrap();
            let want: Vec<i64> = serde_json::from_value(case["ids"].clone()).unwrap();
            assert_eq!(tok.tokenize(prompt).unwrap(), want, "{prompt:?}");
        }
    }

    #[test]
    fn a_missing_tokenizer_is_a_model_problem() {
        let err = PromptTokenizer::from_file(Path::new("/nonexistent/tokenizer.json"))
            .err()
            .unwrap();
        assert_eq!(err.exit_code(), 4);
        assert!(err.to_string().starts_with("/nonexistent/tokenizer.json: "));
    }
}
