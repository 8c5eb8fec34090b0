#!/usr/bin/env python3
"""Print every PromQL expression of driftd's dashboards and alert rules, one JSON object a line.

    python3 scripts/list_promql.py MODEL            # or: --model MODEL [--root REPO]

Each line: {"file": "dashboards/overview.json", "kind": "panel"|"annotation"|"alert",
            "title": ..., "expr": ..., "must_have_data": true|false}

Sources: every target of every panel (rows included) and every Prometheus annotation of
dashboards/*.json, and every rule of deploy/prometheus/alerts.yml. Grafana variables are
substituted so that each expression runs as is against Prometheus:
  $model / ${model} / ${model:...}   -> MODEL
  $__rate_interval, $__interval       -> 1m
  $__range                            -> 1h
  ${datasource}                       -> the literal "datasource" (it only names the data source)
  any other dashboard variable        -> its default (`current`) value in the dashboard (its
                                         `allValue`, such as ".*", when the default is All)
An expression that still contains `$` after this is an error (exit status 1).

must_have_data is true only for expressions over the metrics every running daemon exports as
soon as it has processed outcomes (driftd_outcomes_processed_total, driftd_rolling_accuracy,
driftd_poll_duration_seconds, driftd_build_info, driftd_label_delay_seconds,
driftd_watermark_lag_seconds) that do not filter with a comparison. Series that only exist
after drifts, retrains, rejections or feature statistics, and every alert rule (empty unless
the alert fires), are must_have_data=false.

Standard library only: alerts.yml is read with a small parser for the Prometheus rule-file
layout (`- alert:`/`- record:` items with an `expr:` that is a plain, quoted or block scalar);
scripts/validate_deploy.sh cross-checks its output against PyYAML.
"""
import argparse
import glob
import json
import os
import re
import sys

BASIC_METRICS = {
    "driftd_outcomes_processed_total",
    "driftd_rolling_accuracy",
    "driftd_poll_duration_seconds",
    "driftd_build_info",
    "driftd_label_delay_seconds",
    "driftd_watermark_lag_seconds",
}
# `... unless on ([cluster, namespace, job,] model, instance) (driftd_model_owner == 0)` only removes series of replicas
# that gave a model up; with no such series it keeps everything, so it does not make data optional.
OWNER_FILTER = re.compile(r"unless\s+on\s*\(\s*(?:cluster\s*,\s*namespace\s*,\s*job\s*,\s*)?model\s*,\s*instance\s*\)"
                          r"\s*\(\s*driftd_model_owner\s*(?:\{[^}]*\})?\s*==\s*0\s*\)")
METRIC = re.compile(r"\bdriftd_[a-z0-9_]+")
HISTOGRAM_SUFFIX = re.compile(r"_(bucket|sum|count)$")
STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
COMPARISON = re.compile(r"(==|!=|>=|<=|>|<)(?!\s*bool\b)")

FIXED = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
    "datasource": "datasource",
}


def base_metric(name):
    return HISTOGRAM_SUFFIX.sub("", name) if HISTOGRAM_SUFFIX.search(name) else name


def must_have_data(expr):
    e = OWNER_FILTER.sub("", expr)
    metrics = {base_metric(m) for m in METRIC.findall(e)}
    if not metrics or not metrics <= BASIC_METRICS:
        return False
    bare = STRINGS.sub('""', e)
    bare = re.sub(r"\{[^}]*\}", "{}", bare)          # label matchers (=, !=, =~, !~)
    return not COMPARISON.search(bare)


def substitute(expr, model, variables):
    values = dict(variables)
    values.update(FIXED)
    values["model"] = model

    def repl(m):
        name = m.group(1) or m.group(2)
        if name not in values:
            return m.group(0)
        return values[name]

    # ${name}, ${name:format}, $name
    return re.sub(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)", repl, expr)


def dashboard_variables(dash):
    out = {}
    for v in dash.get("templating", {}).get("list", []):
        cur = v.get("current") or {}
        val = cur.get("value")
        if isinstance(val, list):
            val = val[0] if val else None
        if val == "$__all" and v.get("allValue"):
            val = v["allValue"]         # "All" of cluster/namespace/job: a regex matching anything
        if isinstance(val, str) and not val.startswith("$__"):
            out[v["name"]] = val
    return out


def panels(dash):
    for p in dash.get("panels", []):
        yield p
        for sub in p.get("panels", []) or []:
            yield sub


def from_dashboard(path, rel, model):
    dash = json.load(open(path, encoding="utf-8"))
    variables = dashboard_variables(dash)
    for p in panels(dash):
        for t in p.get("targets", []) or []:
            if "expr" in t:
                yield rel, "panel", p.get("title", ""), substitute(t["expr"], model, variables)
    for a in dash.get("annotations", {}).get("list", []):
        if a.get("builtIn"):
            continue
        expr = (a.get("target") or {}).get("expr") or a.get("expr")
        if expr:
            yield rel, "annotation", a.get("name", ""), substitute(expr, model, variables)


# ----------------------------------------------------------------------------- rule files
def _scalar(text, path, lineno):
    text = text.strip()
    if text.startswith('"'):
        try:
            return json.loads(text)
        except ValueError:
            sys.exit(f"{path}:{lineno}: cannot read double-quoted expr (escapes beyond JSON's?)")
    if text.startswith("'"):
        if not text.endswith("'"):
            sys.exit(f"{path}:{lineno}: multi-line single-quoted expr is not supported")
        return text[1:-1].replace("''", "'")
    return re.sub(r"\s+#.*$", "", text)


def rules_from_yaml(path):
    """(name, expr) of every rule in a Prometheus rule file."""
    lines = open(path, encoding="utf-8").read().splitlines()
    out, name, i = [], None, 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^(\s*)-\s+(alert|record):\s*(.+?)\s*$", line)
        if m:
            name = _scalar(m.group(3), path, i + 1)
        m = re.match(r"^(\s*)(?:-\s+)?expr:\s*(.*?)\s*$", line)
        if m:
            if name is None:
                sys.exit(f"{path}:{i + 1}: expr before any alert/record")
            indent, value = len(m.group(1)), m.group(2)
            if re.match(r"^[|>][+-]?\d*\s*(#.*)?$", value):
                folded = value.startswith(">")
                block = []
                j = i + 1
                while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent):
                    block.append(lines[j])
                    j += 1
                while block and not block[-1].strip():
                    block.pop()
                pad = min(len(b) - len(b.lstrip()) for b in block if b.strip())
                body = [b[pad:] for b in block]
                expr = " ".join(x.strip() for x in body) if folded else "\n".join(body)
                i = j
            else:
                expr = _scalar(value, path, i + 1)
                i += 1
            out.append((name, expr.strip()))
            name = None
            continue
        i += 1
    return out


def from_rules(path, rel, model):
    for name, expr in rules_from_yaml(path):
        yield rel, "alert", name, substitute(expr, model, {})


def collect(root, model):
    items = []
    for path in sorted(glob.glob(os.path.join(root, "dashboards", "*.json"))):
        items += from_dashboard(path, os.path.relpath(path, root), model)
    rules = os.path.join(root, "deploy", "prometheus", "alerts.yml")
    items += from_rules(rules, os.path.relpath(rules, root), model)
    return items


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", help="model name substituted for $model")
    ap.add_argument("--model", dest="model_opt", help="same as the positional MODEL")
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    help="repository root (default: the one holding this script)")
    args = ap.parse_args()
    model = args.model_opt or args.model
    if not model:
        ap.error("give the model name substituted for $model")
    bad = 0
    for rel, kind, title, expr in collect(args.root, model):
        if "$" in expr:
            print(f"list_promql: unsubstituted variable in {rel} {kind} {title!r}: {expr}", file=sys.stderr)
            bad += 1
        must = kind != "alert" and must_have_data(expr)
        print(json.dumps({"file": rel, "kind": kind, "title": title, "expr": expr, "must_have_data": must},
                         ensure_ascii=False))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
