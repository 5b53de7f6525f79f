//! The Apollo video language model in candle, loaded from a checkpoint directory in the
//! published layout (config.json, llm/, vision_tower/{siglip..,internvideo2}/, mm_connector/).
//!
//! One file per component, in pipeline order: [`siglip`] and [`internvideo2`] encode a clip's
//! frames, [`grid`] resizes both to the common token grid and concatenates them, [`connector`]
//! turns each clip's grid into the llm's video rows, and [`qwen2`] runs the language model from
//! input embeddings. [`apollo`] wires them; [`config`] and [`loader`] read the checkpoint.
//!
//! Computations follow the reference's precision: f32 wherever it upcasts (norm statistics,
//! LayerScale, the grid resize, softmax, rotary tables), the model dtype elsewhere.

pub mod apollo;
mod attention;
pub mod config;
pub mod connector;
pub mod device;
pub mod grid;
pub mod hub;
pub mod internvideo2;
mod layers;
pub mod loader;
pub mod qwen2;
pub mod siglip;
pub mod synthetic;
#[cfg(test)]
pub(crate) mod testing;

pub use apollo::ApolloModel;
pub use config::ApolloConfig;

use crate::error::Error;

/// A failure inside a forward pass: shapes that do not fit, a device error.
pub(crate) fn runtime(e: candle_core::Error) -> Error {
    Error::runtime(None, format!("model: {}", without_backtrace(e)))
}

/// candle attaches a multi-line backtrace to its errors when RUST_BACKTRACE is set; the user
/// gets the error itself, on one line.
pub(crate) fn without_backtrace(e: candle_core::Error) -> candle_core::Error {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => without_backtrace(*inner),
        other => other,
    }
}
