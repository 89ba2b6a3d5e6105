#!/usr/bin/env bash
# Set up a virtualenv with recrm, every plugin under plugins/ and every example
# package under examples/, then run the whole suite on SQLite and PostgreSQL.
# Extra arguments go to pytest (e.g. --recrm-backends=sqlite, -k import).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
pkgs=(-e ".[api,test,dev]")
for d in plugins/*/ examples/*/; do
  if [ -f "${d}pyproject.toml" ]; then pkgs+=(-e "${d%/}"); fi
done
.venv/bin/python -m pip install -q --disable-pip-version-check "${pkgs[@]}"
exec .venv/bin/python -m pytest "$@"
