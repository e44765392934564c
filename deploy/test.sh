#!/usr/bin/env bash
# Runs every test of the repository on a fresh machine: installs what the
# integration tests need (BIND9, dig, SIPp) when missing, then go vet and
# go test. Usage: deploy/test.sh [extra go test flags]
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v named >/dev/null 2>&1 || [ -x /usr/sbin/named ] || need+=(bind9)
command -v dig >/dev/null 2>&1 || need+=(bind9-dnsutils)
command -v tsig-keygen >/dev/null 2>&1 || need+=(bind9-utils)
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v kamailio >/dev/null 2>&1 || [ -x /usr/sbin/kamailio ] || need+=(kamailio)   # bench/kamailio (issue 7)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "test.sh: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "test.sh: missing ${need[*]}; install them (sudo apt-get install ${need[*]}) or tests that need them will be skipped" >&2
  fi
fi
# named must not be running as a system service on the test ports.
go mod download
go vet ./...
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt needed: $unformatted" >&2; exit 1; fi
# -p 1: the multi-process suites (fleets of dsn-node, SIPp at 100 calls/s,
# BIND9) must not starve each other on a 2-core machine.
go test -count=1 -p 1 -timeout 20m "$@" ./...
