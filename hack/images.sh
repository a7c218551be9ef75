#!/usr/bin/env bash
# Builds the container images the test cluster runs, without pulling anything, and imports
# them into the nodes' containerd.
#
#   hack/images.sh [build]   build what is missing, then import into each running node's
#                            containerd what it lacks (what node-up.sh calls)
#   hack/images.sh import    only import (fails if no node's containerd is running)
#   hack/images.sh list      print each image's reference and cached archive
#
# No registry can be reached, so every image starts from a Debian trixie rootfs made with
# debootstrap from the Debian mirror this machine's apt uses, or from scratch:
#   docker.io/pgop/debian-base:trixie    minbase, the layer every other Debian image shares
#   docker.io/pgop/runtime-base:trixie   + ca-certificates: FROM of Dockerfile.database
#   docker.io/pgop/backup-base:trixie    + postgresql-client-17: FROM of Dockerfile.backup
#   docker.io/library/postgres:17        + postgresql-17 and hack/images/postgres/docker-entrypoint.sh
#   docker.io/pgop/pause:1.0             the sandbox image, hack/images/pause/pause.c
#   docker.io/pgop/coredns:<version>     CoreDNS from its Go module, hack/images/coredns/main.go
#
# Each image is cached as an OCI archive under ~/.cache/pg-operators/images, named by a hash
# of its inputs: its recipe (the bash function that builds it), the files it copies, the
# mirror and its base image's hash. An unchanged input set is never rebuilt; a changed one
# rebuilds that image and those built FROM it. The base images are also kept in buildah's
# storage (reloaded from the archive when it was wiped), where `buildah bud --pull=never`
# finds them. Delete the cache directory to pick up newer Debian packages.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib/node.sh"

SUITE=trixie
PG_MAJOR=17

# ---------------------------------------------------------------------------------------
# Cleanup of whatever a failed build leaves: mounts inside a rootfs, buildah working
# containers, temporary directories. Registered once; entries are added as they are made.
CLEANUP_MOUNTS=()
CLEANUP_CONTAINERS=()
CLEANUP_DIRS=()
cleanup() {
  local i
  for ((i = ${#CLEANUP_MOUNTS[@]} - 1; i >= 0; i--)); do
    if mountpoint -q "${CLEANUP_MOUNTS[i]}"; then umount -l "${CLEANUP_MOUNTS[i]}" 2>/dev/null || true; fi
  done
  for i in "${CLEANUP_CONTAINERS[@]}"; do
    buildah rm "$i" >/dev/null 2>&1 || true
  done
  for i in "${CLEANUP_DIRS[@]}"; do rm -rf "$i"; done
  tidy_run_dirs
}
trap cleanup EXIT

# buildah leaves /run/runc and /run/containers behind (see docs/node.md). They only matter
# while a container is mounted, so remove them once nothing of buildah's is.
tidy_run_dirs() {
  if ! grep -q ' /var/lib/containers/storage/' /proc/mounts && ! process_running buildah; then
    rm -rf /run/containers
  fi
  rmdir /run/runc 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------
# Inputs.

# The Debian archive this machine's apt is configured with (deb822 or one-line format);
# its security archive is the same host's debian-security.
debian_mirror() {
  local uri
  uri=$(
    {
      sed -n 's/^[[:space:]]*URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | tr ' ' '\n'
      sed -n 's/^[[:space:]]*deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\).*/\2/p' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
    } | sed 's:/*$::' | grep -E '^https?://.*/debian$' | head -n1
  ) || true
  [[ -n $uri ]] || die "no Debian archive (a URI ending in /debian) in /etc/apt/sources.list*"
  echo "$uri"
}

# key PART...: a short hash of the parts (the image's inputs).
key() { printf '%s\n' "$@" | sha256sum | cut -c1-16; }

slug() { local r=${1#docker.io/}; r=${r//\//_}; echo "${r//:/_}"; }
archive_of() { echo "$PGOP_IMAGE_CACHE/$(slug "$1")-$2.oci.tar"; }

# The label records which inputs built an image in buildah's storage.
LABEL=io.pgop.input-hash
buildah_key() {
  buildah inspect --type image --format "{{index .OCIv1.Config.Labels \"$LABEL\"}}" "$1" 2>/dev/null || true
}

# ensure_image REF KEY BUILDER: the image REF, built by the function BUILDER (which commits
# REF to buildah's storage with the label), cached as an archive and present in buildah's
# storage, both for inputs KEY.
ensure_image() {
  local ref=$1 want=$2 builder=$3 archive
  archive=$(archive_of "$ref" "$want")
  if [[ $(buildah_key "$ref") != "$want" ]]; then
    if [[ -s $archive ]]; then
      log "loading $ref from $archive"
      local id
      id=$(buildah pull --quiet "oci-archive:$archive") || die "cannot load $archive"
      buildah tag "$id" "$ref"
    else
      local started=$SECONDS
      log "building $ref (inputs $want)"
      "$builder" "$ref" "$want"
      log "built $ref in $((SECONDS - started))s"
    fi
  fi
  # The short localhost/ name is what `FROM pgop/...` resolves to with --pull=never.
  if [[ $ref == docker.io/pgop/* ]]; then buildah tag "$ref" "localhost/${ref#docker.io/}"; fi
  if [[ ! -s $archive ]]; then
    mkdir -p "$PGOP_IMAGE_CACHE"
    rm -f "$PGOP_IMAGE_CACHE/$(slug "$ref")"-*.oci.tar
    buildah push --quiet "$ref" "oci-archive:$archive.partial:$ref" >/dev/null
    mv "$archive.partial" "$archive"
  fi
}

# ---------------------------------------------------------------------------------------
# Working in a rootfs.

# chroot_run ROOT CMD...: runs CMD in ROOT with /proc, /dev and name resolution, which
# apt and the packages' maintainer scripts need. Nothing of the host stays behind in ROOT.
chroot_run() {
  local root=$1 rc=0
  shift
  mkdir -p "$root/proc" "$root/dev"
  mount -t proc proc "$root/proc"
  CLEANUP_MOUNTS+=("$root/proc")
  mount --bind /dev "$root/dev"
  CLEANUP_MOUNTS+=("$root/dev")
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive chroot "$root" "$@" || rc=$?
  umount "$root/dev" "$root/proc"
  # containerd bind-mounts the pod's resolv.conf over this file.
  : >"$root/etc/resolv.conf"
  return "$rc"
}

# apt_install ROOT PKG...: installs without recommends and leaves no lists or caches.
apt_install() {
  local root=$1
  shift
  # Maintainer scripts chatter on stderr; keep it for when the install fails.
  local out
  out=$(mktemp)
  chroot_run "$root" sh -euc 'apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@"' \
    apt_install "$@" >"$out" 2>&1 || {
    tail -n 40 "$out" >&2
    rm -f "$out"
    die "installing $* in the image failed"
  }
  rm -f "$out"
  strip_rootfs "$root"
}

strip_rootfs() {
  local root=$1
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/var/log/apt/* "$root"/var/log/dpkg.log "$root"/var/log/alternatives.log \
    "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old "$root"/tmp/* "$root"/root/.cache
}

# new_container FROM: a buildah working container from FROM, mounted; sets WC (its name)
# and WM (its mount point). Globals, not output: a subshell could not register the cleanup.
new_container() {
  WC=$(buildah from --pull=never --quiet "$1")
  CLEANUP_CONTAINERS+=("$WC")
  WM=$(buildah mount "$WC")
}

# commit CONTAINER REF KEY CONFIG...: commits with the input label and buildah config flags.
commit() {
  local c=$1 ref=$2 want=$3
  shift 3
  buildah umount "$c" >/dev/null
  buildah config --label "$LABEL=$want" "$@" "$c"
  buildah commit --quiet --rm "$c" "$ref" >/dev/null
  CLEANUP_CONTAINERS=("${CLEANUP_CONTAINERS[@]/$c/}")
}

# ---------------------------------------------------------------------------------------
# Recipes. Each is part of its image's key (declare -f), so editing one rebuilds the image.

build_debian_base() {
  local ref=$1 want=$2 rootfs c m
  rootfs=$(mktemp -d /var/tmp/pgop-debootstrap.XXXXXX)
  CLEANUP_DIRS+=("$rootfs")
  # mktemp's 0700 would become the image's / and lock every non-root user out.
  chmod 755 "$rootfs"
  log "debootstrap $SUITE from $MIRROR"
  debootstrap --variant=minbase --arch=amd64 "$SUITE" "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 || {
    tail -n 30 "$rootfs.log" >&2
    die "debootstrap failed (log: $rootfs.log)"
  }
  rm -f "$rootfs.log"
  new_container scratch
  c=$WC m=$WM
  # The runtime gives every container its own /dev; the device nodes debootstrap made are
  # for the chroot only.
  tar -C "$rootfs" --exclude='./dev/*' -cf - . | tar -C "$m" -xpf -
  rm -rf "$rootfs"
  # Sources as apt on this machine names them: the same mirror, its security archive.
  rm -f "$m/etc/apt/sources.list"
  cat >"$m/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR}-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # Images carry no documentation or translations; copyright files stay (licences).
  cat >"$m/etc/dpkg/dpkg.cfg.d/pgop-slim" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-exclude=/usr/share/lintian/*
EOF
  # No pty for dpkg: the build's chroot has no /dev/pts.
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\nDpkg::Use-Pty "0";\n' \
    >"$m/etc/apt/apt.conf.d/90pgop"
  # No package may start a service while an image is built.
  printf '#!/bin/sh\nexit 101\n' >"$m/usr/sbin/policy-rc.d"
  chmod 755 "$m/usr/sbin/policy-rc.d"
  # Bring the debootstrapped release up to date with the security archive.
  chroot_run "$m" sh -euc 'apt-get update -qq && apt-get upgrade -y -qq >/dev/null' ||
    die "apt-get upgrade in the base image failed"
  find "$m/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete 2>/dev/null || true
  rm -rf "$m"/usr/share/man/* "$m"/usr/share/info/* "$m"/usr/share/locale/*
  strip_rootfs "$m"
  : >"$m/etc/resolv.conf"
  commit "$c" "$ref" "$want" --env LANG=C.UTF-8 --cmd '["/bin/bash"]'
}

build_runtime_base() {
  local ref=$1 want=$2 c m
  new_container "$DEBIAN_BASE_IMAGE"
  c=$WC m=$WM
  apt_install "$m" ca-certificates
  # A named unprivileged user for the operators (Dockerfiles say USER 65532).
  chroot_run "$m" sh -euc 'groupadd -K GID_MAX=65535 -g 65532 pgop &&
    useradd -K UID_MAX=65535 -u 65532 -g 65532 -M -d /nonexistent -s /usr/sbin/nologin pgop'
  commit "$c" "$ref" "$want"
}

build_backup_base() {
  local ref=$1 want=$2 c m
  new_container "$RUNTIME_BASE_IMAGE"
  c=$WC m=$WM
  apt_install "$m" "postgresql-client-$PG_MAJOR"
  [[ -x $m/usr/lib/postgresql/$PG_MAJOR/bin/pg_dump ]] || die "pg_dump $PG_MAJOR missing in $ref"
  # The versioned bin dir first: Debian's /usr/bin/pg_dump is a perl wrapper choosing among
  # installed versions, which needs cluster configuration an image does not have.
  commit "$c" "$ref" "$want" --env "PATH=/usr/lib/postgresql/$PG_MAJOR/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

build_postgres() {
  local ref=$1 want=$2 c m
  new_container "$RUNTIME_BASE_IMAGE"
  c=$WC m=$WM
  # uid/gid 999 like the official image, created before the package would pick 100; and no
  # cluster from postgresql-common: the entrypoint runs initdb into PGDATA.
  chroot_run "$m" sh -euc 'groupadd -r -g 999 postgres &&
    useradd -r -u 999 -g 999 -d /var/lib/postgresql -s /bin/bash postgres &&
    mkdir -p /etc/postgresql-common/createcluster.d &&
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/pgop.conf'
  # No JIT: LLVM and its z3 are 180 MB of the image, and the small test databases never
  # reach jit_above_cost. Without llvmjit.so the server runs with JIT unavailable.
  cat >"$m/etc/dpkg/dpkg.cfg.d/pgop-nojit" <<EOF
path-exclude=/usr/lib/x86_64-linux-gnu/libLLVM*
path-exclude=/usr/lib/x86_64-linux-gnu/libz3.so*
path-exclude=/usr/lib/postgresql/$PG_MAJOR/lib/llvmjit*
path-exclude=/usr/lib/postgresql/$PG_MAJOR/lib/bitcode/*
EOF
  apt_install "$m" "postgresql-$PG_MAJOR"
  # ssl-cert made a "snakeoil" key at install time; one key shared by every container of
  # the image protects nothing, and the server does not use it (ssl is off).
  rm -f "$m/etc/ssl/private/ssl-cert-snakeoil.key" "$m/etc/ssl/certs/ssl-cert-snakeoil.pem"
  local bin=$m/usr/lib/postgresql/$PG_MAJOR/bin
  for b in postgres initdb pg_ctl psql pg_isready pg_dump pg_restore; do
    [[ -x $bin/$b ]] || die "$b missing in $ref"
  done
  # Defaults every new cluster gets from initdb: listen on all addresses; the socket in /tmp
  # (containerd's tmpfs on /run hides /run/postgresql).
  sed -i -e "s/^#listen_addresses = 'localhost'/listen_addresses = '*'/" \
    -e "s|^#unix_socket_directories = .*|unix_socket_directories = '/tmp'|" \
    -e "s/^#jit = on/jit = off/" \
    "$m/usr/share/postgresql/$PG_MAJOR/postgresql.conf.sample"
  grep -q "^listen_addresses = '\*'" "$m/usr/share/postgresql/$PG_MAJOR/postgresql.conf.sample" ||
    die "could not set listen_addresses in postgresql.conf.sample"
  install -m 755 "$PGOP_REPO/hack/images/postgres/docker-entrypoint.sh" "$m/usr/local/bin/docker-entrypoint.sh"
  mkdir -p "$m/docker-entrypoint-initdb.d" "$m/var/lib/postgresql/data"
  chown -R 999:999 "$m/var/lib/postgresql"
  chmod 700 "$m/var/lib/postgresql/data"
  commit "$c" "$ref" "$want" \
    --env "PATH=/usr/lib/postgresql/$PG_MAJOR/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --env PG_MAJOR="$PG_MAJOR" --env PGDATA=/var/lib/postgresql/data --env PGHOST=/tmp \
    --cmd '["postgres"]' --entrypoint '["docker-entrypoint.sh"]' \
    --port 5432/tcp --stop-signal SIGINT
}

build_pause() {
  local ref=$1 want=$2 c m
  new_container scratch
  c=$WC m=$WM
  # Static: the image has nothing but this binary.
  gcc -static -Os -s -Wall -Wextra -Werror -o "$m/pause" "$PGOP_REPO/hack/images/pause/pause.c"
  commit "$c" "$ref" "$want" --entrypoint '["/pause"]' --user 65535:65535
}

# The CoreDNS binary, cached under ~/.cache/pg-operators/coredns by version and main.go.
coredns_binary() {
  local src=$PGOP_REPO/hack/images/coredns/main.go out
  out="$PGOP_CACHE/coredns/$COREDNS_VERSION-$(key "$(cat "$src")" "$(go env GOVERSION)")"
  if [[ ! -x $out/coredns ]]; then
    local work
    work=$(mktemp -d)
    CLEANUP_DIRS+=("$work")
    log "building CoreDNS $COREDNS_VERSION from its Go module"
    printf 'module pgop.local/coredns\n\ngo 1.26\n\nrequire github.com/coredns/coredns %s\n' \
      "$COREDNS_VERSION" >"$work/go.mod"
    cp "$src" "$work/main.go"
    (cd "$work" && go mod tidy >/dev/null 2>"$work/tidy.log") || {
      cat "$work/tidy.log" >&2
      die "resolving CoreDNS $COREDNS_VERSION failed"
    }
    mkdir -p "$out.partial"
    (cd "$work" && CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=pgop-$COREDNS_VERSION" \
      -o "$out.partial/coredns" .) || die "building CoreDNS failed"
    rm -rf "$out" && mv "$out.partial" "$out"
  fi
  echo "$out/coredns"
}

build_coredns() {
  local ref=$1 want=$2 c m bin
  bin=$(coredns_binary)
  new_container scratch
  c=$WC m=$WM
  install -m 755 "$bin" "$m/coredns"
  commit "$c" "$ref" "$want" --entrypoint '["/coredns"]' --user 65532:65532 \
    --port 53/udp --port 53/tcp --port 9153/tcp
}

# ---------------------------------------------------------------------------------------
# Keys: each image's inputs, including its base's key.

compute_keys() {
  MIRROR=$(debian_mirror)
  K_DEBIAN=$(key "$SUITE" "$MIRROR" "$(declare -f build_debian_base chroot_run strip_rootfs commit)")
  K_RUNTIME=$(key "$K_DEBIAN" "$(declare -f build_runtime_base apt_install)")
  K_BACKUP=$(key "$K_RUNTIME" "$PG_MAJOR" "$(declare -f build_backup_base)")
  K_POSTGRES=$(key "$K_RUNTIME" "$PG_MAJOR" "$(declare -f build_postgres)" \
    "$(cat "$PGOP_REPO/hack/images/postgres/docker-entrypoint.sh")")
  K_PAUSE=$(key "$(declare -f build_pause commit)" "$(cat "$PGOP_REPO/hack/images/pause/pause.c")")
  K_COREDNS=$(key "$COREDNS_VERSION" "$(declare -f build_coredns coredns_binary commit)" \
    "$(cat "$PGOP_REPO/hack/images/coredns/main.go")")
}

# The images the node runs, with their keys: what `import` loads into containerd.
node_images() {
  echo "$PAUSE_IMAGE $K_PAUSE"
  echo "$COREDNS_IMAGE $K_COREDNS"
  echo "$POSTGRES_IMAGE $K_POSTGRES"
}

build_all() {
  deps_ensure image machine || die "cannot install what building images needs"
  command -v go >/dev/null || die "go (1.26) is required to build CoreDNS and was not found"
  ensure_image "$DEBIAN_BASE_IMAGE" "$K_DEBIAN" build_debian_base
  ensure_image "$RUNTIME_BASE_IMAGE" "$K_RUNTIME" build_runtime_base
  ensure_image "$BACKUP_BASE_IMAGE" "$K_BACKUP" build_backup_base
  ensure_image "$POSTGRES_IMAGE" "$K_POSTGRES" build_postgres
  ensure_image "$PAUSE_IMAGE" "$K_PAUSE" build_pause
  ensure_image "$COREDNS_IMAGE" "$K_COREDNS" build_coredns
  prune_replaced
}

# Images of ours that lost their names to a rebuild. A base can only go after the images
# built on it, hence the rounds.
prune_replaced() {
  local ids _
  for _ in 1 2 3; do
    ids=$(buildah images --noheading --no-trunc --filter dangling=true --filter "label=$LABEL" --format '{{.ID}}')
    [[ -n $ids ]] || return 0
    # shellcheck disable=SC2086 # one word per id
    buildah rmi $ids >/dev/null 2>&1 || true
  done
}

# import_node: into the selected node's containerd, every image it lacks.
import_node() {
  local ref k archive
  while read -r ref k; do
    import_archive "$(archive_of "$ref" "$k")" "$ref"
  done < <(node_images)
  # The operators' images from the last hack/build-operator-images.sh, so a node started
  # after a purge has them too.
  for archive in "$PGOP_IMAGE_CACHE"/operators/*.oci.tar; do
    [[ -s $archive ]] || continue
    import_archive "$archive" "$(archive_ref "$archive")"
  done
}

# import_all: into every node whose containerd runs; each keeps its own image store, as
# separate machines do.
import_all() {
  local i nodes
  nodes=$(running_containerds)
  [[ -n $nodes || ${1:-} != required ]] || die "no node's containerd is running (hack/node-up.sh starts them)"
  for i in $nodes; do
    node_select "$i"
    import_node
  done
}

main() {
  need_root
  compute_keys
  case ${1:-build} in
    build)
      build_all
      import_all
      ;;
    import) import_all required ;;
    list)
      local ref k
      for ref in DEBIAN_BASE:K_DEBIAN RUNTIME_BASE:K_RUNTIME BACKUP_BASE:K_BACKUP \
        POSTGRES:K_POSTGRES PAUSE:K_PAUSE COREDNS:K_COREDNS; do
        k=${ref#*:}
        ref=${ref%%:*}_IMAGE
        echo "${!ref} $(archive_of "${!ref}" "${!k}")"
      done
      ;;
    *) die "usage: $0 [build|import|list]" ;;
  esac
}

main "$@"
