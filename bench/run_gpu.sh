#!/usr/bin/env bash
# Runs on the lent GPU machine from the repository root: installs the carried wheels the
# image lacks (pydantic + typer for the CLI) into /tmp/site, then runs the named steps.
# Usage: bash bench/run_gpu.sh STEP [STEP...]   (output and JSON lines go to $OUT)
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=".:/tmp/site" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
OUT="${OUT:-/tmp/out}"; mkdir -p "$OUT"
for whl in .whl ../.whl; do  # wheels beside the code, or at the repository root
  if ls "$whl"/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site "$whl"/*.whl || exit 1
    break
  fi
done
for step in "$@"; do
  echo "=== $step $(date -u +%H:%M:%S)"
  case "$step" in
    env) nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv;
         python3 -c "import torch, transformers, sys; print(sys.version.split()[0], torch.__version__, transformers.__version__, torch.cuda.get_device_name())" ;;
    *) eval "python3 $step" ;;
  esac 2>&1 | tee -a "$OUT/log.txt"
done
grep -h '^{"bench"' "$OUT/log.txt" > "$OUT/results.jsonl" || true
