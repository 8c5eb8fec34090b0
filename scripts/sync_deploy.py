#!/usr/bin/env python3
"""Writes the deployment files that are generated from a single source, or checks them.

    scripts/sync_deploy.py                 write them
    scripts/sync_deploy.py --check         exit 1 (and say which) if any is out of date
    scripts/sync_deploy.py --runbook-base URL
                                           point every alert's runbook_url at URL#anchor
                                           (alerts.yml and its tests), then write

kustomize reads no file outside the kustomization's directory, so the Kubernetes manifests
carry copies; the sources are the only files to edit:

    examples/driftd.toml          -> deploy/kubernetes/driftd.toml (the ConfigMap's content)
    deploy/prometheus/alerts.yml  -> deploy/kubernetes/components/prometheus-operator/prometheusrule.yaml
    dashboards/*.json             -> deploy/kubernetes/components/prometheus-operator/dashboards/

Needs PyYAML only for the PrometheusRule (the driftd venv has it; so does python3-yaml).
"""
import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPONENT = "deploy/kubernetes/components/prometheus-operator"
ALERTS = "deploy/prometheus/alerts.yml"
ALERT_TESTS = "deploy/prometheus/alerts.test.yml"
DASHBOARDS = ["overview.json", "model-drift.json"]

RULE_HEADER = """\
# GENERATED from deploy/prometheus/alerts.yml by scripts/sync_deploy.py: edit that file, then
# run the script. The Prometheus Operator loads these rules; kube-prometheus-stack selects
# PrometheusRules labelled `release: <helm release name>` by default (add it in an overlay).
"""


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def prometheus_rule(alerts_text):
    import yaml
    groups = yaml.safe_load(alerts_text)["groups"]
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "driftd", "labels": {"app.kubernetes.io/name": "driftd",
                                                   "app.kubernetes.io/component": "alerts"}},
        "spec": {"groups": groups},
    }
    return RULE_HEADER + yaml.safe_dump(rule, sort_keys=False, width=100, allow_unicode=True)


def outputs():
    """(path, wanted content) for every generated file."""
    out = [("deploy/kubernetes/driftd.toml", read("examples/driftd.toml")),
           (f"{COMPONENT}/prometheusrule.yaml", prometheus_rule(read(ALERTS)))]
    out += [(f"{COMPONENT}/dashboards/{d}", read(f"dashboards/{d}")) for d in DASHBOARDS]
    return out


def set_runbook_base(base):
    """Rewrites every runbook_url's part before `#` in the alert rules and their tests."""
    pattern = re.compile(r'(runbook_url: ")[^"#]*(#[^"]*")')
    for rel in (ALERTS, ALERT_TESTS):
        text = read(rel)
        new, n = pattern.subn(lambda m: m.group(1) + base + m.group(2), text)
        if n == 0:
            sys.exit(f"{rel}: no runbook_url found")
        with open(os.path.join(ROOT, rel), "w", encoding="utf-8") as f:
            f.write(new)
        print(f"{rel}: {n} runbook_url(s) now start with {base}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--runbook-base")
    args = ap.parse_args()
    if args.runbook_base:
        set_runbook_base(args.runbook_base.rstrip("#"))
    stale = []
    for rel, want in outputs():
        path = os.path.join(ROOT, rel)
        have = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        if have == want:
            continue
        if args.check:
            stale.append(rel)
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(want)
            print(f"wrote {rel}")
    if stale:
        print("out of date (run scripts/sync_deploy.py): " + ", ".join(stale))
        return 1
    if args.check:
        print(f"{len(outputs())} generated files match their sources")
    return 0


if __name__ == "__main__":
    sys.exit(main())
