#!/usr/bin/env bash
# The full overload run of issue 6: one dsn-node (GOMAXPROCS=1, SIPp gets
# the other CPU), its capacity measured with SIPp, then SIPp at 10x that
# capacity for 30 s; prints the figures table of README.md and the node's
# state every second. CI runs the short version (deploy/e2e TestOverload).
#
#   bench/overload/run.sh                          # -max-transactions 16384, as in CI
#   MAX_TRANSACTIONS=65536 bench/overload/run.sh   # the node's default
#   PROFILE=/tmp/ovl bench/overload/run.sh         # also heap/goroutine profiles (node with -pprof)
set -euo pipefail
cd "$(dirname "$0")/../.."
args=(-overload -duration="${DURATION:-30s}" -multiple="${MULTIPLE:-10}" -capacity="${CAPACITY:-3s}"
  -max-transactions="${MAX_TRANSACTIONS:-16384}" -max-inflight="${MAX_INFLIGHT:-500}" -recovery="${RECOVERY:-60s}")
if [[ -n "${PROFILE:-}" ]]; then
  mkdir -p "$PROFILE"
  args+=(-profile="$(cd "$PROFILE" && pwd)")
fi
go test -count=1 -timeout 15m -v -run TestOverloadBench ./bench/overload -args "${args[@]}" 2>&1 |
  grep -vE '^\s+\{"level"'
