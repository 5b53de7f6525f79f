//! Text the language model reads: the video prompt, the chat template, and their tokens.
pub mod byte_level;
pub mod chat;
pub mod pyfmt;
pub mod tokens;
pub mod video;
pub mod words;
