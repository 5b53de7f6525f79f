//! The Apollo video language model in candle: the network alone (the checkpoint's files are
//! read by `checkpoint`).
//!
//! One file per component, in pipeline order: [`siglip`] and [`internvideo2`] encode a clip's
//! frames, [`grid`] resizes both to the common token grid and concatenates them, [`connector`]
//! turns each clip's grid into the llm's video rows, and [`qwen2`] runs the language model from
//! input embeddings, with a key/value cache that can be cut back (`kv_cache`). [`apollo`] wires
//! them; [`input`] is what the model is given: token ids and the prompt's chunks of text and
//! video rows; [`prefix`] tracks which prompt blocks the cache holds, so that a prompt reuses
//! those it shares with the one before. `bf16_matmul` is the bf16 matrix product on the
//! CPU, which candle's would widen to f32 whole on every call; `bf16_ops` the bf16 CPU norms,
//! activations and sums, which candle computes element by element on one thread.
//!
//! Computations follow the reference's precision: f32 wherever it upcasts (norm statistics,
//! LayerScale, the grid resize, softmax, rotary tables), the model dtype elsewhere.

pub mod apollo;
mod attention;
mod bf16_matmul;
mod bf16_ops;
mod bf16_round;
pub mod connector;
pub mod finite;
pub mod grid;
pub mod input;
pub mod internvideo2;
mod kv_cache;
mod layers;
pub mod prefix;
pub mod qwen2;
pub mod siglip;

pub use apollo::{check_frames_per_clip, ApolloModel};
pub use input::{PromptChunk, TokenId};
pub use prefix::{BlockPrompt, VideoRows};
