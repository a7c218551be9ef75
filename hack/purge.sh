#!/usr/bin/env bash
# Makes this machine fresh as far as the project is concerned, so that the next run of
# ./justw up, ./justw test or .ci/run is a real first run:
#   - stops the local cluster (hack/cluster-down.sh) and anything of buildah's;
#   - removes the Debian packages the project's scripts installed: every package added since
#     hack/lib/deps.sh first installed one (/var/lib/pgop-deps/baseline.txt), and every
#     package of hack/deps/*.list that machine.list and base.list do not name; and the
#     system users and groups they added;
#   - removes the project's caches and state (~/.cache/pg-operators: Kubernetes, tools, image
#     archives; /var/tmp/pgop-*, /var/lib/pgop-*), buildah's and containerd's stores, and
#     programs of built.list that a `cargo install` left on PATH;
#   - unless --keep-toolchain-caches: the Go module and build caches and cargo's registry,
#     so dependencies are fetched and compiled again as on a new machine.
# The repository's own target/ is left alone: a fresh clone has none, so clone afresh.
#
#   hack/purge.sh [--keep-toolchain-caches] [--dry-run]
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/lib/deps.sh
source "$REPO/hack/lib/deps.sh"

keep_toolchain=false dry=false
for arg; do
  case $arg in
    --keep-toolchain-caches) keep_toolchain=true ;;
    --dry-run) dry=true ;;
    *) echo "usage: hack/purge.sh [--keep-toolchain-caches] [--dry-run]" >&2 && exit 2 ;;
  esac
done
[[ $(id -u) == 0 ]] || { echo "purge: must run as root (it removes packages)" >&2 && exit 1; }

# shellcheck source=hack/lib/log.sh
source "$REPO/hack/lib/log.sh"
run() {
  log "$*"
  $dry || "$@"
}

# Debian packages of a list, without the non-Debian "(toolchain)" entries.
list_packages() { _deps_entries "$1" | awk '$1 !~ /^\(/ {print $1}'; }

packages_to_remove() {
  local kept purpose f
  kept=$( (list_packages base && list_packages machine) | sort -u)
  for f in "$DEPS_DIR"/*.list; do
    purpose=$(basename "$f" .list)
    case $purpose in base | machine | built) continue ;; esac
    list_packages "$purpose"
  done | sort -u | comm -23 - <(echo "$kept")
  # What came with them (dependencies) and anything else the project's runs added.
  [[ -s $DEPS_BASELINE ]] && dpkg-query -W -f='${Package}\n' | sort | comm -23 - "$DEPS_BASELINE"
}

# 1. Everything running.
if [[ -x $REPO/hack/cluster-down.sh ]]; then run "$REPO/hack/cluster-down.sh" || true; fi
if command -v buildah >/dev/null; then
  run buildah rm --all >/dev/null 2>&1 || true
  run buildah rmi --all --force >/dev/null 2>&1 || true
fi

# Kernel modules the node loaded (none where they are built in, as on these VMs), while
# modprobe (kmod, a node package) is still there.
if [[ -s $DEPS_STATE/modules.txt ]]; then
  while read -r m; do run modprobe -r "$m" || true; done < <(sort -u "$DEPS_STATE/modules.txt")
  run rm -f "$DEPS_STATE/modules.txt"
fi

# 2. Packages, installed ones only.
mapfile -t remove < <(packages_to_remove | sort -u | while read -r p; do
  dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed && echo "$p"
done)
if ((${#remove[@]})); then
  run env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "${remove[@]}" >/dev/null
fi
if [[ -s $DEPS_STATE/users.txt ]]; then
  for u in $(cut -d: -f1 /etc/passwd | sort | comm -23 - "$DEPS_STATE/users.txt"); do run userdel "$u"; done
  for g in $(cut -d: -f1 /etc/group | sort | comm -23 - "$DEPS_STATE/groups.txt"); do run groupdel "$g"; done
fi

# 3. Caches, state and stores. Mounts under them first (a crashed build can leave some).
cache=${PGOP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pg-operators}
dirs=("$cache" /var/lib/pgop-* /var/tmp/pgop-* /var/lib/containers /var/lib/cni /run/containers
  /run/runc /run/lock/pgop-* /etc/containers /etc/cni)
for d in "${dirs[@]}"; do
  [[ -e $d ]] || continue
  while read -r m; do run umount -l "$m" || true; done < <(awk -v d="$d/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r)
  [[ $d == "$DEPS_STATE" ]] && continue
  run rm -rf --one-file-system "$d"
done
# Programs the project builds for itself, left on PATH by a hand-run `cargo install`.
cargo_bin=${CARGO_HOME:-$HOME/.cargo}/bin
while read -r _ programs; do
  for p in $programs; do
    [[ -e $cargo_bin/$p ]] && run rm -f "$cargo_bin/$p"
  done
done < <(_deps_entries built)

# 4. Toolchain caches.
if ! $keep_toolchain; then
  go=$(command -v go || echo /usr/local/go/bin/go)
  if [[ -x $go ]]; then
    run "$go" clean -modcache
    run "$go" clean -cache
  fi
  run rm -rf "${CARGO_HOME:-$HOME/.cargo}/registry" "${CARGO_HOME:-$HOME/.cargo}/git"
fi
log "done: the machine is as fresh as the project can make it (clone the repository afresh)"
