//! apollo: questions about videos answered by the Apollo video language models.
//!
//! The modules, from the file on disk to the answer on stdout:
//!
//! - [`video`]: decoding (ffmpeg), clip sampling (which frames the model sees) and
//!   preprocessing into each encoder's pixels.
//! - [`prompt`]: the video prompt and chat template as the reference writes them, and their
//!   tokens, handed to the model as chunks of text ids and video rows.
//! - [`checkpoint`]: a checkpoint on disk: its layout, configuration files read once, weights,
//!   the Hugging Face hub, and random-weight checkpoints for tests and bench.
//! - [`model`]: the network (SigLIP, InternVideo2, token grid, connector, Qwen2) in candle.
//! - [`device`]: where the model runs and in which precision.
//! - [`generate`]: token sampling, the decoding loop, streamed text and log-probabilities.
//! - [`pipeline`]: questions about videos, stage by stage, with clip batching and the
//!   encoded-video cache.
//! - [`records`]: the JSON records the commands print (one serde struct each).
//! - [`render`]: pictures for people: sampled frames as PNG and the contact sheet.
//! - [`bench`](mod@bench): `apollo bench`, speed and memory at real model sizes.
//! - [`serve`]: `apollo serve`, the OpenAI-compatible HTTP server.
//! - [`cli`]: the command line, its printer and exit statuses.
//! - [`error`]: the one error type and the exit codes.
//! - [`batch`]: captioning at dataset scale: shards of a video list, the shard's manifest.
//! - [`cache`]: the encoded-video cache on disk (a video's rows, reused across questions and
//!   runs).
//! - [`atomic_file`]: files written whole or not at all.
//! - [`fnv`]: the FNV-1a hash, for what must be reproducible elsewhere.
//! - [`rng`]: the one seeded random generator (synthetic weights, test inputs).
pub mod atomic_file;
pub mod batch;
pub mod bench;
pub mod cache;
pub mod checkpoint;
pub mod cli;
pub mod device;
pub mod error;
pub mod fnv;
pub mod generate;
pub mod model;
pub mod pipeline;
pub mod prompt;
pub mod records;
pub mod render;
pub mod rng;
pub mod serve;
pub mod video;
