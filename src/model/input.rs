//! What the model is given: token ids, and a prompt as chunks of text ids and video rows (as
//! llama.cpp's mtmd hands its model text and media chunks). The prompt is made elsewhere; the
//! model never sees how it marks its video.

/// A vocabulary id, in prompts and answers alike.
pub type TokenId = u32;

/// One run of a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptChunk {
    /// Text, as token ids.
    Text(Vec<TokenId>),
    /// This many video rows, taken in order from the encoded clips.
    Video(usize),
}

impl PromptChunk {
    /// Positions the chunk takes in the sequence.
    pub fn len(&self) -> usize {
        match self {
            PromptChunk::Text(ids) => ids.len(),
            PromptChunk::Video(rows) => *rows,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Positions of a whole prompt.
pub fn positions(chunks: &[PromptChunk]) -> usize {
    chunks.iter().map(PromptChunk::len).sum()
}

/// Video rows of a whole prompt.
pub fn video_rows(chunks: &[PromptChunk]) -> usize {
    chunks
        .iter()
        .map(|c| match c {
            PromptChunk::Video(rows) => *rows,
            PromptChunk::Text(_) => 0,
        })
        .sum()
}
