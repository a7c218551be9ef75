#!/bin/bash
# Readiness of every PostgreSQL Pod: a password login over TCP with the credentials the
# Database's Secret holds now (read from the mounted Secret, not from the environment the
# container started with), so a Pod is ready only when clients holding the Secret get in.
# Arguments: user and database (from the Database's spec, both immutable identifiers).
set -euo pipefail
PGPASSWORD=$(<"${PGOP_PASSWORD_FILE:?}") PGCONNECT_TIMEOUT=3 \
  exec psql -h 127.0.0.1 -p 5432 -U "$1" -d "$2" -w -Atqc 'SELECT 1' >/dev/null
