//! The command line: argument definitions, one module per subcommand, and the printer all of
//! them write through. Each command returns its [`ExitStatus`] (a batch that went on after a
//! failure ends with the first failure's) or the error that stopped it.
pub mod args;
pub mod ask;
pub mod bench;
pub mod caption;
pub mod completions;
pub mod download;
pub mod inspect;
pub mod man;
pub mod printer;
pub mod progress;

use crate::error::{ExitStatus, Result};
use clap::{Parser, Subcommand};
use printer::Printer;

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
    /// Print the manual page of apollo or of one of its commands (roff).
    Man(man::ManArgs),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<ExitStatus> {
    let out = &mut Printer::stdout();
    match cli.command {
        Command::Ask(args) => ask::run(&args, cli.quiet, out),
        Command::Caption(args) => caption::run(&args, cli.quiet, out),
        Command::Download(args) => download::run(&args, cli.quiet, out),
        Command::Bench(args) => bench::run(&args, cli.quiet, out),
        Command::Inspect(args) => inspect::run(&args, out),
        Command::Completions(args) => completions::run(&args, out),
        Command::Man(args) => man::run(&args, out),
    }
}
