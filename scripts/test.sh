#!/usr/bin/env bash
# Install (if needed), then run the default test suite (slow accuracy studies: add `-m slow`).
# --fast: the fast layer only, without the integration tests (DVC, tracking servers, load, UI,
# resume after kill, whole jobs). Other arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
for a in "$@"; do
  if [ "$a" = "--fast" ]; then
    args+=(-m "not slow and not integration")
  else
    args+=("$a")
  fi
done
bash scripts/install.sh
.venv/bin/python -m pytest ${args[@]+"${args[@]}"}
