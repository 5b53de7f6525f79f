//! `caption --shard` and `--num-shards`: which shard of the video list this process answers,
//! from the flag or from the scheduler's environment (see [`crate::batch::shard`]).

use super::bounds::{number, Low};
use crate::batch::shard::{self, Shard, MAX_COUNT};
use crate::error::Result;
use clap::Args;

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Shards")]
pub struct ShardArgs {
    /// Answer only the videos of shard INDEX (from 0) of COUNT: those whose path, as given,
    /// hashes into it. Without it, a Slurm array task's or Kubernetes Indexed Job's index
    /// chooses the shard (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT, SLURM_ARRAY_TASK_MIN,
    /// SLURM_ARRAY_TASK_STEP; JOB_COMPLETION_INDEX); --shard 0/1 ignores them.
    #[arg(long, value_name = "INDEX/COUNT", conflicts_with = "num_shards")]
    pub shard: Option<Shard>,
    /// The shard count when the scheduler gives only the index (JOB_COMPLETION_INDEX, or a
    /// Slurm array rerunning some shards: its task IDs are then the shard indices).
    #[arg(long, value_name = "COUNT", value_parser = number(1u64, Low::Included, MAX_COUNT))]
    pub num_shards: Option<u64>,
}

impl ShardArgs {
    /// The shard to answer, and where it came from.
    pub fn resolve(&self) -> Result<(Shard, String)> {
        let env = |name: &str| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
        let (shard, from) = shard::resolve(self.shard, self.num_shards, env)?;
        tracing::debug!("shard {shard}, from {from}");
        Ok((shard, from))
    }
}
