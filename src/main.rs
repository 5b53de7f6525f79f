//! The `apollo` binary: parse arguments, set up logging, run, report the error if any, exit
//! with the command's status.

use apollo::cli::printer::report;
use apollo::cli::{run, Cli};
use clap::Parser;
use std::io::IsTerminal;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // -v and -vv raise apollo's own logging only: the libraries' debug output (the
    // tokenizer traces every character it normalises) would drown it. RUST_LOG reaches them.
    let default_level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "warn,apollo=debug",
        (false, _) => "warn,apollo=trace",
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .init();
    let status = run(cli).unwrap_or_else(|e| {
        report(&e);
        e.status()
    });
    ExitCode::from(status.code())
}
