//! The tokenizer of a synthetic checkpoint: Qwen2's special tokens at their real ids, and one
//! token per byte instead of Qwen2's merges.

use crate::prompt::byte_level::char_of_byte;
use serde_json::{json, Value};

/// Qwen2.5's special tokens, which the configs name.
pub(super) const BOS: u32 = 151643;
pub(super) const IM_START: u32 = 151644;
pub(super) const EOS: u32 = 151645;

/// A byte-level BPE tokenizer without merges: every byte is one token (ids 0..=255, in
/// GPT-2's byte-to-character mapping), and Qwen2's special tokens keep their real ids, which
/// the configs name. Text takes more tokens than with Qwen2's merges; any text can be encoded.
pub(super) fn byte_level_tokenizer() -> Value {
    let mut vocab = serde_json::Map::new();
    for byte in 0..=255u8 {
        vocab.insert(char_of_byte(byte).to_string(), json!(byte));
    }
    let specials = [
        (BOS, "<|endoftext|>"),
        (IM_START, "<|im_start|>"),
        (EOS, "<|im_end|>"),
    ];
    let added: Vec<Value> = specials
        .iter()
        .map(|&(id, content)| {
            // In the model's vocabulary too, or the tokenizer would renumber them from 256.
            vocab.insert(content.to_string(), json!(id));
            json!({"id": id, "content": content, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false,
                            "trim_offsets": false, "use_regex": false});
    json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": null, "pre_tokenizer": byte_level, "post_processor": null,
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
                  "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": []},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::tokens::{reference_ids, PromptTokenizer, VIDEO_SLOT};

    #[test]
    fn the_tokenizer_encodes_bytes_and_qwen_special_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        std::fs::write(&path, byte_level_tokenizer().to_string()).unwrap();
        let tok = PromptTokenizer::from_file(&path).unwrap();
        let chunks = tok
            .tokenize("<|im_start|>a é\n<|video_token|><|im_end|>")
            .unwrap();
        // "é" is two bytes, 0xC3 0xA9.
        let want = [151644, 97, 32, 0xC3, 0xA9, 10, VIDEO_SLOT, 151645];
        assert_eq!(reference_ids(&chunks), want);
    }
}
