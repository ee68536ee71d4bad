#!/usr/bin/env bash
# Install (if needed), then run the default test suite (slow accuracy studies: add `-m slow`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/python -m pytest "$@"
