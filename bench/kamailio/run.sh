#!/usr/bin/env bash
# The full side-by-side benchmark against Kamailio (issue 7): Kamailio 5.x
# (in-memory registrar + stateful record-routing proxy, 4 UDP workers,
# -m 2048) and dsn-node on loopback with the same SIPp scenarios, in one
# run: calls/s at 0 failures (SIPp ceiling, Kamailio, one dsn-node; two
# rounds taking turns), setup latency and CPU per call at 200 calls/s,
# the fleet path on 3 and 5 nodes in proxy and redirect modes, REGISTER/s
# (SIPp stub, Kamailio usrloc, one dsn-node, a 3-node ring with replicas
# 3), bytes per contact at 1,000,000 contacts, and CPU profiles of a
# dsn-node under calls and REGISTERs (pprof, and perf when installed).
# Prints the steps, the results table (Markdown, as in README.md) and the
# top of the profiles; the whole test log goes to $LOG, the profiles to
# $PROFILES. About an hour on 2 cores. Extra arguments go to the test,
# e.g. -contacts=200000.
set -euo pipefail
cd "$(dirname "$0")/../.."

need() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }
install=()
need kamailio || install+=(kamailio)
need sipp || install+=(sip-tester)
if [ ${#install[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "installing ${install[*]}"
  $sudo apt-get update
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y "${install[@]}"
fi

log=${LOG:-$(mktemp -t bench-kamailio.XXXXXX.log)}
prof=${PROFILES:-$(mktemp -d -t bench-kamailio-prof.XXXXXX)}
echo "full log: $log; profiles: $prof; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
go test -count=1 -timeout 240m -v -run 'TestKamailio$' ./bench/kamailio -args \
  -step=10s -start=400 -factor=2 -max=12800 -register-max=51200 -refine=2 -rounds=2 -empty-window -drain-max=120s \
  -fixed-rate=200 -fixed-calls=2000 -fixed-rounds=2 -sustain=40s -register-users=20000 \
  -fleet=3,5 -modes=proxy,redirect \
  -contacts=1000000 -contacts-rate=2000 -kamailio-contacts-rate=4000 \
  -profile-dir="$prof" "$@" >"$log" 2>&1 || status=$?
grep -E 'kamailio_test.go|climb.go|^\s+\||^(ok|FAIL|---|PASS)' "$log" || true
for p in calls register; do
  if [ -f "$prof/$p.cpu" ]; then
    echo "--- pprof, dsn-node under $p (top 25 by flat CPU, then by cumulative):"
    go tool pprof -top -nodecount=25 "$prof/$p.cpu" 2>/dev/null | sed -n '4,31p'
    go tool pprof -top -cum -nodecount=25 "$prof/$p.cpu" 2>/dev/null | sed -n '6,31p'
  fi
  if [ -f "$prof/$p.perf" ]; then
    echo "--- perf, dsn-node under $p (by object, then top symbols):"
    perf report -i "$prof/$p.perf" --stdio --no-children -g none --sort dso 2>/dev/null | grep '%' | head -5
    perf report -i "$prof/$p.perf" --stdio --no-children -g none --sort symbol 2>/dev/null | grep '%' | head -25
  fi
done
if [ -f "$prof/contacts.heap" ]; then
  echo "--- live heap of the dsn-node holding the contacts (top 15):"
  go tool pprof -sample_index=inuse_space -top -nodecount=15 "$prof/contacts.heap" 2>/dev/null | sed -n '4,21p'
fi
if [ "$status" != 0 ]; then
  echo "--- failed; the end of $log:"
  tail -40 "$log"
fi
exit "$status"
