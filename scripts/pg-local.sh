#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A PostgreSQL server of your own, to try the shared ledger in one command (and the one the tests
# start): scripts/pg-local.sh start|stop|url|status [DIR]
#   start   initdb into DIR (once), start the server on 127.0.0.1 and a free port, create the
#           database `iotfleet`, print its URL (iotfleet --ledger URL)
#   url     print the URL of the running server
#   stop    stop it (the data stays in DIR; start again to go on, on the same port if free)
#   status  exit 0 when it runs
# DIR defaults to $IOTFLEET_PG_DIR or ${XDG_DATA_HOME:-~/.local/share}/iotfleet/pg.
# Run as root (CI, containers), the server runs as the `postgres` user the package created: the
# server refuses to run as root. It trusts local connections: it is for trying out and tests, not
# a factory's server (docs/ledger-postgresql.md says how to set that one up).
set -euo pipefail

usage() {
  echo "usage: $0 start|stop|url|status [DIR]" >&2
  exit 2
}
[ $# -ge 1 ] || usage
command=$1
dir=$(realpath -m "${2:-${IOTFLEET_PG_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/iotfleet/pg}}")
cd / # the server's user may not be able to enter the caller's directory

bindir=$(pg_config --bindir 2>/dev/null || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/pg_ctl" ]; then
  echo "pg-local: no PostgreSQL server found: scripts/setup.sh installs it (postgresql-15)" >&2
  exit 1
fi

as_server=()
if [ "$(id -u)" -eq 0 ]; then
  if ! id postgres >/dev/null 2>&1; then
    echo "pg-local: running as root, but there is no postgres user to run the server as" >&2
    exit 1
  fi
  as_server=(runuser -u postgres --)
fi

url_of() { echo "postgresql://iotfleet@127.0.0.1:$(cat "$dir/port")/iotfleet"; }
running() { [ -f "$dir/port" ] && "${as_server[@]}" "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; }

case $command in
start)
  if running; then
    url_of
    exit 0
  fi
  mkdir -p "$dir"
  chmod 700 "$dir"
  [ ${#as_server[@]} -eq 0 ] || chown postgres: "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    # --no-sync only where the data does not matter (tests set IOTFLEET_PG_NO_SYNC=1).
    sync_flag=()
    [ "${IOTFLEET_PG_NO_SYNC:-0}" = 1 ] && sync_flag=(--no-sync)
    "${as_server[@]}" "$bindir/initdb" -D "$dir/data" -U iotfleet --auth=trust -E UTF8 \
      --locale=C "${sync_flag[@]}" >"$dir/initdb.log" 2>&1 ||
      {
        cat "$dir/initdb.log" >&2
        exit 1
      }
  fi
  # The port of the last start when it is still free (the URL stays the same), else a free one.
  port=$(python3 - "$dir/port" <<'PY'
import socket, sys
try:
    wanted = int(open(sys.argv[1]).read())
except (OSError, ValueError):
    wanted = 0
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is free
try:
    s.bind(("127.0.0.1", wanted))
except OSError:
    s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
PY
)
  echo "$port" >"$dir/port"
  options="-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200"
  [ "${IOTFLEET_PG_NO_SYNC:-0}" = 1 ] && options+=" -c fsync=off -c synchronous_commit=off"
  if ! "${as_server[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$options" \
    -w -t 60 start >/dev/null; then
    tail -n 20 "$dir/server.log" >&2
    exit 1
  fi
  if ! "${as_server[@]}" "$bindir/psql" -h 127.0.0.1 -p "$port" -U iotfleet -d postgres -tAq \
    -c "SELECT 1 FROM pg_database WHERE datname = 'iotfleet'" | grep -q 1; then
    "${as_server[@]}" "$bindir/createdb" -h 127.0.0.1 -p "$port" -U iotfleet iotfleet
  fi
  url_of
  ;;
url)
  running || {
    echo "pg-local: no server running in $dir: $0 start" >&2
    exit 1
  }
  url_of
  ;;
stop)
  if running; then
    "${as_server[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
  fi
  ;;
status)
  running
  ;;
*) usage ;;
esac
