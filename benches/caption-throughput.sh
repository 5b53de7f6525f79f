#!/usr/bin/env bash
# Caption throughput of one process with the tiny checkpoint, two builds side by side:
#
#   benches/caption-throughput.sh BASE_BINARY NEW_BINARY [ROUNDS]
#
# The test videos (bigbuckbunny, bikes, carphone_pristine), 10 links to each, are captioned
# (greedy, 8 new tokens, records into a fresh --output-dir) by BASE_BINARY, by NEW_BINARY, and
# by NEW_BINARY with --shard 0/1 (every video through the shard filter), in turn, ROUNDS times
# (default 3). Prints each run's videos per hour and, per configuration, the median.
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
declare -A rates
run() { # label binary flags...
  local label=$1 bin=$2
  shift 2
  rm -rf "$work/out"
  local start end
  start=$(date +%s.%N)
  "$bin" caption --from "$work/list" --output-dir "$work/out" --model-dir tests/fixtures/tiny-apollo \
    --temperature 0 --max-new-tokens 8 -q "$@" > /dev/null
  end=$(date +%s.%N)
  local rate
  rate=$(echo "$count * 3600 / ($end - $start)" | bc -l)
  printf '%-16s round %d: %5d videos in %6.2f s, %8.0f videos/hour\n' \
    "$label" "$round" "$count" "$(echo "$end - $start" | bc -l)" "$rate"
  rates[$label]+="$rate "
}
for round in $(seq 1 "$rounds"); do
  run base "$base"
  run new "$new"
  run "new --shard 0/1" "$new" --shard 0/1
done
for label in base new "new --shard 0/1"; do
  # shellcheck disable=SC2086 # one rate a word
  median=$(printf '%s\n' ${rates[$label]} | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf 'median %-16s %8.0f videos/hour\n' "$label" "$median"
done
