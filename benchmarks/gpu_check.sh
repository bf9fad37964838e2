#!/usr/bin/env bash
# The GPU check, one command on a GPU machine (about 5 minutes; at most 8):
#   bash benchmarks/gpu_check.sh            # results in benchmarks/results/ (or $OUT)
# 0. the project's .venv must have a torch that sees a GPU (docs/gpu.md installs one);
#    otherwise one line says why and the script exits 1 (it never uses another python;
#    PYTHON=/path/to/python names a different interpreter explicitly);
# 1. the card (nvidia-smi); 2. the CUDA tests (tests/test_gpu.py and the CUDA test of
# tests/test_bench.py; with pytest if installed, else the file's own runner);
# 3. throughput at paper width, one model and K stacked, fp32 / TF32 / bf16, and the
# paper grid's projected GPU-hours (benchmarks/gpu_check.py). Needs the project's
# dependencies (pandas, scipy, sentencepiece, tqdm); no data, no network.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
if [ ! -x "$PY" ]; then
  echo "gpu_check: no $PY: run 'make venv' and install a CUDA build of torch, see docs/gpu.md" >&2
  exit 1
fi
"$PY" - <<'EOF' || exit 1
import os
import sys

try:
    import torch
except ImportError as exc:
    sys.exit(f"gpu_check: {sys.executable} has no torch ({exc}); run 'make venv', see docs/gpu.md")
if not torch.backends.cuda.is_built():
    sys.exit(f"gpu_check: torch {torch.__version__} has no CUDA: install a CUDA build, see docs/gpu.md")
if not torch.cuda.is_available():
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    sys.exit(f"gpu_check: torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU "
             f"(CUDA_VISIBLE_DEVICES={'unset' if visible is None else repr(visible)}): no CUDA device; "
             f"check nvidia-smi and the driver, see docs/gpu.md")
print(f"gpu_check: {sys.executable}: torch {torch.__version__} (CUDA {torch.version.cuda}, "
      f"cuDNN {torch.backends.cudnn.version()}), {torch.cuda.device_count()} GPU(s), "
      f"cuda:0 = {torch.cuda.get_device_name(0)}")
EOF
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
