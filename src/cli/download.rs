//! `apollo download [MODEL]`: fetch a checkpoint into the Hugging Face cache ahead of time and
//! print the folder it is in.

use super::printer::Printer;
use super::progress::Bars;
use crate::checkpoint::hub::{self, HubSettings, DEFAULT_MODEL};
use crate::error::{ExitStatus, Result};
use clap::Args;

#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// Hugging Face repo of an Apollo checkpoint.
    #[arg(value_name = "MODEL", default_value = DEFAULT_MODEL, value_parser = hub::repo_id)]
    pub model: String,
    /// Branch, tag or commit.
    #[arg(long, default_value = "main", value_parser = hub::revision)]
    pub revision: String,
}

pub fn run(args: &DownloadArgs, quiet: bool, out: &mut Printer) -> Result<ExitStatus> {
    let mut bars = Bars::new(quiet);
    let snapshot = hub::fetch(
        &args.model,
        &args.revision,
        &HubSettings::from_env()?,
        &mut bars,
    )?;
    out.line(snapshot.dir.display())?;
    Ok(ExitStatus::Success)
}
