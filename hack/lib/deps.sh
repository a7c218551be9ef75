# shellcheck shell=bash
# Installs what a purpose needs, from the lists in hack/deps (see its README). Sourced.
#
#   deps_ensure PURPOSE...   install the missing Debian packages of hack/deps/PURPOSE.list
#                            (recommends off), then check every program the lists name
#
# A fresh machine has none of what earlier runs left behind, so every entry point calls this
# before it first runs a program; a program that cannot be had is an error, never a skip.

DEPS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../deps" && pwd)
# What the machine had before the project first installed anything: hack/purge.sh removes
# every package added since. Kept across purges, like the machine it describes.
DEPS_STATE=/var/lib/pgop-deps
DEPS_BASELINE=$DEPS_STATE/baseline.txt

_deps_log() { echo "deps: $*" >&2; }

# _deps_entries PURPOSE: the list's lines without comments, "package program..." each.
_deps_entries() {
  local file=$DEPS_DIR/$1.list
  [[ -f $file ]] || {
    local known=() f
    for f in "$DEPS_DIR"/*.list; do known+=("$(basename "$f" .list)"); done
    _deps_log "error: no list $file (purposes: ${known[*]})"
    return 1
  }
  sed -e 's/#.*//' "$file" | awk 'NF'
}

_deps_installed() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed; }

# _deps_present PROGRAM: on PATH, or (an absolute path, maybe with a glob) executable there.
_deps_present() {
  local p=$1 match
  if [[ $p == /* ]]; then
    for match in $p; do [[ -x $match ]] && return 0; done
    return 1
  fi
  command -v "$p" >/dev/null 2>&1
}

deps_ensure() {
  local purpose package programs missing=() absent=() p
  # Go is installed outside PATH for non-login shells on these machines.
  command -v go >/dev/null || [[ ! -x /usr/local/go/bin/go ]] || PATH=$PATH:/usr/local/go/bin
  for purpose in "$@"; do
    case $purpose in base | machine | built) continue ;; esac
    while read -r package programs; do
      _deps_installed "$package" || missing+=("$package")
    done < <(_deps_entries "$purpose") || return 1
  done
  if ((${#missing[@]})); then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    command -v apt-get >/dev/null || {
      _deps_log "error: ${missing[*]} missing and this machine has no apt-get"
      return 1
    }
    if [[ ! -s $DEPS_BASELINE ]]; then
      mkdir -p "$DEPS_STATE"
      dpkg-query -W -f='${Package}\n' | sort >"$DEPS_BASELINE"
      # Packages may add system users and groups, which purging them leaves behind.
      cut -d: -f1 /etc/passwd | sort >"$DEPS_STATE/users.txt"
      cut -d: -f1 /etc/group | sort >"$DEPS_STATE/groups.txt"
    fi
    _deps_log "installing ${missing[*]} (for $*)"
    # An old or missing package list is the usual reason an install fails on a new machine.
    # Test processes start cluster-up.sh concurrently: wait for another's apt, not fail.
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null || {
      _deps_log "error: apt-get update failed"
      return 1
    }
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
      _deps_log "error: apt-get install ${missing[*]} failed"
      return 1
    }
  fi
  for purpose in "$@"; do
    [[ $purpose == built ]] && continue
    while read -r package programs; do
      for p in $programs; do _deps_present "$p" || absent+=("$p ($package, $purpose.list)"); done
    done < <(_deps_entries "$purpose")
  done
  if ((${#absent[@]})); then
    _deps_log "error: missing after install: ${absent[*]}"
    return 1
  fi
}
