//! The `apollo` binary: parse arguments, set up logging, run, report the error if any, exit
//! with the command's status.

use apollo::cli::printer::report;
use apollo::cli::{run, Cli};
use clap::Parser;
use std::io::IsTerminal;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    keep_freed_memory();
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

/// The model's tensors of tens or hundreds of MB come and go in every layer; by default glibc
/// maps each from the kernel and unmaps it when freed, so the next one is faulted in and
/// zeroed page by page again (a sixth of a CPU run's time). Served from the heap and kept
/// there, freed memory is reused instead (the peak grows a little: ~6% in `apollo bench`).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; nothing is allocated yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
