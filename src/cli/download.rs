//! `apollo download [MODEL]`: fetch a checkpoint into the Hugging Face cache ahead of time and
//! print the folder it is in.

use super::progress::Bars;
use crate::error::Result;
use crate::model::hub::{self, HubSettings, DEFAULT_MODEL};
use clap::Args;

#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// Hugging Face repo of an Apollo checkpoint.
    #[arg(value_name = "MODEL", default_value = DEFAULT_MODEL)]
    pub model: String,
    /// Branch, tag or commit.
    #[arg(long, default_value = "main")]
    pub revision: String,
}

pub fn run(args: &DownloadArgs, quiet: bool) -> Result<()> {
    let mut bars = Bars::new(quiet);
    let dir = hub::fetch(
        &args.model,
        &args.revision,
        &HubSettings::from_env(),
        &mut bars,
    )?;
    println!("{}", dir.display());
    Ok(())
}
