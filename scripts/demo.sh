#!/usr/bin/env bash
# Set up a virtualenv with recrm and every first-party plugin under plugins/, then
# build the demo company in ./recrm-demo.db and print its summary.
# Extra arguments go to `recrm demo` (e.g. --seed 7, --customers 500, --json).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
pkgs=(-e ".[api]")
for d in plugins/*/; do
  if [ -f "${d}pyproject.toml" ]; then pkgs+=(-e "${d%/}"); fi
done
.venv/bin/python -m pip install -q --disable-pip-version-check "${pkgs[@]}"
exec .venv/bin/recrm demo "$@"
