#!/usr/bin/env bash
# Captions a list of videos with a Slurm job array, one GPU per task:
#
#   sbatch --array=0-9 examples/slurm-caption.sh videos.txt captions/
#
# Each task answers its shard of the list (apollo reads SLURM_ARRAY_TASK_ID and the array's
# SLURM_ARRAY_TASK_MIN, _STEP and _COUNT, so --array=1-10 or --array=0-18:2 do the same),
# writes one record per video into the output folder, and once it has been through all of
# its videos, _shard-INDEX-of-COUNT.json. A task run again skips the videos already answered
# with the same settings. To rerun only the shards that left no manifest, give their indices
# (from 0, as in the manifests' names) and the original count:
#
#   NUM_SHARDS=10 sbatch --array=3,7 examples/slurm-caption.sh videos.txt captions/
#
# APOLLO_ARGS holds the other flags of `apollo caption` (default: --device cuda; add --model,
# --question, --temperature, ...). The records also go to stdout, which is sent away here:
# the log holds the errors and the summary line.
#SBATCH --job-name=apollo-caption
#SBATCH --array=0-9
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=32G
#SBATCH --time=08:00:00
#SBATCH --output=apollo-caption-%A_%a.log
set -euo pipefail
list=${1:?usage: sbatch --array=0-N examples/slurm-caption.sh LIST OUTPUT_DIR}
out=${2:?usage: sbatch --array=0-N examples/slurm-caption.sh LIST OUTPUT_DIR}
# shellcheck disable=SC2086 # APOLLO_ARGS is a list of flags
apollo caption --from "$list" --output-dir "$out" --skip-existing \
    ${NUM_SHARDS:+--num-shards "$NUM_SHARDS"} ${APOLLO_ARGS:---device cuda} > /dev/null
