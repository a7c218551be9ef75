#!/usr/bin/env bash
# Restarts one control-plane component of the running test cluster, etcd or kube-apiserver,
# with exactly the command line and environment it runs with now, and waits until the API
# server is ready again. For the fault tests (crates/testenv: Cluster::restart_component):
# every client of the cluster, the node's kubelet included, loses its connections meanwhile.
#
#   hack/restart-component.sh etcd|kube-apiserver
#
# Settings: PGOP_CLUSTER_DIR (/var/tmp/pgop-cluster), PGOP_CLUSTER_TIMEOUT (120 s for the API
# server to be ready again). Prints nothing on stdout; on failure, the end of the component's log.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=hack/lib/proc.sh
source "$REPO/hack/lib/proc.sh"

STATE=${PGOP_CLUSTER_DIR:-/var/tmp/pgop-cluster}
TIMEOUT=${PGOP_CLUSTER_TIMEOUT:-120}

# shellcheck source=hack/lib/log.sh
source "$REPO/hack/lib/log.sh"

component=${1:-}
case $component in
  etcd | kube-apiserver) ;;
  *) die "usage: $0 etcd|kube-apiserver" ;;
esac
pidfile=$STATE/pids/$component.pid
logfile=$STATE/logs/$component.log
[[ -s $STATE/cluster.env ]] || die "no cluster in $STATE; start one with hack/cluster-up.sh"
# shellcheck disable=SC1091 # written by cluster-up.sh
source "$STATE/cluster.env"

# cluster-up.sh's lock: while it is held, a cluster-up.sh started by another test process
# waits instead of finding a component down and replacing the whole cluster.
exec 9>"$STATE.lock"
flock -w 600 9 || die "$STATE.lock is still held after 10 minutes (is a cluster-up.sh stuck?)"

proc_alive "$pidfile" || die "$component is not running (no live process in $pidfile)"
read -r pid _ <"$pidfile"
# Read before stopping it: the kernel keeps both NUL-separated, exactly as they were given.
mapfile -d '' -t command <"/proc/$pid/cmdline"
mapfile -d '' -t environment <"/proc/$pid/environ"
workdir=$(readlink "/proc/$pid/cwd")
((${#command[@]} > 0)) || die "cannot read the command line of $component (pid $pid)"

started=$SECONDS
# The API server stops listening at once on TERM, then may wait out in-flight requests for up
# to its request timeout (a minute) before it exits; past 10 seconds it is killed instead.
proc_stop "$pidfile" 10 || die "$component (pid $pid) did not stop"
echo "===== restart-component: restarting $component =====" >>"$logfile"
(cd "$workdir" && proc_start "$component" "$STATE/pids" "$logfile" env -i "${environment[@]}" "${command[@]}")

ready() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG" get --raw=/readyz --request-timeout=2s >/dev/null 2>&1; }
deadline=$((SECONDS + TIMEOUT))
until ready; do
  if ! proc_alive "$pidfile"; then
    tail -n 40 "$logfile" >&2 || true
    die "$component exited after its restart"
  fi
  if ((SECONDS >= deadline)); then
    tail -n 40 "$logfile" >&2 || true
    die "the API server was not ready within ${TIMEOUT}s of restarting $component"
  fi
  sleep 0.2
done
log "$component restarted; API server ready after $((SECONDS - started))s"
