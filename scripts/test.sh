#!/usr/bin/env bash
# Install everything the tests need on a fresh machine, then run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v mosquitto >/dev/null || [[ -x /usr/sbin/mosquitto ]] || need_apt+=(mosquitto)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
command -v openssl >/dev/null || need_apt+=(openssl)  # a STARTTLS certificate for the SMTP test server
command -v arecord >/dev/null || need_apt+=(alsa-utils)  # the soundcard reader's capture tool
if ((${#need_apt[@]})); then
  echo "installing system packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

scripts/setup-env.sh "export,test,all,demo"
.venv/bin/ruff check edge export bench tests benchmarks
.venv/bin/python -m mypy  # files and strictness per package: [tool.mypy] in pyproject.toml
# pytest exits 5 when it collects no test: treat that as the failure it is.
exec .venv/bin/python -m pytest -q "$@"
