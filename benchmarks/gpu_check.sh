#!/usr/bin/env bash
# The GPU check, one command on a GPU machine (about 5 minutes; at most 8):
#   bash benchmarks/gpu_check.sh            # results in benchmarks/results/ (or $OUT)
# 1. the card (nvidia-smi); 2. the CUDA tests (tests/test_gpu.py and the CUDA test of
# tests/test_bench.py; with pytest if installed, else the file's own runner);
# 3. throughput at paper width, one model and K stacked, fp32 / TF32 / bf16, and the
# paper grid's projected GPU-hours (benchmarks/gpu_check.py). Needs torch with CUDA and
# the project's dependencies (pandas, scipy, sentencepiece, tqdm); no data, no network.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] && .venv/bin/python -c "import torch; assert torch.cuda.is_available()" 2>/dev/null && PY=.venv/bin/python
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT="${OUT:-benchmarks/results}"
mkdir -p "$OUT"
status=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$OUT/gpu-card.txt"
echo "== CUDA tests"
if "$PY" -c "import pytest" 2>/dev/null; then
  timeout 240 "$PY" -m pytest -q -p no:cacheprovider tests/test_gpu.py \
    "tests/test_bench.py::test_cuda_training_end_to_end" 2>&1 | tee "$OUT/gpu-tests.txt" || status=1
else
  timeout 240 "$PY" tests/test_gpu.py 2>&1 | tee "$OUT/gpu-tests.txt" || status=1
fi
echo "== throughput and projection"
timeout 300 "$PY" benchmarks/gpu_check.py --seconds "${SECONDS_PER_CONFIG:-10}" \
  --out "$OUT/gpu-check.json" "$@" 2>&1 | tee "$OUT/gpu-check.txt" || status=1
exit $status
