//! Token generation: choosing each next token from the language model's logits.
pub mod logits;
