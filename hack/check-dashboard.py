#!/usr/bin/env python3
"""Checks deploy/monitoring/grafana-dashboard.json against the metrics the operators export.

Fails when the file is not JSON, when a panel has no query, when a query names no metric of
the operators or names one they do not export (a typo, or a metric renamed in the code), or
when an exported metric has no panel, or when a metric named in the operators' sources is
missing from its list of exported series (a new metric without a panel). With --promtool, every
query must also parse as PromQL.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

# Every series the operators export (crates/*/src/**/metrics.rs), and whether it is a
# histogram (queried through its _bucket, _sum and _count series).
SERIES = {
    "database_operator_reconciliations_total": False,
    "database_operator_reconcile_errors_total": False,
    "database_operator_reconcile_duration_seconds": True,
    "database_operator_databases": False,
    "database_operator_leader": False,
    "backup_operator_runs_total": False,
    "backup_operator_run_duration_seconds": True,
    "backup_operator_bytes_written_total": False,
    "backup_operator_last_success_timestamp_seconds": False,
    "backup_operator_reconcile_errors_total": False,
    "backup_operator_leader": False,
    "backup_operator_restores_total": False,
    "backup_operator_verifications_total": False,
    "backup_operator_last_verified_timestamp_seconds": False,
    "backup_operator_wal_archive_age_seconds": False,
    "backup_operator_archive_healthy": False,
    "database_operator_instance_role": False,
    "database_operator_instance_lag_bytes": False,
    "database_operator_failovers_total": False,
}
# Where the operators register their metrics. The WAL archiver's own /metrics (backup-data) is
# served by each archiver Pod, which the charts' ServiceMonitors do not scrape; the operator
# exports what the dashboard and the alerts need from it.
METRIC_SOURCES = ("crates/database-operator/src", "crates/backup-operator/src", "crates/operator-runtime/src")
REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
METRIC_NAME = re.compile(r"\b(?:database|backup)_operator_[a-z0-9_]+\b")
# Grafana's variables, replaced by what they stand for so promtool can parse the query.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def series_of(name):
    """The exported series `name` refers to, or None."""
    if name in SERIES:
        return name
    for suffix in HISTOGRAM_SUFFIXES:
        base = name[: -len(suffix)]
        if name.endswith(suffix) and SERIES.get(base):
            return base
    return None


def named_in_sources():
    """Every full metric name written as a string literal in the operators' sources."""
    literal = re.compile(r'"((?:database|backup)_operator_[a-z0-9_]+)"')
    names = set()
    for source in METRIC_SOURCES:
        for directory, _, files in os.walk(os.path.join(REPO, source)):
            for file in files:
                if file.endswith(".rs"):
                    with open(os.path.join(directory, file)) as f:
                        names.update(literal.findall(f.read()))
    return names


def panels_of(items):
    for panel in items:
        yield panel
        yield from panels_of(panel.get("panels", []))


def check(dashboard):
    problems, used, exprs, ids = [], set(), [], set()
    for panel in panels_of(dashboard.get("panels", [])):
        title = panel.get("title", "<untitled>")
        if panel.get("id") in ids:
            problems.append(f"panel {title!r}: id {panel.get('id')} is used twice")
        ids.add(panel.get("id"))
        if panel.get("type") == "row":
            continue
        targets = panel.get("targets", [])
        if not targets:
            problems.append(f"panel {title!r} has no query")
        for target in targets:
            expr = target.get("expr", "")
            names = METRIC_NAME.findall(expr)
            known = {n: series_of(n) for n in names}
            unknown = sorted(n for n, s in known.items() if s is None)
            if unknown:
                problems.append(f"panel {title!r} queries series the operators do not export: {', '.join(unknown)}")
            if not any(known.values()):
                problems.append(f"panel {title!r} query {target.get('refId')} names none of the operators' series: {expr!r}")
            used.update(s for s in known.values() if s)
            exprs.append((title, expr))
            if target.get("datasource", panel.get("datasource", {})).get("uid") != "${datasource}":
                problems.append(f"panel {title!r} does not use the dashboard's datasource variable")
    for name in sorted(set(SERIES) - used):
        problems.append(f"no panel shows {name}")
    for name in sorted(n for n in named_in_sources() if series_of(n) is None):
        problems.append(f"{name} is exported (named in {', '.join(METRIC_SOURCES)}) but not in SERIES: add it and a panel")
    return problems, exprs


def promql_problems(promtool, exprs):
    """Parses every query with `promtool check rules`, one recording rule per query."""
    rules = []
    for i, (_, expr) in enumerate(exprs):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        # JSON is YAML: no YAML library needed to write the rule file.
        json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
        path = f.name
    try:
        result = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True)
    finally:
        os.unlink(path)
    if result.returncode != 0:
        return [f"a query is not valid PromQL:\n{result.stdout}{result.stderr}"]
    return []


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dashboard", nargs="?", default="deploy/monitoring/grafana-dashboard.json")
    parser.add_argument("--promtool", help="promtool binary; parse every query as PromQL")
    args = parser.parse_args()
    try:
        with open(args.dashboard) as f:
            dashboard = json.load(f)
    except (OSError, json.JSONDecodeError) as error:
        sys.exit(f"check-dashboard: {args.dashboard}: {error}")
    problems, exprs = check(dashboard)
    if args.promtool and not problems:
        problems += promql_problems(args.promtool, exprs)
    if problems:
        for problem in problems:
            print(f"check-dashboard: {problem}", file=sys.stderr)
        sys.exit(1)
    print(f"check-dashboard: {len(exprs)} queries in {args.dashboard} name only exported series, all {len(SERIES)} shown")


if __name__ == "__main__":
    main()
