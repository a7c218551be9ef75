#!/bin/bash
# Init container of every PostgreSQL Pod (the Database's own image, as user postgres).
#
# Makes the role of the Database's credentials Secret log in with the Secret's password when
# the server is about to start on data that already exists: a Database re-created over its
# retained volume gets a new Secret, and without this the old data would keep the old
# password, so every client holding the Secret would be refused. A fresh volume is left to
# the image's entrypoint, whose initdb sets the same password.
#
# The password comes from the mounted Secret on stdin of a single-user backend, so it is in
# no process argument, no log line and no error message (errors do not echo the statement).
set -euo pipefail
: "${PGDATA:?}" "${POSTGRES_USER:?}" "${PGOP_PASSWORD_FILE:?}"
if [[ ! -s $PGDATA/PG_VERSION ]]; then
  echo "set-password: no cluster in $PGDATA yet; the entrypoint's initdb sets the password"
  exit 0
fi
# A standby's catalog is the primary's, replayed: writing to it would break replication. The
# primary's password change reaches it through the WAL.
if [[ -e $PGDATA/standby.signal ]]; then
  echo "set-password: $PGDATA is a standby's; the primary sets the password"
  exit 0
fi
# Data prepared for point-in-time recovery must first replay its WAL: a single-user backend
# would run that recovery itself, out of the instance manager's sight. The manager sets the
# password once the server has promoted.
if [[ -e $PGDATA/recovery.signal && -e $PGDATA/pgop_recovery.json ]]; then
  echo "set-password: $PGDATA awaits point-in-time recovery; the instance manager sets the password after it"
  exit 0
fi
password=$(<"$PGOP_PASSWORD_FILE")
[[ -n $password ]] || {
  echo "set-password: the Secret's password is empty" >&2
  exit 1
}
# SQL string literals (standard_conforming_strings is on: only quotes need doubling).
literal() { printf "'%s'" "${1//\'/\'\'}"; }
# A dollar-quote tag the password cannot contain by chance.
tag=pgop_$RANDOM$RANDOM$RANDOM
[[ $password != *"\$$tag\$"* ]] || tag=${tag}x
user=$(literal "$POSTGRES_USER")
secret=$(literal "$password")
sql="DO \$$tag\$ BEGIN IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = $user) THEN EXECUTE format('ALTER ROLE %I WITH LOGIN PASSWORD %L', $user, $secret); ELSE EXECUTE format('CREATE ROLE %I WITH LOGIN SUPERUSER PASSWORD %L', $user, $secret); END IF; END \$$tag\$;"
echo "set-password: setting the password of role $POSTGRES_USER from the Secret"
# synchronous_commit=local: a former primary's settings may ask for synchronous standbys, and
# a single-user backend has none, so its commit would wait forever.
# exec: the backend becomes PID 1 of this container, which PostgreSQL's stale-lock check
# expects when a crashed server left its postmaster.pid (also written by a PID 1).
exec postgres --single -D "$PGDATA" -c exit_on_error=on -c log_min_error_statement=panic \
  -c synchronous_commit=local \
  postgres <<<"$sql" >/dev/null
