//! `apollo completions <shell>`: the completion script for bash, zsh, fish, ...

use super::Cli;
use crate::error::{Error, Result};
use clap::{Args, CommandFactory};
use clap_complete::Shell;
use std::io::Write;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    pub shell: Shell,
}

/// The completion script for `shell`, as committed under completions/.
pub fn script(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "apollo", &mut out);
    out
}

pub fn run(args: &CompletionsArgs) -> Result<()> {
    std::io::stdout()
        .write_all(&script(args.shell))
        .map_err(|e| Error::runtime(None, format!("cannot write to stdout: {e}")))
}
