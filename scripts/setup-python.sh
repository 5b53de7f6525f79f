#!/usr/bin/env bash
# The Python the tests of `apollo serve` use as a client: a virtual environment in .cache/py
# with the official `openai` package at a pinned version (tests/common/server.rs finds it
# there, or where APOLLO_TEST_PYTHON points).
set -euo pipefail
cd "$(dirname "$0")/.."
OPENAI_VERSION=3.57.0
venv=.cache/py
if ! "$venv/bin/python" -c "import openai, sys; sys.exit(openai.__version__ != '$OPENAI_VERSION')" 2>/dev/null; then
  rm -rf "$venv"
  mkdir -p .cache
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "openai==$OPENAI_VERSION"
fi
