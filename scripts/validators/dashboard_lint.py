#!/usr/bin/env python3
"""Structural checks on driftd's Grafana dashboards that the TypeScript schema cannot make.

    dashboard_lint.py panels  DASHBOARD.json...   # every panel type is a Grafana core panel
    dashboard_lint.py lint    FILE=UID...         # uid, variables, data source refs, layout, metrics
    dashboard_lint.py metrics-src src/exporter/metrics.rs [src/exporter/other.rs ...]
                                                  # driftd-metrics.txt matches what the daemon registers

`panels` reads the core panel ids from grafana-core-panels.txt (next to this script).
`lint` checks, per dashboard: the expected stable uid (and that uids are unique); no
numeric `id` (provisioning assigns it); a `datasource` variable of type datasource/prometheus
and a `model` variable fed by label_values(driftd_outcomes_processed_total, model); every data
source reference (panels, targets, annotations, variables) is the ${datasource} variable, so no
installation-specific uid is baked in; panel ids unique, gridPos inside the 24-column grid and
no two panels overlapping; targets with unique refIds and an expr; annotations whose legacy
`expr` equals `target.expr`; every `$variable` is defined or a Grafana built-in; every driftd_*
metric name exists (driftd-metrics.txt) and every label name in a `by (...)`/`on (...)` clause or
selector is one the metric has (or a Prometheus target label).
"""
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BUILTIN_VARS = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__range_ms",
                "__from", "__to", "__dashboard", "__org", "__user", "__name", "__field", "__series",
                "__value", "__data", "__url_time_range", "__all", "timeFilter"}
TARGET_LABELS = {"instance", "job", "le", "namespace", "cluster"}  # target labels, and `le`
DS_REF = {"type": "prometheus", "uid": "${datasource}"}


def load_lines(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        return [l.split("#", 1)[0].strip() for l in f if l.split("#", 1)[0].strip()]


def metrics_spec():
    spec = {}
    for line in load_lines("driftd-metrics.txt"):
        name, kind, labels = line.split()
        spec[name] = (kind, set() if labels == "-" else set(labels.split(",")))
    return spec


def panels(dash):
    for p in dash.get("panels", []):
        yield p
        for sub in p.get("panels", []) or []:
            yield sub


def cmd_panels(files):
    core = set(load_lines("grafana-core-panels.txt"))
    bad, n = [], 0
    for f in files:
        for p in panels(json.load(open(f, encoding="utf-8"))):
            n += 1
            if p.get("type") not in core:
                bad.append(f"{f}: panel {p.get('id')} {p.get('title')!r} has type {p.get('type')!r}, not a Grafana core panel")
    for b in bad:
        print(b)
    if not bad:
        print(f"{n} panels, all of core types ({', '.join(sorted({p.get('type') for f in files for p in panels(json.load(open(f)))}))})")
    return 1 if bad else 0


def expr_problems(expr, spec, variables):
    out = []
    for m in re.finditer(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)", expr):
        name = m.group(1) or m.group(2)
        if name not in variables and name not in BUILTIN_VARS:
            out.append(f"undefined variable ${name}")
    names = re.findall(r"\bdriftd_[a-z0-9_]+", expr)
    used = set()
    for n in names:
        base = re.sub(r"_(bucket|sum|count)$", "", n)
        if n in spec:
            used.add(n)
        elif base in spec and spec[base][0] == "histogram":
            used.add(base)
        else:
            out.append(f"unknown metric {n}")
    known_labels = set(TARGET_LABELS)
    for n in used:
        known_labels |= spec[n][1]
    if used:
        # label names in selectors and in by/without/on/ignoring clauses
        label_names = set()
        for sel in re.findall(r"\{([^}]*)\}", expr):
            label_names |= set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", sel))
        for grp in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
            label_names |= {x.strip() for x in grp.split(",") if x.strip()}
        for l in sorted(label_names - known_labels):
            out.append(f"label {l!r} is not a label of {', '.join(sorted(used))}")
    return out


SCOPE = ('cluster=~"$cluster"', 'namespace=~"$namespace"', 'job=~"$job"')


def selector_problems(expr):
    """Every driftd_* selector is scoped by the cluster/namespace/job variables, and every
    `on (...)` join keeps those labels."""
    out = []
    for m in re.finditer(r"\b(driftd_[a-z0-9_]+)(\{[^}]*\})?", expr):
        if not m.group(2) or not all(x in m.group(2) for x in SCOPE):
            out.append(f"selector {m.group(0)} lacks {', '.join(SCOPE)}")
    for grp in re.findall(r"\bon\s*\(([^)]*)\)", expr):
        labels = {x.strip() for x in grp.split(",")}
        if not {"cluster", "namespace", "job"} <= labels:
            out.append(f"on ({grp}) drops cluster/namespace/job")
    return out


def cmd_lint(pairs):
    spec = metrics_spec()
    errors, uids = [], {}
    for pair in pairs:
        path, _, want_uid = pair.partition("=")
        dash = json.load(open(path, encoding="utf-8"))
        err = lambda msg: errors.append(f"{path}: {msg}")
        uid = dash.get("uid")
        if want_uid and uid != want_uid:
            err(f"uid is {uid!r}, expected {want_uid!r}")
        if uid in uids:
            err(f"uid {uid!r} also used by {uids[uid]}")
        uids[uid] = path
        if dash.get("id") is not None:
            err("has a numeric id: remove it (provisioning assigns ids)")
        variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
        ds = variables.get("datasource")
        if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
            err("needs a `datasource` variable of type datasource with query prometheus")
        def query_of(name):
            v = variables.get(name)
            q = v and v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            return v, (q or "").replace(" ", "")
        # The kubernetes-mixin convention: cluster, namespace and job variables (All = ".*"),
        # each query narrowed by the ones before it, and every driftd_* selector using them.
        chain = ""
        for name in ("cluster", "namespace", "job"):
            v, q = query_of(name)
            want = f"label_values(driftd_build_info{'{' + chain + '}' if chain else ''},{name})"
            if not v or v.get("type") != "query" or q != want or not v.get("includeAll") or v.get("allValue") != ".*":
                err(f"needs a `{name}` query variable {want} with includeAll and allValue \".*\"")
            chain += ("," if chain else "") + f'{name}=~"${name}"'
        model, q = query_of("model")
        want = 'label_values(driftd_outcomes_processed_total{' + chain + '},model)'
        if not model or model.get("type") != "query" or q != want:
            err(f"needs a `model` query variable: {want}")
        for name, v in variables.items():
            if "datasource" in v and v["datasource"] != DS_REF:
                err(f"variable {name} uses data source {v['datasource']}, expected {DS_REF}")
        # panels
        ids, boxes = set(), []
        for p in panels(dash):
            title = f"panel {p.get('id')} {p.get('title')!r}"
            if p.get("id") in ids:
                err(f"{title}: duplicate panel id")
            ids.add(p.get("id"))
            g = p.get("gridPos") or {}
            if not all(isinstance(g.get(k), int) for k in "hwxy"):
                err(f"{title}: gridPos needs integer h, w, x, y")
                continue
            if g["x"] < 0 or g["w"] < 1 or g["x"] + g["w"] > 24:
                err(f"{title}: gridPos x={g['x']} w={g['w']} is outside the 24-column grid")
            for other_title, o in boxes:
                if g["x"] < o["x"] + o["w"] and o["x"] < g["x"] + g["w"] and g["y"] < o["y"] + o["h"] and o["y"] < g["y"] + g["h"]:
                    err(f"{title}: overlaps {other_title}")
            boxes.append((title, g))
            if p.get("type") in ("row", "text"):
                continue
            if p.get("datasource") != DS_REF:
                err(f"{title}: datasource is {p.get('datasource')}, expected {DS_REF}")
            targets = p.get("targets") or []
            if not targets:
                err(f"{title}: no targets")
            refs = [t.get("refId") for t in targets]
            if len(set(refs)) != len(refs):
                err(f"{title}: duplicate refIds {refs}")
            for t in targets:
                if t.get("datasource", DS_REF) != DS_REF:
                    err(f"{title} target {t.get('refId')}: datasource is {t.get('datasource')}")
                if not t.get("expr"):
                    err(f"{title} target {t.get('refId')}: empty expr")
                    continue
                for prob in expr_problems(t["expr"], spec, variables):
                    err(f"{title} target {t.get('refId')}: {prob}")
                for prob in selector_problems(t["expr"]):
                    err(f"{title} target {t.get('refId')}: {prob}")
        for a in dash.get("annotations", {}).get("list", []):
            if a.get("builtIn"):
                continue
            name = f"annotation {a.get('name')!r}"
            if a.get("datasource") != DS_REF:
                err(f"{name}: datasource is {a.get('datasource')}, expected {DS_REF}")
            texpr = (a.get("target") or {}).get("expr")
            if not texpr:
                err(f"{name}: no target.expr")
                continue
            if "expr" in a and a["expr"] != texpr:
                err(f"{name}: legacy expr differs from target.expr")
            for prob in expr_problems(texpr, spec, variables):
                err(f"{name}: {prob}")
    for e in errors:
        print(e)
    if not errors:
        print(f"{len(pairs)} dashboards: uids {', '.join(sorted(u for u in uids if u))}; variables, data sources, layout, metrics and labels OK")
    return 1 if errors else 0


def cmd_metrics_src(*paths):
    """Names and label names registered in the exporter's source files vs driftd-metrics.txt."""
    found = {}
    for one in paths:
        src = open(one, encoding="utf-8").read()
        src = src.split("#[cfg(test)]", 1)[0]        # the registrations, not the unit tests
        hits = list(re.finditer(r'"(driftd_[a-z0-9_]+)"', src))
        for i, m in enumerate(hits):
            end = hits[i + 1].start() if i + 1 < len(hits) else len(src)
            lab = re.search(r"&\[([^\]]*)\]", src[m.end():end])
            labels = set(re.findall(r'"(\w+)"', lab.group(1))) if lab else set()
            found[m.group(1)] = labels
    path = " + ".join(paths)
    spec = {n: labels for n, (_, labels) in metrics_spec().items()}
    errs = []
    for n in sorted(set(spec) | set(found)):
        if n not in found:
            errs.append(f"{n} is in driftd-metrics.txt but not registered in {path}")
        elif n not in spec:
            errs.append(f"{n} is registered in {path} but missing from driftd-metrics.txt (dashboards cannot use it)")
        elif spec[n] != found[n]:
            errs.append(f"{n}: labels {sorted(found[n])} in {path}, {sorted(spec[n])} in driftd-metrics.txt")
    for e in errs:
        print(e)
    if not errs:
        print(f"{len(found)} metrics with the same names and labels as {path}")
    return 1 if errs else 0


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("panels", "lint", "metrics-src"):
        sys.exit(__doc__)
    if sys.argv[1] == "metrics-src":
        sys.exit(cmd_metrics_src(*sys.argv[2:]))
    sys.exit(cmd_panels(sys.argv[2:]) if sys.argv[1] == "panels" else cmd_lint(sys.argv[2:]))


if __name__ == "__main__":
    main()
