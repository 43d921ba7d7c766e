#!/usr/bin/env bash
# make bench: every benchmark in bench/README.md, figures to bench/results/<date>.json and a table.
# Environment: BENCH_SCALE (1), BENCH_BIG_SCALE (5), BENCH_QUICK=1 (short runs, no large data set),
# BENCH_DURATION (s per endpoint), BENCH_ONLY (hot,backfill,feed,finalize), BENCH_REUSE=1, BENCH_PG.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
if [ "$#" -gt 0 ]; then exec "$PY" bench/run.py "$@"; fi  # --help (or a refusal): before installing anything

if ! command -v wrk >/dev/null 2>&1; then
  echo "[bench] installing wrk (Debian package)"
  if [ "$(id -u)" = "0" ]; then
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
  else
    sudo apt-get install -y wrk >/dev/null 2>&1 || { sudo apt-get update >/dev/null && sudo apt-get install -y wrk >/dev/null; }
  fi
fi

exec "$PY" bench/run.py
