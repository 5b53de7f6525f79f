//! The stages of answering, how a caller follows them, and what each took.

use std::time::Duration;

/// The stages a caller may show progress for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading the weights (no steps).
    Load,
    /// Decoding and preprocessing, in clips.
    Decode,
    /// Both encoders and the connector, in clips.
    Encode,
    /// The prompt's forward pass (no steps).
    Prefill,
}

/// Receives progress; every method does nothing by default.
pub trait Observer {
    fn begin(&mut self, _stage: Stage, _steps: u64) {}
    fn advance(&mut self, _stage: Stage) {}
    fn end(&mut self, _stage: Stage) {}
}

/// An observer that shows nothing.
pub struct Silent;
impl Observer for Silent {}

/// Wall-clock time of each stage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Loading the model; zero when it was already loaded.
    pub load: Duration,
    pub decode: Duration,
    pub preprocess: Duration,
    pub encode: Duration,
    /// Hashing the video (once per file and change), and reading or writing its cache entry.
    pub cache: Duration,
    pub prefill: Duration,
    pub generate: Duration,
}

/// Milliseconds to the microsecond, as the JSON records give durations.
pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
