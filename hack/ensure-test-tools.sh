#!/usr/bin/env bash
# Installs what the test suite needs and a fresh machine lacks, and fails loudly when a tool
# cannot be had: a test that skips because its server is missing would be a lie in CI.
set -euo pipefail

need_apt=()
# The backup data-path tests start a private PostgreSQL server (initdb, pg_ctl) and run
# pg_dump/pg_restore against it.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need_apt+=(postgresql)
command -v pg_dump >/dev/null || need_apt+=(postgresql-client)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v ip >/dev/null || need_apt+=(iproute2)

if ((${#need_apt[@]})); then
  echo "ensure-test-tools: installing ${need_apt[*]} from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

missing=()
for tool in go cargo openssl pg_dump pg_restore psql; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(initdb)
if ((${#missing[@]})); then
  echo "ensure-test-tools: missing after install: ${missing[*]}" >&2
  exit 1
fi
