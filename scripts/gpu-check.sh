#!/usr/bin/env bash
# The GPU check in one command, run from the repository root on the GPU machine with the
# portable CUDA binary carried in dist/ (scripts/build-portable.sh --cuda):
#
#   scripts/gpu-check.sh [--cpu] [--out DIR]        (DIR defaults to $OUT)
#
#  1. what the machine has: nvidia-smi, the driver, the CUDA libraries the binary needs
#     (taken from the installed PyTorch wheels); stops at once when something is missing;
#  2. exactness: `apollo bench --compare`, CUDA bf16 against CPU f32, on the tiny test
#     checkpoint and on a random checkpoint at the 3B widths with a few layers;
#  3. speed: `apollo bench` at the 3B size, all layers, on a 1-hour synthetic video, and
#     benches/pytorch_baseline.py on the same files with the machine's torch and transformers;
#  4. every result as JSON in DIR, and a table of ratios on stdout (summary.json too).
#
# --cpu runs the same flow on the CPU at tiny sizes (CPU bf16 against CPU f32, a 1.5B-width
# checkpoint with one layer, short videos; the baseline only where torch is installed), with
# target/release/apollo unless dist/apollo exists. CI runs it so that everything but the GPU is
# proven on every change.
#
# Videos: the portable binary has no encoder, so the synthetic videos travel in dist/videos/
# (written there by `scripts/gpu-check.sh --cpu --make-videos` on a machine with a normal build);
# a build with an encoder writes any that are missing itself.
set -euo pipefail
cd "$(dirname "$0")/.."

cpu=false
make_videos=false
out=${OUT:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) cpu=true ;;
    --make-videos) make_videos=true ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    *) echo "usage: scripts/gpu-check.sh [--cpu] [--make-videos] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$out" ] || { echo "gpu-check: give --out DIR (or set OUT)" >&2; exit 2; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=${APOLLO_GPU_CHECK_WORK:-${TMPDIR:-/tmp}/apollo-gpu-check}
mkdir -p "$work" dist/videos
started=$(date +%s)
failed=false
say() { printf 'gpu-check [%3ss] %s\n' "$(($(date +%s) - started))" "$*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

# The sizes of each mode: the long video is the 1-hour one only on the GPU.
if $cpu; then
  bin=target/release/apollo
  [ -x dist/apollo ] && bin=dist/apollo
  device=(--device cpu --dtype bf16)
  # Timed in f32, the CPU's default (bf16 is checked above, and slow on the CPU).
  bench_device=(--device cpu --dtype f32) torch_device=cpu torch_dtype=f32
  short_s=4 long_s=10
  wide=(--preset 1.5b --layers 1)
  bench=(--preset 1.5b --layers 1)
  tokens=8 new_tokens=4
else
  bin=dist/apollo-cuda
  if [ ! -x "$bin" ] && [ -f "$bin.xz" ]; then
    xz -dkc "$bin.xz" >"$bin.partial" && chmod +x "$bin.partial" && mv "$bin.partial" "$bin"
  fi
  device=(--device cuda --dtype bf16)
  bench_device=("${device[@]}") torch_device=cuda torch_dtype=bf16
  short_s=20 long_s=3600
  wide=(--preset 3b --layers 2)
  bench=(--preset 3b)
  tokens=32 new_tokens=128
fi
[ -x "$bin" ] || fail "$bin is missing (scripts/build-portable.sh$($cpu || echo ' --cuda'), or cargo build --release)"

video() { echo "dist/videos/synthetic-640x360-30fps-${1}s.mp4"; }
if $make_videos; then
  for s in 4 10 20 3600; do
    [ -f "$(video $s)" ] && continue
    say "writing $(video $s)"
    "$bin" -q bench --work-dir dist/videos --video-seconds "$s" --video-only >/dev/null
  done
  exit 0
fi

# 1. The machine.
machine() {
  say "machine: $(uname -srm), $(nproc) cores"
  if ! $cpu; then
    command -v nvidia-smi >/dev/null || fail "nvidia-smi is not here: no NVIDIA driver"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$work/gpu.txt" ||
      fail "nvidia-smi finds no GPU"
    say "gpu: $(head -1 "$work/gpu.txt")"
    # cuBLAS, cudart and curand from the PyTorch wheels (nvidia/cu13/lib), as torch loads them.
    local libs
    libs=$(python3 - <<'PY' 2>/dev/null || true
import glob, os
try:
    import nvidia
    roots = list(nvidia.__path__)
except ImportError:
    roots = []
dirs = {os.path.dirname(p) for r in roots for p in glob.glob(os.path.join(r, "**", "lib*.so*"), recursive=True)}
print(":".join(sorted(dirs)))
PY
)
    export LD_LIBRARY_PATH=${libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  fi
  local missing
  missing=$(ldd "$bin" | grep 'not found' || true)
  [ -z "$missing" ] || fail "$bin cannot start, libraries missing: $(echo "$missing" | awk '{print $1}' | tr '\n' ' ')"
  ldd "$bin" | awk '{print $1}' | tr '\n' ' ' >"$work/ldd.txt"
  python3 - "$out/machine.json" "$work" "$bin" "$cpu" <<'PY'
import json, os, platform, sys
out, work, binary, cpu = sys.argv[1:5]
gpu = open(os.path.join(work, "gpu.txt")).read().strip() if os.path.exists(os.path.join(work, "gpu.txt")) else None
json.dump({"host": platform.node(), "kernel": platform.release(), "cores": os.cpu_count(),
           "gpu": gpu, "binary": binary, "links": open(os.path.join(work, "ldd.txt")).read().split(),
           "cpu_mode": cpu == "true"}, open(out, "w"), indent=1)
PY
  "$bin" --version >&2
}

# Writes a synthetic video unless it is in dist/videos (the portable binary cannot).
need_video() {
  local s=$1
  if [ ! -f "$(video "$s")" ]; then
    say "writing $(video "$s")"
    "$bin" -q bench --work-dir dist/videos --video-seconds "$s" --video-only >/dev/null ||
      fail "$(video "$s") is missing and $bin cannot write it: run scripts/gpu-check.sh --make-videos with a normal build"
  fi
}

# 2. Exactness. A failed check is reported, the run goes on to the speed figures, and the
# script exits 1 at the end.
compare() {
  local name=$1
  shift
  say "compare $name"
  if "$bin" -q bench --compare "${device[@]}" --new-tokens "$tokens" "$@" >"$out/compare-$name.json"; then
    say "compare $name: within bounds"
  else
    say "compare $name: OUTSIDE the bounds or failed (see compare-$name.json)"
    failed=true
  fi
}

# 3. Speed, apollo then PyTorch on the same checkpoint, video and plan.
speed() {
  say "bench apollo ${bench[*]}"
  "$bin" -q bench "${bench_device[@]}" "${bench[@]}" --new-tokens "$new_tokens" --work-dir "$work/bench" \
    --video "$(video "$long_s")" >"$out/bench-apollo.json" || fail "apollo bench failed"
  if python3 -c 'import torch, transformers' 2>/dev/null; then
    say "bench pytorch"
    python3 benches/pytorch_baseline.py --work-dir "$work/bench" --device "$torch_device" \
      --dtype "$torch_dtype" --new-tokens "$new_tokens" >"$out/bench-pytorch.json" ||
      say "the PyTorch baseline failed (see its output above)"
  else
    say "PyTorch baseline skipped: torch and transformers are not installed"
  fi
}

machine
need_video "$short_s"
need_video "$long_s"
compare tiny --model-dir tests/fixtures/tiny-apollo --video "$(video "$short_s")"
compare wide "${wide[@]}" --work-dir "$work/bench" --video "$(video "$short_s")"
speed
python3 scripts/gpu_check_summary.py "$out"
if $failed; then
  fail "an exactness check failed"
fi
say "done"
