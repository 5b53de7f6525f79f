//! apollo: questions about videos answered by the Apollo video language models.
//! The modules follow the pipeline: `video` (decode, sample, preprocess), `prompt`, and the
//! outputs people look at (`render`), driven by the command line in `cli`.
pub mod atomic_file;
pub mod bench;
pub mod cli;
pub mod error;
pub mod generate;
pub mod model;
pub mod pipeline;
pub mod prompt;
pub mod render;
pub mod video;
