#!/usr/bin/env bash
# Placeholder: the benchmarks of issue 2 (lead creation through the REST API against a bare
# Django insert view, bulk endpoint, leads list at 1M rows, SQLite and PostgreSQL) are not
# written yet. They will live here, with their figures in docs/benchmarks.md.
echo "make bench: no benchmarks yet (scripts/bench.sh is a placeholder)." >&2
exit 2
