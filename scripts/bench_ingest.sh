#!/usr/bin/env bash
# Ingest benchmark: fills a throwaway PostgreSQL with N labelled rows (default 5 000 000),
# then measures in the same run
#   (a) COPY (SELECT <the poll's columns> ... ORDER BY labeled_at, id) TO STDOUT  — the reference
#   (b) driftd run consuming the same rows from scratch,
# and prints rows/s of both, their ratio, and driftd's RSS as the rows grow (flat = bounded).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-5000000}
FEATURES=${BENCH_FEATURES:-8}
source scripts/env.sh
# The dev profile optimises driftd and its light dependencies (see Cargo.toml): the same binary the tests use.
cargo build --locked --bin driftd
BIN="$CARGO_TARGET_DIR/debug/driftd"
WORK=$(mktemp -d /tmp/driftd-bench.XXXXXX)
PORT=${BENCH_PG_PORT:-55433}
trap 'kill $DAEMON 2>/dev/null || true; bash scripts/pg.sh stop "$WORK/pg"; rm -rf "$WORK"' EXIT
DAEMON=
URL=$(bash scripts/pg.sh start "$WORK/pg" "$PORT")
cat > "$WORK/driftd.toml" <<TOML
[database]
url = "$URL"
[http]
listen = "127.0.0.1:0"
[poll]
batch_size = 10000
interval_ms = 200
[[models]]
name = "bench"
n_features = $FEATURES
# Measure ingest alone: no bootstrap training, no drift-triggered updates.
[models.triggers]
bootstrap_min_rows = 1000000000000
[models.triggers.drift]
enabled = false
TOML
"$BIN" migrate --config "$WORK/driftd.toml" --create-outcomes-table >/dev/null
echo "filling $ROWS labelled rows with $FEATURES features ..."
psql -q "$URL" <<SQL
ALTER TABLE outcomes SET (autovacuum_enabled = false);
INSERT INTO outcomes (model, created_at, features, prediction, label, labeled_at)
SELECT 'bench', t - interval '1 minute',
       ARRAY[$(printf 'random()::real,%.0s' $(seq 2 "$FEATURES"))random()::real],
       random(), (random() > 0.5)::int, t
FROM generate_series(1, $ROWS) g, LATERAL (SELECT timestamptz '2026-01-01' + g * interval '10 ms' AS t) ts;
VACUUM ANALYZE outcomes;
SQL
COLS="id::int8, labeled_at, features::float8[], prediction::float8, label::float8, model_version::int8, created_at"
copy_start=$(date +%s.%N)
psql -q "$URL" -c "COPY (SELECT $COLS FROM outcomes WHERE model = 'bench' AND labeled_at IS NOT NULL ORDER BY labeled_at, id) TO STDOUT" > /dev/null
copy_end=$(date +%s.%N)
copy_s=$(echo "$copy_end - $copy_start" | bc -l)

start=$(date +%s.%N)
"$BIN" run --config "$WORK/driftd.toml" 2>"$WORK/log" &
DAEMON=$!
marks=""
for frac in 1 2 3 4 5; do
  target=$(( ROWS * frac / 5 ))
  while :; do
    n=$(psql -qAt "$URL" -c "SELECT coalesce((SELECT rows_processed FROM driftd.monitor_state WHERE model='bench'),0)")
    [ "$n" -ge "$target" ] && break
    sleep 0.2
  done
  rss=$(awk '/VmRSS/ {print $2}' /proc/$DAEMON/status)
  marks="$marks  after $n rows: RSS $((rss / 1024)) MiB\n"
done
end=$(date +%s.%N)
hwm=$(awk '/VmHWM/ {print $2}' /proc/$DAEMON/status)
kill -TERM $DAEMON; wait $DAEMON || true; DAEMON=
driftd_s=$(echo "$end - $start" | bc -l)
printf 'rows: %d x %d features\n' "$ROWS" "$FEATURES"
printf 'COPY TO STDOUT : %8.2f s  %10.0f rows/s\n' "$copy_s" "$(echo "$ROWS / $copy_s" | bc -l)"
printf 'driftd ingest  : %8.2f s  %10.0f rows/s\n' "$driftd_s" "$(echo "$ROWS / $driftd_s" | bc -l)"
printf 'ratio driftd/COPY: %.2f (goal >= 0.5)\n' "$(echo "$copy_s / $driftd_s" | bc -l)"
printf "driftd RSS as rows grow:\n$marks"
printf 'driftd peak RSS: %d MiB\n' "$((hwm / 1024))"
