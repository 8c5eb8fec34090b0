#!/usr/bin/env bash
# A throwaway PostgreSQL 15 on loopback for the demo and benchmarks.
#   scripts/pg.sh start DIR PORT   (prints the URL)     scripts/pg.sh stop DIR
set -euo pipefail
BIN=/usr/lib/postgresql/15/bin
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case "$1" in
  start)
    dir=$2 port=$3
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
      chown postgres:postgres "$dir"
      # mktemp -d makes 0700 folders: the postgres user must be able to reach its data dir.
      chmod a+x "$(dirname "$dir")"
    fi
    if [ ! -f "$dir/PG_VERSION" ]; then
      as_pg "$BIN/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 >/dev/null
    fi
    as_pg "$BIN/pg_ctl" -D "$dir" -w -l "$dir/log" -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off" start >/dev/null
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    as_pg "$BIN/pg_ctl" -D "$2" -m fast -w stop >/dev/null || true
    ;;
esac
