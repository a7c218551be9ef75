# shellcheck shell=bash
# Messages of every script, named after the script that runs (not the library that prints):
# `log` to stderr, `die` logs an error and exits 1. Sourced by the scripts and hack/lib/node.sh.
_log_name=$(basename "$0" .sh)
log() { echo "$_log_name: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}
