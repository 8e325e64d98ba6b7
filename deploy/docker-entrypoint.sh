#!/bin/sh
# docker-entrypoint.sh: starts walfeed after checking the two things that otherwise fail late or
# with an obscure message: that a PostgreSQL to capture is given (or, for a replica, the NATS
# servers to follow), and that the data directory exists (or can be created) and is writable.
# Then it execs walfeed, so that walfeed is the container's PID 1 and receives SIGTERM itself (its
# clean shutdown).
#
#   docker-entrypoint.sh [walfeed] [FLAGS...]   check, then exec walfeed FLAGS...
#   docker-entrypoint.sh --help | --version     exec walfeed at once, nothing to check
#   docker-entrypoint.sh COMMAND [ARGS...]      run another command as given (walfeedctl, sh)
#
# walfeed reads its WALFEED_* variables itself and a flag wins over its variable; the checks
# here follow the same rule. WALFEED_BIN names the walfeed binary (default: walfeed on PATH),
# so the script also runs outside a container:
#   WALFEED_BIN=build/bin/walfeed deploy/docker-entrypoint.sh --help
# Exit status: 2 when no PostgreSQL is given (as walfeed), 1 for an unusable data directory,
# 127 when the binary is missing; otherwise walfeed's own.
set -eu

fail() {
  status=$1
  shift
  printf 'docker-entrypoint: %s\n' "$*" >&2
  exit "$status"
}

if [ "$#" -gt 0 ]; then
  case $1 in
    walfeed) shift ;;
    -*) ;;
    *) exec "$@" ;;
  esac
fi

walfeed_bin=${WALFEED_BIN:-walfeed}
case $walfeed_bin in
  */*) [ -f "$walfeed_bin" ] && [ -x "$walfeed_bin" ] ;;
  *) command -v "$walfeed_bin" >/dev/null 2>&1 ;;
esac || fail 127 "walfeed binary '$walfeed_bin' not found or not executable; set WALFEED_BIN to its path"

# The settings that the checks need, as walfeed will see them: the variable, then the flags.
pg=${WALFEED_PG:-}
follow=${WALFEED_FOLLOW:-}
data_dir=${WALFEED_DATA_DIR:-./walfeed-data}
value_of=
for arg in "$@"; do
  case $value_of in
    pg) pg=$arg ;;
    follow) follow=$arg ;;
    data-dir) data_dir=$arg ;;
  esac
  if [ -n "$value_of" ]; then
    value_of=
    continue
  fi
  case $arg in
    --help | -h | --version) exec "$walfeed_bin" "$@" ;;
    --pg=*) pg=${arg#--pg=} ;;
    --pg) value_of=pg ;;
    --follow=*) follow=${arg#--follow=} ;;
    --follow) value_of=follow ;;
    --data-dir=*) data_dir=${arg#--data-dir=} ;;
    --data-dir) value_of=data-dir ;;
    --*=*) ;;
    --*) value_of=other ;;
  esac
done

# A replica (--follow) copies the log from NATS JetStream and reads no PostgreSQL.
if [ -z "$pg" ] && [ -z "$follow" ]; then
  fail 2 "no PostgreSQL to capture: set WALFEED_PG or pass --pg, a libpq conninfo such as" \
    "'host=db.example.com dbname=shop user=walfeed' (the password goes in PGPASSWORD or a" \
    "PGPASSFILE, not in the conninfo); a replica sets WALFEED_FOLLOW or --follow instead"
fi
case $pg in
  *password=* | *://*:*@*)
    printf 'docker-entrypoint: warning: the PostgreSQL conninfo holds a password, which %s\n' \
      "shows in the process list and the container's config; use PGPASSWORD or PGPASSFILE" >&2
    ;;
esac

# Only the data directory itself is created, like RocksDB does: a missing parent usually means a
# volume that is not mounted, and creating it would put the log where no volume keeps it.
uid_gid="uid $(id -u), gid $(id -g)"
if [ -e "$data_dir" ] && [ ! -d "$data_dir" ]; then
  fail 1 "data directory '$data_dir' exists but is not a directory; set WALFEED_DATA_DIR or" \
    "--data-dir to a directory"
fi
if [ ! -d "$data_dir" ]; then
  parent=$(dirname -- "$data_dir")
  if [ ! -d "$parent" ]; then
    fail 1 "cannot create data directory '$data_dir': its parent '$parent' does not exist" \
      "(is the volume mounted?); create it or set WALFEED_DATA_DIR or --data-dir"
  fi
  if ! error=$(mkdir -- "$data_dir" 2>&1); then
    fail 1 "cannot create data directory '$data_dir' as $uid_gid: ${error#mkdir: }; make" \
      "'$parent' writable for this user, or create the directory and give it to this user"
  fi
fi
probe="$data_dir/.walfeed-entrypoint-probe.$$"
if ! (: >"$probe") 2>/dev/null; then
  fail 1 "data directory '$data_dir' is not writable as $uid_gid (read-only or owned by another" \
    "user); give it to this user (chown, or fsGroup in Kubernetes) or mount a writable volume"
fi
rm -f -- "$probe"

exec "$walfeed_bin" "$@"
