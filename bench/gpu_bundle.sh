#!/usr/bin/env bash
# Builds .gpu/bundle.tar.xz: what `xlwatch serve` needs on the lent GPU machine beyond its
# image (Python 3.12, torch, transformers, numpy, OpenCV, aiohttp, grpcio, protobuf, psutil,
# typer's click and rich are there; Ray, SQLAlchemy, Alembic, pydantic, FastAPI, PyAV,
# cryptography, redis, tenacity and paho-mqtt are not). A device call carries at most 64 MiB with the
# working tree, so the wheels are unpacked and repacked with xz -9, and Ray loses what the
# service never imports: its Java jars, RLlib, Tune, Train, Data, Serve, LLM and the
# dashboard's web client (the service starts Ray with include_dashboard=False). About 56 MB.
#
# Usage: bash bench/gpu_bundle.sh        (here, with pip and the package index reachable)
# There: bench/run_gpu.sh unpacks it into /tmp/site and puts that on PYTHONPATH.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.gpu/bundle.tar.xz
[ -f "$out" ] && { echo "[bundle] $out exists ($(du -h "$out" | cut -f1))"; exit 0; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The service's own pins (pyproject.toml) where it has them; their dependencies as resolved
# for Python 3.12 by pip on 2026-12-02, minus what the image already holds.
wheels=(
  ray==2.60.0 jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0
  rpds-py==2026.9.1 sqlalchemy==2.1.9 alembic==1.20.1 mako==1.4.3 pydantic==2.14.3
  pydantic-core==2.50.4 annotated-types==0.8.0 typing-inspection==0.4.5
  typing-extensions==4.16.0 fastapi==0.165.0 starlette==1.10.0 uvicorn==0.54.0
  av==18.1.0 cryptography==50.0.2 cffi==2.1.1 pycparser==3.12 tenacity==9.1.2 redis==8.1.0
  typer==0.29.2 pyyaml==6.0.3 opentelemetry-api==1.45.2 swagger-ui-bundle==1.1.0
  paho-mqtt==2.2.0
)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$work/wheels" "${wheels[@]}"
mkdir "$work/site"
for whl in "$work"/wheels/*.whl; do unzip -q -o "$whl" -d "$work/site"; done
(cd "$work/site/ray" && rm -rf jars rllib tune train data serve llm dashboard/client)
# /docs serves swagger-ui-bundle.js and swagger-ui.css only: not the source maps, ES builds
find "$work/site/swagger_ui_bundle" \( -name "*.map" -o -name "*-es-bundle*" \) -delete
find "$work/site" -name "__pycache__" -prune -exec rm -rf {} +
mkdir -p .gpu
echo "[bundle] packing $(du -sh "$work/site" | cut -f1) with xz -9 (a few minutes)" >&2
tar -C "$work/site" -cf - . | xz -9 -T0 > "$out.tmp"
mv "$out.tmp" "$out"
echo "[bundle] $out $(du -h "$out" | cut -f1)"
