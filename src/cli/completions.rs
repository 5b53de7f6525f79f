//! `apollo completions <shell>`: the completion script for bash, zsh, fish, ...

use super::printer::Printer;
use super::Cli;
use crate::error::{ExitStatus, Result};
use clap::{Args, CommandFactory};
use clap_complete::Shell;

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

pub fn run(args: &CompletionsArgs, out: &mut Printer) -> Result<ExitStatus> {
    out.write(&script(args.shell))?;
    Ok(ExitStatus::Success)
}
