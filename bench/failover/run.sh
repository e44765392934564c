#!/usr/bin/env bash
# The full failover benchmark: 10 kill -9 trials on a 5-node fleet with a
# real BIND9, then a 5-minute quiet run. Prints min / median / max.
set -euo pipefail
cd "$(dirname "$0")/../.."
go test -count=1 -timeout 30m -v ./bench/failover -args -trials="${TRIALS:-10}" -quiet="${QUIET:-5m}" 2>&1 |
  grep -E 'trial|time until|quiet run|_test.go|dns.go|fleet.go:[0-9]+: [^-]|^(ok|FAIL|---)'
