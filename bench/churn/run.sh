#!/usr/bin/env bash
# The full churn run: 8 dsn-node processes + BIND9 on loopback, 10,000 AORs
# registered by SIPp, 30 calls/s, an event every 15-30 s for 3.5 minutes
# (kill -9 or SIGTERM, sometimes two ring neighbours, each restarted under
# its name and addresses), then the final check of every AOR. Prints the
# report (README.md explains it). About 7 minutes.
#   AORS=10000 RATE=30 CHURN=210s SEED=1 bench/churn/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
args=(-full)
[[ -n "${AORS:-}" ]] && args+=(-aors "$AORS")
[[ -n "${RATE:-}" ]] && args+=(-rate "$RATE")
[[ -n "${CHURN:-}" ]] && args+=(-churn "$CHURN")
[[ -n "${SEED:-}" ]] && args+=(-seed "$SEED")
go test -count=1 -timeout 30m -v -run '^TestChurn$' ./bench/churn -args "${args[@]}" 2>&1 |
  grep -vE '^\s*\{' | grep -vE 'fleet.go:[0-9]+: --- log of'
