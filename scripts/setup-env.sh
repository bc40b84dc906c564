#!/usr/bin/env bash
# Create .venv and install edgewatch with the extras given as arguments (e.g. export,test).
# torch is installed first, pinned to the CPU build, so nothing pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [[ ",$extras," == *",export,"* ]]; then
  # PyTorch's CPU index first: PyPI's Linux x86_64 torch pulls several GB of CUDA libraries.
  # Where that index is unreachable (only PyPI allowed), PyPI's build is the fallback.
  .venv/bin/python -m pip install -q "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu \
    || .venv/bin/python -m pip install -q "torch==2.13.0"
fi
.venv/bin/python -m pip install -q -e ".[${extras}]"
