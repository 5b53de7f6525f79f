//! Token generation: choosing each next token from the language model's logits (token
//! sampling, not to be confused with the clip sampling of `video::clips`), the decoding loop,
//! and turning the chosen ids into streamed text. The checkpoint's generation settings are
//! read by `checkpoint::generation`.
pub mod logprobs;
pub mod run;
pub mod sampler;
pub mod stream;
