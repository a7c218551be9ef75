#!/usr/bin/env bash
# Builds the two operator images from Dockerfile.database and Dockerfile.backup and imports
# them into every node's containerd, where the kubelet finds them without pulling.
#
#   hack/build-operator-images.sh
#
# Settings (environment, with defaults):
#   PGOP_IMAGE_TAG=dev        images docker.io/pgop/database-operator:TAG and .../backup-operator:TAG
#                             (a pod spec may say pgop/database-operator:dev; never :latest,
#                             whose pull policy Always cannot work without a registry)
#   PGOP_IMAGE_PROFILE=dev    the cargo profile whose binaries the images carry: dev (the
#                             local cluster and the tests, sharing the tests' build) or
#                             release (what is shipped, see docs/shipping.md)
#   PGOP_SKIP_CARGO=          set to 1 to use the binaries already in the target dir
#   CARGO_TARGET_DIR=target   where cargo puts (or has put) target/<profile dir>/<binary>
#
# The Dockerfiles copy prebuilt binaries (COPY target/release/<name>, whatever the profile,
# stripped of symbols): cargo runs here on the host, with its caches, not inside buildah. The
# build context is a temporary directory holding only those binaries and
# hack/images/operators/collect.sh at the same relative paths, so buildah never reads the
# multi-gigabyte target/ tree. Bases come from hack/images.sh (--pull=never: nothing is
# fetched). The images are also kept as OCI archives under
# ~/.cache/pg-operators/images/operators, which hack/images.sh imports again after a node is
# recreated.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib/node.sh"

TAG=${PGOP_IMAGE_TAG:-dev}
ctx="" # the build context; global for the EXIT trap
LABEL=io.pgop.input-hash
TARGET_DIR=${CARGO_TARGET_DIR:-$PGOP_REPO/target}
PROFILE=${PGOP_IMAGE_PROFILE:-dev}
# cargo's directory for a profile: dev builds land in debug/.
PROFILE_DIR=$PROFILE
[[ $PROFILE == dev ]] && PROFILE_DIR=debug
# The first stage of both Dockerfiles runs it; it is part of the build context.
COLLECT=hack/images/operators/collect.sh
# Dockerfile, binary and image, one line each.
IMAGES=(
  "Dockerfile.database database-operator docker.io/pgop/database-operator:$TAG"
  "Dockerfile.backup backup-operator docker.io/pgop/backup-operator:$TAG"
)

main() {
  need_root
  local t0=$SECONDS
  deps_ensure image || die "cannot install what building images needs"
  # The bases (and every other image); a no-op when they are cached.
  bash "$PGOP_REPO/hack/images.sh" build >&2 || die "hack/images.sh failed"

  if [[ -z ${PGOP_SKIP_CARGO:-} ]]; then
    log "cargo build --profile $PROFILE (database-operator, backup-operator)"
    (cd "$PGOP_REPO" && cargo build --profile "$PROFILE" --locked -p database-operator -p backup-operator) >&2 ||
      die "cargo build --profile $PROFILE failed"
  fi

  ctx=$(mktemp -d /var/tmp/pgop-image-ctx.XXXXXX)
  trap 'rm -rf "$ctx"' EXIT
  mkdir -p "$ctx/target/release" "$ctx/$(dirname "$COLLECT")" "$PGOP_IMAGE_CACHE/operators"
  cp "$PGOP_REPO/$COLLECT" "$ctx/$COLLECT"
  local line dockerfile bin ref archive node
  for line in "${IMAGES[@]}"; do
    read -r dockerfile bin ref <<<"$line"
    [[ -f $PGOP_REPO/$dockerfile ]] || die "$dockerfile is missing in $PGOP_REPO"
    [[ -x $TARGET_DIR/$PROFILE_DIR/$bin ]] || die "$TARGET_DIR/$PROFILE_DIR/$bin is missing (cargo build --profile $PROFILE -p $bin)"
    # A dev binary's line tables serve test backtraces on the host, not an image.
    strip --strip-all -o "$ctx/target/release/$bin" "$TARGET_DIR/$PROFILE_DIR/$bin"
  done

  for line in "${IMAGES[@]}"; do
    read -r dockerfile bin ref <<<"$line"
    local started=$SECONDS previous from key
    archive="$PGOP_IMAGE_CACHE/operators/${bin}.oci.tar"
    # Unchanged Dockerfile, collect script, binary and base: the image would differ in
    # timestamps only, and cost a re-import; keep it. The base is the first stage's FROM.
    from=$(sed -n 's/^FROM[[:space:]]\+\([^[:space:]]\+\).*/\1/p' "$PGOP_REPO/$dockerfile" | head -n1)
    key=$(cat "$PGOP_REPO/$dockerfile" "$PGOP_REPO/$COLLECT" <(sha256sum <"$ctx/target/release/$bin") \
      <(buildah images --noheading --no-trunc --format '{{.ID}}' "$from" 2>/dev/null) <(echo "$ref") |
      sha256sum | cut -c1-16)
    if [[ -s $archive && $(cat "$archive.key" 2>/dev/null) == "$key" &&
      $(buildah inspect --type image --format "{{index .OCIv1.Config.Labels \"$LABEL\"}}" "$ref" 2>/dev/null) == "$key" ]]; then
      log "$ref is up to date"
    else
      previous=$(buildah images --noheading --no-trunc --format '{{.ID}}' "$ref" 2>/dev/null || true)
      buildah bud --quiet --pull=never --layers=false --label "$LABEL=$key" \
        -f "$PGOP_REPO/$dockerfile" -t "$ref" "$ctx" >/dev/null || die "buildah bud -f $dockerfile failed"
      buildah push --quiet "$ref" "oci-archive:$archive.partial:$ref" >/dev/null
      mv "$archive.partial" "$archive"
      echo "$key" >"$archive.key"
      log "built $ref in $((SECONDS - started))s"
      # The image this one replaced has no name left.
      if [[ -n $previous && $previous != "$(buildah images --noheading --no-trunc --format '{{.ID}}' "$ref")" ]]; then
        buildah rmi "$previous" >/dev/null 2>&1 || true
      fi
    fi
    for node in $(running_containerds); do
      node_select "$node"
      import_archive "$archive" "$ref"
    done
  done
  [[ -n $(running_containerds) ]] || log "no node's containerd is running: hack/node-up.sh imports the images when it starts"
  log "operator images ready in $((SECONDS - t0))s"
}

main "$@"
