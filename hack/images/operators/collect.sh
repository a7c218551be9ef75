#!/bin/sh
# Copies programs and exactly what they need at run time into a root directory for a
# `FROM scratch` image: each program, the shared libraries the dynamic loader lists for it,
# the CA certificates, a writable /tmp and the passwd/group entries of the non-root user.
# Runs inside the first stage of Dockerfile.database and Dockerfile.backup, on the
# pgop/*-base images, so what the loader finds there is what the Pod gets.
#
#   collect.sh <root> <program>...   every program lands in <root>/usr/local/bin
#
# A library the loader cannot find fails the image build here, not the Pod at start.
set -eu
root=$1
shift
mkdir -p "$root/usr/local/bin" "$root/etc" "$root/tmp"
for program in "$@"; do
  cp -L "$program" "$root/usr/local/bin/"
  libs=$(/lib64/ld-linux-x86-64.so.2 --list "$program")
  if echo "$libs" | grep -q 'not found'; then
    echo "$program: $libs" >&2
    exit 1
  fi
  # Lines are `name => /path (address)` or `/path (address)` for the loader itself.
  for lib in $(echo "$libs" | awk '$2 == "=>" {print $3} $1 ~ /^\// {print $1}'); do
    cp --parents -L "$lib" "$root/"
  done
done
cp --parents -L /etc/ssl/certs/ca-certificates.crt "$root/"
chmod 1777 "$root/tmp"
echo 'operator:x:65532:65532:operator:/nonexistent:/nonexistent' >"$root/etc/passwd"
echo 'operator:x:65532:' >"$root/etc/group"
