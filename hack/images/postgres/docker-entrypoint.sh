#!/bin/bash
# Entrypoint of the locally built postgres:17 image. It follows the documented interface of
# the official image, so specs written for that image work unchanged:
#   POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE), POSTGRES_USER (default postgres),
#   POSTGRES_DB (default: the user name), PGDATA, POSTGRES_INITDB_ARGS,
#   POSTGRES_HOST_AUTH_METHOD (default scram-sha-256), /docker-entrypoint-initdb.d/*.{sh,sql,sql.gz}.
# On the first start (PGDATA without PG_VERSION) it runs initdb, creates the database and
# runs the init scripts on a server that only listens on its socket; then it runs postgres.
#
# It never writes outside PGDATA and the socket directory (/tmp unless PGHOST names another
# directory), so the image works with a read-only root filesystem when PGDATA is a volume and
# /tmp an emptyDir. The socket is not in /run/postgresql: containerd mounts a tmpfs on /run.
set -euo pipefail

log() { echo "entrypoint: $*" >&2; }

# file_env VAR: VAR_FILE names a file holding VAR's value (a mounted Secret).
file_env() {
  local var=$1 file_var="${1}_FILE"
  if [[ -n ${!var:-} && -n ${!file_var:-} ]]; then
    log "both $var and $file_var are set; set only one"
    exit 1
  fi
  if [[ -n ${!file_var:-} ]]; then
    export "$var"="$(<"${!file_var}")"
  fi
}

socket_dir() {
  if [[ ${PGHOST:-} == /* ]]; then echo "$PGHOST"; else echo /tmp; fi
}

# An option as the first argument means "postgres with these options".
if [[ ${1:-} == -* ]]; then
  set -- postgres "$@"
fi

if [[ ${1:-} != postgres ]]; then
  exec "$@"
fi

: "${PGDATA:?PGDATA must be set}"

# Started as root: make PGDATA ours, then run this script again as postgres (uid 999). A
# fresh volume (a host path, an emptyDir) is usually root's.
if [[ $(id -u) == 0 ]]; then
  mkdir -p "$PGDATA"
  if [[ $(stat -c %u "$PGDATA") != 999 ]]; then
    chown -R 999:999 "$PGDATA"
  fi
  chmod 700 "$PGDATA"
  # PGDATA a subdirectory of a volume whose root only root may enter (a host-path volume is
  # root's, mode 0750, and ignores fsGroup): the volume root becomes postgres' too.
  parent=$(dirname "$PGDATA")
  if ! setpriv --reuid=999 --regid=999 --clear-groups test -x "$parent"; then
    chown 999:999 "$parent"
  fi
  exec setpriv --reuid=999 --regid=999 --init-groups "$0" "$@"
fi

if [[ ! -d $PGDATA ]]; then
  mkdir -p "$PGDATA"
fi
chmod 700 "$PGDATA" 2>/dev/null || true

if [[ ! -s $PGDATA/PG_VERSION ]]; then
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_USER
  file_env POSTGRES_DB
  export POSTGRES_USER="${POSTGRES_USER:-postgres}"
  export POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
  auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
  if [[ -z ${POSTGRES_PASSWORD:-} && $auth != trust ]]; then
    log "the database is uninitialized and POSTGRES_PASSWORD is not set."
    log "Set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE), or POSTGRES_HOST_AUTH_METHOD=trust"
    log "to allow every connection without a password (never do that outside a test)."
    exit 1
  fi

  log "initializing $PGDATA for user $POSTGRES_USER"
  # The password reaches initdb through a pipe, never argv or a file on disk.
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of options
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "${POSTGRES_PASSWORD:-}") \
    --encoding=UTF8 --locale=C.UTF-8 ${POSTGRES_INITDB_ARGS:-} >&2
  # initdb trusts connections from inside the container; everyone else authenticates.
  printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"

  sock=$(socket_dir)
  # Listening only on the socket: nobody can connect before initialization has finished.
  pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -c unix_socket_directories='$sock'" start >&2
  psql_cmd=(psql -v ON_ERROR_STOP=1 --no-psqlrc -h "$sock" -U "$POSTGRES_USER" --no-password)
  if [[ $POSTGRES_DB != postgres ]]; then
    # Through stdin, not -c: psql substitutes :'db' (quoting it) only in what it reads.
    exists=$("${psql_cmd[@]}" -d postgres -tA --set db="$POSTGRES_DB" \
      <<<"SELECT 1 FROM pg_database WHERE datname = :'db'")
    if [[ -z $exists ]]; then
      "${psql_cmd[@]}" -d postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";' >&2
    fi
  fi
  # Init scripts find the server the way a user's psql would.
  export PGHOST="$sock" PGUSER="$POSTGRES_USER" PGDATABASE="$POSTGRES_DB"
  shopt -s nullglob
  for f in /docker-entrypoint-initdb.d/*; do
    case $f in
      *.sh) log "running $f"; bash "$f" ;;
      *.sql) log "running $f"; "${psql_cmd[@]}" -d "$POSTGRES_DB" -f "$f" >&2 ;;
      *.sql.gz) log "running $f"; gzip -dc "$f" | "${psql_cmd[@]}" -d "$POSTGRES_DB" >&2 ;;
      *) log "ignoring $f" ;;
    esac
  done
  shopt -u nullglob
  pg_ctl -D "$PGDATA" -m fast -w stop >&2
  unset PGUSER PGDATABASE
  log "initialization complete"
fi

exec postgres -c unix_socket_directories="$(socket_dir)" "${@:2}"
