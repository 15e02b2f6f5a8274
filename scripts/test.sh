#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the conformance suite on the memory
# backend and on PostgreSQL (our installed schema and genuine Message DB),
# the property tests and the doc tests.
#
# Set-up it does itself: starts the local PostgreSQL if it is down, fetches
# genuine Message DB 1.3.1 with `npm pack` (once, into target/), installs
# and starts PgBouncer on 127.0.0.1 in transaction mode (scripts/pgbouncer.sh;
# stopped at the end), gives the run a unique database prefix and drops the
# run's databases at the end.
# DATABASE_URL may point elsewhere: a server role that may create databases.
set -euo pipefail
cd "$(dirname "$0")/.."

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export MESSAGE_STORE_TEST_DB_PREFIX="ms_test_$(date +%s)_$$"

say() { echo "scripts/test.sh: $*" >&2; }

# 1. PostgreSQL.
if ! pg_isready -q -d "$DATABASE_URL" 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    say "PostgreSQL is down; starting it"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  fi
  for _ in $(seq 1 30); do
    pg_isready -q -d "$DATABASE_URL" 2>/dev/null && break
    sleep 1
  done
fi
if ! pg_isready -q -d "$DATABASE_URL" 2>/dev/null; then
  say "PostgreSQL at $DATABASE_URL is unreachable"
  [ "${CI:-}" = "true" ] && exit 1
fi

# 2. Genuine Message DB, installed per test run by its own install.sh.
mdb_dir=target/message-db
if [ ! -f "$mdb_dir/package/database/install.sh" ]; then
  say "fetching genuine Message DB (npm pack @eventide/message-db@1.3.1)"
  mkdir -p "$mdb_dir"
  (cd "$mdb_dir" && npm pack --silent @eventide/message-db@1.3.1 >/dev/null && tar xzf eventide-message-db-1.3.1.tgz)
fi
export MESSAGE_DB_INSTALL="$PWD/$mdb_dir/package/database/install.sh"

# 3. PgBouncer in transaction mode, for the fleet through a pooler.
# shellcheck source=scripts/pgbouncer.sh
. scripts/pgbouncer.sh
pgbouncer_start

# 4. Stop PgBouncer and drop this run's databases however the run ends.
log=$(mktemp)
cleanup() {
  pgbouncer_stop
  rm -f "$log"
  psql "$DATABASE_URL" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE '${MESSAGE_STORE_TEST_DB_PREFIX}%'" 2>/dev/null |
    while read -r db; do psql "$DATABASE_URL" -qc "DROP DATABASE \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

# 5. The tests.
# Every test binary runs even after one fails, and a failure prints its
# message without a backtrace, so the summary below stays short.
export RUST_BACKTRACE=0
status=0
{
  units=0 docs=0
  cargo test --workspace --all-targets --no-fail-fast || units=$?
  cargo test --workspace --doc --no-fail-fast || docs=$?
  [ "$units" -eq 0 ] && [ "$docs" -eq 0 ]
} 2>&1 | tee "$log" || status=$?

# What failed, once more at the end: each failing test's panic and its message.
if [ "$status" -ne 0 ]; then
  echo "== failures"
  grep -A6 "panicked at" "$log" | grep -v -E "^note: run with|^--$" | head -n 200 || true
fi

# One closing line that totals every test binary's result.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "all tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
