#!/usr/bin/env bash
# The accounts service as a fleet of three worker processes on PostgreSQL:
# starts them, sends 300 commands, kills one worker with SIGKILL, sends 300
# more, and checks that the projection ends up complete; then stops the two
# others with SIGTERM (they shut down gracefully) and drops the database.
#
# bash examples/accounts_fleet.sh   (DATABASE_URL: a role that may create
# databases; default postgres://postgres@127.0.0.1:5432/postgres)
set -euo pipefail
cd "$(dirname "$0")/.."

admin="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
db="ms_fleet_demo_$$"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

cargo build -q -p message-store-examples --bin install --bin accounts_fleet
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/debug"

psql "$admin" -qc "CREATE DATABASE $db"
db_admin="${admin%/*}/$db"
DATABASE_URL="$db_admin" "$bin/install" --extras
psql "$db_admin" -qc "CREATE TABLE account_balance (account text PRIMARY KEY, balance bigint NOT NULL, last_position bigint NOT NULL);
                      GRANT SELECT, INSERT, UPDATE ON account_balance TO message_store"
export DATABASE_URL="${db_admin/\/\/postgres@/\/\/message_store@}"

for n in 1 2 3; do
  "$bin/accounts_fleet" worker --instance "worker-$n" &
  pids+=("$!")
done
"$bin/accounts_fleet" send --from 0 --to 300
sleep 1
kill -9 "${pids[2]}"
echo "worker-3 killed (SIGKILL): its buckets move once its 2 s lease runs out"
"$bin/accounts_fleet" send --from 300 --to 600
"$bin/accounts_fleet" check --to 600
kill -TERM "${pids[0]}" "${pids[1]}"
wait "${pids[0]}" "${pids[1]}"
pids=()
echo "the projection is complete with one worker killed"
