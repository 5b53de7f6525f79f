//! Text the language model reads: the video prompt, the chat template, their tokens, and the
//! blocks a prompt is prefilled in.
pub mod blocks;
pub mod byte_level;
pub mod chat;
pub mod pyfmt;
pub mod tokens;
pub mod video;
pub mod words;
