#!/usr/bin/env bash
# `make run`: migrate, load the demo once, collect static files, then run the web server and
# the worker together. Ctrl-C (or SIGTERM) stops both; if either dies, the other is stopped too.
#
# Environment (besides the VORONKA_* settings):
#   BIND=127.0.0.1:8000   address of the web server
#   WEB_WORKERS=2         gunicorn worker processes
#   VORONKA_DEBUG=1       Django's runserver (auto-reload) instead of gunicorn
#   VORONKA_SMTPD=127.0.0.1:2525  also run the intake SMTP endpoint (voronka mail-smtpd) there
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BIN="$ROOT/.venv/bin"
VORONKA="$BIN/voronka"
BIND=${BIND:-127.0.0.1:8000}
WEB_WORKERS=${WEB_WORKERS:-2}
VAR_DIR=${VORONKA_VAR_DIR:-$ROOT/var}
export DJANGO_SETTINGS_MODULE=voronka.settings
export PYTHONUNBUFFERED=1

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

say "migrating the database"
"$VORONKA" migrate --noinput -v 0

if "$VORONKA" help demo >/dev/null 2>&1; then
    say "demo data (loaded once; later runs leave it as it is)"
    "$VORONKA" demo
else
    say "the 'demo' command is not available yet: no demo data (create a login with: $VORONKA createsuperuser)"
fi

say "collecting static files"
"$VORONKA" collectstatic --noinput -v 0

is_debug() {
    case "${VORONKA_DEBUG:-}" in 1 | true | yes | on | TRUE | True) return 0 ;; esac
    return 1
}

pids=()
stopping=0
stop_all() {
    [ "$stopping" = 1 ] && return
    stopping=1
    trap - INT TERM
    for pid in "${pids[@]}"; do
        # the whole process group: runserver's auto-reloader child, gunicorn's workers
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
    # give them 15 s to finish the request / task in hand, then kill what is left
    (
        sleep 15
        for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
    ) &
    local killer=$!
    wait "${pids[@]}" 2>/dev/null || true
    kill "$killer" 2>/dev/null || true
    wait 2>/dev/null || true
}
# Ctrl-C or SIGTERM is a requested stop: exit 0 once both have stopped.
trap 'echo; say "stopping the web server and the worker"; stop_all; say "stopped"; exit 0' INT TERM
trap 'stop_all' EXIT
# Each server runs in its own session (setsid), so Ctrl-C reaches only this script,
# which then sends each of them one SIGTERM: a graceful stop, not a double signal.

if is_debug; then
    say "starting runserver on http://$BIND (VORONKA_DEBUG=1)"
    setsid "$VORONKA" runserver "$BIND" &
else
    say "starting gunicorn ($WEB_WORKERS workers) on http://$BIND"
    setsid "$BIN/gunicorn" voronka.wsgi:application --bind "$BIND" --workers "$WEB_WORKERS" \
        --access-logfile - --graceful-timeout 10 --no-control-socket &
fi
pids+=($!)

say "starting the worker (outbox sweep + background tasks)"
setsid "$VORONKA" worker &
pids+=($!)

if [ -n "${VORONKA_SMTPD:-}" ]; then
    say "starting the intake SMTP endpoint on $VORONKA_SMTPD"
    setsid "$VORONKA" mail-smtpd &
    pids+=($!)
fi

# Wait until the server answers, then show where and how to log in.
host=${BIND%:*}
port=${BIND##*:}
for _ in $(seq 1 150); do
    if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
        break
    fi
    sleep 0.2
done
echo
say "Voronka is running: http://$BIND/   (admin: http://$BIND/admin/)"
if [ -s "$VAR_DIR/demo-login.txt" ]; then
    cat "$VAR_DIR/demo-login.txt"
else
    echo "    (no $VAR_DIR/demo-login.txt: log in with a user you created)"
fi
say "Ctrl-C stops the web server and the worker"
echo

# If either process exits, stop the other and pass on its exit code.
set +e
wait -n "${pids[@]}"
rc=$?
set -e
if [ "$stopping" = 0 ]; then
    echo "a process exited (code $rc): stopping the rest" >&2
fi
stop_all
exit "$rc"
