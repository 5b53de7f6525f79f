#!/usr/bin/env bash
# Caption throughput of one process with the tiny checkpoint, two builds side by side:
#
#   benches/caption-throughput.sh BASE_BINARY NEW_BINARY [ROUNDS]
#
# The test videos (bigbuckbunny, bikes, carphone_pristine), 10 links to each, are captioned
# (greedy, 8 new tokens, records into a fresh --output-dir) by BASE_BINARY, by NEW_BINARY, and
# by NEW_BINARY with --shard 0/1 (every video through the shard filter), in turn, ROUNDS times
# (default 3). Prints each run's videos per hour (wall clock) and CPU milliseconds per video,
# and per configuration the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
base=$(realpath "${1:?usage: benches/caption-throughput.sh BASE_BINARY NEW_BINARY [ROUNDS]}")
new=$(realpath "${2:?usage: benches/caption-throughput.sh BASE_BINARY NEW_BINARY [ROUNDS]}")
rounds=${3:-3}
videos=${APOLLO_TEST_VIDEOS:-$PWD/.cache/test-videos}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for name in bigbuckbunny bikes carphone_pristine; do
  for i in $(seq -w 1 10); do
    ln -s "$videos/$name.mp4" "$work/$name-$i.mp4"
    echo "$work/$name-$i.mp4"
  done
done > "$work/list"
count=$(wc -l < "$work/list")
declare -A rates cpus
run() { # label binary flags...
  local label=$1 bin=$2
  shift 2
  rm -rf "$work/out"
  local times wall cpu rate
  # Wall-clock and CPU (user + system) seconds: CPU time is what contention changes least.
  times=$( { TIMEFORMAT='%R %U %S'; time "$bin" caption --from "$work/list" \
    --output-dir "$work/out" --model-dir tests/fixtures/tiny-apollo --temperature 0 \
    --max-new-tokens 8 -q "$@" > /dev/null; } 2>&1 )
  read -r wall user sys <<< "$times"
  cpu=$(echo "($user + $sys) * 1000 / $count" | bc -l)
  rate=$(echo "$count * 3600 / $wall" | bc -l)
  printf '%-16s round %d: %d videos in %6.2f s, %6.0f videos/hour, %5.1f CPU ms/video\n' \
    "$label" "$round" "$count" "$wall" "$rate" "$cpu"
  rates[$label]+="$rate "
  cpus[$label]+="$cpu "
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for round in $(seq 1 "$rounds"); do
  run base "$base"
  run new "$new"
  run "new --shard 0/1" "$new" --shard 0/1
done
for label in base new "new --shard 0/1"; do
  # shellcheck disable=SC2086 # one figure a word
  printf 'median %-16s %6.0f videos/hour, %5.1f CPU ms/video\n' "$label" \
    "$(median ${rates[$label]})" "$(median ${cpus[$label]})"
done
