//! apollo: questions about videos answered by the Apollo video language models.
//! The modules follow the pipeline: `video` (decode, sample, preprocess), then `prompt`.
pub mod error;
pub mod prompt;
pub mod video;
