#!/usr/bin/env bash
# Writes a kubeconfig that acts as an operator's ServiceAccount, so tests and local runs go
# through the RBAC rules the operator ships with, not through cluster-admin.
#
#   hack/operator-kubeconfig.sh database-operator|backup-operator
#
# Applies deploy/<operator>/{00-namespace,serviceaccount,rbac}.yaml to the running test cluster
# (hack/cluster-up.sh), asks the TokenRequest API for a 24-hour token of ServiceAccount
# <operator> in namespace <operator>-system, and writes <state>/<operator>.kubeconfig, whose
# path is the last line printed. PGOP_DEPLOY_DIR overrides where the manifests are read from.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=hack/lib/pki.sh
source "$REPO/hack/lib/pki.sh"

STATE=${PGOP_CLUSTER_DIR:-/var/tmp/pgop-cluster}
DEPLOY=${PGOP_DEPLOY_DIR:-$REPO/deploy}

# shellcheck source=hack/lib/log.sh
source "$REPO/hack/lib/log.sh"

operator=${1:-}
case $operator in
  database-operator | backup-operator) ;;
  *) die "usage: $0 database-operator|backup-operator" ;;
esac
namespace=$operator-system

[[ -s $STATE/cluster.env ]] || die "no cluster in $STATE; start one with hack/cluster-up.sh"
# shellcheck disable=SC1091 # written by cluster-up.sh
source "$STATE/cluster.env"
kubectl() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG" "$@"; }

manifests=()
for f in 00-namespace serviceaccount rbac; do
  [[ -s $DEPLOY/$operator/$f.yaml ]] || die "$DEPLOY/$operator/$f.yaml is missing"
  manifests+=(-f "$DEPLOY/$operator/$f.yaml")
done
# Server-side apply, forced: the manifests in the repository are the truth, even where a test
# changed a field by hand before.
kubectl apply --server-side --force-conflicts --field-manager=pgop-hack "${manifests[@]}" >&2

token=$(kubectl create token "$operator" --namespace="$namespace" --duration=24h) ||
  die "TokenRequest for ServiceAccount $namespace/$operator failed (does serviceaccount.yaml create it there?)"

out=$STATE/$operator.kubeconfig
pki_token_kubeconfig "$out" "$PGOP_APISERVER_URL" "$PGOP_PKI_DIR/ca.crt" "$operator" "$token"
echo "$out"
