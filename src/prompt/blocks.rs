//! Where a prompt is cut for its forward pass. Every prompt is prefilled in the same blocks,
//! whatever the path: block 0 runs up to and including the last video row (system turn, user
//! turn start, the video prompt); block 1 up to and including the first open
//! `<|im_start|>assistant\n`; each later block to the next one (an earlier answer, the next
//! question, the open assistant turn). A question asked alone, the second of several
//! questions (block 0 taken from the first) and a chat turn (every block but the last taken
//! from the turn before) thus run the very same operations, and their logits are
//! bit-identical rather than merely close.
//!
//! The prompt's text after the video is tokenised as one piece, as the reference does; the
//! cuts are found in its ids, after each sequence of the assistant header's ids.

use crate::error::{Error, Result};
use crate::model::input::{positions, PromptChunk, TokenId};

/// The positions at which the blocks of `chunks` end, the last being the prompt's length.
/// `header` is the ids of `<|im_start|>assistant\n`.
pub fn block_ends(chunks: &[PromptChunk], header: &[TokenId]) -> Result<Vec<usize>> {
    let last_video = chunks
        .iter()
        .rposition(|c| matches!(c, PromptChunk::Video(_)))
        .ok_or_else(|| Error::runtime(None, "the prompt has no video rows"))?;
    let video_end = positions(&chunks[..=last_video]);
    // Text alone follows the last video chunk.
    let tail: Vec<TokenId> = chunks[last_video + 1..]
        .iter()
        .filter_map(|c| match c {
            PromptChunk::Text(ids) => Some(ids.iter().copied()),
            PromptChunk::Video(_) => None,
        })
        .flatten()
        .collect();
    let mut ends = vec![video_end];
    if !header.is_empty() {
        let mut at = 0;
        while at + header.len() <= tail.len() {
            if tail[at..at + header.len()] == *header {
                at += header.len();
                ends.push(video_end + at);
            } else {
                at += 1;
            }
        }
    }
    if ends.len() < 2 || *ends.last().expect("not empty") != video_end + tail.len() {
        return Err(Error::runtime(
            None,
            "the prompt does not end with the open assistant turn",
        ));
    }
    Ok(ends)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::chat::{ChatPrompt, Exchange, ASSISTANT_HEADER};
    use crate::prompt::tokens::PromptTokenizer;
    use std::path::Path;

    fn tokenizer() -> PromptTokenizer {
        PromptTokenizer::from_file(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer/tokenizer.json"),
        )
        .unwrap()
    }

    #[test]
    fn blocks_end_after_the_video_and_after_each_open_assistant_turn() {
        let tok = tokenizer();
        let header = tok.encode(ASSISTANT_HEADER).unwrap();
        let video = "Clips: <|video_token|><|video_token|>";
        let earlier = [Exchange {
            question: "What is <|im_start|>assistant\n here?".into(),
            answer: "A dog.".into(),
        }];
        let prompt = ChatPrompt::turn(video, &earlier, "And then?");
        let chunks = tok.tokenize_chat(&prompt).unwrap();
        let ends = block_ends(&chunks, &header).unwrap();
        assert_eq!(ends.len(), 3, "{ends:?}");
        assert_eq!(*ends.last().unwrap(), positions(&chunks));
        // Each block is the text the template puts there: the cut after block 1 falls where
        // the first prompt of the conversation ends.
        let first = tok
            .tokenize_chat(&ChatPrompt::new(video, &earlier[0].question))
            .unwrap();
        assert_eq!(block_ends(&first, &header).unwrap(), ends[..2]);
        let ids = crate::prompt::tokens::reference_ids(&chunks);
        let first_ids = crate::prompt::tokens::reference_ids(&first);
        assert_eq!(ids[..ends[1]], first_ids[..]);
        let video_rows = ids.iter().rposition(|&id| id < 0).unwrap();
        assert_eq!(ends[0], video_rows + 1);
    }

    #[test]
    fn a_prompt_without_video_or_open_turn_is_refused() {
        let e = block_ends(&[PromptChunk::Text(vec![1, 2])], &[2]).unwrap_err();
        assert!(e.to_string().contains("no video rows"), "{e}");
        let chunks = [PromptChunk::Video(2), PromptChunk::Text(vec![5, 2, 6])];
        let e = block_ends(&chunks, &[2]).unwrap_err();
        assert!(e.to_string().contains("open assistant turn"), "{e}");
        assert_eq!(block_ends(&chunks, &[2, 6]).unwrap(), [2, 5]);
    }
}
