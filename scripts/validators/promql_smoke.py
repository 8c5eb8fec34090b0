#!/usr/bin/env python3
"""Run every dashboard and alert expression through a real Prometheus scraping synthetic driftd metrics.

    promql_smoke.py [--prometheus BIN] [--timeout 60]

Serves, on 127.0.0.1, a /metrics page with one series for every label combination of every
metric in driftd-metrics.txt (two models, all windows/reasons/triggers/results/features,
counters and histograms growing at each scrape, timestamps near now). Starts `prometheus`
scraping it every second as job "driftd", waits until range functions over [1m] have samples,
then evaluates each line of `scripts/list_promql.py smoke-a` through the HTTP API:
  * every dashboard panel and annotation expression must succeed AND return data (all series
    exist here, so an empty result means a wrong metric or label name, a wrong label value, or
    a filter that cannot match);
  * every alert expression must succeed (alerts are empty unless they fire; their logic is
    covered by promtool test rules).
This does not replace the end-to-end test against the real daemon: it proves the queries
against the metric names and labels the daemon is specified to export.
"""
import argparse
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

VALUES = {
    "model": ["smoke-a", "smoke-b"],
    "window": ["100", "1000", "10000", "1h", "24h", "7d"],
    "reason": ["null_feature", "non_finite_feature", "wrong_feature_count", "invalid_label", "missing_prediction"],
    "detector": ["adwin", "ddm", "page_hinkley"],
    "trigger": ["schedule", "drift", "threshold", "manual", "bootstrap", "feature_drift", "shadow"],
    "result": ["promoted", "kept", "failed", "cancelled", "coalesced"],
    "strategy": ["full", "warm_start"],
    "feature": ["nswprice", "vicprice", "transfer"],
    "version": ["0.1.0"],
    "revision": ["0123456789ab"],
    "kind": ["database", "registry", "corrupt_state", "conflict"],
    "origin": ["configured", "template"],
    "route": ["/v1/models/{model}/predict", "/v2/models/{model}/infer", "unmatched"],
    "code": ["200", "401", "503"],
    "challenger": ["online", "recurring", "champion"],
}
BUCKETS = [0.01, 0.1, 1, 10, 60, 600, 3600]


def spec():
    out = []
    for line in open(os.path.join(HERE, "driftd-metrics.txt"), encoding="utf-8"):
        line = line.split("#", 1)[0].strip()
        if line:
            name, kind, labels = line.split()
            out.append((name, kind, [] if labels == "-" else labels.split(",")))
    return out


def combos(labels):
    res = [{}]
    for l in labels:
        res = [dict(c, **{l: v}) for c in res for v in VALUES[l]]
    return res


def fmt(labels):
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def gauge_value(name, labels, now, n):
    if name.endswith("_timestamp_seconds"):
        return now + 3600 if "next_scheduled" in name else now - 60
    if name == "driftd_model_owner":
        return 1
    if name in ("driftd_database_up", "driftd_build_info", "driftd_drift_warning"):
        return 1
    if name == "driftd_champion_version":
        return 1 + n // 3          # a new champion every third scrape
    if name == "driftd_watermark_lag_seconds":
        return 42
    return 0.8


def render(n):
    """Exposition text at scrape number n (counters and histograms grow with n)."""
    now = time.time()
    lines = []
    for name, kind, labels in spec():
        lines.append(f"# TYPE {name} {kind}")
        for c in combos(labels):
            if kind == "counter":
                lines.append(f"{name}{fmt(c)} {5 * n}")
            elif kind == "gauge":
                lines.append(f"{name}{fmt(c)} {gauge_value(name, c, now, n)}")
            else:
                cum = 0
                for i, b in enumerate(BUCKETS):
                    cum += n * (i + 1)
                    lines.append(f"{name}_bucket{fmt(dict(c, le=str(b)))} {cum}")
                lines.append(f"{name}_bucket{fmt(dict(c, le='+Inf'))} {cum + n}")
                lines.append(f"{name}_sum{fmt(c)} {n * 7.5}")
                lines.append(f"{name}_count{fmt(c)} {cum + n}")
    return "\n".join(lines) + "\n"


class Handler(http.server.BaseHTTPRequestHandler):
    scrapes = 0

    def do_GET(self):
        if self.path != "/metrics":
            self.send_error(404)
            return
        Handler.scrapes += 1
        body = render(Handler.scrapes).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query(base, expr):
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prometheus", default=shutil.which("prometheus") or "prometheus")
    ap.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()

    exprs = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "list_promql.py"), "smoke-a"],
                           check=True, capture_output=True, text=True).stdout.splitlines()
    exprs = [json.loads(l) for l in exprs]

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    tmp = tempfile.mkdtemp(prefix="driftd-promql-")
    port = free_port()
    with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
        f.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: driftd
    static_configs:
      - targets: ["127.0.0.1:{srv.server_address[1]}"]
""")
    log = open(os.path.join(tmp, "prometheus.log"), "w")
    prom = subprocess.Popen([args.prometheus, f"--config.file={tmp}/prometheus.yml", f"--storage.tsdb.path={tmp}/data",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    failures = []
    try:
        deadline = time.time() + args.timeout
        ready = False
        while time.time() < deadline:
            if prom.poll() is not None:
                break
            try:
                r = query(base, "count_over_time(driftd_build_info[1m])")
                res = r.get("data", {}).get("result", [])
                if res and float(res[0]["value"][1]) >= 4:
                    ready = True
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.5)
        if not ready:
            log.flush()
            print(open(os.path.join(tmp, "prometheus.log")).read()[-3000:])
            print(f"promql_smoke: Prometheus did not collect 4 samples within {args.timeout:.0f}s")
            return 1
        n_data = 0
        for e in exprs:
            r = query(base, e["expr"])
            where = f"{e['file']} {e['kind']} {e['title']!r}"
            if r.get("status") != "success":
                failures.append(f"{where}: {r.get('errorType')}: {r.get('error')}\n    {e['expr']}")
                continue
            data = r["data"]["result"]
            if e["kind"] != "alert":
                if not data:
                    failures.append(f"{where}: no data\n    {e['expr']}")
                else:
                    n_data += 1
        for f in failures:
            print(f)
        if not failures:
            n_alert = sum(e["kind"] == "alert" for e in exprs)
            print(f"{len(exprs)} expressions evaluated by Prometheus: {n_data} panel/annotation queries returned data, "
                  f"{n_alert} alert expressions ran")
        return 1 if failures else 0
    finally:
        prom.send_signal(signal.SIGTERM)
        try:
            prom.wait(timeout=10)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
        srv.shutdown()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
