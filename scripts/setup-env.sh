#!/usr/bin/env bash
# Create .venv and install edgewatch with the extras given as arguments (e.g. export,test).
# torch is installed first, pinned to the CPU build, so nothing pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [[ ",$extras," == *",export,"* ]]; then
  # PyTorch's CPU index when it answers: PyPI's Linux x86_64 torch pulls several GB of CUDA
  # libraries. Where only PyPI is reachable, PyPI's build it is (asked once, not retried per file).
  cpu_index=https://download.pytorch.org/whl/cpu
  if .venv/bin/python -c "import urllib.request as r; r.urlopen('$cpu_index/torch/', timeout=5)" 2>/dev/null; then
    .venv/bin/python -m pip install -q "torch==2.13.0" --index-url "$cpu_index"
  else
    .venv/bin/python -m pip install -q "torch==2.13.0"
  fi
fi
.venv/bin/python -m pip install -q -e ".[${extras}]"
