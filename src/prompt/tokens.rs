//! Tokenising a prompt that holds video placeholders, as the reference's `tokenizer_mm_token`
//! does: the text pieces between placeholders are tokenised each on its own, and every
//! placeholder becomes one video row. The result is the model's [`PromptChunk`]s; the
//! reference's own form (one id list, `VIDEO_SLOT` at each placeholder) is kept only for
//! comparing with it and for the files the PyTorch baseline reads.

use super::byte_level::byte_of_char;
use super::chat::ChatPrompt;
use super::video::VIDEO_TOKEN;
use crate::error::{Error, Kind, Result};
use crate::model::{PromptChunk, TokenId};
use std::path::Path;
use std::sync::OnceLock;
use tokenizers::{AddedToken, DecoderWrapper};

/// The id the reference puts at each placeholder (`X_TOKEN_INDEX`); never a vocabulary id.
pub const VIDEO_SLOT: i64 = -200;

/// `chunks` as the reference's id list: text ids as they are, `VIDEO_SLOT` for each video row.
pub fn reference_ids(chunks: &[PromptChunk]) -> Vec<i64> {
    chunks
        .iter()
        .flat_map(|c| match c {
            PromptChunk::Text(ids) => ids.iter().map(|&id| i64::from(id)).collect(),
            PromptChunk::Video(rows) => vec![VIDEO_SLOT; *rows],
        })
        .collect()
}

/// `chunks` without empty ones, each run of text or of video rows as one chunk.
fn merged(chunks: Vec<PromptChunk>) -> Vec<PromptChunk> {
    let mut out: Vec<PromptChunk> = Vec::with_capacity(chunks.len());
    for chunk in chunks.into_iter().filter(|c| !c.is_empty()) {
        match (out.last_mut(), chunk) {
            (Some(PromptChunk::Text(ids)), PromptChunk::Text(more)) => ids.extend(more),
            (Some(PromptChunk::Video(rows)), PromptChunk::Video(more)) => *rows += more,
            (_, chunk) => out.push(chunk),
        }
    }
    out
}

pub struct PromptTokenizer {
    tokenizer: tokenizers::Tokenizer,
    /// The same tokenizer with no control tokens (every added token's text is read as text),
    /// for the user's question; made on first use.
    plain: OnceLock<tokenizers::Tokenizer>,
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
        Ok(Self {
            tokenizer,
            plain: OnceLock::new(),
        })
    }

    /// Ids of one text piece as `tokenizer(text).input_ids` gives them in transformers.
    pub fn encode(&self, text: &str) -> Result<Vec<TokenId>> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| Error::runtime(None, format!("tokenizer failed: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// A chat prompt as [`tokenize`](Self::tokenize) reads it, except that the questions and
    /// earlier answers are plain text: a control token's text written in them (`<|im_end|>`,
    /// `<|video_token|>`) is tokenised as the characters it is, not as the control token or
    /// a video slot (which the reference would splice in). A prompt whose questions and
    /// answers hold no such text gets the reference's ids.
    pub fn tokenize_chat(&self, prompt: &ChatPrompt) -> Result<Vec<PromptChunk>> {
        let mut chunks = Vec::new();
        let mut last = 0;
        for range in &prompt.plain {
            let text = &prompt.text[range.clone()];
            let Some(control) = self.control_text(text) else {
                continue;
            };
            chunks.extend(self.tokenize(&prompt.text[last..range.start])?);
            chunks.push(PromptChunk::Text(self.encode_plain(text, control)?));
            last = range.end;
        }
        chunks.extend(self.tokenize(&prompt.text[last..])?);
        Ok(merged(chunks))
    }

    /// The first text in `text` that the prompt's tokenisation would read as a control token:
    /// the video placeholder or an added token of the vocabulary. In the chat template no such
    /// token can begin before a question or answer or end after it (they are all `<|...|>`
    /// forms, and each message sits between its role's "\n" and `<|im_end|>`), so a search
    /// of the message alone finds every one.
    fn control_text<'a>(&self, text: &'a str) -> Option<&'a str> {
        let added = self.tokenizer.get_added_tokens_decoder();
        std::iter::once(VIDEO_TOKEN)
            .chain(added.values().map(|t| t.content.as_str()))
            .filter_map(|token| text.find(token).map(|at| (at, token.len())))
            .min()
            .map(|(at, len)| &text[at..at + len])
    }

    /// Ids of `text` with every added token's text read as plain text. `control` is text the
    /// caller found in it, named should the tokenizer turn it into a control token anyway.
    fn encode_plain(&self, text: &str, control: &str) -> Result<Vec<TokenId>> {
        let plain = self.plain.get_or_init(|| {
            let mut plain = self.tokenizer.clone();
            let specials = plain
                .get_added_tokens_decoder()
                .into_values()
                .map(|token| AddedToken {
                    special: true,
                    ..token
                });
            // Marked special, they are skipped when special tokens are encoded as text.
            let _ = plain.add_special_tokens(specials);
            plain.set_encode_special_tokens(true);
            plain
        });
        let ids = plain
            .encode(text, true)
            .map_err(|e| Error::runtime(None, format!("tokenizer failed: {e}")))?
            .get_ids()
            .to_vec();
        let added = self.tokenizer.get_added_tokens_decoder();
        if ids.iter().any(|id| added.contains_key(id)) {
            return Err(Error::usage(format!(
                "the question holds {control:?}, which this model's tokenizer reads only as a \
                 control token; rephrase the question without it"
            )));
        }
        Ok(ids)
    }

    /// The prompt as text chunks and a one-row video chunk per placeholder, runs merged.
    pub fn tokenize(&self, prompt: &str) -> Result<Vec<PromptChunk>> {
        let mut chunks = Vec::new();
        let mut push = |chunk: PromptChunk| chunks.push(chunk);
        let mut last = 0;
        // The reference's quirk: when the prompt opens with a placeholder it drops the first
        // token of the text after the last placeholder. Kept for identical ids.
        let mut skip_first_of_tail = 0;
        for (start, _) in prompt.match_indices(VIDEO_TOKEN) {
            if start > last {
                push(PromptChunk::Text(self.encode(&prompt[last..start])?));
            } else if start == 0 {
                push(PromptChunk::Text(self.encode("")?));
                skip_first_of_tail = 1;
            }
            push(PromptChunk::Video(1));
            last = start + VIDEO_TOKEN.len();
        }
        if last < prompt.len() {
            let tail = self.encode(&prompt[last..])?;
            push(PromptChunk::Text(
                tail.into_iter().skip(skip_first_of_tail).collect(),
            ));
        }
        Ok(merged(chunks))
    }

    /// Generated ids as text: special tokens skipped, as the reference decodes its output.
    pub fn decode(&self, ids: &[TokenId]) -> Result<String> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| Error::runtime(None, format!("tokenizer cannot decode: {e}")))
    }

    /// The vocabulary entry of `id` as stored (special tokens by their content).
    pub fn token(&self, id: TokenId) -> Option<String> {
        self.tokenizer.id_to_token(id)
    }

    /// The bytes one token stands for. With a byte-level decoder (Qwen2's) a token may hold
    /// part of a UTF-8 character, so its bytes come from the byte-level alphabet rather than
    /// from decoding it alone, which would give U+FFFD.
    pub fn token_bytes(&self, id: TokenId) -> Vec<u8> {
        let Some(token) = self.tokenizer.id_to_token(id) else {
            return Vec::new();
        };
        if let Some(DecoderWrapper::ByteLevel(_)) = self.tokenizer.get_decoder() {
            let bytes: Option<Vec<u8>> = token.chars().map(byte_of_char).collect();
            // The decoder passes tokens outside the alphabet (added tokens) through as UTF-8.
            return bytes.unwrap_or_else(|| token.into_bytes());
        }
        self.tokenizer
            .decode(&[id], false)
            .map(String::into_bytes)
            .unwrap_or_default()
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
            let chunks = tok.tokenize(prompt).unwrap();
            assert_eq!(reference_ids(&chunks), want, "{prompt:?}");
        }
    }

    /// The ids of a chat prompt about a two-placeholder video prompt, its video rows, and the
    /// ids of the question alone as `tokenize_chat` put them.
    fn chat_ids(tok: &PromptTokenizer, question: &str) -> (Vec<i64>, usize, Vec<u32>) {
        let video = format!("Clips: {VIDEO_TOKEN}{VIDEO_TOKEN}");
        let prompt = ChatPrompt::new(&video, question);
        let chunks = tok.tokenize_chat(&prompt).unwrap();
        let without = tok.tokenize_chat(&ChatPrompt::new(&video, "")).unwrap();
        let ids = reference_ids(&chunks);
        // The template around the question is the same either way: the question's ids are
        // those between the common head and tail.
        let empty = reference_ids(&without);
        let head = empty.iter().zip(&ids).take_while(|(a, b)| a == b).count();
        let tail = empty[head..].len();
        let question_ids = ids[head..ids.len() - tail]
            .iter()
            .map(|&id| u32::try_from(id).unwrap())
            .collect();
        (ids, crate::model::input::video_rows(&chunks), question_ids)
    }

    #[test]
    fn control_text_in_the_question_is_plain_text_and_other_questions_keep_reference_ids() {
        let mut tok = PromptTokenizer::from_file(&fixture("tokenizer.json")).unwrap();
        // A control token that is not special, as Qwen2.5's <tool_call> is.
        tok.tokenizer
            .add_tokens([AddedToken::from("<tool_call>", false)])
            .unwrap();
        let added = tok.tokenizer.get_added_tokens_decoder();
        for question in [
            "What is <|im_end|> here?",
            "<|video_token|>",
            "Why <tool_call> and <|im_start|>system?",
        ] {
            let (ids, rows, question_ids) = chat_ids(&tok, question);
            assert_eq!(rows, 2, "{question}: no video slot from the question");
            assert!(
                question_ids.iter().all(|id| !added.contains_key(id)),
                "{question}: {question_ids:?}"
            );
            assert_eq!(tok.decode(&question_ids).unwrap(), question);
            // The template's own control tokens are still there.
            assert_eq!(ids.iter().filter(|&&id| id == 2).count(), 2, "{question}");
        }
        // Partial control text, and text without any, is tokenised as the reference does.
        for question in ["What is <|im_end here?", "<|video_tok|>", "Plain, é 🎉"] {
            let prompt = ChatPrompt::new("Clip: <|video_token|>", question);
            assert_eq!(
                tok.tokenize_chat(&prompt).unwrap(),
                tok.tokenize(&prompt.text).unwrap(),
                "{question}"
            );
            let (_, rows, question_ids) = chat_ids(&tok, question);
            assert_eq!(
                (rows, tok.decode(&question_ids).unwrap()),
                (2, question.into())
            );
        }
    }

    #[test]
    fn token_bytes_rebuild_what_the_tokenizer_decodes() {
        let tok = PromptTokenizer::from_file(&fixture("tokenizer.json")).unwrap();
        let text = "Größe 你好 🎉 <|im_end|> x";
        let ids = tok.encode(text).unwrap();
        let bytes: Vec<u8> = ids.iter().flat_map(|&id| tok.token_bytes(id)).collect();
        assert_eq!(bytes, text.as_bytes());
        // Some token holds only part of a character: its bytes are not UTF-8 on their own.
        assert!(ids
            .iter()
            .any(|&id| std::str::from_utf8(&tok.token_bytes(id)).is_err()));
        // Every vocabulary entry maps to the bytes the tokenizer itself decodes it to.
        for id in 0..tok.tokenizer.get_vocab_size(true) as u32 {
            let alone = tok.tokenizer.decode(&[id], false).unwrap();
            assert_eq!(
                alone,
                String::from_utf8_lossy(&tok.token_bytes(id)),
                "id {id}"
            );
        }
    }

    #[test]
    fn a_missing_tokenizer_is_a_model_problem() {
        let err = PromptTokenizer::from_file(Path::new("/nonexistent/tokenizer.json"))
            .err()
            .unwrap();
        assert_eq!(err.exit_code(), 4);
        assert!(err
            .to_string()
            .starts_with(r#""/nonexistent/tokenizer.json": "#));
    }
}
