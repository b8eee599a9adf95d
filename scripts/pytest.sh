#!/usr/bin/env bash
# pytest with a label; exit 5 ("no tests collected") is reported as the failure it is.
#   scripts/pytest.sh LABEL [PYTEST ARGS...]
set -uo pipefail
label=$1
shift
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/.venv/bin/pytest" "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "!! pytest collected no tests on $label: treating that as a failure" >&2
elif [ "$rc" -ne 0 ]; then
    echo "!! pytest failed on $label (exit $rc)" >&2
fi
exit "$rc"
