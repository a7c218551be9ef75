#!/usr/bin/env python3
"""Checks what `helm template` rendered from an operator's chart against the plain manifests.

    check-rendered-chart.py RENDERED.yaml deploy/<operator>/rbac.yaml \
        deploy/<operator>/leader-election-rbac.yaml

Fails unless the chart's ClusterRole has exactly the rules of the plain manifest's (both
are the operator's least privilege, kept in two places), unless the chart renders a Role
with exactly the rules of leader-election-rbac.yaml, bound to the Deployment's
ServiceAccount, when and only when its Deployment sets LEADER_ELECTION=true, and unless every
Pod template meets the restricted Pod Security profile, which kubeconform's schemas cannot
express.
"""

import sys

import yaml


def documents(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def one(docs, kind, path):
    found = [d for d in docs if d.get("kind") == kind]
    if len(found) != 1:
        sys.exit(f"check-rendered-chart: {path} has {len(found)} {kind}s, expected 1")
    return found[0]


def env_value(deployment, name):
    """The literal value of environment variable `name` in the Deployment's first container."""
    containers = deployment["spec"]["template"]["spec"].get("containers", [])
    for var in containers[0].get("env", []) if containers else []:
        if var.get("name") == name:
            return var.get("value")
    return None


def leader_election_problems(rendered, deployments, plain_path):
    """Whether the chart grants the Lease rules exactly when its operator elects a leader."""
    roles = [d for d in rendered if d.get("kind") == "Role"]
    bindings = [d for d in rendered if d.get("kind") == "RoleBinding"]
    electing = any(env_value(d, "LEADER_ELECTION") == "true" for d in deployments)
    if not electing:
        if roles or bindings:
            return ["Roles or RoleBindings rendered although LEADER_ELECTION is not true"]
        return []
    if len(roles) != 1 or len(bindings) != 1:
        return [f"LEADER_ELECTION=true needs one Role and one RoleBinding; rendered "
                f"{len(roles)} and {len(bindings)}"]
    problems = []
    role, binding = roles[0], bindings[0]
    plain_rules = one(documents(plain_path), "Role", plain_path).get("rules")
    if role.get("rules") != plain_rules:
        problems.append(f"the chart's Role rules differ from {plain_path}:\n"
                        f"  chart: {role.get('rules')}\n  plain: {plain_rules}")
    ref = binding.get("roleRef", {})
    if ref.get("kind") != "Role" or ref.get("name") != role["metadata"]["name"]:
        problems.append(f"RoleBinding {binding['metadata']['name']} does not bind Role {role['metadata']['name']}")
    accounts = {d["spec"]["template"]["spec"].get("serviceAccountName") for d in deployments}
    subjects = {s.get("name") for s in binding.get("subjects", []) if s.get("kind") == "ServiceAccount"}
    if not accounts <= subjects:
        problems.append(f"RoleBinding subjects {sorted(subjects)} miss the Deployment's ServiceAccount {sorted(accounts)}")
    return problems


def restricted_problems(deployment):
    """Where a Deployment's Pod template falls short of the restricted profile."""
    name = deployment["metadata"]["name"]
    spec = deployment["spec"]["template"]["spec"]
    pod = spec.get("securityContext", {})
    problems = []
    if pod.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append("Pod securityContext.seccompProfile.type is not RuntimeDefault")
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            problems.append(f"Pod sets {field}")
    for container in spec.get("initContainers", []) + spec.get("containers", []):
        ctx = container.get("securityContext", {})
        where = f"container {container['name']}"
        if not (ctx.get("runAsNonRoot") or pod.get("runAsNonRoot")):
            problems.append(f"{where} may run as root (runAsNonRoot unset)")
        if ctx.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where} allows privilege escalation")
        if ctx.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where} has a writable root filesystem")
        if ctx.get("privileged"):
            problems.append(f"{where} is privileged")
        caps = ctx.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            problems.append(f"{where} does not drop ALL capabilities")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{where} adds capabilities {caps['add']}")
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            if container.get(probe, {}).get("httpGet", {}).get("path") != path:
                problems.append(f"{where} has no {probe} on {path}")
        if not container.get("resources", {}).get("requests"):
            problems.append(f"{where} requests no resources")
    return [f"Deployment {name}: {p}" for p in problems]


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    rendered_path, rbac_path, leader_rbac_path = sys.argv[1:]
    rendered = documents(rendered_path)
    problems = []
    chart_rules = one(rendered, "ClusterRole", rendered_path).get("rules")
    plain_rules = one(documents(rbac_path), "ClusterRole", rbac_path).get("rules")
    if chart_rules != plain_rules:
        problems.append(f"the chart's ClusterRole rules differ from {rbac_path}:\n"
                        f"  chart: {chart_rules}\n  plain: {plain_rules}")
    deployments = [d for d in rendered if d.get("kind") == "Deployment"]
    if not deployments:
        problems.append("no Deployment rendered")
    for deployment in deployments:
        problems += restricted_problems(deployment)
    problems += leader_election_problems(rendered, deployments, leader_rbac_path)
    if problems:
        for problem in problems:
            print(f"check-rendered-chart: {rendered_path}: {problem}", file=sys.stderr)
        sys.exit(1)
    print(f"check-rendered-chart: {rendered_path}: RBAC as in {rbac_path} and "
          f"{leader_rbac_path} (when electing), restricted Pod Security profile")


if __name__ == "__main__":
    main()
