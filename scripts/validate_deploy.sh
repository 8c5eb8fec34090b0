#!/usr/bin/env bash
# Validates driftd's deployment files with real validators, one line per check:
#   Prometheus  promtool check rules / test rules / check config; every alert has a firing
#               test; every dashboard expression parses and returns data from a real
#               Prometheus scraping synthetic driftd metrics (scripts/validators/promql_smoke.py);
#               scripts/list_promql.py agrees with PyYAML on alerts.yml
#   Grafana     tsc --strict against @grafana/schema (dashboards, panel options), a NEGATIVE
#               check (broken copies must be rejected), panel types against Grafana's core list,
#               uids/variables/data sources/layout/metric and label names, provisioning files
#   systemd     systemd-analyze verify prints nothing (and does print for a broken copy),
#               systemd-analyze security --offline=yes exposure <= 2.0, required settings
#   Kubernetes  generated copies (scripts/sync_deploy.py --check); kubernetes-validate --strict
#               for Kubernetes 1.25 and 1.37 (any WARN fails, a misspelled field must be
#               rejected); the ServiceMonitor and PrometheusRule of
#               components/prometheus-operator against the Prometheus Operator's CRD schemas
#               (and the rule = alerts.yml); kustomize render of the base (no custom
#               resources: works without the operator's CRDs) and of
#               deploy/overlays/prometheus-operator (+ the same checks on each rendering, the
#               dashboards ConfigMap labelled grafana_dashboard=1), cross-object consistency;
#               the ConfigMap's driftd.toml (= examples/driftd.toml; with DRIFTD_BIN:
#               accepted by `driftd check-config`, also with driftd.env.example's overrides)
#   Metrics     scripts/validators/driftd-metrics.txt = what src/exporter/*.rs registers
#   Container   Dockerfile structure; with DRIFTD_BIN=path/to/driftd: the runtime image's file
#               tree rebuilt without Docker resolves every library (dockerfile_check.py tree)
#   Docs        every alert's runbook_url is absolute and points at a heading of deploy/README.md
#
# Usage: scripts/validate_deploy.sh            (DRIFTD_BIN=target/release/driftd to add the ldd check)
# Installs what it needs idempotently, outside the repository:
#   npm @grafana/schema + typescript (versions in scripts/validators/package-lock.json) into
#   $DRIFTD_CACHE/node; kubernetes-validate from the driftd venv (scripts/setup.sh), or a small
#   venv $DRIFTD_CACHE/deploy-venv; promtool/prometheus, systemd-analyze, node/npm from Debian
#   when missing (as root).
# systemd-analyze verify needs ExecStart's binary to exist: the unit is verified from a copy
# whose ExecStart points at $DRIFTD_BIN if set, else /bin/true.
# Exit status: 0 when every check passed. Last line: "validate_deploy: N passed, M failed".
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=/dev/null
. "$ROOT/scripts/env.sh"
VAL="$ROOT/scripts/validators"
NODE_DIR="${DRIFTD_NODE_DIR:-$DRIFTD_CACHE/node}"
K8S_OLDEST=1.25.0
K8S_NEWEST=""          # found from the installed kubernetes-validate below
TRAINING_GRACE_SECONDS=30
EXPOSURE_MAX=2.0

WORK=$(mktemp -d "${TMPDIR:-/tmp}/validate_deploy.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
passed=0 failed=0 skipped=0

say() { printf '[validate_deploy] %s\n' "$*" >&2; }
die() { say "$*"; printf 'validate_deploy: %d passed, %d failed\n' "$passed" "$((failed + 1))"; exit 1; }

# check NAME COMMAND...: runs COMMAND, prints PASS/FAIL with its last output line (or all of it on failure).
check() {
  local name=$1; shift
  local log="$WORK/check.$((passed + failed + skipped)).log"
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1))
    printf 'PASS  %-50s %s\n' "$name" "$(grep -v '^[[:space:]]*$' "$log" | tail -n 1 | sed 's/^[[:space:]]*//' | cut -c1-200)"
  else
    failed=$((failed + 1))
    printf 'FAIL  %s\n' "$name"
    sed 's/^/      | /' "$log" | head -n 80
  fi
}
skip() { skipped=$((skipped + 1)); printf 'SKIP  %-50s %s\n' "$1" "$2"; }

# ------------------------------------------------------------------ tools (idempotent)
need_apt=()
command -v promtool >/dev/null && command -v prometheus >/dev/null || need_apt+=(prometheus)
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
command -v node >/dev/null && command -v npm >/dev/null || need_apt+=(nodejs npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null \
      || die "apt-get install ${need_apt[*]} failed"
  else
    die "missing tools (${need_apt[*]}): install them or run scripts/setup.sh"
  fi
fi

# npm packages for the Grafana schema check, outside the repository.
mkdir -p "$NODE_DIR"
stamp=$(cat "$VAL/package.json" "$VAL/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$NODE_DIR/.driftd-stamp" 2>/dev/null)" != "$stamp" ] || [ ! -d "$NODE_DIR/node_modules/@grafana/schema" ]; then
  say "installing @grafana/schema and typescript into $NODE_DIR"
  cp "$VAL/package.json" "$VAL/package-lock.json" "$NODE_DIR/"
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci in $NODE_DIR failed"
  echo "$stamp" > "$NODE_DIR/.driftd-stamp"
fi

# Python with PyYAML, jsonschema and kubernetes-validate.
PY="$DRIFTD_VENV/bin/python"
KV="$DRIFTD_VENV/bin/kubernetes-validate"
if [ ! -x "$KV" ]; then
  PYV="$DRIFTD_CACHE/deploy-venv"
  if [ ! -x "$PYV/bin/kubernetes-validate" ]; then
    say "creating $PYV with kubernetes-validate (the driftd venv has none yet)"
    python3 -m venv "$PYV" && "$PYV/bin/pip" install -q --disable-pip-version-check kubernetes-validate \
      || die "pip install kubernetes-validate failed"
  fi
  PY="$PYV/bin/python" KV="$PYV/bin/kubernetes-validate"
fi
"$PY" -c 'import yaml, jsonschema' 2>/dev/null || die "$PY lacks PyYAML/jsonschema"
# Newest Kubernetes version whose schemas kubernetes-validate bundles.
K8S_NEWEST=$("$PY" - <<'EOF'
import os, re, kubernetes_validate
d = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema")
vs = sorted({tuple(map(int, m.groups())) for n in os.listdir(d) if (m := re.match(r"v(\d+)\.(\d+)\.(\d+)-local-strict$", n))})
print(".".join(map(str, vs[-1])))
EOF
) || die "cannot list kubernetes-validate's schema versions"
"$PY" - "$K8S_OLDEST" <<'EOF' || die "kubernetes-validate has no strict schemas for $K8S_OLDEST"
import os, sys, kubernetes_validate
d = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema")
sys.exit(0 if os.path.isdir(os.path.join(d, f"v{sys.argv[1]}-local-strict")) else 1)
EOF

cd "$ROOT" || exit 1

# ------------------------------------------------------------------ Prometheus
check "promtool check rules" promtool check rules deploy/prometheus/alerts.yml
check "promtool test rules" promtool test rules deploy/prometheus/alerts.test.yml
check "every alert has a firing unit test" "$PY" - <<'EOF'
import yaml
rules = [r["alert"] for g in yaml.safe_load(open("deploy/prometheus/alerts.yml"))["groups"] for r in g["rules"] if "alert" in r]
tests = yaml.safe_load(open("deploy/prometheus/alerts.test.yml"))["tests"]
firing = {c["alertname"] for t in tests for c in t.get("alert_rule_test", []) if c.get("exp_alerts")}
quiet = {c["alertname"] for t in tests for c in t.get("alert_rule_test", []) if not c.get("exp_alerts")}
missing = [a for a in rules if a not in firing]
no_neg = [a for a in rules if a not in quiet]
assert not missing, f"alerts without a firing test: {missing}"
assert not no_neg, f"alerts without a not-firing (pending or resolved) case: {no_neg}"
print(f"{len(rules)} alerts, each with firing and not-firing cases")
EOF
check "promtool check config (prometheus.example.yml)" promtool check config deploy/prometheus/prometheus.example.yml

list_promql_check() {
  python3 scripts/list_promql.py elec2 > "$WORK/promql.jsonl" || return 1
  "$PY" - "$WORK/promql.jsonl" <<'EOF'
import json, sys, yaml
items = [json.loads(l) for l in open(sys.argv[1])]
assert items and all(set(i) == {"file", "kind", "title", "expr", "must_have_data"} for i in items)
assert not any("$" in i["expr"] for i in items), "unsubstituted variable"
ours = [(i["title"], i["expr"]) for i in items if i["kind"] == "alert"]
ref = [(r["alert"], r["expr"].strip()) for g in yaml.safe_load(open("deploy/prometheus/alerts.yml"))["groups"] for r in g["rules"]]
assert ours == ref, f"list_promql's alerts.yml parser disagrees with PyYAML:\n{ours}\n{ref}"
basic = sum(i["must_have_data"] for i in items)
kinds = {k: sum(i["kind"] == k for i in items) for k in ("panel", "annotation", "alert")}
print(f"{len(items)} expressions ({kinds['panel']} panel targets, {kinds['annotation']} annotations, {kinds['alert']} alerts), {basic} must_have_data; alerts match PyYAML")
EOF
}
check "list_promql.py output" list_promql_check

dash_promql_syntax() {
  # Every dashboard expression as a recording rule: promtool parses each one.
  "$PY" - "$WORK/promql.jsonl" "$WORK/dash-rules.yml" <<'EOF' || return 1
import json, sys, yaml
items = [json.loads(l) for l in open(sys.argv[1]) if json.loads(l)["kind"] != "alert"]
rules = [{"record": f"driftd_dashboard:expr_{n}", "expr": i["expr"]} for n, i in enumerate(items)]
yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}, open(sys.argv[2], "w"))
EOF
  promtool check rules "$WORK/dash-rules.yml"
}
check "dashboard PromQL parses (promtool)" dash_promql_syntax
check "dashboard PromQL on a real Prometheus" python3 "$VAL/promql_smoke.py"

# ------------------------------------------------------------------ Grafana
check "Grafana schema (tsc, @grafana/schema)" python3 "$VAL/grafana_ts.py" check --node-dir "$NODE_DIR" dashboards/overview.json dashboards/model-drift.json
check "Grafana schema rejects broken dashboards" python3 "$VAL/grafana_ts.py" negative --node-dir "$NODE_DIR" dashboards/overview.json
check "Grafana panel types are core panels" python3 "$VAL/dashboard_lint.py" panels dashboards/overview.json dashboards/model-drift.json
check "Grafana dashboard lint" python3 "$VAL/dashboard_lint.py" lint dashboards/overview.json=driftd-overview dashboards/model-drift.json=driftd-model
check "Grafana provisioning files" "$PY" - <<'EOF'
import yaml
ds = yaml.safe_load(open("deploy/grafana/provisioning/datasources/driftd-prometheus.yaml"))
assert ds["apiVersion"] == 1
for d in ds["datasources"]:
    assert set(d) <= {"name", "uid", "type", "access", "url", "isDefault", "editable", "jsonData", "secureJsonData", "orgId", "basicAuth", "version"}, d
    assert d["type"] == "prometheus" and d["access"] == "proxy" and d["url"].startswith("http")
    assert d.get("isDefault") is False, "a provisioned default data source breaks Grafana if another default exists"
dp = yaml.safe_load(open("deploy/grafana/provisioning/dashboards/driftd.yaml"))
assert dp["apiVersion"] == 1
for p in dp["providers"]:
    assert set(p) <= {"name", "orgId", "type", "folder", "folderUid", "disableDeletion", "allowUiUpdates", "updateIntervalSeconds", "options"}, p
    assert p["type"] == "file" and p["options"]["path"].startswith("/")
print(f"{len(ds['datasources'])} data source(s), {len(dp['providers'])} dashboard provider(s) -> {dp['providers'][0]['options']['path']}")
EOF

# ------------------------------------------------------------------ systemd
UNIT=deploy/systemd/driftd.service
EXEC_BIN=${DRIFTD_BIN:-/bin/true}
mkdir -p "$WORK/systemd"
sed "s#^ExecStart=/usr/local/bin/driftd #ExecStart=$(readlink -f "$EXEC_BIN") #" "$UNIT" > "$WORK/systemd/driftd.service"
sd_verify() {
  local out
  out=$(systemd-analyze verify "$1" 2>&1); local rc=$?
  [ -z "$out" ] && [ $rc = 0 ] || { echo "$out"; echo "systemd-analyze verify: rc $rc, output above (none allowed)"; return 1; }
  echo "no output, rc 0 (ExecStart -> $EXEC_BIN)"
}
check "systemd-analyze verify (silent)" sd_verify "$WORK/systemd/driftd.service"
sd_verify_negative() {
  mkdir -p "$WORK/systemd-bad"
  sed -e 's/^ProtectSystem=/ProtectSytem=/' -e 's/^Type=notify/Type=notifyy/' "$WORK/systemd/driftd.service" > "$WORK/systemd-bad/driftd.service"
  local out; out=$(systemd-analyze verify "$WORK/systemd-bad/driftd.service" 2>&1)
  echo "$out" | grep -q ProtectSytem && echo "$out" | grep -qi notifyy \
    || { echo "$out"; echo "a unit with ProtectSytem= and Type=notifyy was not reported"; return 1; }
  echo "broken copy reported: $(echo "$out" | wc -l) lines"
}
check "systemd-analyze verify reports a broken unit" sd_verify_negative
sd_security() {
  local out; out=$(systemd-analyze security --offline=yes --threshold=20 "$WORK/systemd/driftd.service" 2>&1); local rc=$?
  local level; level=$(echo "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  [ -n "$level" ] || { echo "$out"; return 1; }
  if [ $rc != 0 ] || ! awk -v l="$level" -v m="$EXPOSURE_MAX" 'BEGIN { exit !(l <= m) }'; then
    echo "$out" | grep -E '✗|Overall'; echo "exposure $level > $EXPOSURE_MAX"; return 1
  fi
  echo "exposure $level <= $EXPOSURE_MAX"
}
check "systemd-analyze security --offline" sd_security
check "systemd unit settings" "$PY" - "$UNIT" "$TRAINING_GRACE_SECONDS" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
kv = {}
for line in text.splitlines():
    if "=" in line and not line.lstrip().startswith(("#", ";")):
        k, v = line.split("=", 1)
        kv.setdefault(k.strip(), []).append(v.strip())
def has(k, v): return v in kv.get(k, [])
need = [("Type", "notify"), ("ExecStart", "/usr/local/bin/driftd run --config /etc/driftd/driftd.toml"),
        ("DynamicUser", "yes"), ("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"), ("PrivateTmp", "yes"),
        ("StateDirectory", "driftd"), ("ReadOnlyPaths", "/opt/driftd/libtorch"), ("CapabilityBoundingSet", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"), ("EnvironmentFile", "-/etc/driftd/driftd.env"),
        ("LoadCredential", "db-password:/etc/driftd/db-password"), ("LoadCredential", "admin-token:/etc/driftd/admin-token"),
        ("Environment", "DRIFTD_DATABASE__PASSWORD_FILE=%d/db-password"),
        ("Environment", "DRIFTD_HTTP__ADMIN_TOKEN_FILE=%d/admin-token"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"), ("WatchdogSec", "60s")]
missing = [f"{k}={v}" for k, v in need if not has(k, v)]
assert not missing, f"missing: {missing}"
assert "@system-service" in " ".join(kv.get("SystemCallFilter", [])), "SystemCallFilter=@system-service missing"
stop = kv.get("TimeoutStopSec", ["90s"])[-1]
secs = int(re.match(r"(\d+)", stop).group(1)) * (60 if stop.endswith("min") else 1)
assert secs > int(sys.argv[2]), f"TimeoutStopSec={stop} must exceed the training grace period {sys.argv[2]}s"
assert kv.get("Restart"), "no Restart= policy"
print(f"{len(need) + 3} required settings present; TimeoutStopSec={stop} > {sys.argv[2]}s grace")
EOF

# ------------------------------------------------------------------ Kubernetes
KDIR=deploy/kubernetes
KCOMP=$KDIR/components/prometheus-operator
KOVERLAY=deploy/overlays/prometheus-operator
SM_SCHEMA="$VAL/servicemonitor.v1.schema.json"
PR_SCHEMA="$VAL/prometheusrule.v1.schema.json"
check "generated deploy files match their sources" python3 scripts/sync_deploy.py --check
# The base's plain manifests (kustomization.yaml is not a Kubernetes object; the ConfigMap is
# generated, so it is checked in the rendering below).
mapfile -t MANIFESTS < <(ls "$KDIR"/*.yaml | grep -v -e '/kustomization.yaml$')
kv_strict() {  # kv_strict VERSION FILE...: strict, and any WARN is a failure
  local v=$1; shift
  local out; out=$("$KV" --strict -k "$v" "$@" 2>&1); local rc=$?
  echo "$out"
  if [ $rc != 0 ] || echo "$out" | grep -q 'WARN'; then echo "kubernetes-validate $v: failed or warned"; return 1; fi
  echo "$# files valid for Kubernetes $v (strict, no warnings)"
}
check "kubernetes-validate --strict $K8S_OLDEST" kv_strict "$K8S_OLDEST" "${MANIFESTS[@]}"
check "kubernetes-validate --strict $K8S_NEWEST" kv_strict "$K8S_NEWEST" "${MANIFESTS[@]}"
kv_negative() {
  sed 's/^  replicas: 3/  replica: 3/' "$KDIR/deployment.yaml" > "$WORK/bad-deployment.yaml"
  grep -q '^  replica: 3' "$WORK/bad-deployment.yaml" || { echo "could not break deployment.yaml"; return 1; }
  local out; out=$("$KV" --strict -k "$K8S_OLDEST" "$WORK/bad-deployment.yaml" 2>&1) && { echo "$out"; echo "misspelled field accepted"; return 1; }
  echo "$out" | grep -q "'replica' was unexpected" || { echo "$out"; return 1; }
  echo "misspelled spec.replica rejected"
}
check "kubernetes-validate rejects a misspelled field" kv_negative
# kubernetes-validate has no schemas for custom resources: the ServiceMonitor and the
# PrometheusRule are checked against the Prometheus Operator's CRD schemas instead.
check "ServiceMonitor vs Prometheus Operator CRD" "$PY" "$VAL/k8s_tools.py" crd "$SM_SCHEMA" "$KCOMP/servicemonitor.yaml"
sm_negative() {
  sed 's/scrapeTimeout:/scrapeTimout:/' "$KCOMP/servicemonitor.yaml" > "$WORK/bad-sm.yaml"
  "$PY" "$VAL/k8s_tools.py" crd "$SM_SCHEMA" "$WORK/bad-sm.yaml" && { echo "misspelled field accepted"; return 1; }
  echo "misspelled scrapeTimout rejected"
}
check "ServiceMonitor schema rejects a misspelled field" sm_negative
check "PrometheusRule vs Prometheus Operator CRD" "$PY" "$VAL/k8s_tools.py" crd "$PR_SCHEMA" "$KCOMP/prometheusrule.yaml"
pr_negative() {
  sed 's/^    - alert:/    - alrt:/' "$KCOMP/prometheusrule.yaml" > "$WORK/bad-pr.yaml"
  grep -q 'alrt:' "$WORK/bad-pr.yaml" || { echo "could not break prometheusrule.yaml"; return 1; }
  "$PY" "$VAL/k8s_tools.py" crd "$PR_SCHEMA" "$WORK/bad-pr.yaml" && { echo "misspelled field accepted"; return 1; }
  echo "misspelled alrt rejected"
}
check "PrometheusRule schema rejects a misspelled field" pr_negative
check "PrometheusRule = alerts.yml (promtool check rules)" "$PY" - "$KCOMP/prometheusrule.yaml" "$WORK/pr-rules.yml" <<'EOF2'
import sys, yaml
pr = yaml.safe_load(open(sys.argv[1]))
src = yaml.safe_load(open("deploy/prometheus/alerts.yml"))
assert pr["spec"]["groups"] == src["groups"], "the PrometheusRule's groups differ from alerts.yml"
yaml.safe_dump({"groups": pr["spec"]["groups"]}, open(sys.argv[2], "w"))
print(f"{sum(len(g['rules']) for g in src['groups'])} rules, identical to alerts.yml")
EOF2
check "promtool check rules (PrometheusRule spec)" promtool check rules "$WORK/pr-rules.yml"

# render DIR OUT: kustomize's rendering (or the python renderer's, compared with it when
# kubectl or kustomize is installed); prints how.
render() {
  "$PY" "$VAL/k8s_tools.py" render "$1" > "$2.py" || return 1
  if command -v kustomize >/dev/null; then
    kustomize build "$1" > "$2" || return 1
    echo "kustomize build"
  elif command -v kubectl >/dev/null && kubectl kustomize "$1" > "$2" 2>"$WORK/kubectl.err"; then
    echo "kubectl kustomize"
  else
    cp "$2.py" "$2"; echo "python renderer"; return 0
  fi
  "$PY" "$VAL/k8s_tools.py" compare "$2" "$2.py" >"$2.cmp" || { cat "$2.cmp"; echo "the python renderer disagrees"; return 1; }
}
kustomize_render_base() {
  local how; how=$(render "$KDIR" "$WORK/rendered.yaml") || { echo "$how"; return 1; }
  if grep -q '^apiVersion: monitoring.coreos.com/' "$WORK/rendered.yaml"; then
    echo "the base renders custom resources: it must work without the Prometheus Operator's CRDs"; return 1
  fi
  mkdir -p "$WORK/rendered"
  local n; n=$("$PY" "$VAL/k8s_tools.py" split "$WORK/rendered.yaml" "$WORK/rendered") || return 1
  kv_strict "$K8S_OLDEST" "$WORK"/rendered/*.yaml >/dev/null || { kv_strict "$K8S_OLDEST" "$WORK"/rendered/*.yaml; return 1; }
  kv_strict "$K8S_NEWEST" "$WORK"/rendered/*.yaml >/dev/null || { kv_strict "$K8S_NEWEST" "$WORK"/rendered/*.yaml; return 1; }
  echo "base rendered with $how$( [ "$how" != "python renderer" ] && echo ' (= python renderer)'); $n objects valid, no custom resources"
}
check "kustomize render + validate (base, no CRDs)" kustomize_render_base
kustomize_render_operator() {
  local how; how=$(render "$KOVERLAY" "$WORK/rendered-op.yaml") || { echo "$how"; return 1; }
  mkdir -p "$WORK/rendered-op"
  local n; n=$("$PY" "$VAL/k8s_tools.py" split "$WORK/rendered-op.yaml" "$WORK/rendered-op" ServiceMonitor PrometheusRule) || return 1
  kv_strict "$K8S_OLDEST" "$WORK"/rendered-op/*.yaml >/dev/null || { kv_strict "$K8S_OLDEST" "$WORK"/rendered-op/*.yaml; return 1; }
  kv_strict "$K8S_NEWEST" "$WORK"/rendered-op/*.yaml >/dev/null || { kv_strict "$K8S_NEWEST" "$WORK"/rendered-op/*.yaml; return 1; }
  "$PY" "$VAL/k8s_tools.py" crd "$SM_SCHEMA" "$WORK/rendered-op.yaml" >/dev/null || return 1
  "$PY" "$VAL/k8s_tools.py" crd "$PR_SCHEMA" "$WORK/rendered-op.yaml" >/dev/null || return 1
  "$PY" - "$WORK/rendered-op.yaml" <<'EOF2' || return 1
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
dash = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
assert len(dash) == 1, f"expected one ConfigMap labelled grafana_dashboard: \"1\", found {len(dash)}"
for name in ("overview.json", "model-drift.json"):
    assert json.loads(dash[0]["data"][name]) == json.load(open(f"dashboards/{name}")), f"{name} differs from dashboards/"
ns = {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"}
assert ns == {"driftd"}, f"objects in namespaces {ns}"
EOF2
  echo "overlay rendered with $how$( [ "$how" != "python renderer" ] && echo ' (= python renderer)'); $n objects + ServiceMonitor + PrometheusRule valid; dashboards ConfigMap labelled grafana_dashboard=1"
}
check "kustomize render + validate (with prometheus-operator)" kustomize_render_operator
check "Kubernetes cross-object consistency" "$PY" "$VAL/k8s_tools.py" consistency "$WORK/rendered-op.yaml" "$KDIR/secret.example.yaml" "$TRAINING_GRACE_SECONDS"

check "ConfigMap driftd.toml" "$PY" "$VAL/k8s_tools.py" config "$WORK/rendered.yaml" "$WORK/driftd.toml"
check_config() {  # check_config ENVFILE: the real binary accepts the TOML with these overrides
  printf 'secret\n' > "$WORK/cred-db-password"; printf 'token\n' > "$WORK/cred-admin-token"
  env -i PATH="$PATH" HOME="$WORK" sh -c 'set -a; . "$1"; set +a
    export DRIFTD_DATABASE__PASSWORD_FILE="$2" DRIFTD_HTTP__ADMIN_TOKEN_FILE="$3"
    exec "$4" check-config --config "$5"' sh "$1" "$WORK/cred-db-password" "$WORK/cred-admin-token" \
    "$DRIFTD_BIN" "$WORK/driftd.toml"
}
if [ -n "${DRIFTD_BIN:-}" ]; then
  # The Deployment's environment: the URL from the Secret example.
  "$PY" -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); print("DRIFTD_DATABASE__URL=" + d["stringData"]["database-url"])' \
    "$KDIR/secret.example.yaml" > "$WORK/k8s.env"
  check "driftd check-config (Kubernetes env)" check_config "$WORK/k8s.env"
  check "driftd check-config (driftd.env.example)" check_config deploy/systemd/driftd.env.example
else
  skip "driftd check-config (ConfigMap + env files)" "set DRIFTD_BIN to a built driftd"
fi
[ -f src/exporter/metrics.rs ] && check "metric names/labels = src/exporter/*.rs" \
  python3 "$VAL/dashboard_lint.py" metrics-src src/exporter/*.rs

# ------------------------------------------------------------------ Container image
check "Dockerfile structure" python3 "$VAL/dockerfile_check.py" static Dockerfile
if [ -n "${DRIFTD_BIN:-}" ]; then
  # The tree lives next to the venv, so that multi-GB CUDA libraries are hard links, not copies.
  TREE=$(mktemp -d "$DRIFTD_CACHE/image-tree.XXXXXX")
  check "Dockerfile runtime tree resolves (ldd)" python3 "$VAL/dockerfile_check.py" tree "$DRIFTD_BIN" "$LIBTORCH/lib" "$TREE"
  rm -rf "$TREE"
else
  skip "Dockerfile runtime tree resolves (ldd)" "set DRIFTD_BIN to a built driftd (e.g. \$CARGO_TARGET_DIR/release/driftd)"
fi

# ------------------------------------------------------------------ Docs
check "alert runbook_urls resolve in deploy/README.md" "$PY" - <<'EOF'
import re, yaml
text = open("deploy/README.md", encoding="utf-8").read()
def anchor(h):
    h = h.strip().lower()
    h = re.sub(r"[^\w\- ]", "", h)
    return h.replace(" ", "-")
anchors = {anchor(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", text, re.M)}
bad = []
n = 0
for g in yaml.safe_load(open("deploy/prometheus/alerts.yml"))["groups"]:
    for r in g["rules"]:
        link = r.get("annotations", {}).get("runbook_url", "")
        n += 1
        base, _, anchor = link.partition("#")
        if not base.startswith("https://") or not base.endswith("deploy/README.md") or anchor not in anchors:
            bad.append(f"{r.get('alert')}: {link!r}")
assert not bad, f"runbook_url not absolute, or without a heading in deploy/README.md: {bad}"
print(f"{n} absolute runbook_urls resolve to headings of deploy/README.md")
EOF

printf 'validate_deploy: %d passed, %d failed\n' "$passed" "$failed"
[ "$failed" = 0 ]
