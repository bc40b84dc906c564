#!/usr/bin/env bash
# The README's first command: install edgewatch into .venv with what the demo needs, then run it.
# Arguments are passed to `edgewatch demo` (e.g. --json, --out DIR, --frames N).
set -euo pipefail
cd "$(dirname "$0")/.."
# "export" named explicitly so setup-env.sh pins the CPU build of torch before anything pulls CUDA
scripts/setup-env.sh "export,demo"
exec .venv/bin/edgewatch demo "$@"
