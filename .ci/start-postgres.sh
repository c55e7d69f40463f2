# Sourced by .ci/run: start a throwaway PostgreSQL on 127.0.0.1 and export INSPECTION_TEST_PG_URL for the tests.
#
# Idempotent: if INSPECTION_TEST_PG_URL already answers, nothing is started. The cluster lives in a fresh temp
# directory, listens on a free port (a busy 5432 is no problem), and runs as the `postgres` user when CI runs
# as root (PostgreSQL refuses to run as root). It is stopped when the sourcing shell exits.

_inspection_pg_start() {
  local bindir port dir url run
  if [ -n "${INSPECTION_TEST_PG_URL:-}" ] && python - "$INSPECTION_TEST_PG_URL" <<'PY' >/dev/null 2>&1
import sys
import sqlalchemy
sqlalchemy.create_engine(sys.argv[1]).connect().close()
PY
  then
    echo "start-postgres: reusing $INSPECTION_TEST_PG_URL"
    return 0
  fi
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    bindir=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")
  fi
  if [ ! -x "$bindir/initdb" ]; then
    echo "start-postgres: no PostgreSQL binaries found (install the 'postgresql' package); postgres tests will skip" >&2
    return 0
  fi
  dir=$(mktemp -d /tmp/inspection-pg.XXXXXX)
  run=()
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$dir"
    run=(runuser -u postgres --)
  fi
  port=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  "${run[@]}" "$bindir/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; return 1; }
  "${run[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $port -k $dir -c fsync=off -c full_page_writes=off -c max_connections=200" start >/dev/null \
    || { cat "$dir/server.log" >&2; return 1; }
  "${run[@]}" "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres inspection_test
  url="postgresql+psycopg://postgres@127.0.0.1:$port/inspection_test"
  export INSPECTION_TEST_PG_URL="$url"
  export INSPECTION_TEST_PG_DIR="$dir"
  # shellcheck disable=SC2064
  trap "${run[*]} $bindir/pg_ctl -D $dir/data -m fast stop >/dev/null 2>&1 || true" EXIT
  echo "start-postgres: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') at $url"
}

_inspection_pg_start
