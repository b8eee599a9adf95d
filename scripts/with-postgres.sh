#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL cluster.
#
#   scripts/with-postgres.sh pytest -x
#
# Creates a cluster in a temporary directory (initdb), starts it on 127.0.0.1 on a free
# port with its socket inside that directory, creates the database "voronka", exports
#   VORONKA_DATABASE_URL=postgresql://postgres@127.0.0.1:PORT/voronka
# runs the command, then stops the cluster and deletes the directory whatever happens.
#
# initdb refuses to run as root: as root the server runs as the "postgres" user (via runuser).
# Binaries: $PG_BINDIR if set, else the newest /usr/lib/postgresql/*/bin, else initdb on PATH.
# No binaries: a loud message and exit 0 (skip), except when CI=true or
# VORONKA_REQUIRE_POSTGRES=1, where it is a failure (exit 3).
set -euo pipefail

log() { printf '[with-postgres] %s\n' "$*" >&2; }

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

find_bindir() {
    if [ -n "${PG_BINDIR:-}" ]; then
        echo "$PG_BINDIR"
        return
    fi
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4,4 -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return
        fi
    done
    local initdb
    initdb=$(command -v initdb 2>/dev/null || true)
    if [ -n "$initdb" ]; then
        # /usr/local/bin/initdb may be a symlink into the real bin directory
        dir=$(dirname "$(readlink -f "$initdb")")
        if [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return
        fi
        if command -v pg_ctl >/dev/null 2>&1; then
            dirname "$(readlink -f "$(command -v pg_ctl)")"
            return
        fi
    fi
}

BINDIR=$(find_bindir)
if [ -z "$BINDIR" ] || [ ! -x "$BINDIR/initdb" ] || [ ! -x "$BINDIR/pg_ctl" ]; then
    cat >&2 <<'EOF'

################################################################################
##  PostgreSQL binaries (initdb, pg_ctl) not found: the PostgreSQL test run    ##
##  did NOT happen. Install them (Debian: apt-get install postgresql) or set   ##
##  PG_BINDIR to the directory that holds initdb and pg_ctl.                   ##
################################################################################

EOF
    if [ "${CI:-}" = "true" ] || [ "${VORONKA_REQUIRE_POSTGRES:-}" = "1" ]; then
        log "CI=true: a PostgreSQL run that did not happen is a failure."
        exit 3
    fi
    log "skipping the PostgreSQL run (not in CI)."
    exit 0
fi

# As root, run the server as an unprivileged user.
AS=()
if [ "$(id -u)" -eq 0 ]; then
    PG_USER=${PG_OS_USER:-postgres}
    if ! id "$PG_USER" >/dev/null 2>&1; then
        log "running as root but there is no '$PG_USER' user to run PostgreSQL as; set PG_OS_USER."
        exit 3
    fi
    AS=(runuser -u "$PG_USER" --)
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/voronka-pg.XXXXXX")
DATA="$TMP/data"
SOCK="$TMP/sock"
mkdir -p "$SOCK"
if [ "${#AS[@]}" -gt 0 ]; then
    chown -R "$PG_USER" "$TMP"
fi
STARTED=0

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ "$STARTED" = 1 ]; then
        "${AS[@]}" "$BINDIR/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

t0=$(date +%s%N)
"${AS[@]}" "$BINDIR/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync \
    >"$TMP/initdb.log" 2>&1 || { cat "$TMP/initdb.log" >&2; log "initdb failed"; exit 3; }

PORT=
for _ in 1 2 3 4 5; do
    PORT=$(free_port)
    # Durability is pointless for a throwaway cluster: turn it off for speed.
    if "${AS[@]}" "$BINDIR/pg_ctl" -D "$DATA" -l "$TMP/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $SOCK -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100" \
        start >/dev/null; then
        STARTED=1
        break
    fi
    log "could not start on port $PORT, retrying"
    tail -n 5 "$TMP/server.log" >&2 || true
done
if [ "$STARTED" != 1 ]; then
    log "PostgreSQL did not start"
    cat "$TMP/server.log" >&2 || true
    exit 3
fi

if [ -x "$BINDIR/createdb" ]; then
    "${AS[@]}" "$BINDIR/createdb" -h "$SOCK" -p "$PORT" -U postgres voronka
else
    "${AS[@]}" "$BINDIR/psql" -h "$SOCK" -p "$PORT" -U postgres -d postgres -q -c "CREATE DATABASE voronka"
fi
VERSION=$("$BINDIR/postgres" --version 2>/dev/null || echo "PostgreSQL")
log "$VERSION on 127.0.0.1:$PORT (data in $TMP), ready in $(( ($(date +%s%N) - t0) / 1000000 )) ms"

export VORONKA_DATABASE_URL="postgresql://postgres@127.0.0.1:$PORT/voronka"
set +e
"$@"
rc=$?
set -e
exit "$rc"
