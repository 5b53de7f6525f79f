#!/usr/bin/env bash
# Runs the end-to-end tests (the real binary on real and synthetic videos) against a portable
# build instead of this build's binary:
#
#   scripts/test-portable.sh [BINARY]      (default: dist/apollo, else dist/apollo-cuda)
#
# A CUDA binary runs here on the CPU: it links libcuda.so.1, so the link-time stub that
# scripts/build-cuda.sh makes stands in for the driver (every call fails, and `--device auto`
# falls back to the CPU as it does on a machine without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-}
if [ -z "$bin" ]; then
  bin=dist/apollo
  [ -x "$bin" ] || bin=dist/apollo-cuda
fi
[ -x "$bin" ] || { echo "test-portable: $bin is missing (scripts/build-portable.sh)" >&2; exit 2; }
cuda=$PWD/.cache/cuda13/nvidia/cu13/lib
# ldd's output is read whole before grep looks at it: with pipefail, `ldd | grep -q` fails
# whenever grep exits at its match while ldd is still writing (ldd dies of SIGPIPE).
deps=$(ldd "$bin")
if grep -q 'libcuda\.so' <<<"$deps"; then
  export LD_LIBRARY_PATH=$cuda/stubs:$cuda${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  deps=$(ldd "$bin")
fi
if grep 'not found' <<<"$deps" >&2; then
  echo "test-portable: $bin cannot start here" >&2
  exit 1
fi
# The tests that run the binary: every command's, the hub's, the corpus and the mutants.
tests=()
for f in tests/cli_*.rs tests/hub_*.rs tests/corpus.rs tests/mutants.rs; do
  tests+=(--test "$(basename "$f" .rs)")
done
APOLLO_TEST_BIN=$bin cargo test "${tests[@]}"
