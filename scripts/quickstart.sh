#!/usr/bin/env bash
# Install, then run the default job (2D normal with a contaminating cluster) into ./ganinf-work.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/ganinf run --preset default --out ganinf-work --force "$@"
