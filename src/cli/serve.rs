//! `apollo serve`: the OpenAI-compatible server (see `serve`), with `ask`'s model, generation
//! and clip-sampling flags as the server's settings and defaults.

use super::args::{Answering, ClipSamplingArgs, GenerationArgs, ModelArgs};
use super::bounds::{number, Low};
use super::progress::Bars;
use crate::cache::size::parse_size;
use crate::error::{Error, ExitStatus, Result};
use crate::serve::video_source::{Policy, Timeouts};
use crate::serve::{self, Config};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on; 127.0.0.1 takes connections from this machine only, 0.0.0.0
    /// from anywhere.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The port to listen on; 0 picks a free one (the ready line on stderr names it, even with
    /// -q).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Every request but GET /health must carry `Authorization: Bearer KEY`.
    #[arg(
        long,
        value_name = "KEY",
        env = "APOLLO_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// A directory whose videos requests may name by path (links and .. resolved first);
    /// give it several times for several. Without it, no local path is read.
    #[arg(long = "allowed-dir", value_name = "DIR")]
    pub allowed_dirs: Vec<PathBuf>,
    /// Fetch http(s) video URLs (10 s to connect, 30 s between reads, 5 minutes in all, at
    /// most --max-video-size); refused without it.
    #[arg(long)]
    pub allow_remote: bool,
    /// Requests that may wait while one is answered, 1 to 4096; more are refused with 429.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = number(1usize, Low::Included, 4096))]
    pub max_queue: usize,
    /// The largest request body, e.g. 64M (binary suffixes K, M, G); larger ones get 413.
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = parse_size)]
    pub max_request_size: u64,
    /// The largest video of a data: URL or fetched from an http(s) URL, e.g. 1G; larger ones
    /// get 413.
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = parse_size)]
    pub max_video_size: u64,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub generation: GenerationArgs,
    #[command(flatten)]
    pub sampling: ClipSamplingArgs,
}

pub fn run(args: &ServeArgs, quiet: bool) -> Result<ExitStatus> {
    let allowed_dirs = args
        .allowed_dirs
        .iter()
        .map(|dir| match std::fs::canonicalize(dir) {
            Ok(real) if real.is_dir() => Ok(real),
            Ok(_) => Err(Error::usage(format!(
                "--allowed-dir {dir:?} is not a directory"
            ))),
            Err(e) => Err(Error::usage(format!("--allowed-dir {dir:?}: {e}"))),
        })
        .collect::<Result<Vec<_>>>()?;
    let max_request_bytes = usize::try_from(args.max_request_size)
        .map_err(|_| Error::usage("--max-request-size is larger than this machine can hold"))?;
    if args.api_key.as_deref() == Some("") {
        return Err(Error::usage(
            "--api-key (or APOLLO_API_KEY) is empty: give a key, or neither",
        ));
    }
    let mut bars = Bars::new(quiet);
    let session = Answering::open(
        &args.model,
        &args.generation,
        None,
        &args.sampling,
        &mut bars,
    )?;
    let config = Config {
        host: args.host.clone(),
        port: args.port,
        api_key: args.api_key.clone(),
        policy: Policy {
            allowed_dirs,
            allow_remote: args.allow_remote,
            max_video_bytes: args.max_video_size,
            timeouts: Timeouts::default(),
        },
        max_queue: args.max_queue,
        max_request_bytes,
        quiet,
    };
    serve::run(session, config)
}
