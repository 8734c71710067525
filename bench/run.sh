#!/usr/bin/env bash
# make bench: our processor against the Debezium JDBC sink and native logical replication, on
# the running stack (make up first). Run through infra/with-env.sh (make does):
#   1. installs the Debezium JDBC sink plugin into CACHE_DIR (once) and, if Kafka Connect has not
#      loaded it yet, restarts Connect (infra/connect.sh links it into the plugin folder);
#   2. stops the stack's own processor for the run (restarted on exit; it catches up from its offsets);
#   3. node dist/bench/bench.js: sets up bench_ours / bench_jdbc / bench_jdbc_tuned / bench_native, drives the load,
#      measures, writes docs/benchmarks/RESULTS.md and results.json (bench/README.md);
#   4. draws docs/benchmarks/freshness-vs-rate.png (matplotlib in a venv under $DATA_DIR/bench);
#   5. prints the table.
# Settings (environment variables BENCH_*): bench/README.md.
CDC_TAG=bench
# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../infra/lib.sh"
for f in connect processor; do
  # shellcheck source=/dev/null
  source "$INFRA_DIR/$f.sh"
done
cdc_init
export_env
# pgbench for the cost-on-the-source phase: beside the server binaries (Debian ships it with the server).
PGBENCH=${PGBENCH:-${PG_BIN:+$PG_BIN/pgbench}}
if [[ ${BENCH_PGBENCH_DURATION:-20} != 0 ]]; then
  [[ -n $PGBENCH && -x $PGBENCH ]] || die "pgbench not found beside the PostgreSQL binaries (${PG_BIN:-not found}): install it (Debian: postgresql-15 or postgresql-contrib), set PGBENCH=/path/to/pgbench, or skip that phase with BENCH_PGBENCH_DURATION=0"
fi
export PGBENCH

BENCH_DIR=$DATA_DIR/bench
OUT_DIR=${BENCH_OUT_DIR:-docs/benchmarks}
[[ $OUT_DIR == /* ]] || OUT_DIR=$REPO_DIR/$OUT_DIR
mkdir -p "$BENCH_DIR" "$OUT_DIR"
read -r load1 load5 load15 _ </proc/loadavg
# The load average trails by minutes (a stack just started shows 4 or 5 while idle): the bench
# measures the busy share itself and waits for a quiet machine before each phase.
log "load average $load1 $load5 $load15 on $(nproc) cores"

# 1. The stack is up, and Connect has the JDBC sink plugin.
connect_ok "$CONNECT_URL/connectors/$CONNECTOR_NAME/status" \
  || die "Kafka Connect ($CONNECT_URL) or the connector $CONNECTOR_NAME is not up: run make up first"
bash "$INFRA_DIR/install.sh" debezium-jdbc
if ! connect_curl -fsS --max-time 10 "$CONNECT_URL/connector-plugins" | grep -q 'io.debezium.connector.jdbc.JdbcSinkConnector'; then
  (( CONNECT_LOCAL )) || die "the external Kafka Connect at $CONNECT_URL has no Debezium JDBC sink plugin: add $(jdbc_sink_plugin_dir) to its plugin path"
  log "restarting Kafka Connect so that it loads the Debezium JDBC sink plugin"
  bash "$INFRA_DIR/connect.sh" restart
  # The source connector resumes from its stored offsets by itself: its replication slot only
  # moves to offsets Kafka Connect has stored (lsn.flush.mode=connector), so it is never ahead.
  connector_wait_running
fi

# 2. The stack's processor would load every change of the benchmark a second time, on the same two
#    cores: it is stopped for the run and started again at the end (it resumes from its offsets).
restart_processor=0
if running_pid processor "$(PROCESSOR_MAIN)" >/dev/null; then
  processor_stop
  restart_processor=1
fi
finish() {
  local rc=$?
  if (( restart_processor )); then
    log "starting the stack's processor again (it catches up on the benchmark's changes)"
    processor_start || rc=1
  fi
  exit "$rc"
}
trap finish EXIT

# 3. The measurements.
if ! node "$REPO_DIR/dist/bench/bench.js" 2>&1 | tee "$BENCH_DIR/bench.log"; then
  die "the benchmark failed; see the lines above (log: $BENCH_DIR/bench.log, processor: $BENCH_DIR/processor.log)"
fi

# The measurements are over: the stack's processor may run again.
if (( restart_processor )); then
  log "starting the stack's processor again (it catches up on the benchmark's changes)"
  restart_processor=0
  processor_start
fi

# 4. The chart, drawn after the measurements so that installing matplotlib cannot disturb them.
venv=$BENCH_DIR/venv
if ! "$venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
  log "installing matplotlib into $venv (once; log: $BENCH_DIR/pip.log)"
  { python3 -m venv "$venv" && "$venv/bin/pip" install --disable-pip-version-check -q 'matplotlib==3.11.2'; } >"$BENCH_DIR/pip.log" 2>&1 \
    || { log_tail "$BENCH_DIR/pip.log"; die "could not install matplotlib for the chart; see $BENCH_DIR/pip.log"; }
fi
"$venv/bin/python" "$REPO_DIR/bench/chart.py" "$OUT_DIR/results.json" "$OUT_DIR/freshness-vs-rate.png" \
  || die "drawing the chart failed"
log "wrote ${OUT_DIR#"$REPO_DIR/"}/freshness-vs-rate.png"

# 5. The table, last.
echo
sed -n '/^Benchmark /,$p' "$BENCH_DIR/table.md"
log "done in $(( ($(date +%s%N) - CDC_T0) / 1000000000 )) s"
