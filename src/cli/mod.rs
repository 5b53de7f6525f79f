//! The command line: argument definitions, one module per subcommand, and the printer all of
//! them write through. Each command returns its [`ExitStatus`] (a batch that went on after a
//! failure ends with the first failure's) or the error that stopped it.
pub mod args;
pub mod ask;
pub mod bench;
pub mod bounds;
pub mod cache;
pub mod caption;
pub mod chat;
pub mod completions;
pub mod download;
pub mod inspect;
pub mod man;
pub mod printer;
pub mod progress;
pub mod serve;
pub mod shard;

use crate::error::{Error, ExitStatus, Result};
use clap::{Parser, Subcommand};
use printer::Printer;
use std::path::Path;

/// `apollo --version`: the version and whether this binary can use a GPU (`-V` and the man
/// pages give the version alone, the same for every build).
const LONG_VERSION: &str = if cfg!(feature = "cuda") {
    concat!(env!("CARGO_PKG_VERSION"), " (built with CUDA)")
} else {
    concat!(env!("CARGO_PKG_VERSION"), " (CPU only)")
};

/// Answer questions about video files with the Apollo video language models.
#[derive(Debug, Parser)]
#[command(
    name = "apollo",
    version,
    long_version = LONG_VERSION,
    about,
    propagate_version = true
)]
pub struct Cli {
    /// More logging on stderr: -v shows apollo's steps (files, plan, batches, timings), -vv
    /// its traces too; RUST_LOG (e.g. RUST_LOG=debug) also reaches the libraries' logs.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Answer questions about a video; the answers stream to stdout.
    Ask(ask::AskArgs),
    /// Ask one question (by default, for a detailed description) of many videos: JSON Lines.
    Caption(caption::CaptionArgs),
    /// Talk about a video: questions and follow-ups, the video encoded once.
    Chat(chat::ChatArgs),
    /// Serve the model over HTTP with OpenAI's chat completions API (video_url parts).
    Serve(serve::ServeArgs),
    /// Show or clear the encoded-video cache.
    Cache(cache::CacheArgs),
    /// Show a video's metadata, the clips Apollo samples from it and its video prompt.
    Inspect(inspect::InspectArgs),
    /// Fetch a checkpoint into the Hugging Face cache and print where it is.
    Download(download::DownloadArgs),
    /// Measure speed and memory at a published model size with random weights (JSON).
    Bench(bench::BenchArgs),
    /// Print a shell completion script.
    Completions(completions::CompletionsArgs),
    /// Print the manual page of apollo or of one of its commands (roff).
    Man(man::ManArgs),
}

/// The name that means stdout where a file is written (`inspect --contact-sheet -`).
pub const STDOUT: &str = "-";

/// A flag naming a folder for files must not be "-": stdout cannot hold a folder of them.
pub fn check_folder_flag(flag: &str, folder: Option<&Path>) -> Result<()> {
    if folder == Some(Path::new(STDOUT)) {
        return Err(Error::usage(format!(
            "{flag} takes a folder; \"-\" (stdout) cannot hold its files (write ./- for a \
             folder of that name)"
        )));
    }
    Ok(())
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<ExitStatus> {
    let out = &mut Printer::stdout();
    match cli.command {
        Command::Ask(args) => ask::run(&args, cli.quiet, out),
        Command::Caption(args) => caption::run(&args, cli.quiet, out),
        Command::Chat(args) => chat::run(&args, cli.quiet, out),
        Command::Serve(args) => serve::run(&args, cli.quiet),
        Command::Cache(args) => cache::run(&args, out),
        Command::Download(args) => download::run(&args, cli.quiet, out),
        Command::Bench(args) => bench::run(&args, cli.quiet, out),
        Command::Inspect(args) => inspect::run(&args, out),
        Command::Completions(args) => completions::run(&args, out),
        Command::Man(args) => man::run(&args, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Command {
        Cli::try_parse_from([&["apollo"], args].concat())
            .unwrap()
            .command
    }

    /// A value parser whose type differs from its field's fails only when the field is read:
    /// every numeric flag is read here once.
    #[test]
    fn every_numeric_flag_parses_into_its_field() {
        let sampling = [
            "--clip-duration=3",
            "--frames-per-clip=8",
            "--model-max-length=100",
            "--clip-sampling-ratio=0.5",
        ];
        let generation = [
            "--temperature=0.5",
            "--top-p=0.9",
            "--top-k=5",
            "--repetition-penalty=1.1",
            "--max-new-tokens=9",
            "--seed=3",
            "--logprobs=2",
        ];
        let Command::Ask(a) = parse(&[&["ask", "v.mp4", "q"], &sampling[..], &generation].concat())
        else {
            panic!("ask")
        };
        assert_eq!(
            (a.sampling.clip_duration, a.sampling.frames_per_clip),
            (Some(3.0), Some(8))
        );
        assert_eq!(a.sampling.model_max_length, Some(100));
        assert_eq!(a.sampling.clip_sampling_ratio, Some(0.5));
        let g = &a.generation;
        assert_eq!((g.temperature, g.top_p, g.top_k), (0.5, 0.9, Some(5)));
        assert_eq!(g.repetition_penalty, Some(1.1));
        assert_eq!((g.max_new_tokens, g.seed), (9, Some(3)));
        assert_eq!(a.logprobs.logprobs, Some(2));
        let Command::Inspect(i) = parse(&[
            "inspect",
            "v.mp4",
            "--tokens-per-clip=16",
            "--start=1:30",
            "--end=100.5",
        ]) else {
            panic!("inspect")
        };
        assert_eq!(i.tokens_per_clip, Some(16));
        assert_eq!(
            (i.sampling.start, i.sampling.end),
            (Some(90.0), Some(100.5))
        );
        let Command::Caption(c) = parse(&["caption", "v.mp4", "--num-shards=4"]) else {
            panic!("caption")
        };
        assert_eq!(c.shard.num_shards, Some(4));
        let Command::Caption(c) = parse(&["caption", "v.mp4", "--shard=1/4"]) else {
            panic!("caption")
        };
        assert_eq!(c.shard.shard.map(|s| s.to_string()), Some("1/4".into()));
        let Command::Bench(b) = parse(&[
            "bench",
            "--layers=2",
            "--video-seconds=5",
            "--video-size=32x16",
            "--video-fps=10",
            "--new-tokens=4",
        ]) else {
            panic!("bench")
        };
        assert_eq!((b.layers, b.video_seconds, b.video_fps), (Some(2), 5, 10));
        assert_eq!((b.video_size, b.new_tokens), ((32, 16), 4));
        let Command::Bench(b) = parse(&["bench"]) else {
            panic!("bench")
        };
        assert_eq!((b.video_size, b.video_seconds), ((640, 360), 3600));
    }
}
