#!/usr/bin/env bash
# Removes the operators `./justw up` installed from deploy/ (their namespaces), so the tests'
# and benchmarks' own operator processes are the only ones reconciling: two database-operators
# would fight over every StatefulSet. The test harness (crates/testenv) runs it when it first
# reaches the cluster. The cluster, the samples and the built images stay; `./justw up`
# installs the operators again in seconds.
set -euo pipefail
env_file=${PGOP_CLUSTER_DIR:-/var/tmp/pgop-cluster}/cluster.env
[[ -s $env_file ]] || exit 0
k8s_bin=$(sed -n 's/^K8S_BIN=//p' "$env_file")
kubeconfig=$(dirname "$env_file")/admin.kubeconfig
kubectl() { "$k8s_bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }
for ns in database-operator-system backup-operator-system; do
  if kubectl get namespace "$ns" >/dev/null 2>&1; then
    echo "stop-quickstart: removing the quick start's operators in $ns (./justw up brings them back)" >&2
    kubectl delete namespace "$ns" --wait=true --timeout=120s >/dev/null
  fi
done
