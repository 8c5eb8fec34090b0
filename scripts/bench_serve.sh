#!/usr/bin/env bash
# Online-prediction benchmark: wrk (Debian's package) on loopback against
#   (a) driftd's POST /v1/models/bench/predict, and
#   (b) the same MLP (20 -> 20 relu -> 10 relu -> 1, trained in PyTorch, imported into driftd,
#       exported back) in PyTorch behind FastAPI + uvicorn (scripts/bench_serve_fastapi.py),
# in the same run, with 1 and 256 rows per request: requests/s at saturation and their ratio,
# then p50/p99 of 1-row requests paced at about 2000 requests/s (5 connections, 2 ms between
# a connection's requests), alone and while driftd trains (a refit on 20 000 rows).
# Not part of CI: it measures this machine, so run it when the machine is quiet.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
DURATION=${BENCH_DURATION:-10s}
command -v wrk >/dev/null || { echo "installing wrk (Debian package)"; apt-get install -y -qq wrk >/dev/null; }
"$DRIFTD_PYTHON" -c "import fastapi, uvicorn" 2>/dev/null || "$DRIFTD_VENV/bin/pip" install -q fastapi uvicorn
# DRIFTD_BIN: an already built binary (the tests' is the same dev-profile build).
if [ -z "${DRIFTD_BIN:-}" ]; then cargo build --locked --bin driftd; fi
BIN=${DRIFTD_BIN:-$CARGO_TARGET_DIR/debug/driftd}
WORK=$(mktemp -d /tmp/driftd-bench-serve.XXXXXX)
PORT=${BENCH_PG_PORT:-55434}
API_PORT=${BENCH_API_PORT:-18601}
DAEMON= API=
trap 'kill $DAEMON $API 2>/dev/null || true; bash scripts/pg.sh stop "$WORK/pg"; rm -rf "$WORK"' EXIT
URL=$(bash scripts/pg.sh start "$WORK/pg" "$PORT")
TOKEN=bench-token
# BENCH_TRAIN_THREADS=N sets train.num_threads (libtorch's intra-op threads) for the training run.
TRAIN_THREADS=${BENCH_TRAIN_THREADS:+num_threads = $BENCH_TRAIN_THREADS}
# BENCH_TRAIN_NICE=N sets [training] nice (default 10; 0 = the serving threads' priority).
TRAIN_NICE=${BENCH_TRAIN_NICE:-10}
cat > "$WORK/driftd.toml" <<TOML
[database]
url = "$URL"
[training]
nice = $TRAIN_NICE
[http]
listen = "127.0.0.1:0"
read_token = "$TOKEN"
[[models]]
name = "bench"
n_features = 20
[models.train]
strategy = "refit_combined"
# Long enough to overlap the whole measurement (no sample budget: every epoch on every row).
fit_epochs = 4000
sample_budget = 0
$TRAIN_THREADS
[models.triggers]
bootstrap_min_rows = 1000000000000
[models.triggers.drift]
enabled = false
TOML
"$BIN" migrate --config "$WORK/driftd.toml" --create-outcomes-table >/dev/null
"$DRIFTD_PYTHON" scripts/torch_model.py "$WORK/model" 20 2 7 safetensors 20 10 >/dev/null
"$BIN" models import --config "$WORK/driftd.toml" --model bench --from "$WORK/model" --promote
"$BIN" models export --config "$WORK/driftd.toml" --model bench --out "$WORK/export" >/dev/null
# Rows for the training that runs during the last measurement.
psql -q "$URL" -c "INSERT INTO outcomes (model, created_at, features, prediction, label, labeled_at)
  SELECT 'bench', t, ARRAY(SELECT random()::real FROM generate_series(1, 20) WHERE g > 0), 0.5,
         (random() > 0.5)::int, t
  FROM generate_series(1, 20000) g, LATERAL (SELECT timestamptz '2026-01-01' + g * interval '1 s' AS t) ts"

"$BIN" run --config "$WORK/driftd.toml" 2>"$WORK/log" &
DAEMON=$!
"$DRIFTD_PYTHON" scripts/bench_serve_fastapi.py "$WORK/export/bench-v1.safetensors" "$WORK/export/bench-v1.json" "$API_PORT" &
API=$!
for _ in $(seq 1 300); do
  ADDR=$(sed -n 's/.*listening on http:\/\/\([0-9.:]*\).*/\1/p' "$WORK/log" | head -1)
  [ -n "$ADDR" ] && curl -sf -H "Authorization: Bearer $TOKEN" -o /dev/null -d '{"rows": [[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]]}' "http://$ADDR/v1/models/bench/predict" \
    && curl -sf -o /dev/null -d '{"rows": [[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]]}' -H 'Content-Type: application/json' "http://127.0.0.1:$API_PORT/v1/models/bench/predict" && break
  sleep 0.2
done
for n in 1 256; do
  "$DRIFTD_PYTHON" -c "import json, random; random.seed($n); print(json.dumps({'rows': [[round(random.gauss(1.5, 3), 4) for _ in range(20)] for _ in range($n)]}))" > "$WORK/body$n.json"
done
# wrk THREADS CONNECTIONS DELAY_MS ROWS HOSTPORT: one JSON line of figures.
measure() {
  BENCH_BODY="$WORK/body$4.json" BENCH_TOKEN=$TOKEN BENCH_DELAY_MS=$3 \
    wrk -t"$1" -c"$2" -d"$DURATION" -s scripts/bench_serve.lua "http://$5/v1/models/bench/predict" | tail -1
}
field() { "$DRIFTD_PYTHON" -c "import json, sys; print(json.loads(sys.argv[1])['$2'])" "$1"; }
row() { printf '| %-34s | %4s | %9.0f | %8s | %8s | %6s |\n' "$1" "$2" "$(field "$3" rps)" "$(field "$3" p50_us)" "$(field "$3" p99_us)" "$(field "$3" errors)"; }

echo "cores: $(nproc); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| server | rows | requests/s | p50 µs | p99 µs | errors |"
echo "|---|---:|---:|---:|---:|---:|"
declare -A RPS
for n in 1 256; do
  d=$(measure 1 8 0 "$n" "$ADDR"); row "driftd, saturated (8 connections)" "$n" "$d"
  f=$(measure 1 8 0 "$n" "127.0.0.1:$API_PORT"); row "FastAPI + PyTorch, saturated" "$n" "$f"
  RPS[$n]=$(echo "$(field "$d" rps) / $(field "$f" rps)" | bc -l)
done
paced=$(measure 1 5 2 1 "$ADDR"); row "driftd, paced (5 conn., 2 ms apart)" 1 "$paced"
RUN=$("$BIN" retrain --config "$WORK/driftd.toml" --model bench --strategy refit_combined 2>/dev/null)
for _ in $(seq 1 100); do
  st=$(psql -qAt "$URL" -c "SELECT status FROM driftd.training_runs WHERE id = $RUN")
  [ "$st" = running ] && break
  sleep 0.1
done
during=$(measure 1 5 2 1 "$ADDR")
st=$(psql -qAt "$URL" -c "SELECT status FROM driftd.training_runs WHERE id = $RUN")
row "driftd, paced, during a training (${BENCH_TRAIN_THREADS:-cores − 1} torch threads, nice $TRAIN_NICE)" 1 "$during"
echo
printf 'p99 of 1-row requests at ~2000 req/s: %s µs alone, %s µs during a training (ratio %.1fx); goal < 1000 µs during a training\n' \
  "$(field "$paced" p99_us)" "$(field "$during" p99_us)" "$(echo "$(field "$during" p99_us) / $(field "$paced" p99_us)" | bc -l)"
printf 'requests/s ratio driftd / FastAPI+PyTorch: %.1fx (1 row), %.1fx (256 rows); goal >= 5x\n' "${RPS[1]}" "${RPS[256]}"
echo "training run $RUN was '$st' when the last measurement ended ('running' = it overlapped all of it)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
