//! What the llm's key/value cache holds, position by position, so that a prompt reuses the
//! prefill blocks it shares with the prompt before it: the video's block for a second
//! question, every block but the last for a conversation's next turn.
//!
//! Reuse happens only at block ends that both prompts share and that the cache computed as
//! blocks (see `prompt::blocks`): the positions after are then computed exactly as a fresh
//! prefill computes them, so reusing changes no bit of the logits. An answer's own positions
//! (computed one token at a time) are never reused; the next turn puts the answer back as
//! text, in a block of its own.

use super::input::{PromptChunk, TokenId};
use candle_core::Tensor;
use std::sync::atomic::{AtomicU64, Ordering};

/// A video's rows (rows, hidden) with an identity: prompts share video positions only when
/// they take the very same rows.
pub struct VideoRows {
    pub rows: Tensor,
    id: u64,
}

impl VideoRows {
    pub fn new(rows: Tensor) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Self {
            rows,
            id: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }
}

/// A prompt ready to prefill: its chunks, the rows its video chunks take in order, and the
/// positions at which its blocks end (the last is its length).
pub struct BlockPrompt<'a> {
    pub chunks: &'a [PromptChunk],
    pub ends: &'a [usize],
    pub video: &'a VideoRows,
}

/// One prompt position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Text(TokenId),
    Video { video: u64, row: usize },
}

fn slots(prompt: &BlockPrompt) -> Vec<Slot> {
    let mut row = 0;
    let mut out = Vec::new();
    for chunk in prompt.chunks {
        match chunk {
            PromptChunk::Text(ids) => out.extend(ids.iter().map(|&id| Slot::Text(id))),
            PromptChunk::Video(n) => {
                out.extend((row..row + n).map(|row| Slot::Video {
                    video: prompt.video.id,
                    row,
                }));
                row += n;
            }
        }
    }
    out
}

/// The positions the cache holds as prompt blocks.
#[derive(Debug, Default)]
pub struct Prefix {
    slots: Vec<Slot>,
    ends: Vec<usize>,
}

impl Prefix {
    /// Forgets every position from `len` on (they are about to be computed from other input).
    pub fn truncate(&mut self, len: usize) {
        self.slots.truncate(len);
        self.ends.retain(|&e| e <= len);
    }

    /// Where the prefill of `prompt` may start: the last of its block ends before its last
    /// block that the cache holds as a block end with the same positions before it. `cached`
    /// is how many positions the cache holds.
    pub fn reusable(&self, prompt: &BlockPrompt, cached: usize) -> usize {
        let new = slots(prompt);
        let common = self
            .slots
            .iter()
            .zip(&new)
            .take_while(|(a, b)| a == b)
            .count()
            .min(cached);
        let before_last = &prompt.ends[..prompt.ends.len().saturating_sub(1)];
        before_last
            .iter()
            .rev()
            .find(|&&end| end <= common && self.ends.contains(&end))
            .copied()
            .unwrap_or(0)
    }

    /// The cache now holds `prompt`, computed in its blocks.
    pub fn set(&mut self, prompt: &BlockPrompt) {
        self.slots = slots(prompt);
        self.ends = prompt.ends.to_vec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    fn rows() -> VideoRows {
        VideoRows::new(Tensor::zeros((2, 1), DType::F32, &Device::Cpu).unwrap())
    }

    /// Text 1, two video rows, then `tail`.
    fn chunks(tail: &[u32]) -> Vec<PromptChunk> {
        vec![
            PromptChunk::Text(vec![1]),
            PromptChunk::Video(2),
            PromptChunk::Text(tail.to_vec()),
        ]
    }

    #[test]
    fn reuse_stops_at_a_shared_block_end_before_the_last_block() {
        let (video, other) = (rows(), rows());
        let block = |chunks, ends, video| BlockPrompt {
            chunks,
            ends,
            video,
        };
        let first = chunks(&[5, 6, 9]);
        let p1 = block(&first, &[3, 6], &video);
        let mut prefix = Prefix::default();
        assert_eq!(prefix.reusable(&p1, 0), 0, "nothing cached");
        prefix.set(&p1);
        // The same prompt again: its last block is computed anew.
        assert_eq!(prefix.reusable(&p1, 6), 3);
        // Another question: the video's block.
        let second = chunks(&[5, 7, 9]);
        assert_eq!(prefix.reusable(&block(&second, &[3, 6], &video), 6), 3);
        // The next turn of a conversation: every block before its last.
        let turn = chunks(&[5, 6, 9, 4, 9]);
        let next = block(&turn, &[3, 6, 8], &video);
        assert_eq!(prefix.reusable(&next, 7), 6);
        // Not past what the cache holds, nor with other rows, nor past a truncation.
        assert_eq!(prefix.reusable(&next, 5), 3);
        assert_eq!(prefix.reusable(&block(&turn, &[3, 6, 8], &other), 9), 0);
        prefix.truncate(4);
        assert_eq!(prefix.reusable(&next, 9), 3);
    }
}
