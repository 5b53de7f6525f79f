//! Turning generated ids into text as they come, without ever emitting a broken character.
//!
//! Byte-level tokens can hold part of a UTF-8 character, so decoding token by token would
//! print U+FFFD for a character that the next token completes. Instead the whole answer is
//! decoded after each token and only its settled part is emitted: text that no later token
//! can change. The emitted pieces add up exactly to the final answer, which is the reference's
//! `decode(ids, skip_special_tokens=True).strip()`, cut before the first stop string (the
//! model's own, should it spell it out in plain text, or one a caller added, as OpenAI's
//! `stop` asks).

use crate::error::Result;
use crate::model::TokenId;

pub struct TextStream<D> {
    decode: D,
    ids: Vec<TokenId>,
    stops: Vec<String>,
    /// Bytes of the answer already handed out.
    emitted: usize,
    stopped: bool,
}

/// What one more token gives.
#[derive(Debug, Default, PartialEq)]
pub struct Step {
    /// Newly settled text, possibly empty.
    pub text: String,
    /// A stop string appeared: the answer is complete.
    pub stopped: bool,
}

impl<D: Fn(&[TokenId]) -> Result<String>> TextStream<D> {
    /// `decode` turns ids into text with special tokens skipped; any of `stops` (none empty)
    /// ends the answer.
    pub fn new(decode: D, stops: Vec<String>) -> Self {
        Self {
            decode,
            ids: Vec::new(),
            stops,
            emitted: 0,
            stopped: false,
        }
    }

    /// Adds a generated token and returns the text it settles.
    pub fn push(&mut self, id: TokenId) -> Result<Step> {
        self.ids.push(id);
        let full = (self.decode)(&self.ids)?;
        if let Some(at) = self
            .stops
            .iter()
            .filter_map(|s| full.find(s.as_str()))
            .min()
        {
            self.stopped = true;
            let answer = full[..at].trim();
            return Ok(Step {
                text: self.take(answer),
                stopped: true,
            });
        }
        let text = settled(full.trim_start(), &self.stops);
        Ok(Step {
            text: self.take(text),
            stopped: false,
        })
    }

    /// The text still held back once generation has ended.
    pub fn finish(&mut self) -> Result<String> {
        if self.stopped {
            return Ok(String::new());
        }
        let full = (self.decode)(&self.ids)?;
        Ok(self.take(full.trim()))
    }

    /// The part of `answer` not yet handed out.
    fn take(&mut self, answer: &str) -> String {
        // `answer` extends what was emitted: settled text never changes.
        let new = answer.get(self.emitted..).unwrap_or_default().to_string();
        self.emitted = self.emitted.max(answer.len());
        new
    }
}

/// `text` without what later tokens may still change: a trailing U+FFFD (a character whose
/// remaining bytes may follow), trailing whitespace (dropped if the answer ends there), and a
/// tail that may grow into a stop string.
fn settled<'a>(text: &'a str, stops: &[String]) -> &'a str {
    let mut end = text.len();
    loop {
        let before = end;
        let t = &text[..end];
        end = t
            .trim_end_matches(|c: char| c == char::REPLACEMENT_CHARACTER || c.is_whitespace())
            .len();
        let t = &text[..end];
        end -= stops
            .iter()
            .filter_map(|stop| {
                (1..stop.len().min(t.len() + 1))
                    .rev()
                    .find(|&n| stop.is_char_boundary(n) && t.ends_with(&stop[..n]))
            })
            .max()
            .unwrap_or(0);
        if end == before {
            return &text[..end];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::tokens::PromptTokenizer;
    use std::path::Path;

    fn tokenizer() -> PromptTokenizer {
        PromptTokenizer::from_file(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer/tokenizer.json"),
        )
        .unwrap()
    }

    fn ids(tok: &PromptTokenizer, text: &str) -> Vec<u32> {
        tok.encode(text).unwrap()
    }

    /// Streams `ids` one at a time; returns the pieces and whether the stop string ended it.
    fn stream(tok: &PromptTokenizer, ids: &[u32]) -> (Vec<String>, bool) {
        stream_with(tok, ids, &["<|im_end|>"])
    }

    fn stream_with(tok: &PromptTokenizer, ids: &[u32], stops: &[&str]) -> (Vec<String>, bool) {
        let stops = stops.iter().map(|s| s.to_string()).collect();
        let mut s = TextStream::new(|ids: &[u32]| tok.decode(ids), stops);
        let mut pieces = Vec::new();
        for &id in ids {
            let step = s.push(id).unwrap();
            pieces.push(step.text);
            if step.stopped {
                return (pieces, true);
            }
        }
        pieces.push(s.finish().unwrap());
        (pieces, false)
    }

    #[test]
    fn characters_split_across_tokens_are_never_emitted_broken() {
        let tok = tokenizer();
        let text = " 你好，世界！🎉🦀 Größe: naïve café 😀";
        let ids = ids(&tok, text);
        // The fixture tokenizer does split these characters over several tokens.
        let lone: Vec<String> = ids.iter().map(|&id| tok.decode(&[id]).unwrap()).collect();
        assert!(lone.iter().any(|t| t.contains(char::REPLACEMENT_CHARACTER)));
        let (pieces, stopped) = stream(&tok, &ids);
        assert!(!stopped);
        for p in &pieces {
            assert!(!p.contains(char::REPLACEMENT_CHARACTER), "{pieces:?}");
        }
        assert_eq!(pieces.concat(), text.trim());
        // Text streams as it settles, not all at the end.
        assert!(pieces.iter().filter(|p| !p.is_empty()).count() > 5);
    }

    #[test]
    fn bytes_that_never_form_a_character_come_out_as_the_decoder_gives_them() {
        let tok = tokenizer();
        // A lone lead byte of a 3-byte character, then text: decode gives U+FFFD for it.
        let mut ids = ids(&tok, "a你");
        let partial = ids.len() - 2; // drop the character's last byte
        ids.remove(partial + 1);
        ids.extend(self::ids(&tok, "b c"));
        let whole = tok.decode(&ids).unwrap();
        assert!(whole.contains(char::REPLACEMENT_CHARACTER));
        let (pieces, _) = stream(&tok, &ids);
        assert_eq!(pieces.concat(), whole.trim());
    }

    #[test]
    fn the_answer_is_stripped_and_ends_before_the_stop_string() {
        let tok = tokenizer();
        // Spelled out in plain tokens, not as the special token.
        let mut ids = ids(&tok, "\n  A dog jumps. \n");
        let stop_plain: Vec<u32> = "<|im_end|>".bytes().map(|b| ids_of_byte(&tok, b)).collect();
        ids.extend(&stop_plain);
        ids.extend(self::ids(&tok, " more"));
        let (pieces, stopped) = stream(&tok, &ids);
        assert!(stopped);
        assert_eq!(pieces.concat(), "A dog jumps.");
        // Nothing of the stop string leaked before it was complete.
        assert!(!pieces.concat().contains('<'));
    }

    fn ids_of_byte(tok: &PromptTokenizer, b: u8) -> u32 {
        (0..400)
            .find(|&id| tok.token_bytes(id) == [b])
            .expect("byte-level vocabularies hold every byte")
    }

    #[test]
    fn a_partial_stop_string_that_does_not_complete_is_released() {
        let tok = tokenizer();
        let ids = ids(&tok, "a <|im b");
        let (pieces, stopped) = stream(&tok, &ids);
        assert!(!stopped);
        assert_eq!(pieces.concat(), "a <|im b");
    }

    #[test]
    fn settled_holds_back_what_may_change() {
        let stop = ["<|x|>".to_string()];
        assert_eq!(settled("ab\u{FFFD}", &stop), "ab");
        assert_eq!(settled("ab  \n", &stop), "ab");
        assert_eq!(settled("ab <|", &stop), "ab");
        assert_eq!(settled("ab <|x|", &stop), "ab");
        assert_eq!(settled("ab <", &stop), "ab");
        assert_eq!(settled("a|", &stop), "a|");
        assert_eq!(settled("", &stop), "");
        // With several, the longest tail that may grow into any of them.
        let stops = ["<|x|>".to_string(), "|y".to_string(), "a| z".to_string()];
        assert_eq!(settled("a|", &stops), "");
        assert_eq!(settled("ba| ", &stops), "b");
        assert_eq!(settled("b|", &stops), "b");
    }

    #[test]
    fn an_added_stop_string_ends_the_answer_before_it_at_its_first_place() {
        let tok = tokenizer();
        let ids = ids(&tok, "One dog. Two cats. Three dogs.");
        let (pieces, stopped) = stream_with(&tok, &ids, &["<|im_end|>", "cats", "dog"]);
        assert!(stopped);
        assert_eq!(pieces.concat(), "One");
        let (pieces, stopped) = stream_with(&tok, &ids, &["<|im_end|>", "Two"]);
        assert!(stopped);
        assert_eq!(pieces.concat(), "One dog.");
        assert!(pieces.iter().all(|p| !p.contains('T')), "{pieces:?}");
    }
}
