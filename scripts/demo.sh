#!/usr/bin/env bash
# The README's first command: installs what is needed, builds, and shows walfeed working.
#
#   scripts/demo.sh                  start a private PostgreSQL, run walfeed on it, write demo
#                                    rows for DEMO_SECONDS (default 20) and print the live feed
#   scripts/demo.sh --pg "CONNINFO"  run walfeed on your own database and print its live feed
#                                    until Ctrl-C (nothing is written to your database)
#   scripts/demo.sh --replicate      also start a private 3-node NATS JetStream cluster and
#                                    replicate the log into it (--confirm-after=replicated)
#
# Everything it starts (PostgreSQL, NATS, walfeed, the subscriber) is stopped on exit or Ctrl-C.
# State lives in demo-data/ (delete it to start over).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

pg="${WALFEED_PG:-}"
replicate=0
while [ $# -gt 0 ]; do
  case "$1" in
    --pg)
      [ $# -ge 2 ] || { echo "demo: --pg needs a libpq conninfo" >&2; exit 2; }
      pg="$2"
      shift 2
      ;;
    --replicate) replicate=1; shift ;;
    *) echo "usage: scripts/demo.sh [--pg CONNINFO] [--replicate]" >&2; exit 2 ;;
  esac
done

bash scripts/install-deps.sh
echo "demo: building walfeed (first build takes a few minutes)"
WALFEED_BUILD_TARGETS="walfeed walfeedctl" bash scripts/build.sh "$here/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

data="$here/demo-data"
mkdir -p "$data"
private_pg=0
walfeed_pid=""
subscriber_pid=""
cleanup() {
  set +e
  [ -n "$subscriber_pid" ] && kill "$subscriber_pid" 2>/dev/null && wait "$subscriber_pid" 2>/dev/null
  [ -n "$walfeed_pid" ] && kill -TERM "$walfeed_pid" 2>/dev/null && wait "$walfeed_pid" 2>/dev/null
  [ "$private_pg" = 1 ] && bash scripts/pg-local.sh stop "$data/pg"
  [ "$replicate" = 1 ] && bash scripts/nats-local.sh stop "$data/nats"
  echo "demo: stopped (walfeed's log is in $data/walfeed.log)"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "$pg" ]; then
  echo "demo: starting a private PostgreSQL in $data/pg"
  pg="$(bash scripts/pg-local.sh start "$data/pg")"
  private_pg=1
fi

port="$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
server="127.0.0.1:$port"
if [ "$private_pg" = 1 ]; then
  psql "$pg" -qX -c "CREATE TABLE IF NOT EXISTS demo_orders (
      id bigserial PRIMARY KEY, customer text NOT NULL, amount numeric(12,2) NOT NULL,
      status text NOT NULL DEFAULT 'new', placed_at timestamptz NOT NULL DEFAULT now())"
fi

replication=()
if [ "$replicate" = 1 ]; then
  echo "demo: starting a private 3-node NATS JetStream cluster in $data/nats"
  nats_urls="$(bash scripts/nats-local.sh start "$data/nats" 3 | tail -n 1)"
  replication=(--replicate-to "$nats_urls" --replication-stream walfeed_demo --confirm-after replicated)
fi

echo "demo: starting walfeed on $server"
build/bin/walfeed --pg "$pg" --data-dir "$data/walfeed" --listen "$server" "${replication[@]}" \
  >"$data/walfeed.log" 2>&1 &
walfeed_pid=$!
for _ in $(seq 1 100); do
  build/bin/walfeedctl info --server "$server" >/dev/null 2>&1 && break
  kill -0 "$walfeed_pid" 2>/dev/null || { cat "$data/walfeed.log" >&2; exit 1; }
  sleep 0.1
done

echo "demo: the live feed follows, one line per change. In another shell, try the JSON form:"
echo "  build/bin/walfeedctl subscribe --server $server --from-head"
echo "  tools/node_modules/.bin/buf curl --protocol grpc --http2-prior-knowledge http://$server/walfeed.v1.ChangeFeed/Subscribe -d '{\"stopAtHead\":true}'"
build/bin/walfeedctl subscribe --server "$server" --from-head --format text &
subscriber_pid=$!

if [ "$private_pg" = 0 ]; then
  echo "demo: watching your database; press Ctrl-C to stop"
  wait "$subscriber_pid"
  exit 0
fi

seconds="${DEMO_SECONDS:-20}"
customers=(ada grace linus barbara ken margaret)
for ((i = 0; i < seconds; i++)); do
  customer="${customers[$((i % ${#customers[@]}))]}"
  psql "$pg" -qX >/dev/null <<SQL
BEGIN;
INSERT INTO demo_orders (customer, amount) VALUES ('$customer', $((RANDOM % 500)).$((RANDOM % 100)));
UPDATE demo_orders SET status = 'shipped' WHERE id = (SELECT min(id) FROM demo_orders WHERE status = 'new');
COMMIT;
SQL
  if [ $((i % 5)) -eq 4 ]; then
    psql "$pg" -qX -c "DELETE FROM demo_orders WHERE id = (SELECT min(id) FROM demo_orders)" >/dev/null
  fi
  sleep 1
done
sleep 1
echo "demo: the feed now holds:"
build/bin/walfeedctl info --server "$server"
