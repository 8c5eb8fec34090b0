#!/usr/bin/env bash
# Ingest benchmark: fills a throwaway PostgreSQL with N labelled rows (default 5 000 000),
# then measures in the same run, BENCH_RUNS times each (default 3), in turn
#   (a) COPY (SELECT <the poll's columns> ... ORDER BY labeled_at, id) TO STDOUT  — the reference,
#       in PostgreSQL's binary format (what the poll reads: no float formatting) and as text
#   (b) driftd run consuming the same rows from scratch (its state deleted before each run),
# and prints the median rows/s of both, the ratio of the medians, every run, and driftd's RSS
# as the rows grow in the last run (flat = bounded). This machine's timings vary by up to 2x
# from one minute to the next; the medians of alternating runs are what to compare.
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
# The estimate of scored rows reads the table a second time (BENCH_ESTIMATE=true measures it).
[models.estimate]
enabled = ${BENCH_ESTIMATE:-false}
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
RUNS=${BENCH_RUNS:-3}
copy_runs=()
text_runs=()
driftd_runs=()
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for run in $(seq 1 "$RUNS"); do
  for format in binary text; do
    copy_start=$(date +%s.%N)
    psql -q "$URL" -c "COPY (SELECT $COLS FROM outcomes WHERE model = 'bench' AND labeled_at IS NOT NULL ORDER BY labeled_at, id) TO STDOUT (FORMAT $format)" > /dev/null
    copy_end=$(date +%s.%N)
    if [ $format = binary ]; then copy_runs+=("$(echo "$copy_end - $copy_start" | bc -l)"); else text_runs+=("$(echo "$copy_end - $copy_start" | bc -l)"); fi
  done

  psql -q "$URL" -c "DELETE FROM driftd.monitor_state; DELETE FROM driftd.counted_ids; DELETE FROM driftd.label_corrections"
  start=$(date +%s.%N)
  "$BIN" run --config "$WORK/driftd.toml" 2>"$WORK/log" &
  DAEMON=$!
  marks=""
  for frac in 1 2 3 4 5; do
    target=$(( ROWS * frac / 5 ))
    while :; do
      n=$(psql -qAt "$URL" -c "SELECT coalesce((SELECT rows_processed FROM driftd.monitor_state WHERE model='bench'),0)")
      [ "$n" -ge "$target" ] && break
      sleep 0.05
    done
    rss=$(awk '/VmRSS/ {print $2}' /proc/$DAEMON/status)
    marks="$marks  after $n rows: RSS $((rss / 1024)) MiB\n"
  done
  end=$(date +%s.%N)
  hwm=$(awk '/VmHWM/ {print $2}' /proc/$DAEMON/status)
  kill -TERM $DAEMON; wait $DAEMON || true; DAEMON=
  driftd_runs+=("$(echo "$end - $start" | bc -l)")
  printf 'run %d: COPY binary %.2f s, COPY text %.2f s, driftd %.2f s\n' "$run" "${copy_runs[-1]}" "${text_runs[-1]}" "${driftd_runs[-1]}"
done
copy_s=$(median "${copy_runs[@]}")
text_s=$(median "${text_runs[@]}")
driftd_s=$(median "${driftd_runs[@]}")
printf 'rows: %d x %d features, median of %d runs each\n' "$ROWS" "$FEATURES" "$RUNS"
printf 'COPY TO STDOUT (FORMAT binary): %8.2f s  %10.0f rows/s\n' "$copy_s" "$(echo "$ROWS / $copy_s" | bc -l)"
printf 'COPY TO STDOUT (FORMAT text)  : %8.2f s  %10.0f rows/s\n' "$text_s" "$(echo "$ROWS / $text_s" | bc -l)"
printf 'driftd ingest                 : %8.2f s  %10.0f rows/s (from process start)\n' "$driftd_s" "$(echo "$ROWS / $driftd_s" | bc -l)"
printf 'ratio driftd/COPY binary: %.2f (goal >= 0.9); driftd/COPY text: %.2f\n' "$(echo "$copy_s / $driftd_s" | bc -l)" "$(echo "$text_s / $driftd_s" | bc -l)"
printf "driftd RSS as rows grow (last run):\n$marks"
printf 'driftd peak RSS: %d MiB\n' "$((hwm / 1024))"
