#!/usr/bin/env bash
# Starts a real Kubernetes control plane on this machine for the tests, or reuses a running one.
#
# etcd, kube-apiserver, kube-controller-manager and kube-scheduler run as plain processes (no
# containers, no kind: the machines have no Docker). The API server enforces RBAC and writes an
# audit log of every write, so tests can run the operators under their own ServiceAccounts and
# count their writes from the server's side. The node scripts (hack/node-*.sh) add a kubelet.
#
# The last line printed is `export KUBECONFIG=<state>/admin.kubeconfig`, so
#   eval "$(hack/cluster-up.sh | tail -n1)"
# points kubectl at it. Settings (environment, with defaults):
#   PGOP_CLUSTER_DIR=/var/tmp/pgop-cluster   state: pki, etcd data, logs, pid files, kubeconfigs
#   PGOP_ETCD_PORT=2379 PGOP_ETCD_PEER_PORT=2380 PGOP_APISERVER_PORT=6443
#   PGOP_CONTROLLER_MANAGER_PORT=10257 PGOP_SCHEDULER_PORT=10259
#   PGOP_ADVERTISE_ADDRESS=127.0.0.1         address published in the `kubernetes` Service
#   PGOP_CLUSTER_TIMEOUT=120                 seconds to wait for readiness before failing
#   PGOP_NODE=1                              also start (or reuse) the nodes with hack/node-up.sh
#                                            (PGOP_NODES of them, default 1); the API server
#                                            then advertises the nodes' bridge, 10.244.0.1
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=hack/lib/proc.sh
source "$REPO/hack/lib/proc.sh"
# shellcheck source=hack/lib/pki.sh
source "$REPO/hack/lib/pki.sh"
# shellcheck source=hack/lib/deps.sh
source "$REPO/hack/lib/deps.sh"

STATE=${PGOP_CLUSTER_DIR:-/var/tmp/pgop-cluster}
WITH_NODE=${PGOP_NODE:-0}
NODE_ADDRESS=10.244.0.1
# Treated as if given explicitly, so a running cluster advertising 127.0.0.1 is replaced.
if [[ $WITH_NODE == 1 && -z ${PGOP_ADVERTISE_ADDRESS+set} ]]; then
  PGOP_ADVERTISE_ADDRESS=$NODE_ADDRESS
fi
ETCD_PORT=${PGOP_ETCD_PORT:-2379}
ETCD_PEER_PORT=${PGOP_ETCD_PEER_PORT:-2380}
API_PORT=${PGOP_APISERVER_PORT:-6443}
KCM_PORT=${PGOP_CONTROLLER_MANAGER_PORT:-10257}
SCHEDULER_PORT=${PGOP_SCHEDULER_PORT:-10259}
ADVERTISE=${PGOP_ADVERTISE_ADDRESS:-127.0.0.1}
TIMEOUT=${PGOP_CLUSTER_TIMEOUT:-120}
SERVICE_CIDR=10.96.0.0/16
API_URL=https://127.0.0.1:$API_PORT
PKI=$STATE/pki
PIDS=$STATE/pids
LOGS=$STATE/logs
ADMIN_KUBECONFIG=$STATE/admin.kubeconfig
# Started in this order; liveness and failure reports walk the same list.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler)

# shellcheck source=hack/lib/log.sh
source "$REPO/hack/lib/log.sh"
now_ms() { echo $(($(date +%s%N) / 1000000)); }
elapsed() { printf '%d.%01ds' $((($(now_ms) - $1) / 1000)) $(((($(now_ms) - $1) % 1000) / 100)); }

kubectl_admin() { "$K8S_BIN/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }

api_ready() { kubectl_admin get --raw=/readyz --request-timeout=2s >/dev/null 2>&1; }

control_plane_alive() {
  local c
  for c in "${COMPONENTS[@]}"; do proc_alive "$PIDS/$c.pid" || return 1; done
  [[ -s $ADMIN_KUBECONFIG ]] && api_ready
}

# A setting given explicitly that differs from the running cluster's (for example the node
# script asking for the bridge address) means the running cluster is not the one wanted. An
# unset one accepts whatever runs, so tests reuse the cluster a node script started.
settings_differ() {
  [[ -s $STATE/cluster.env ]] || return 0
  local var recorded
  for var in PGOP_ADVERTISE_ADDRESS PGOP_APISERVER_PORT PGOP_ETCD_PORT; do
    [[ -n ${!var+set} ]] || continue
    recorded=$(
      # shellcheck disable=SC1091 # written by write_env below
      source "$STATE/cluster.env"
      echo "${!var:-}"
    )
    if [[ $recorded != "${!var}" ]]; then
      log "the running cluster has $var=$recorded, $var=${!var} was asked for"
      return 0
    fi
  done
  return 1
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

check_ports() {
  local p
  for p in "$ETCD_PORT" "$ETCD_PEER_PORT" "$API_PORT" "$KCM_PORT" "$SCHEDULER_PORT"; do
    if port_in_use "$p"; then
      local owner=""
      command -v ss >/dev/null && owner=$(ss -ltnpH "sport = :$p" 2>/dev/null | grep -o 'users:.*' | head -n1)
      die "port $p is already in use ${owner:+($owner)}; stop that process (hack/cluster-down.sh if it is an old cluster) or choose other PGOP_*_PORT values"
    fi
  done
}

# Tails a component's log into the error, so a failed start explains itself in CI output.
fail_component() {
  local name=$1 why=$2
  log "ERROR: $name $why; last lines of $LOGS/$name.log:"
  tail -n 40 "$LOGS/$name.log" >&2 2>/dev/null || true
  exit 1
}

check_components_alive() {
  local c
  for c in "${COMPONENTS[@]}"; do
    [[ -e $PIDS/$c.pid ]] || continue
    proc_alive "$PIDS/$c.pid" || fail_component "$c" "exited during start-up"
  done
}

make_pki() {
  pki_ca "$PKI"
  local sans=(IP:127.0.0.1 IP:10.244.0.1 IP:10.96.0.1 DNS:localhost DNS:kubernetes DNS:kubernetes.default
    DNS:kubernetes.default.svc DNS:kubernetes.default.svc.cluster.local)
  [[ " ${sans[*]} " == *" IP:$ADVERTISE "* ]] || sans+=("IP:$ADVERTISE")
  pki_cert "$PKI" kube-apiserver kube-apiserver "" server "${sans[@]}"
  pki_cert "$PKI" admin kubernetes-admin system:masters client
  pki_cert "$PKI" kube-controller-manager system:kube-controller-manager "" client
  pki_cert "$PKI" kube-scheduler system:kube-scheduler "" client
  pki_cert "$PKI" kube-apiserver-kubelet-client kube-apiserver-kubelet-client system:masters client
  # The front-proxy (request header) identity: the controller manager and scheduler read its CA
  # from the API server and log an error every few seconds while it is missing.
  pki_cert "$PKI" front-proxy-client front-proxy-client "" client
  # Serving certificates for the controller manager's and scheduler's health ports; without
  # them each writes a self-signed pair into its working directory.
  pki_cert "$PKI" kube-controller-manager-serving kube-controller-manager "" server IP:127.0.0.1 DNS:localhost
  pki_cert "$PKI" kube-scheduler-serving kube-scheduler "" server IP:127.0.0.1 DNS:localhost
  pki_service_account_keys "$PKI"
  pki_kubeconfig "$ADMIN_KUBECONFIG" "$API_URL" "$PKI/ca.crt" kubernetes-admin "$PKI/admin.crt" "$PKI/admin.key"
  local c
  for c in kube-controller-manager kube-scheduler; do
    pki_kubeconfig "$STATE/$c.kubeconfig" "$API_URL" "$PKI/ca.crt" "system:$c" "$PKI/$c.crt" "$PKI/$c.key"
  done
}

write_audit_policy() {
  # Only writes, at Metadata level (who, what, when; no bodies), one event per request
  # (RequestReceived is omitted): the steady-state tests count an operator's writes, and
  # reads would bury them.
  cat >"$STATE/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  verbs: [create, update, patch, delete, deletecollection]
- level: None
EOF
}

start_etcd() {
  # --unsafe-no-fsync: the data is thrown away with the cluster, and fsync dominates etcd's
  # write latency on these VMs.
  proc_start etcd "$PIDS" "$LOGS/etcd.log" "$ETCD_BIN/etcd" \
    --name=pgop --data-dir="$STATE/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="pgop=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --log-level=warn
  # The API server retries etcd too, but waiting here turns a broken etcd into a clear error.
  local deadline=$((SECONDS + 20))
  until port_in_use "$ETCD_PORT"; do
    check_components_alive
    ((SECONDS < deadline)) || fail_component etcd "did not listen on port $ETCD_PORT within 20s"
    sleep 0.1
  done
}

start_apiserver() {
  # --kubelet-preferred-address-types: the node's hostname may not resolve, its InternalIP does.
  # No --kubelet-certificate-authority: a kubelet may serve a self-signed certificate.
  # PodNodeSelector: test namespaces annotated with a node selector that no node matches keep
  # their Pods unscheduled even with a node, so those tests can play the kubelet.
  local extra=()
  # Endpoints may not hold a loopback address: without a node (no bridge address) the
  # `kubernetes` Service gets no endpoints instead of an error in the log every 10 seconds.
  [[ $ADVERTISE == 127.* ]] && extra+=(--endpoint-reconciler-type=none)
  proc_start kube-apiserver "$PIDS" "$LOGS/kube-apiserver.log" "$K8S_BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --secure-port="$API_PORT" --bind-address=0.0.0.0 --advertise-address="$ADVERTISE" \
    --tls-cert-file="$PKI/kube-apiserver.crt" --tls-private-key-file="$PKI/kube-apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NodeRestriction,PodNodeSelector \
    --allow-privileged=true \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-signing-key-file="$PKI/sa.key" \
    --service-account-key-file="$PKI/sa.pub" \
    --kubelet-client-certificate="$PKI/kube-apiserver-kubelet-client.crt" \
    --kubelet-client-key="$PKI/kube-apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP,Hostname \
    --audit-policy-file="$STATE/audit-policy.yaml" \
    --audit-log-path="$STATE/audit.log" --audit-log-format=json --audit-log-mode=blocking \
    --requestheader-client-ca-file="$PKI/ca.crt" --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key" \
    --profiling=false "${extra[@]}"
}

# The node monitor: a node whose kubelet has not renewed its lease (every 3 s, see
# hack/lib/node-start.sh) for 14 s is NotReady, checked every 2 s, so within 20 s of its
# loss; upstream's 40-50 s is too slow to show or test failover on a lost node (docs/node.md).
start_controllers() {
  local kc=$STATE/kube-controller-manager.kubeconfig
  proc_start kube-controller-manager "$PIDS" "$LOGS/kube-controller-manager.log" "$K8S_BIN/kube-controller-manager" \
    --kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
    --secure-port="$KCM_PORT" --bind-address=127.0.0.1 \
    --tls-cert-file="$PKI/kube-controller-manager-serving.crt" \
    --tls-private-key-file="$PKI/kube-controller-manager-serving.key" \
    --use-service-account-credentials=true \
    --root-ca-file="$PKI/ca.crt" \
    --service-account-private-key-file="$PKI/sa.key" \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --controllers='*' \
    --node-monitor-period=2s --node-monitor-grace-period=14s \
    --leader-elect=false --profiling=false
  kc=$STATE/kube-scheduler.kubeconfig
  proc_start kube-scheduler "$PIDS" "$LOGS/kube-scheduler.log" "$K8S_BIN/kube-scheduler" \
    --kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
    --secure-port="$SCHEDULER_PORT" --bind-address=127.0.0.1 \
    --tls-cert-file="$PKI/kube-scheduler-serving.crt" --tls-private-key-file="$PKI/kube-scheduler-serving.key" \
    --leader-elect=false --profiling=false
}

wait_apiserver() {
  local deadline=$((SECONDS + TIMEOUT))
  until api_ready; do
    check_components_alive
    if ((SECONDS >= deadline)); then
      log "the API server's failing checks:"
      kubectl_admin get --raw='/readyz?verbose' --request-timeout=5s 2>&1 | grep -v '\] ok$' >&2 || true
      fail_component kube-apiserver "was not ready within ${TIMEOUT}s"
    fi
    sleep 0.2
  done
}

wait_controllers() {
  # Pods and TokenRequests in a namespace need its `default` ServiceAccount, which the
  # controller manager creates; until it exists the cluster is not usable for tests.
  local deadline=$((SECONDS + TIMEOUT))
  until kubectl_admin get serviceaccount default --namespace=default --request-timeout=2s >/dev/null 2>&1; do
    check_components_alive
    ((SECONDS < deadline)) ||
      fail_component kube-controller-manager "did not create the default ServiceAccount within ${TIMEOUT}s"
    sleep 0.2
  done
}

stop_started() {
  local c
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    c=${COMPONENTS[i]}
    [[ -e $PIDS/$c.pid ]] && proc_stop "$PIDS/$c.pid" 5
  done
  log "stopped the partly started control plane; logs remain in $LOGS"
}

# The node runs under this script's lock (PGOP_CLUSTER_LOCKED tells node-up.sh not to call
# back into cluster-up.sh); it reuses a healthy node.
start_node() {
  [[ $WITH_NODE == 1 ]] || return 0
  [[ -f $REPO/hack/node-up.sh ]] || die "PGOP_NODE=1 but there is no hack/node-up.sh"
  PGOP_CLUSTER_LOCKED=1 PGOP_CLUSTER_DIR=$STATE bash "$REPO/hack/node-up.sh" >&2 ||
    die "hack/node-up.sh failed; the control plane keeps running (hack/cluster-down.sh stops it)"
}

write_env() {
  # For the node scripts and testenv: one place that says where everything is.
  local tmp
  tmp=$(mktemp "$STATE/cluster.env.XXXXXX")
  {
    printf 'PGOP_CLUSTER_DIR=%q\n' "$STATE"
    printf 'K8S_BIN=%q\n' "$K8S_BIN"
    printf 'ETCD_BIN=%q\n' "$ETCD_BIN"
    printf 'KUBECONFIG=%q\n' "$ADMIN_KUBECONFIG"
    printf 'PGOP_PKI_DIR=%q\n' "$PKI"
    printf 'PGOP_APISERVER_URL=%q\n' "$API_URL"
    printf 'PGOP_APISERVER_PORT=%q\n' "$API_PORT"
    printf 'PGOP_ADVERTISE_ADDRESS=%q\n' "$ADVERTISE"
    printf 'PGOP_ETCD_PORT=%q\n' "$ETCD_PORT"
    printf 'PGOP_SERVICE_CIDR=%q\n' "$SERVICE_CIDR"
    printf 'PGOP_AUDIT_LOG=%q\n' "$STATE/audit.log"
  } >"$tmp"
  mv -f "$tmp" "$STATE/cluster.env"
}

main() {
  deps_ensure cluster || die "cannot install what the control plane needs"
  # The Go toolchain lives outside PATH in some non-login shells (cargo test, CI).
  command -v go >/dev/null || [[ ! -x /usr/local/go/bin/go ]] || PATH=$PATH:/usr/local/go/bin

  mkdir -p "$(dirname "$STATE")"
  # Test processes run this concurrently (one per test binary); the lock makes one of them
  # start the cluster and the others reuse it. Its file lives beside the state dir, which
  # cluster-down.sh removes.
  exec 9>"$STATE.lock"
  if ! flock -n 9; then
    log "waiting for another cluster-up.sh or cluster-down.sh to finish"
    flock -w 1800 9 || die "still locked after 30 minutes: $STATE.lock (is a cluster-up.sh stuck?)"
  fi

  # Its progress goes to stderr as it happens (a first build takes minutes); only the two
  # result lines are kept.
  local build_out
  build_out=$(bash "$REPO/hack/build-k8s.sh" | while IFS= read -r line; do
    case $line in
      K8S_BIN=* | ETCD_BIN=*) echo "$line" ;;
      *) echo "$line" >&2 ;;
    esac
  done) || die "hack/build-k8s.sh failed"
  K8S_BIN=$(sed -n 's/^K8S_BIN=//p' <<<"$build_out")
  ETCD_BIN=$(sed -n 's/^ETCD_BIN=//p' <<<"$build_out")
  [[ -x $K8S_BIN/kube-apiserver && -x $ETCD_BIN/etcd ]] || die "hack/build-k8s.sh did not report usable binaries"

  local t0
  t0=$(now_ms)
  if [[ -d $STATE ]]; then
    if control_plane_alive && ! settings_differ; then
      log "reusing the running control plane in $STATE (checked in $(elapsed "$t0"))"
      start_node
      echo "export KUBECONFIG=$ADMIN_KUBECONFIG"
      return
    fi
    log "$STATE holds a stopped, partial or differently configured cluster; replacing it"
    PGOP_CLUSTER_LOCKED=1 PGOP_CLUSTER_DIR=$STATE bash "$REPO/hack/cluster-down.sh"
    t0=$(now_ms)
  fi

  check_ports
  mkdir -p "$STATE" "$PKI" "$PIDS" "$LOGS"
  # A failed start stops what it started (the logs stay for inspection); the next run then
  # finds no live processes and starts afresh.
  trap 'stop_started' EXIT
  chmod 700 "$STATE"
  make_pki
  write_audit_policy
  start_etcd
  local t_etcd t_api
  t_etcd=$(elapsed "$t0")
  start_apiserver
  wait_apiserver
  t_api=$(elapsed "$t0")
  # Only now: the controller manager and scheduler give up at once when the API server does
  # not answer their first request (the delegated-authentication ConfigMap).
  start_controllers
  wait_controllers
  log "etcd up at $t_etcd, API server ready at $t_api, default ServiceAccount at $(elapsed "$t0")"
  write_env
  trap - EXIT
  log "control plane ready in $(elapsed "$t0") (API server $API_URL, advertised as $ADVERTISE, logs in $LOGS)"
  start_node
  echo "export KUBECONFIG=$ADMIN_KUBECONFIG"
}

main "$@"
