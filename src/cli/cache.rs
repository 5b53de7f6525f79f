//! `apollo cache info|clear`: where the encoded-video cache is, what it holds, and emptying it.

use super::printer::Printer;
use crate::cache::size::human;
use crate::cache::VideoCache;
use crate::error::{ExitStatus, Result};
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub action: CacheAction,
}

#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// Where the cache is, how many encoded videos it holds, their size and the limit.
    Info {
        /// One JSON object: location, entries, bytes, max_bytes.
        #[arg(long)]
        json: bool,
    },
    /// Remove every encoded video (and the file-hash memos) from the cache.
    Clear,
}

pub fn run(args: &CacheArgs, out: &mut Printer) -> Result<ExitStatus> {
    let cache = VideoCache::from_env()?;
    match args.action {
        CacheAction::Info { json: true } => out.record(&cache.info())?,
        CacheAction::Info { json: false } => {
            let info = cache.info();
            out.line(format!("location  {}", info.location.display()))?;
            out.line(format!("entries   {} encoded videos", info.entries))?;
            out.line(format!(
                "size      {} of at most {} (APOLLO_CACHE_MAX)",
                human(info.bytes),
                human(info.max_bytes)
            ))?;
        }
        CacheAction::Clear => {
            let removed = cache.clear()?;
            out.line(format!(
                "removed {} encoded videos ({}) from {}",
                removed.entries,
                human(removed.bytes),
                removed.location.display()
            ))?;
        }
    }
    Ok(ExitStatus::Success)
}
