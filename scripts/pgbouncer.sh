#!/usr/bin/env bash
# Sourced by scripts/test.sh: starts PgBouncer in transaction pooling mode on
# 127.0.0.1, in front of the test server, for backend-postgres/tests/pgbouncer.rs,
# and stops it when the sourcing script exits (pgbouncer_stop).
#
# Installs Debian's pgbouncer package when it is missing (apt-get update
# once, then apt-get install -y pgbouncer; the package's own service is not
# used). Sets MESSAGE_STORE_PGBOUNCER_PORT when it is listening. Its files,
# its log included, are in a temporary directory that pgbouncer_stop removes.

pgbouncer_bin() {
  command -v pgbouncer 2>/dev/null || { [ -x /usr/sbin/pgbouncer ] && echo /usr/sbin/pgbouncer; }
}

pgbouncer_start() {
  local bin dir port host server_port
  bin=$(pgbouncer_bin || true)
  if [ -z "$bin" ] && command -v apt-get >/dev/null; then
    say "installing pgbouncer (apt-get)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer; } >/dev/null 2>&1 || true
    bin=$(pgbouncer_bin || true)
  fi
  if [ -z "$bin" ]; then
    say "pgbouncer is not installed and could not be; the PgBouncer tests will say so"
    return 0
  fi
  # The test server, as PgBouncer reaches it (127.0.0.1 when on a socket).
  read -r host server_port < <(psql "$DATABASE_URL" -AtqF ' ' -c \
    "SELECT coalesce(host(inet_server_addr()), '127.0.0.1'), coalesce(inet_server_port(), 5432)" 2>/dev/null || echo "127.0.0.1 5432")
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  dir=$(mktemp -d)
  PGBOUNCER_DIR="$dir"
  # Each test database gets a small pool whose idle server connections
  # close within seconds, so the rest of the suite keeps its connection slots.
  cat > "$dir/pgbouncer.ini" <<INI
[databases]
* = host=$host port=$server_port connect_query='SET search_path = message_store, public'

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
ignore_startup_parameters = extra_float_digits, options
max_client_conn = 500
default_pool_size = 8
max_db_connections = 8
server_idle_timeout = 2
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
  printf '"postgres" ""\n"message_store" ""\n' > "$dir/userlist.txt"
  local as_user=()
  if [ "$(id -u)" = 0 ]; then
    # PgBouncer refuses to run as root.
    chown -R postgres "$dir"
    as_user=(-u postgres)
  fi
  if ! "$bin" -d "${as_user[@]}" "$dir/pgbouncer.ini"; then
    say "pgbouncer failed to start: $(tail -n 5 "$dir/pgbouncer.log" 2>/dev/null)"
    return 0
  fi
  for _ in $(seq 1 50); do
    if pg_isready -q -h 127.0.0.1 -p "$port" 2>/dev/null; then
      export MESSAGE_STORE_PGBOUNCER_PORT="$port"
      say "PgBouncer (transaction mode) on 127.0.0.1:$port"
      return 0
    fi
    sleep 0.1
  done
  say "pgbouncer did not come up: $(tail -n 5 "$dir/pgbouncer.log" 2>/dev/null)"
}

pgbouncer_stop() {
  [ -n "${PGBOUNCER_DIR:-}" ] || return 0
  if [ -f "$PGBOUNCER_DIR/pgbouncer.pid" ]; then
    kill "$(cat "$PGBOUNCER_DIR/pgbouncer.pid")" 2>/dev/null || true
    for _ in $(seq 1 50); do
      [ -f "$PGBOUNCER_DIR/pgbouncer.pid" ] || break
      sleep 0.1
    done
  fi
  rm -rf "$PGBOUNCER_DIR"
}
