#!/usr/bin/env bash
# Starts and stops a private NATS JetStream cluster for walfeed's demo and tests, from Debian's
# nats-server package: N nodes on free 127.0.0.1 ports, file storage under DIR, each started in
# the background and stopped by its process id.
#
#   scripts/nats-local.sh start DIR [NODES]   write the configs (first time), start every node that
#                                             is not running, wait for JetStream, print the client
#                                             URLs (comma-separated) on the last line
#   scripts/nats-local.sh stop DIR            stop every node (SIGTERM, then SIGKILL)
#   scripts/nats-local.sh urls DIR            print the client URLs
#   scripts/nats-local.sh kill DIR K          SIGKILL node K (1-based)
#   scripts/nats-local.sh term DIR K          SIGTERM node K and wait for it to exit
#   scripts/nats-local.sh up DIR K            start node K again
#   scripts/nats-local.sh leader DIR STREAM   print the number of the node that leads STREAM
# NATS_MAX_PAYLOAD sets every node's max_payload (default: NATS's own, 1MB, what users run).
set -euo pipefail

usage() { echo "usage: $0 start DIR [NODES] | stop DIR | urls DIR | kill DIR K | term DIR K | up DIR K | leader DIR STREAM" >&2; exit 2; }
[ $# -ge 2 ] || usage
action="$1"
dir="$(mkdir -p "$2" && cd "$2" && pwd)"
command -v nats-server >/dev/null || { echo "nats-local: nats-server is not installed (run scripts/install-deps.sh)" >&2; exit 1; }

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

nodes() { cat "$dir/nodes"; }
urls() {
  local out=""
  for k in $(seq 1 "$(nodes)"); do out="${out:+$out,}nats://127.0.0.1:$(cat "$dir/n$k.client_port")"; done
  echo "$out"
}
running() { [ -f "$dir/n$1.pid" ] && kill -0 "$(cat "$dir/n$1.pid")" 2>/dev/null; }

write_configs() {
  local n="$1" routes="" k
  echo "$n" >"$dir/nodes"
  for k in $(seq 1 "$n"); do
    free_port >"$dir/n$k.client_port"; free_port >"$dir/n$k.http_port"; free_port >"$dir/n$k.cluster_port"
    routes="$routes nats-route://127.0.0.1:$(cat "$dir/n$k.cluster_port"),"
  done
  for k in $(seq 1 "$n"); do
    mkdir -p "$dir/store/n$k"
    {
      echo "server_name: n$k"
      echo "listen: 127.0.0.1:$(cat "$dir/n$k.client_port")"
      echo "http: 127.0.0.1:$(cat "$dir/n$k.http_port")"
      echo "max_payload: ${NATS_MAX_PAYLOAD:-1MB}"
      echo "jetstream { store_dir: \"$dir/store/n$k\", max_memory_store: 256MB, max_file_store: 8GB }"
      if [ "$n" -gt 1 ]; then
        echo "cluster { name: walfeed, listen: 127.0.0.1:$(cat "$dir/n$k.cluster_port"), routes: [${routes%,} ] }"
      fi
    } >"$dir/n$k.conf"
  done
}

start_node() {
  running "$1" && return 0
  nohup nats-server -c "$dir/n$1.conf" >>"$dir/n$1.log" 2>&1 &
  echo $! >"$dir/n$1.pid"
}

# The /jsz document of node K (empty when it does not answer).
jsz() {
  /usr/bin/python3 - "$(cat "$dir/n$1.http_port")" "${2:-}" <<'PY' 2>/dev/null || true
import sys, urllib.request
query = "?streams=true" if sys.argv[2] else ""
print(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/jsz{query}", timeout=2).read().decode())
PY
}

wait_ready() {
  local k deadline=$((SECONDS + 60))
  while [ $SECONDS -lt $deadline ]; do
    local ready=1
    for k in $(seq 1 "$(nodes)"); do
      running "$k" || continue
      if [ "$(nodes)" -gt 1 ]; then
        jsz "$k" | grep -q '"leader"' || ready=0
      else
        [ -n "$(jsz "$k")" ] || ready=0
      fi
    done
    [ $ready -eq 1 ] && return 0
    sleep 0.2
  done
  echo "nats-local: JetStream did not come up in 60 s; see $dir/n*.log" >&2
  exit 1
}

stop_node() {
  local k="$1" signal="$2"
  running "$k" || return 0
  local pid; pid="$(cat "$dir/n$k.pid")"
  kill "-$signal" "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

case "$action" in
  start)
    [ -f "$dir/nodes" ] || write_configs "${3:-3}"
    for k in $(seq 1 "$(nodes)"); do start_node "$k"; done
    wait_ready
    urls
    ;;
  stop)
    [ -f "$dir/nodes" ] || exit 0
    for k in $(seq 1 "$(nodes)"); do stop_node "$k" TERM; done
    ;;
  urls) urls ;;
  kill)
    [ $# -eq 3 ] || usage
    if running "$3"; then kill -KILL "$(cat "$dir/n$3.pid")"; fi
    for _ in $(seq 1 50); do running "$3" || exit 0; sleep 0.1; done
    ;;
  term) [ $# -eq 3 ] || usage; stop_node "$3" TERM ;;
  up) [ $# -eq 3 ] || usage; start_node "$3"; wait_ready ;;
  leader)
    [ $# -eq 3 ] || usage
    for k in $(seq 1 "$(nodes)"); do
      running "$k" || continue
      leader="$(jsz "$k" streams | /usr/bin/python3 -c '
import json, sys
stream = sys.argv[1]
doc = json.load(sys.stdin)
for account in doc.get("account_details", []):
    for s in account.get("stream_detail", []):
        if s.get("name") == stream and s.get("cluster", {}).get("leader"):
            print(s["cluster"]["leader"])
' "$3" 2>/dev/null || true)"
      if [ -n "$leader" ]; then echo "${leader#n}"; exit 0; fi
    done
    echo "nats-local: no node reports a leader of stream $3" >&2
    exit 1
    ;;
  *) usage ;;
esac
