//! Text the language model reads: the video prompt (and, later, the chat template).
pub mod pyfmt;
pub mod tokens;
pub mod video;
pub mod words;
