#!/usr/bin/env bash
# Many models across replicas: a throwaway PostgreSQL, R replicas of driftd, M models with rows.
# For each M prints: time to consume every row, aggregate rows/s, models per replica, RSS per
# replica, PostgreSQL connections, and the idle CPU of each replica and of PostgreSQL over 10 s
# with nothing to read.
#   scripts/bench_replicas.sh [M ...]        (default: 100 1000 10000)
# Environment: BENCH_REPLICAS (2), BENCH_ROWS_PER_MODEL (200), BENCH_FEATURES (4),
#              BENCH_IDLE_S (10), BENCH_PG_PORT (55434),
#              BENCH_SETTLE_S (3: seconds between balance and the idle measurement),
#              BENCH_TEMPLATES (0; 1: one [[model_templates]] block instead of M [[models]],
#              every model found in the table while running, its width from its rows).
set -euo pipefail
cd "$(dirname "$0")/.."
MS=("$@"); [ ${#MS[@]} -gt 0 ] || MS=(100 1000 10000)
R=${BENCH_REPLICAS:-2}
PER=${BENCH_ROWS_PER_MODEL:-200}
F=${BENCH_FEATURES:-4}
IDLE=${BENCH_IDLE_S:-10}
PORT=${BENCH_PG_PORT:-55434}
source scripts/env.sh
# The same build the test suite makes (one set of artifacts; the dev profile optimises driftd).
cargo test --locked --no-run >&2
BIN="$CARGO_TARGET_DIR/debug/driftd"
TICK=$(getconf CLK_TCK)
WORK=$(mktemp -d /tmp/driftd-bench-replicas.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; bash scripts/pg.sh stop "$WORK/pg"; rm -rf "$WORK"; }
trap cleanup EXIT
URL=$(bash scripts/pg.sh start "$WORK/pg" "$PORT")
PG_MAIN=$(head -1 "$WORK/pg/postmaster.pid")

# CPU seconds (user+system) used so far by a process, or by PostgreSQL's processes together.
cpu_of() { awk -v t="$TICK" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
pg_cpu() { local s=0 p; for p in $PG_MAIN $(pgrep -P "$PG_MAIN"); do s=$(echo "$s + $(cpu_of "$p" 2>/dev/null || echo 0)" | bc -l); done; echo "$s"; }
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n {print $2}'; }
owned() { curl -s "http://127.0.0.1:$1/metrics" | grep -c '^driftd_model_owner{.*} 1$' || true; }

printf '%7s %3s %9s %10s %11s %11s %18s %14s %6s %16s %8s\n' M R rows consume_s rows_per_s balanced_s models_per_replica rss_MiB conns idle_cpu_replica idle_pg
for M in "${MS[@]}"; do
  db="m$M"
  psql -q "$URL" -c "CREATE DATABASE $db" >/dev/null
  DBURL="${URL%/*}/$db"
  {
    printf '[database]\nurl = "%s"\nmax_connections = 8\n[poll]\ninterval_ms = 1000\nbatch_size = 5000\n[log]\nlevel = "warn"\n' "$DBURL"
    if [ "${BENCH_TEMPLATES:-0}" = 1 ]; then
      printf '[[model_templates]]\npattern = "m*"\n[model_templates.triggers]\nbootstrap_min_rows = 1000000000000\n[model_templates.triggers.drift]\nenabled = false\n[model_templates.estimate]\nenabled = false\n'
    else
      for i in $(seq 0 $((M - 1))); do
        printf '[[models]]\nname = "m%05d"\nn_features = %d\n[models.triggers]\nbootstrap_min_rows = 1000000000000\n[models.triggers.drift]\nenabled = false\n[models.estimate]\nenabled = false\n' "$i" "$F"
      done
    fi
  } > "$WORK/driftd.toml"
  "$BIN" migrate --config "$WORK/driftd.toml" --create-outcomes-table >/dev/null
  psql -q "$DBURL" <<SQL
ALTER TABLE outcomes SET (autovacuum_enabled = false);
INSERT INTO outcomes (model, created_at, features, prediction, label, labeled_at)
SELECT format('m%s', lpad(m::text, 5, '0')), t - interval '1 minute',
       ARRAY[$(printf 'random()::real,%.0s' $(seq 2 "$F"))random()::real], random(), (random() > 0.5)::int, t
FROM generate_series(0, $M - 1) m, generate_series(1, $PER) g,
     LATERAL (SELECT timestamptz '2026-01-01' + g * interval '1 s' AS t) ts;
VACUUM ANALYZE outcomes;
SQL
  total=$((M * PER))
  start=$(date +%s.%N)
  PIDS=()
  for r in $(seq 1 "$R"); do
    DRIFTD_HTTP__LISTEN="127.0.0.1:$((9400 + r))" "$BIN" run --config "$WORK/driftd.toml" 2>"$WORK/log$r" &
    PIDS+=($!)
  done
  while :; do
    n=$(psql -qAt "$DBURL" -c "SELECT coalesce(sum(rows_processed), 0) FROM driftd.monitor_state")
    [ "$n" -ge "$total" ] && break
    sleep 0.5
  done
  end=$(date +%s.%N)
  consume=$(echo "$end - $start" | bc -l)
  # Idle means: the models shared out (each replica owns floor(M/R) or ceil(M/R)), nothing
  # to read (wait up to 5 min for that).
  lo=$((M / R)); hi=$(((M + R - 1) / R))
  for _ in $(seq 1 300); do
    sum=0; ok=1
    for r in $(seq 1 "$R"); do
      n=$(owned $((9400 + r))); sum=$((sum + n))
      { [ "$n" -ge "$lo" ] && [ "$n" -le "$hi" ]; } || ok=0
    done
    [ "$sum" -eq "$M" ] && [ "$ok" = 1 ] && break
    sleep 1
  done
  balanced=$(echo "$(date +%s.%N) - $start" | bc -l)
  sleep "${BENCH_SETTLE_S:-3}"  # let the last commits and metric updates settle
  shares=""; rss=""; before=();
  for r in $(seq 1 "$R"); do shares="$shares$(owned $((9400 + r)))/"; done
  conns=$(psql -qAt "$DBURL" -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$db' AND pid <> pg_backend_pid()")
  for i in "${!PIDS[@]}"; do before[$i]=$(cpu_of "${PIDS[$i]}"); done
  pg_before=$(pg_cpu)
  sleep "$IDLE"
  idle=""
  for i in "${!PIDS[@]}"; do
    idle="$idle$(printf '%.1f%%' "$(echo "($(cpu_of "${PIDS[$i]}") - ${before[$i]}) * 100 / $IDLE" | bc -l)")/"
    rss="$rss$(( $(awk '/VmRSS/ {print $2}' "/proc/${PIDS[$i]}/status") / 1024 ))/"
  done
  pg_idle=$(printf '%.1f%%' "$(echo "($(pg_cpu) - $pg_before) * 100 / $IDLE" | bc -l)")
  printf '%7d %3d %9d %10.1f %11.0f %11.1f %18s %14s %6s %16s %8s\n' "$M" "$R" "$total" "$consume" \
    "$(echo "$total / $consume" | bc -l)" "$balanced" "${shares%/}" "${rss%/}" "$conns" "${idle%/}" "$pg_idle"
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
done
