#!/usr/bin/env bash
# Create .venv and install ganinf-mlops with its test tools. Idempotent; works offline from the
# package registries only. torch/torchvision: pyproject.toml states ranges; constraints.txt pins
# the builds this project is tested on, and every install here goes through it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt torch torchvision
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
