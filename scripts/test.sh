#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the conformance suite on every
# backend, the property tests and the doc tests. Does its own set-up, and
# ends with one line that totals every test binary's result.
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT

status=0
{ cargo test --workspace --all-targets && cargo test --workspace --doc; } 2>&1 | tee "$log" || status=$?

# Sum the "test result:" lines into one closing line.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "all tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
