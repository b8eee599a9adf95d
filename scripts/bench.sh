#!/usr/bin/env bash
# `make bench`: Voronka's benchmarks (see docs/benchmarks.md for what is measured and the latest figures).
#
#   scripts/bench.sh                  full run: SQLite and PostgreSQL, 0 / 100k / 1M leads (rewrites docs/benchmarks.md)
#   scripts/bench.sh --quick          smoke run: 0 / 10k / 100k leads, 5 s per figure (bench/results/quick.md)
#   scripts/bench.sh --db sqlite      one database: sqlite | postgres | both
#   scripts/bench.sh --help           every option (bench/run.py)
#
# Extra options also come from $BENCH_ARGS (e.g. make bench BENCH_ARGS=--quick).
# Needs wrk (Debian package "wrk"; installed here with apt-get when missing and running as root)
# and, for PostgreSQL, the server binaries (scripts/with-postgres.sh starts a throwaway cluster).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || { echo "!! $PY not found: run 'make install' first" >&2; exit 1; }

if ! command -v wrk >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing wrk (apt-get)" >&2
        apt-get install -y -q wrk >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }
    else
        echo "!! wrk is needed: apt-get install wrk (Debian/Ubuntu) or build it from https://github.com/wg/wrk" >&2
        exit 1
    fi
fi

# shellcheck disable=SC2086 # BENCH_ARGS is a list of words on purpose
exec "$PY" "$ROOT/bench/run.py" ${BENCH_ARGS:-} "$@"
