#!/usr/bin/env bash
# Starts or stops a private PostgreSQL cluster for walfeed's demo and tests, listening on
# 127.0.0.1 only, with wal_level=logical. Runs the server as the `postgres` user when called
# as root (PostgreSQL refuses to run as root).
#
#   scripts/pg-local.sh start DIR [PORT]   initdb DIR if new, start it, print its conninfo
#   scripts/pg-local.sh stop DIR           stop the cluster in DIR (fast shutdown)
#   scripts/pg-local.sh conninfo DIR       print the conninfo of the cluster in DIR
#   scripts/pg-local.sh standby DIR PRIMARY_DIR
#                                          make DIR a streaming physical standby of the cluster
#                                          in PRIMARY_DIR (pg_basebackup), start it, print its
#                                          conninfo
#   scripts/pg-local.sh promote DIR        promote the standby in DIR to a primary
# WALFEED_PG_CONF, when set on the first start, is appended to postgresql.conf (tests use it to
# make a misconfigured server, e.g. "wal_level = replica").
set -euo pipefail

usage() { echo "usage: $0 start DIR [PORT] | stop DIR | conninfo DIR | standby DIR PRIMARY_DIR | promote DIR" >&2; exit 2; }
[ $# -ge 2 ] || usage
action="$1"
dir="$(mkdir -p "$2" && cd "$2" && pwd)"

pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
[ -x "$pg_bin/initdb" ] || { echo "pg-local: PostgreSQL is not installed (run scripts/install-deps.sh)" >&2; exit 1; }

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# initdb costs a second of CPU; the test suite starts hundreds of clusters. The first start makes
# a pristine initdb'd directory once (per PostgreSQL version and user, built aside and renamed into
# place, so parallel starts never see half of one) and every new cluster is a copy of it.
# WALFEED_PG_TEMPLATE=0 runs initdb every time.
initdb_args=(-U postgres --auth=trust -E UTF8 --locale=C.UTF-8)
init_data_dir() {
  local target="$1"
  if [ "${WALFEED_PG_TEMPLATE:-1}" = "0" ]; then
    as_owner "$pg_bin/initdb" -D "$target" "${initdb_args[@]}" >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    return
  fi
  local version template
  version="$("$pg_bin/pg_ctl" --version | tr -c 'A-Za-z0-9.\n' '_')"
  template="${TMPDIR:-/tmp}/walfeed-pg-template-$(id -u)-${version}"
  if [ ! -f "$template/data/PG_VERSION" ]; then
    local building
    building="$(mktemp -d "$template.XXXXXX")"
    if [ "$(id -u)" -eq 0 ]; then chown postgres "$building"; fi
    as_owner "$pg_bin/initdb" -D "$building/data" "${initdb_args[@]}" >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; rm -rf "$building"; exit 1; }
    # Another start may have put its template in place meanwhile: then this one is dropped (or
    # used directly when what is there is not a whole template).
    if ! mv -T "$building" "$template" 2>/dev/null; then
      if [ ! -f "$template/data/PG_VERSION" ]; then
        mv "$building/data" "$target"
        rm -rf "$building"
        return
      fi
      rm -rf "$building"
    fi
  fi
  as_owner cp -a "$template/data" "$target"
}

conninfo() {
  echo "host=127.0.0.1 port=$(cat "$dir/port") user=postgres dbname=postgres"
}

case "$action" in
  start)
    port="${3:-}"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      [ -n "$port" ] || port="$(free_port)"
      if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir"; fi
      init_data_dir "$dir/data"
      cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
wal_level = logical
max_wal_senders = 20
max_replication_slots = 20
max_prepared_transactions = 10
fsync = off
full_page_writes = off
${WALFEED_PG_CONF:-}
CONF
      echo "$port" >"$dir/port"
    elif [ -n "$port" ] && [ "$port" != "$(cat "$dir/port")" ]; then
      sed -i "s/^port = .*/port = $port/" "$dir/data/postgresql.conf"
      echo "$port" >"$dir/port"
    fi
    as_owner "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
      || { tail -n 20 "$dir/server.log" >&2; exit 1; }
    conninfo
    ;;
  stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
      as_owner "$pg_bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
    fi
    ;;
  conninfo)
    conninfo
    ;;
  standby)
    [ $# -ge 3 ] || usage
    primary="$(cd "$3" && pwd)"
    port="$(free_port)"
    if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir"; fi
    as_owner "$pg_bin/pg_basebackup" -h 127.0.0.1 -p "$(cat "$primary/port")" -U postgres \
      -D "$dir/data" -R -X stream --checkpoint=fast >"$dir/basebackup.log" 2>&1 || { cat "$dir/basebackup.log" >&2; exit 1; }
    sed -i -e "s/^port = .*/port = $port/" \
      -e "s|^unix_socket_directories = .*|unix_socket_directories = '$dir'|" "$dir/data/postgresql.conf"
    echo "$port" >"$dir/port"
    as_owner "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
      || { tail -n 20 "$dir/server.log" >&2; exit 1; }
    conninfo
    ;;
  promote)
    as_owner "$pg_bin/pg_ctl" -D "$dir/data" -w -t 60 promote >/dev/null
    ;;
  *) usage ;;
esac
