#!/usr/bin/env bash
# Dockerfile linter for tests/deploy: dockerfilelint from the npm registry into ./.tools
# (hadolint is not installable from the package registries these machines reach).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .tools/node_modules/.bin/dockerfilelint ] && command -v npm >/dev/null; then
  mkdir -p .tools
  (cd .tools && npm install --silent --no-audit --no-fund dockerfilelint@1.8.0 >/dev/null)
fi
