#!/usr/bin/env bash
# Builds the controller-runtime operator that `just bench` measures beside ours
# (bench/controller-runtime), from the Go module proxy as hack/build-k8s.sh builds Kubernetes.
#
# The binary is cached under ~/.cache/pg-operators/comparison/<hash of its sources>, so it is
# rebuilt only when go.mod, go.sum or a .go file changes. The last line printed is
#   COMPARISON_OPERATOR=<path of the binary>
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC=$REPO/bench/controller-runtime
CACHE_ROOT="${PGOP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pg-operators}"
NAME=controller-runtime-operator

command -v go >/dev/null || { echo "build-comparison-operator: go is required (Go 1.26) and was not found" >&2; exit 1; }

# The sources in a fixed order, hashed by name and content.
hash=$(cd "$SRC" && find . -maxdepth 1 -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) |
  LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
OUT=$CACHE_ROOT/comparison/$hash

if [[ -x $OUT/$NAME ]]; then
  echo "build-comparison-operator: $NAME cached in $OUT" >&2
else
  echo "build-comparison-operator: building $NAME from $SRC" >&2
  rm -rf "$OUT.partial" && mkdir -p "$OUT.partial"
  # -buildvcs=false: the cache key is the sources' hash, and a checkout owned by another user
  # (CI's fresh clone) would make go refuse to read its VCS status.
  (cd "$SRC" && CGO_ENABLED=0 go build -buildvcs=false -trimpath -ldflags "-s -w" -o "$OUT.partial/$NAME" .)
  rm -rf "$OUT" && mv "$OUT.partial" "$OUT"
fi
echo "COMPARISON_OPERATOR=$OUT/$NAME"
