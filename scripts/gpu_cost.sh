#!/bin/bash
# The GPU cost measurement of the README's "Cost" paragraph: the paper-mnist DCGAN on an
# MNIST-sized stand-in (benchmarks/synthetic_mnist.py: 60,000 + 10,000 images, since nothing can be
# downloaded there), influence / training time and reverse-pass peak memory on one GPU. Run from
# the repository root on a machine with CUDA and PyTorch; torch-fidelity may come as wheels in
# .whl/ (installed to /tmp/site). Writes logs and JSON to $OUT (default /tmp/gpu-cost).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-cost}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" \
  | tee -a "$OUT/gpu.txt"
python3 benchmarks/synthetic_mnist.py --out /tmp/mnist || exit 1
bench() {  # NAME ARGS...: one influence_cost run on the stand-in, log and JSON to $OUT
  local name=$1; shift
  timeout "${BENCH_TIMEOUT:-400}" python3 benchmarks/influence_cost.py --preset paper-mnist \
    --dataset mnist --data-param root=/tmp/mnist --device cuda --threads 0 \
    --json "$OUT/$name.json" "$@" 2>&1 | tee "$OUT/$name.log"
}
# 6,000 images, one epoch (60 steps): small enough to keep every step's graph for the
# uncheckpointed comparison.
bench small --data-param train_size=6000 --data-param n_eval=1000 --epochs 1 --repeats 1 \
  --memory both
# All 60,000 images, one epoch (600 steps): time and the checkpointed pass only.
bench full --data-param n_eval=10000 --epochs 1 --repeats 2 --memory checkpointed
