#!/usr/bin/env bash
# The main job on an embedded default: a throwaway PostgreSQL, driftd migrated and running
# against it, and a drifting workload streamed in. Watch driftd catch the drift.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
echo "[demo] building driftd"
cargo build --locked --bin driftd
BIN="$CARGO_TARGET_DIR/debug/driftd"
WORK=$(mktemp -d /tmp/driftd-demo.XXXXXX)
PORT=${DRIFTD_DEMO_PG_PORT:-55432}
cleanup() {
  [ -n "${DAEMON:-}" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null || true
  bash scripts/pg.sh stop "$WORK/pg"
}
trap cleanup EXIT
echo "[demo] starting a throwaway PostgreSQL 15 on 127.0.0.1:$PORT ($WORK/pg)"
bash scripts/pg.sh start "$WORK/pg" "$PORT" >/dev/null
cat > "$WORK/driftd.toml" <<TOML
[database]
url = "postgres://postgres@127.0.0.1:$PORT/postgres"

[http]
listen = "127.0.0.1:${DRIFTD_DEMO_HTTP_PORT:-9187}"

[poll]
interval_ms = 500
settle_ms = 1000

[[models]]
name = "demo"
n_features = 8

[[models.detectors]]
kind = "adwin"

[[models.detectors]]
kind = "ddm"

[models.triggers]
bootstrap_min_rows = 1000

[models.train]
window = { max_rows = 2500 }

[models.triggers.drift]
detectors = ["adwin"]
min_new_rows = 500
min_rows_after_drift = 1000
cooldown = "10s"
strategy = "auto"
TOML
echo "[demo] migrating (schema driftd + reference outcomes table)"
"$BIN" migrate --config "$WORK/driftd.toml" --create-outcomes-table
echo "[demo] checking the outcomes table against the configuration"
"$BIN" check-config --config "$WORK/driftd.toml" --database
echo "[demo] starting driftd; metrics at http://127.0.0.1:${DRIFTD_DEMO_HTTP_PORT:-9187}/metrics"
"$BIN" run --config "$WORK/driftd.toml" 2> "$WORK/driftd.log" &
DAEMON=$!
echo "[demo] streaming a drifting workload (stable → abrupt change → gradual drift), labels 1 s late"
"$BIN" demo-feed --config "$WORK/driftd.toml" --model demo "$@"
echo "[demo] driftd log: $WORK/driftd.log"
curl -fsS "http://127.0.0.1:${DRIFTD_DEMO_HTTP_PORT:-9187}/metrics" 2>/dev/null | grep -E '^driftd_(rolling_accuracy|drift_detected_total|outcomes_processed_total)' || true
