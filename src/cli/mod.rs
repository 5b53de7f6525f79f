//! The command line: argument definitions and one module per subcommand.
pub mod args;
pub mod ask;
pub mod bench;
pub mod caption;
pub mod completions;
pub mod download;
pub mod inspect;
pub mod progress;
pub mod record;

use crate::error::Result;
use clap::{Parser, Subcommand};

/// Answer questions about video files with the Apollo video language models.
#[derive(Debug, Parser)]
#[command(name = "apollo", version, about, propagate_version = true)]
pub struct Cli {
    /// More logging on stderr (-v: debug, -vv: trace); RUST_LOG works too.
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
    /// Answer a question about a video; the answer streams to stdout.
    Ask(ask::AskArgs),
    /// Ask one question (by default, for a detailed description) of many videos: JSON Lines.
    Caption(caption::CaptionArgs),
    /// Show a video's metadata, the clips Apollo samples from it and its video prompt.
    Inspect(inspect::InspectArgs),
    /// Fetch a checkpoint into the Hugging Face cache and print where it is.
    Download(download::DownloadArgs),
    /// Measure speed and memory at a published model size with random weights (JSON).
    Bench(bench::BenchArgs),
    /// Print a shell completion script.
    Completions(completions::CompletionsArgs),
}

/// Runs the parsed command; the exit code comes from the returned error, if any.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Ask(args) => ask::run(&args, cli.quiet),
        Command::Caption(args) => caption::run(&args, cli.quiet),
        Command::Download(args) => download::run(&args, cli.quiet),
        Command::Bench(args) => bench::run(&args, cli.quiet),
        Command::Inspect(args) => inspect::run(&args),
        Command::Completions(args) => completions::run(&args),
    }
}
