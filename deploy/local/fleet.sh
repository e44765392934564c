#!/usr/bin/env bash
# fleet.sh: run a local DSN fleet on loopback, for trying things out and for
# end-to-end tests.
#
#   deploy/local/fleet.sh start N [--bind]   start (or complete) an N-node fleet
#   deploy/local/fleet.sh stop               graceful leave of every node, then named
#   deploy/local/fleet.sh status             each node's /readyz and the ring
#
# Node i (1..N) is called sn<i> and listens on 127.0.0.<i>: SIP :5060 (UDP+TCP),
# cluster :7946, admin :8080. All nodes share a generated cluster key. With
# --bind a BIND9 named runs on 127.0.0.1:5353 (or the next free port) with a
# generated TSIG key (tsig-keygen), a zone for the domain and an e164.arpa
# zone, both updatable with that key; the nodes report to it.
#
# Everything lives under deploy/local/.run/: bin/ (binaries built with go
# build), nodes/ (pid, log), bind/ (named.conf, key, zones, log), the cluster
# key and fleet.env. start is idempotent: running nodes are kept, missing ones
# started, extra ones stopped. It exits non-zero with the log tail when a node
# is not ready within 30 s.
#
# Environment (defaults in brackets):
#   DSN_FLEET_DIR [deploy/local/.run]      state directory
#   DSN_FLEET_IP_PREFIX [127.0.0.]         node i gets PREFIX(START+i-1)
#   DSN_FLEET_IP_START [1]
#   DSN_FLEET_DOMAIN [dsn.local]           DSN SIP domain (and DNS zone)
#   DSN_FLEET_SIP_PORT [5060] DSN_FLEET_CLUSTER_PORT [7946] DSN_FLEET_ADMIN_PORT [8080]
#   DSN_FLEET_DNS_PORT [5353]              first port tried for named
#   DSN_FLEET_READY_TIMEOUT [30]           seconds a node has to become ready
#   DSN_FLEET_NO_BUILD [unset]             1: use the binaries already in bin/
#   DSN_FLEET_LOG_LEVEL [info]  DSN_FLEET_LOG_FORMAT [json]
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
RUN=${DSN_FLEET_DIR:-$SCRIPT_DIR/.run}
IP_PREFIX=${DSN_FLEET_IP_PREFIX:-127.0.0.}
IP_START=${DSN_FLEET_IP_START:-1}
DOMAIN=${DSN_FLEET_DOMAIN:-dsn.local}
SIP_PORT=${DSN_FLEET_SIP_PORT:-5060}
CLUSTER_PORT=${DSN_FLEET_CLUSTER_PORT:-7946}
ADMIN_PORT=${DSN_FLEET_ADMIN_PORT:-8080}
DNS_PORT_FIRST=${DSN_FLEET_DNS_PORT:-5353}
READY_TIMEOUT=${DSN_FLEET_READY_TIMEOUT:-30}
LOG_LEVEL=${DSN_FLEET_LOG_LEVEL:-info}
LOG_FORMAT=${DSN_FLEET_LOG_FORMAT:-json}
KEY_NAME=dsn-update
BIN=$RUN/bin
NODES=$RUN/nodes
BINDDIR=$RUN/bind

die() { echo "fleet: $*" >&2; exit 1; }
say() { echo "fleet: $*"; }

usage() {
  sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

node_ip() { echo "${IP_PREFIX}$((IP_START + $1 - 1))"; }
node_name() { echo "sn$1"; }

# alive PIDFILE NAME: the pid in PIDFILE runs a process whose command
# line mentions NAME (guards against a reused pid).
alive() {
  local pidfile=$1 name=$2 pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  local cmdline
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$name"* ]]
}

# running PIDFILE: the process in PIDFILE exists (just started: it may
# not have exec'd its program yet, so its command line is not checked).
running() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# port_busy IP PORT: something listens on IP:PORT (TCP or UDP), or on the
# wildcard address.
port_busy() {
  local ip=$1 port=$2
  command -v ss >/dev/null 2>&1 || return 1
  local listening
  listening=$(ss -Hlntu 2>/dev/null | awk '{print $5}') || return 1
  grep -Eq "^(${ip//./\\.}|0\\.0\\.0\\.0|\\*|\\[::\\]|\\[::ffff:${ip//./\\.}\\]):${port}\$" <<<"$listening"
}

log_tail() {
  local f=$1
  echo "----- last lines of $f -----" >&2
  tail -n 40 "$f" >&2 2>/dev/null || true
  echo "-----" >&2
}

# readyz IP: prints the body of /readyz; true when it answers 200.
readyz() {
  curl -fsS --max-time 2 "http://$1:$ADMIN_PORT/readyz" 2>/dev/null
}

build() {
  mkdir -p "$BIN"
  if [ "${DSN_FLEET_NO_BUILD:-}" = 1 ] && [ -x "$BIN/dsn-node" ] && [ -x "$BIN/dsnctl" ]; then
    return
  fi
  command -v go >/dev/null 2>&1 || die "go is not on PATH (needed to build dsn-node)"
  (cd "$ROOT" && go build -o "$BIN/dsn-node" ./cmd/dsn-node && go build -o "$BIN/dsnctl" ./cmd/dsnctl) ||
    die "go build failed"
}

# node_has_flag FLAG: the dsn-node binary knows -FLAG. (The usage is
# read whole first: grep -q closing the pipe early would fail the pipeline
# under pipefail.)
NODE_USAGE=
node_has_flag() {
  if [ -z "$NODE_USAGE" ]; then
    NODE_USAGE=$("$BIN/dsn-node" -h 2>&1 || true)
  fi
  grep -Eq -- "^[[:space:]]+-$1([[:space:]]|\$)" <<<"$NODE_USAGE"
}

find_tool() {
  local t
  for t in "$(command -v "$1" 2>/dev/null)" "/usr/sbin/$1" "/usr/bin/$1"; do
    [ -n "$t" ] && [ -x "$t" ] && { echo "$t"; return 0; }
  done
  return 1
}

# ---------------------------------------------------------------- BIND9

bind_start() {
  local named keygen port
  if alive "$BINDDIR/named.pid" named; then
    say "named already running on $(cat "$BINDDIR/port" 2>/dev/null || echo '?')"
    return
  fi
  named=$(find_tool named) || die "--bind needs BIND9's named (apt-get install bind9)"
  keygen=$(find_tool tsig-keygen) || die "--bind needs tsig-keygen (apt-get install bind9-utils)"
  mkdir -p "$BINDDIR"
  if [ ! -s "$BINDDIR/$KEY_NAME.key" ]; then
    (umask 077 && "$keygen" -a hmac-sha256 "$KEY_NAME" >"$BINDDIR/$KEY_NAME.key")
  fi
  chmod 600 "$BINDDIR/$KEY_NAME.key"
  port=$DNS_PORT_FIRST
  while port_busy 127.0.0.1 "$port"; do
    port=$((port + 1))
    [ "$port" -lt $((DNS_PORT_FIRST + 100)) ] || die "no free port for named from $DNS_PORT_FIRST"
  done
  for zone in "$DOMAIN" e164.arpa; do
    [ -f "$BINDDIR/$zone.db" ] && continue
    cat >"$BINDDIR/$zone.db" <<EOF
\$TTL 30
@ IN SOA ns.$DOMAIN. hostmaster.$DOMAIN. 1 3600 600 86400 30
@ IN NS ns.$DOMAIN.
EOF
    if [ "$zone" = "$DOMAIN" ]; then echo "ns IN A 127.0.0.1" >>"$BINDDIR/$zone.db"; fi
  done
  cat >"$BINDDIR/named.conf" <<EOF
// Generated by deploy/local/fleet.sh; see deploy/bind/named.conf.snippet.
include "$BINDDIR/$KEY_NAME.key";
options {
	directory "$BINDDIR";
	pid-file none;
	session-keyfile none;
	managed-keys-directory "$BINDDIR";
	listen-on port $port { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	notify no;
};
controls { };
zone "$DOMAIN" {
	type primary;
	file "$BINDDIR/$DOMAIN.db";
	update-policy { grant $KEY_NAME zonesub ANY; };
	allow-transfer { key $KEY_NAME; };
};
zone "e164.arpa" {
	type primary;
	file "$BINDDIR/e164.arpa.db";
	update-policy { grant $KEY_NAME zonesub ANY; };
	allow-transfer { key $KEY_NAME; };
};
EOF
  if checkconf=$(find_tool named-checkconf); then
    "$checkconf" "$BINDDIR/named.conf" || die "named-checkconf rejects $BINDDIR/named.conf"
  fi
  echo "$port" >"$BINDDIR/port"
  setsid "$named" -g -n 1 -c "$BINDDIR/named.conf" >>"$BINDDIR/named.log" 2>&1 </dev/null &
  echo $! >"$BINDDIR/named.pid"
  local deadline=$((SECONDS + 15))
  until [ -n "$(dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 SOA "$DOMAIN" 2>/dev/null)" ] &&
    [ -n "$(dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 SOA e164.arpa 2>/dev/null)" ]; do
    if ! running "$BINDDIR/named.pid"; then
      log_tail "$BINDDIR/named.log"
      die "named exited during start-up"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log_tail "$BINDDIR/named.log"
      die "named on 127.0.0.1:$port did not answer SOA within 15 s"
    fi
    sleep 0.2
  done
  say "named on 127.0.0.1:$port (zones $DOMAIN, e164.arpa; key $BINDDIR/$KEY_NAME.key)"
}

bind_stop() {
  stop_pid "$BINDDIR/named.pid" named named 15
  rm -f "$BINDDIR"/*.jnl "$BINDDIR"/*.db "$BINDDIR/named.conf" "$BINDDIR/$KEY_NAME.key" "$BINDDIR/port" \
    "$BINDDIR"/managed-keys.bind* 2>/dev/null || true
}

# ---------------------------------------------------------------- nodes

# node_args I: the dsn-node command line of node I.
node_args() {
  local i=$1 ip j
  ip=$(node_ip "$i")
  ARGS=(-name "$(node_name "$i")" -domain "$DOMAIN"
    -sip "$ip:$SIP_PORT" -cluster "$ip:$CLUSTER_PORT" -admin "$ip:$ADMIN_PORT"
    -cluster-key-file "$RUN/cluster.key" -log-level "$LOG_LEVEL" -log-format "$LOG_FORMAT")
  # Phones: digest credentials from DSN_FLEET_AUTH_FILE, else open (a local
  # test fleet; the node refuses to start with neither).
  if [ -n "${DSN_FLEET_AUTH_FILE:-}" ]; then
    ARGS+=(-auth-file "$DSN_FLEET_AUTH_FILE")
  elif node_has_flag auth-open; then
    ARGS+=(-auth-open)
  fi
  local join=()
  for ((j = 1; j <= N; j++)); do
    [ "$j" = "$i" ] && continue
    if alive "$NODES/$(node_name "$j").pid" dsn-node; then join+=("$(node_ip "$j"):$CLUSTER_PORT"); fi
  done
  if [ ${#join[@]} -gt 0 ]; then
    ARGS+=(-join "$(IFS=,; echo "${join[*]}")")
  fi
  if [ "$WITH_BIND" = 1 ]; then
    local port
    port=$(cat "$BINDDIR/port")
    if node_has_flag dns-server && node_has_flag tsig-key-file; then
      ARGS+=(-dns-server "127.0.0.1:$port" -tsig-key-file "$BINDDIR/$KEY_NAME.key")
      if node_has_flag dns-zone; then ARGS+=(-dns-zone "$DOMAIN"); fi
      if node_has_flag resolver; then ARGS+=(-resolver "127.0.0.1:$port"); fi
      if node_has_flag enum-suffix; then ARGS+=(-enum-suffix e164.arpa.); fi
    else
      echo "fleet: warning: this dsn-node has no -dns-server/-tsig-key-file flags; nodes run without DNS reporting" >&2
    fi
  fi
}

start_node() {
  local i=$1 name ip
  name=$(node_name "$i")
  ip=$(node_ip "$i")
  if alive "$NODES/$name.pid" dsn-node; then
    return
  fi
  for port in "$SIP_PORT" "$CLUSTER_PORT" "$ADMIN_PORT"; do
    if port_busy "$ip" "$port"; then
      die "$ip:$port is in use by another process (ss -ltnup); stop it or set DSN_FLEET_IP_PREFIX/DSN_FLEET_IP_START"
    fi
  done
  node_args "$i"
  printf '%q ' "$BIN/dsn-node" "${ARGS[@]}" >"$NODES/$name.cmd"
  echo >>"$NODES/$name.cmd"
  echo "=== $(date -u +%FT%TZ) start: $(cat "$NODES/$name.cmd")" >>"$NODES/$name.log"
  setsid "$BIN/dsn-node" "${ARGS[@]}" >>"$NODES/$name.log" 2>&1 </dev/null &
  echo $! >"$NODES/$name.pid"
  say "started $name on $ip (pid $!)"
}

# wait_ready I...: every listed node answers /readyz 200 within
# READY_TIMEOUT seconds, or exit 1 with the log tail of the first that
# does not.
wait_ready() {
  local deadline=$((SECONDS + READY_TIMEOUT)) i name pending
  while :; do
    pending=()
    for i in "$@"; do
      name=$(node_name "$i")
      if ! running "$NODES/$name.pid"; then
        log_tail "$NODES/$name.log"
        die "$name exited during start-up (log: $NODES/$name.log)"
      fi
      readyz "$(node_ip "$i")" >/dev/null || pending+=("$i")
    done
    [ ${#pending[@]} -eq 0 ] && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      name=$(node_name "${pending[0]}")
      log_tail "$NODES/$name.log"
      die "$name not ready within ${READY_TIMEOUT}s ($(readyz "$(node_ip "${pending[0]}")" || echo "no answer at http://$(node_ip "${pending[0]}"):$ADMIN_PORT/readyz"))"
    fi
    sleep 0.2
  done
}

# stop_pid PIDFILE NAME LABEL TIMEOUT: SIGTERM, wait up to TIMEOUT
# seconds, then SIGKILL.
stop_pid() {
  local pidfile=$1 name=$2 label=$3 timeout=$4 pid deadline
  if ! alive "$pidfile" "$name"; then
    rm -f "$pidfile"
    return 0
  fi
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + timeout))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "fleet: $label (pid $pid) did not exit ${timeout}s after SIGTERM; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
      break
    fi
    sleep 0.1
  done
  rm -f "$pidfile"
  say "stopped $label (pid $pid)"
}

# running_nodes: the indices of nodes with a pid file, highest first.
running_nodes() {
  local f
  for f in "$NODES"/sn*.pid; do
    [ -e "$f" ] || continue
    f=${f##*/sn}
    echo "${f%.pid}"
  done | sort -rn
}

load_env() {
  if [ -f "$RUN/fleet.env" ]; then
    # shellcheck disable=SC1091
    . "$RUN/fleet.env"
  fi
}

# ---------------------------------------------------------------- commands

cmd_start() {
  N=${1:-}
  shift || true
  WITH_BIND=0
  for a in "$@"; do
    case $a in
      --bind) WITH_BIND=1 ;;
      *) die "start: unknown option $a (usage: fleet.sh start N [--bind])" ;;
    esac
  done
  [[ "$N" =~ ^[0-9]+$ ]] && [ "$N" -ge 1 ] || die "start: N must be a positive number (usage: fleet.sh start N [--bind])"
  [ $((IP_START + N - 1)) -le 254 ] || die "start: $N nodes do not fit from ${IP_PREFIX}${IP_START}"
  command -v curl >/dev/null 2>&1 || die "curl is needed to check readiness"
  local prev_bind=
  if [ -f "$RUN/fleet.env" ]; then
    prev_bind=$(. "$RUN/fleet.env"; echo "${FLEET_BIND:-0}")
    if [ -n "$(running_nodes)" ] && [ "$prev_bind" != "$WITH_BIND" ]; then
      die "a fleet is running $([ "$prev_bind" = 1 ] && echo with || echo without) --bind; run fleet.sh stop first"
    fi
  fi
  mkdir -p "$RUN" "$NODES"
  build
  if [ ! -s "$RUN/cluster.key" ]; then
    (umask 077 && head -c 32 /dev/urandom | base64 >"$RUN/cluster.key")
  fi
  chmod 600 "$RUN/cluster.key"
  if [ "$WITH_BIND" = 1 ]; then bind_start; fi
  {
    printf 'FLEET_N=%q\n' "$N"
    printf 'FLEET_BIND=%q\n' "$WITH_BIND"
    printf 'FLEET_DOMAIN=%q\n' "$DOMAIN"
    printf 'FLEET_IP_PREFIX=%q\n' "$IP_PREFIX"
    printf 'FLEET_IP_START=%q\n' "$IP_START"
    printf 'FLEET_ADMIN_PORT=%q\n' "$ADMIN_PORT"
  } >"$RUN/fleet.env"
  # Nodes beyond N from an earlier, larger start leave gracefully.
  local i
  for i in $(running_nodes); do
    if [ "$i" -gt "$N" ]; then stop_pid "$NODES/sn$i.pid" dsn-node "sn$i" 20; fi
  done
  # The first node (or any running one) anchors the ring; the rest join it.
  if ! alive "$NODES/sn1.pid" dsn-node; then
    start_node 1
    wait_ready 1
  fi
  local all=()
  for ((i = 1; i <= N; i++)); do
    start_node "$i"
    all+=("$i")
  done
  wait_ready "${all[@]}"
  say "$N node(s) ready; domain $DOMAIN; admin http://$(node_ip 1):$ADMIN_PORT"
  say "try: $BIN/dsnctl -admin $(node_ip 1):$ADMIN_PORT ring"
}

cmd_stop() {
  load_env
  local i
  for i in $(running_nodes); do
    stop_pid "$NODES/sn$i.pid" dsn-node "sn$i" 20
  done
  bind_stop
  rm -f "$RUN/cluster.key" "$RUN/fleet.env" "$NODES"/*.cmd
  say "fleet stopped (logs kept in $NODES and $BINDDIR)"
}

cmd_status() {
  load_env
  if [ ! -f "$RUN/fleet.env" ]; then
    say "no fleet (fleet.sh start N to start one)"
    return 1
  fi
  IP_PREFIX=${FLEET_IP_PREFIX:-$IP_PREFIX}
  IP_START=${FLEET_IP_START:-$IP_START}
  ADMIN_PORT=${FLEET_ADMIN_PORT:-$ADMIN_PORT}
  local i name ip state rc=0 admins=()
  printf '%-6s %-8s %-16s %s\n' NODE PID ADMIN READYZ
  for ((i = 1; i <= FLEET_N; i++)); do
    name=$(node_name "$i")
    ip=$(node_ip "$i")
    if alive "$NODES/$name.pid" dsn-node; then
      state=$(readyz "$ip" || echo "not ready")
      [ "$state" = ready ] || rc=1
      printf '%-6s %-8s %-16s %s\n' "$name" "$(cat "$NODES/$name.pid")" "$ip:$ADMIN_PORT" "$state"
      admins+=("$ip:$ADMIN_PORT")
    else
      printf '%-6s %-8s %-16s %s\n' "$name" - "$ip:$ADMIN_PORT" "not running"
      rc=1
    fi
  done
  if [ "${FLEET_BIND:-0}" = 1 ]; then
    if alive "$BINDDIR/named.pid" named; then
      say "named on 127.0.0.1:$(cat "$BINDDIR/port") (pid $(cat "$BINDDIR/named.pid")), key $BINDDIR/$KEY_NAME.key"
    else
      say "named is not running"
      rc=1
    fi
  fi
  if [ ${#admins[@]} -gt 0 ] && [ -x "$BIN/dsnctl" ]; then
    echo
    "$BIN/dsnctl" ring -all "$(IFS=,; echo "${admins[*]}")" || rc=1
  fi
  return $rc
}

case ${1:-} in
  start) shift; cmd_start "$@" ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  -h | --help | help) usage ;;
  *) usage >&2; exit 2 ;;
esac
