#!/usr/bin/env bash
# Create .venv and install ganinf-mlops with its test tools. Idempotent; works offline from the
# package registries only. torch/torchvision are pinned to the builds this project is tested on.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
.venv/bin/python -m pip install -q -e ".[dev]"
