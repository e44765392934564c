#!/usr/bin/env bash
# The full calls benchmark (issue 3): 3 dsn-node processes and SIPp on
# loopback; 10 s rate steps doubling from 100/s, then 3 bisections;
# 5 x 200 calls per path for the setup latency; 10 s calls at 50/s for
# the per-call cost and the way back. Prints each step and the results
# table (Markdown) that bench/calls/README.md shows; the whole test log
# goes to $LOG. About 20 minutes on 2 cores. Extra arguments go to the
# test, e.g. -step=5s.
set -euo pipefail
cd "$(dirname "$0")/../.."
log=${LOG:-$(mktemp -t bench-calls.XXXXXX.log)}
echo "full log: $log"
status=0
go test -count=1 -timeout 60m -v -run 'TestCalls$' ./bench/calls -args \
  -step="${STEP:-10s}" -start=100 -factor=2 -max="${MAX:-102400}" -refine=3 \
  -latency-calls=200 -latency-rate=50 -latency-rounds=5 \
  -long-rate=50 -long-pause=10s -long-steady=10s -register-users=20000 "$@" >"$log" 2>&1 || status=$?
grep -E 'calls_test.go|^\s+\||^(ok|FAIL|---|PASS)' "$log" || true
if [ "$status" != 0 ]; then
  echo "--- failed; the end of $log:"
  tail -40 "$log"
fi
exit "$status"
