#!/usr/bin/env bash
# Runs the benchmarks: every workload on the memory store and on PostgreSQL,
# each PostgreSQL figure next to its ceiling (pgbench calling Message DB's
# functions on the same database, in the same run) or its genuine Message DB
# reference. Creates its own databases and drops them.
#
# bash scripts/bench.sh [--runs N] [--memory-only]
set -euo pipefail
cd "$(dirname "$0")/.."

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if ! pg_isready -q -d "$DATABASE_URL" 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  for _ in $(seq 1 30); do pg_isready -q -d "$DATABASE_URL" 2>/dev/null && break; sleep 1; done
fi
command -v pgbench >/dev/null || { echo "scripts/bench.sh: pgbench is needed (postgresql-contrib / postgresql-client)" >&2; exit 1; }

mdb_dir=target/message-db
if [ ! -f "$mdb_dir/package/database/install.sh" ]; then
  mkdir -p "$mdb_dir"
  (cd "$mdb_dir" && npm pack --silent @eventide/message-db@1.3.1 >/dev/null && tar xzf eventide-message-db-1.3.1.tgz)
fi
export MESSAGE_DB_INSTALL="$PWD/$mdb_dir/package/database/install.sh"

# The benchmark drops its databases when it ends; this catches an interrupted run.
trap 'psql "$DATABASE_URL" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE '"'"'ms_bench_%'"'"'" 2>/dev/null |
  while read -r db; do psql "$DATABASE_URL" -qc "DROP DATABASE \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true; done' EXIT

cargo run --release -q -p message-store-examples --bin bench -- "$@"
