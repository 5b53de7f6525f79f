//! Token generation: the checkpoint's generation settings, choosing each next token from the
//! language model's logits, the decoding loop, and turning the chosen ids into streamed text.
pub mod config;
pub mod logits;
pub mod logprobs;
pub mod run;
pub mod stream;
