#!/usr/bin/env bash
# Runs on the lent GPU machine from the repository root: unpacks what the image lacks into
# /tmp/site (the service's bundle from bench/gpu_bundle.sh, carried as .gpu/bundle.tar.xz,
# or loose wheels carried as .whl), then runs the named steps.
# Usage: bash bench/run_gpu.sh STEP [STEP...]   (output and JSON lines go to $OUT)
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=".:/tmp/site" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
OUT="${OUT:-/tmp/out}"; mkdir -p "$OUT"
for bundle in .gpu/bundle.tar.xz ../bundle.tar.xz; do  # beside the code, or one folder up
  if [ -f "$bundle" ]; then
    mkdir -p /tmp/site && tar -C /tmp/site -xJf "$bundle" || exit 1
    break
  fi
done
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
