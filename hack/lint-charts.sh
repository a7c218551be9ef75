#!/usr/bin/env bash
# Checks everything we ship besides the binaries, offline:
#   - the charts' CRDs are the generated ones (hack/sync-chart-crds.sh --check);
#   - `helm lint --strict` of each chart, with its defaults and with ci/*-values.yaml;
#   - values.schema.json rejects bad values, and the chart refuses replicas > 1 without
#     leader election;
#   - in deploy/<operator>, the Namespace is the file `kubectl apply -f` applies first;
#   - `helm template` output, the plain manifests in deploy/ and the samples validate with
#     kubeconform -strict against the schemas of Kubernetes $K8S_VERSION and of our CRDs;
#   - each chart's ClusterRole has exactly the rules of deploy/<operator>/rbac.yaml, its
#     leader-election Role (rendered only with leaderElection.enabled) those of
#     deploy/<operator>/leader-election-rbac.yaml, and its Deployment meets the restricted Pod
#     Security profile;
#   - the Prometheus alert rules pass `promtool check rules` and their unit tests, and the
#     Grafana dashboard queries only series the operators export.
#
# kubeconform's schemas usually come from GitHub, which we cannot reach. They are written
# instead by hack/kube-json-schemas.py from the OpenAPI document of the Kubernetes release the
# cluster runs (api/openapi-spec/swagger.json in the k8s.io/kubernetes Go module, the document
# its kube-apiserver serves) and from the CRDs: ours, and the Prometheus Operator's
# ServiceMonitor (from its Go module). Both modules come from the Go module proxy, so no
# cluster needs to be running. Schemas cannot hold CEL rules (x-kubernetes-validations): the
# real cluster tests cover those.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
PROMETHEUS_OPERATOR_VERSION="${PROMETHEUS_OPERATOR_VERSION:-v0.85.0}"
CHARTS=(database-operator backup-operator)

eval "$(hack/build-tools.sh --env)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
step() { echo "== $*"; }
fail() { echo "lint-charts: $*" >&2; failed=1; }

module_dir() {
  local dir
  dir=$(go mod download -json "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin).get("Dir", ""))')
  [[ -d $dir ]] || { echo "lint-charts: cannot download the Go module $1" >&2; exit 1; }
  echo "$dir"
}

step "chart CRDs match deploy/crds"
hack/sync-chart-crds.sh --check || failed=1

step "JSON schemas for Kubernetes $K8S_VERSION and the CRDs"
swagger="$(module_dir "k8s.io/kubernetes@$K8S_VERSION")/api/openapi-spec/swagger.json"
servicemonitor_crd="$(module_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml"
python3 hack/kube-json-schemas.py --out "$work/schemas" --swagger "$swagger" --builtin \
  --crd deploy/crds/*.yaml "$servicemonitor_crd"

# Every kind needs a schema (no -ignore-missing-schemas): an unknown kind is a failure.
kubeconform() {
  "$KUBECONFORM" -strict -summary -schema-location "$work/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json" "$@"
}

# expect_template_failure CHART MESSAGE ARGS...: `helm template` must fail and say MESSAGE.
expect_template_failure() {
  local chart=$1 message=$2 out
  shift 2
  if out=$("$HELM" template "$chart" "charts/$chart" "$@" 2>&1); then
    fail "helm template $chart $* succeeded; it must fail with: $message"
  elif [[ $out != *"$message"* ]]; then
    fail "helm template $chart $* failed without saying '$message':"$'\n'"$out"
  fi
}

for chart in "${CHARTS[@]}"; do
  dir=charts/$chart
  value_sets=("")
  for values in "$dir"/ci/*-values.yaml; do
    [[ -e $values ]] && value_sets+=("$values")
  done
  for values in "${value_sets[@]}"; do
    args=(--namespace "$chart-system" --kube-version "${K8S_VERSION#v}")
    label="defaults"
    [[ -z $values ]] || { args+=(--values "$values"); label=${values##*/}; }
    step "$chart ($label): helm lint --strict"
    "$HELM" lint --strict "$dir" "${args[@]}" || fail "helm lint $chart ($label)"
    step "$chart ($label): helm template | kubeconform"
    rendered="$work/$chart-${label%.yaml}.yaml"
    if "$HELM" template "$chart" "$dir" --include-crds "${args[@]}" >"$rendered"; then
      kubeconform "$rendered" || fail "kubeconform $chart ($label)"
      python3 hack/check-rendered-chart.py "$rendered" "deploy/$chart/rbac.yaml" \
        "deploy/$chart/leader-election-rbac.yaml" || failed=1
    else
      fail "helm template $chart ($label)"
    fi
  done
  step "$chart: bad values are refused"
  expect_template_failure "$chart" "logFormat" --set logFormat=xml
  expect_template_failure "$chart" "additional properties 'replica' not allowed" --set replica=2
  expect_template_failure "$chart" "/metrics/port" --set metrics.port=80
  expect_template_failure "$chart" "needs leaderElection.enabled=true" --set replicas=2
done

step "plain manifests: the Namespace comes first"
# `kubectl apply -f deploy/<operator>` applies the files in name order, and everything else
# there lives in the Namespace: a file sorting before it fails on a fresh cluster.
for chart in "${CHARTS[@]}"; do
  # shellcheck disable=SC2012 # the names are ours: no spaces or newlines
  first=$(LC_ALL=C ls "deploy/$chart" | head -n 1)
  grep -q '^kind: Namespace$' "deploy/$chart/$first" ||
    fail "deploy/$chart/$first is applied first but is not the Namespace (kubectl applies files in name order)"
done

step "plain manifests and samples: kubeconform"
kubeconform deploy/crds deploy/database-operator deploy/backup-operator deploy/samples ||
  fail "kubeconform deploy/"

step "alert rules: promtool"
"$PROMTOOL" check rules deploy/monitoring/alerts.yaml || fail "promtool check rules"
"$PROMTOOL" test rules deploy/monitoring/alerts.test.yaml || fail "promtool test rules"

step "Grafana dashboard"
python3 hack/check-dashboard.py --promtool "$PROMTOOL" deploy/monitoring/grafana-dashboard.json || failed=1

if ((failed)); then
  echo "lint-charts: FAILED" >&2
  exit 1
fi
echo "lint-charts: all checks passed"
