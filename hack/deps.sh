#!/usr/bin/env bash
# Installs what the named purposes need (hack/deps/PURPOSE.list) and checks it is there:
#   hack/deps.sh test node image
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib/deps.sh"
(($#)) || {
  echo "usage: hack/deps.sh PURPOSE... (the names of hack/deps/*.list)" >&2
  exit 2
}
deps_ensure "$@"
