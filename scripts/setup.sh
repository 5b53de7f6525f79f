#!/usr/bin/env bash
# One-time set-up of a Debian machine for building and testing apollo: ffmpeg's development
# libraries (video-rs 0.12 builds against Debian's ffmpeg 5.1), clang for the bindings, the
# ffmpeg command-line tool (tests make synthetic videos with it), tmux (a test drives
# `apollo chat` on a terminal through it), curl and a Python virtual environment with the
# official `openai` client in .cache/py (the tests of `apollo serve` talk to it with both),
# and the real test videos.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libavdevice-dev
  libavfilter-dev libswresample-dev pkg-config clang libclang-dev ffmpeg tmux curl)
# A python3 that can make virtual environments (Debian's needs python3-venv for that).
python3 -c 'import ensurepip, venv' 2>/dev/null || packages+=(python3-venv)
missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) || true
  [[ $status == *"ok installed"* ]] || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true
bash scripts/setup-python.sh
bash scripts/fetch-test-videos.sh
