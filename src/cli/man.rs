//! `apollo man [COMMAND]`: the manual pages, made by clap_mangen from the same clap
//! definitions as `--help` and the completion scripts, and committed under man/ (a test fails
//! when they are stale).

use super::printer::Printer;
use super::Cli;
use crate::error::{Error, ExitStatus, Result};
use clap::{Args, CommandFactory};
use clap_mangen::Man;

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The command whose page to print [default: apollo's own, which lists the commands].
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

/// Every page as (file name, roff): `apollo.1`, then `apollo-<command>.1` for each command.
pub fn pages() -> Vec<(String, Vec<u8>)> {
    // The plain version: a page is the same whichever features the binary was built with.
    let mut cli = Cli::command()
        .disable_help_subcommand(true)
        .long_version(None);
    // Built, the commands know their full names (apollo-ask) and the global flags.
    cli.build();
    let commands: Vec<_> = cli.get_subcommands().cloned().collect();
    std::iter::once(cli).chain(commands).map(render).collect()
}

fn render(command: clap::Command) -> (String, Vec<u8>) {
    let man = Man::new(command);
    let mut roff = Vec::new();
    man.render(&mut roff).expect("rendering into memory");
    (man.get_filename(), roff)
}

pub fn run(args: &ManArgs, out: &mut Printer) -> Result<ExitStatus> {
    let file = match &args.command {
        Some(command) => format!("apollo-{command}.1"),
        None => "apollo.1".into(),
    };
    let (_, page) = pages()
        .into_iter()
        .find(|(name, _)| *name == file)
        .ok_or_else(|| {
            let command = args.command.as_deref().unwrap_or_default();
            Error::usage(format!("no command {command:?} (see apollo --help)"))
        })?;
    out.write(&page)?;
    Ok(ExitStatus::Success)
}
