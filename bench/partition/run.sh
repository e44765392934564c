#!/usr/bin/env bash
# The long partition run: a 6-node fleet in network namespaces, one
# baseline cycle (one node cut off) and several half/half cut/heal cycles
# with cuts from 10 s to 2 minutes, more AORs than CI. Needs root and
# iproute2 (deploy/test.sh installs it). Prints the per-cycle table.
#   HOLDS=0,10s,30s,60s,90s,10s,120s BEFORE=300 DURING=100 bench/partition/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
go test -count=1 -timeout 60m -v -run TestPartitionHeal ./bench/partition/ -args \
  -holds="${HOLDS:-0,10s,30s,60s,90s,10s,120s}" -before="${BEFORE:-300}" -during="${DURING:-100}" -nodes="${NODES:-6}" 2>&1 |
  grep -E 'partition_test.go|netns.go|partition.go|fleet.go:[0-9]+: [^-]|^(ok|FAIL|---)'
