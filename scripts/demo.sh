#!/usr/bin/env bash
# The main job on embedded defaults (SQLite, CPU vision backend, no GPU, no download):
# installs into ./.venv, then runs `xlwatch demo`. Extra arguments go to the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_USAGE_STATS_ENABLED=0
exec .venv/bin/xlwatch demo "$@"
