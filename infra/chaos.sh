#!/usr/bin/env bash
# make chaos: on a running cluster (KAFKA_BROKERS=3 CONNECT_WORKERS=2 PROCESSORS=2 make up), one
# fault at a time while the steady workload of make load runs:
#   broker-leader      kill -9 the broker leading partition 0 of the change topic, restart it
#   broker-controller  kill -9 the active controller (the KRaft quorum leader), restart it
#   connect-worker     kill -9 the Connect worker running the source task; the task moves to
#                      another worker; then the worker is restarted
#   processor          kill -9 the processor holding partition 0 of the change topic; its
#                      partitions move to the other processor(s); then it is restarted
#   rolling-brokers    every broker stopped and started again, one after the other
# After every step the load stops and make verify must be exact (every change once in the history).
# Freshness per step, from the warehouse itself: each change's commit-to-visible delay is
# orders_fact.processed_at - source_ts (both clocks of this host). A table at the end;
# $DATA_DIR/chaos/results.json for tests. Exit status 0 only if every verify was exact.
#   CHAOS_STEPS="broker-leader processor" make chaos    RATE=100 (changes/s)
CDC_TAG=chaos
# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for f in kafka connect processor; do
  # shellcheck source=/dev/null
  source "$INFRA_DIR/$f.sh"
done
cdc_init
export_env

STEPS=${CHAOS_STEPS:-broker-leader broker-controller connect-worker processor rolling-brokers}
RATE=${RATE:-100}
# Load runs this long before the fault, and this long after the fault is repaired.
BEFORE_S=${CHAOS_BEFORE_SECONDS:-8}
AFTER_S=${CHAOS_AFTER_SECONDS:-10}
# A killed broker stays down this long before it is started again.
DOWN_S=${CHAOS_DOWN_SECONDS:-10}
# A change slower than this to become visible counts as disturbed freshness.
THRESHOLD_MS=${CHAOS_FRESHNESS_THRESHOLD_MS:-1000}
VERIFY_TIMEOUT=${CHAOS_VERIFY_TIMEOUT:-300}
WARMUP_S=${CHAOS_WARMUP_SECONDS:-20}
WAIT_S=${CHAOS_WAIT_SECONDS:-240}
GROUP=${PROCESSOR_GROUP_ID:-cdc-warehouse}
TOPIC=dbserver1.public.orders
OUT=$DATA_DIR/chaos
mkdir -p "$OUT"

(( KAFKA_LOCAL && CONNECT_LOCAL )) || die "make chaos kills local processes: not with an external Kafka or Connect"
(( KAFKA_BROKERS >= 3 && CONNECT_WORKERS >= 2 && PROCESSORS >= 2 )) \
  || die "make chaos needs a cluster: KAFKA_BROKERS=3 CONNECT_WORKERS=2 PROCESSORS=2 make up (this one: $KAFKA_BROKERS/$CONNECT_WORKERS/$PROCESSORS)"

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# deadline_loop SECONDS WHAT CMD...: CMD until it succeeds, bounded
deadline_loop() {
  local t=$1 what=$2; shift 2
  local end=$(( $(date +%s) + t ))
  until "$@"; do
    (( $(date +%s) < end )) || die "$what: not within ${t}s"
    sleep 1
  done
}

cluster_json() { node "$INFRA_DIR/cluster-status.js" "$KAFKA_BOOTSTRAP_SERVERS" "$GROUP" --json 2>/dev/null; }

# jq-like reads of the cluster JSON (node, no jq dependency)
json_eval() { node -e "const j=JSON.parse(require('fs').readFileSync(0,'utf8')); const r=($1); if (r !== undefined && r !== null) console.log(r)"; }

partition_leader() { cluster_json | json_eval "j.topics.find(t=>t.name==='$1').partitions.find(p=>p.partition===$2).leader"; }

# every broker registered, every partition of every topic with its full replica set in sync
all_in_sync() {
  cluster_json | json_eval "(j.brokers.length===$KAFKA_BROKERS && j.topics.every(t=>t.partitions.every(p=>p.leader>=0 && p.isr.length===p.replicas.length))) ? 'yes' : undefined" | grep -q yes
}
wait_in_sync() { deadline_loop "$WAIT_S" "every partition back in sync" all_in_sync; log "every partition has its full set of in-sync replicas"; }

# The processor (index) whose consumer holds TOPIC[0]; members are told apart by client id.
partition_owner() { cluster_json | json_eval "(j.group.members.find(m=>(m.assignment['$TOPIC']||[]).includes(0))||{}).clientId" | sed -n 's/^cdc-processor-//p'; }
group_has() {  # group_has MEMBERS: that many members, all of TOPIC's partitions assigned
  cluster_json | json_eval "(j.group.state==='Stable' && j.group.members.length===$1 && new Set(j.group.members.flatMap(m=>m.assignment['$TOPIC']||[])).size===j.topics.find(t=>t.name==='$TOPIC').partitions.length) ? 'yes' : undefined" | grep -q yes
}

connect_live_url() {
  local u
  for u in ${CONNECT_URLS//,/ }; do connect_ok "$u/" 2>/dev/null && { printf '%s' "$u"; return 0; }; done
  return 1
}
# Which worker (index) runs task 0, if RUNNING.
task_worker() {
  local u port; u=$(connect_live_url) || return 1
  port=$(connect_curl -fsS --max-time 5 "$u/connectors/$CONNECTOR_NAME/status" 2>/dev/null \
    | json_eval "j.tasks[0] && j.tasks[0].state==='RUNNING' ? j.tasks[0].worker_id.split(':').pop() : undefined") || return 1
  [[ $port =~ ^[0-9]+$ ]] || return 1
  echo $(( (port - CONNECT_PORT) / CONNECT_PORT_STEP + 1 ))
}
task_running_elsewhere() { local w; w=$(task_worker) && [[ $w != "$1" ]]; }
task_running() { task_worker >/dev/null; }

# ---------------------------------------------------------------- faults

fault_broker() {
  local n=$1
  log "fault: kill -9 Kafka node $n ($2)"
  kafka_kill_node "$n"
  sleep "$DOWN_S"
  log "restarting Kafka node $n"
  kafka_start_node "$n"; kafka_wait_node "$n"
  wait_in_sync
}

step_broker_leader() {
  local n; n=$(partition_leader "$TOPIC" 0)
  [[ $n =~ ^[0-9]+$ ]] || die "no leader found for $TOPIC[0]"
  FAULT_DETAIL="node $n (leader of $TOPIC[0])"
  fault_broker "$n" "leader of $TOPIC[0]"
}

step_broker_controller() {
  local n; n=$(kafka_quorum_leader 5 || true)
  [[ $n =~ ^[0-9]+$ ]] || die "the active controller could not be found (see $LOG_DIR/kafka-tools.log)"
  FAULT_DETAIL="node $n (active controller)"
  fault_broker "$n" "active controller"
}

step_connect_worker() {
  local w to
  deadline_loop "$WAIT_S" "source task RUNNING" task_running
  w=$(task_worker)
  log "fault: kill -9 Connect worker $w (runs the source task)"
  connect_kill_node "$w"
  deadline_loop "$WAIT_S" "source task moved off worker $w" task_running_elsewhere "$w"
  to=$(task_worker)
  FAULT_DETAIL="worker $w (task moved to worker $to)"
  log "the source task runs on worker $to now; restarting worker $w"
  connect_prepare; connect_start_node "$w"; connect_wait_node "$w"
  deadline_loop "$WAIT_S" "source task RUNNING" task_running
}

step_processor() {
  local n
  n=$(partition_owner)
  [[ $n =~ ^[0-9]+$ ]] || die "no processor holds $TOPIC[0]"
  log "fault: kill -9 processor $n (holds $TOPIC[0])"
  processor_kill_node "$n"
  deadline_loop "$WAIT_S" "partitions of processor $n taken over" group_has $(( PROCESSORS - 1 ))
  FAULT_DETAIL="processor $n (partitions moved to the others)"
  log "its partitions moved to the other processor(s); restarting processor $n"
  processor_start_node "$n"
  deadline_loop "$WAIT_S" "processor $n back in the group" group_has "$PROCESSORS"
}

step_rolling_brokers() {
  local n
  FAULT_DETAIL="nodes 1..$KAFKA_BROKERS, one at a time"
  for (( n = 1; n <= KAFKA_BROKERS; n++ )); do
    log "rolling restart: Kafka node $n"
    kafka_stop_node "$n"
    kafka_start_node "$n"; kafka_wait_node "$n"
    wait_in_sync
  done
}

# ---------------------------------------------------------------- measurement

# freshness FROM_MS TO_MS -> JSON of the commit-to-visible delays of the changes committed in between
freshness() {
  node -e '
    const { Client } = require("pg");
    const [from, to, thr] = process.argv.slice(1).map(Number);
    (async () => {
      const c = new Client({ connectionString: process.env.WAREHOUSE_DATABASE_URL });
      await c.connect();
      const r = await c.query(`
        WITH d AS (SELECT source_ts, processed_at, extract(epoch FROM processed_at - source_ts) * 1000 AS ms
                     FROM public.orders_fact
                    WHERE source_ts >= to_timestamp($1 / 1000.0) AND source_ts < to_timestamp($2 / 1000.0))
        SELECT count(*)::int AS changes,
               coalesce(round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms))::int, 0) AS p50_ms,
               coalesce(round(max(ms))::int, 0) AS max_ms,
               count(*) FILTER (WHERE ms > $3)::int AS slow,
               coalesce(round(extract(epoch FROM max(processed_at) FILTER (WHERE ms > $3)
                        - (min(source_ts) FILTER (WHERE ms > $3) + make_interval(secs => $3 / 1000.0))) * 1000)::int, 0) AS disturbed_ms
          FROM d`, [from, to, thr]);
      console.log(JSON.stringify(r.rows[0]));
      await c.end();
    })().catch((e) => { console.error(e.message); process.exit(1); });' "$1" "$2" "$THRESHOLD_MS"
}

# Changes in the history more than once (the same source position, operation and key).
duplicates() {
  psql_url "$WAREHOUSE_DATABASE_URL" -At -c \
    'SELECT count(*) FROM (SELECT 1 FROM public.orders_fact GROUP BY order_id, source_lsn, op HAVING count(*) > 1) d'
}

run_verify() {  # run_verify NAME -> 0 when exact
  local logf=$OUT/verify-$1.log
  if node "$REPO_DIR/dist/seed/verify.js" --timeout "$VERIFY_TIMEOUT" >"$logf" 2>&1; then
    log "verify after $1: exact ($(tail -1 "$logf"))"; return 0
  fi
  warn "verify after $1 FAILED: $logf"; tail -20 "$logf" | sed 's/^/    | /' >&2
  return 1
}

# The load in the background, stopped like Ctrl-C stops it (it finishes its transactions), bounded.
LOAD_PID=''
stop_load() {
  [[ -n $LOAD_PID ]] || return 0
  local i lrc=0
  kill -TERM "$LOAD_PID" 2>/dev/null || true
  for (( i = 0; i < 300; i++ )); do kill -0 "$LOAD_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$LOAD_PID" 2>/dev/null || true
  wait "$LOAD_PID" || lrc=$?
  LOAD_PID=''
  # 130: load's own exit status when interrupted, as asked here.
  (( lrc == 0 || lrc == 130 )) || warn "make load exited with $lrc"
}
trap stop_load EXIT

RESULTS=()
run_step() {
  local name=$1 fn=step_${1//-/_} t_load t_fault t_fixed t_end vrc=0 dup fr
  declare -F "$fn" >/dev/null || die "unknown step $name (steps: broker-leader broker-controller connect-worker processor rolling-brokers)"
  log "== step $name: load at $RATE changes/s"
  FAULT_DETAIL=''
  t_load=$(now_ms)
  # Long enough for any step; stopped (SIGTERM: it finishes its transactions) once the fault is repaired.
  node "$REPO_DIR/dist/seed/load.js" --rate "$RATE" --duration 3600 >"$OUT/load-$name.log" 2>&1 &
  LOAD_PID=$!
  sleep "$BEFORE_S"
  kill -0 "$LOAD_PID" 2>/dev/null || { tail -5 "$OUT/load-$name.log" >&2; die "make load ended early; see $OUT/load-$name.log"; }
  t_fault=$(now_ms)
  "$fn"
  t_fixed=$(now_ms)
  sleep "$AFTER_S"
  stop_load
  t_end=$(now_ms)
  run_verify "$name" || vrc=1
  dup=$(duplicates)
  base=$(freshness "$((t_load + 2000))" "$t_fault")
  fr=$(freshness "$t_fault" "$t_end")
  RESULTS+=("{\"step\":\"$name\",\"fault\":\"$FAULT_DETAIL\",\"repair_ms\":$((t_fixed - t_fault)),\"verify_exact\":$([[ $vrc == 0 ]] && echo true || echo false),\"duplicates\":${dup:-null},\"baseline\":$base,\"during\":$fr}")
  (( vrc == 0 )) && [[ $dup == 0 ]]
}

# ---------------------------------------------------------------- main

find_java
processor_build
[[ -f $REPO_DIR/dist/seed/load.js ]] || die "dist/seed/load.js missing: npm run build"
log "cluster: $KAFKA_BROKERS brokers, $CONNECT_WORKERS Connect workers, $PROCESSORS processors; steps: $STEPS"
wait_in_sync
deadline_loop "$WAIT_S" "source task RUNNING" task_running
deadline_loop "$WAIT_S" "every processor in the group" group_has "$PROCESSORS"
run_verify start || die "the pipeline is not exact before any fault: fix that first"
# Warm-up: the first changes of a table pay for schema registration and table creation; the
# freshness before each fault is then the steady one.
log "warm-up: load at $RATE changes/s for ${WARMUP_S}s"
node "$REPO_DIR/dist/seed/load.js" --rate "$RATE" --duration "$WARMUP_S" >"$OUT/load-warmup.log" 2>&1 \
  || { tail -5 "$OUT/load-warmup.log" >&2; die "make load failed; see $OUT/load-warmup.log"; }
run_verify warmup || die "the pipeline is not exact after the warm-up: fix that first"
rc=0
for s in $STEPS; do run_step "$s" || rc=1; done

printf '[%s]\n' "$(IFS=,; echo "${RESULTS[*]}")" >"$OUT/results.json"
node -e '
  const rs = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const thr = process.argv[2];
  const s = (ms) => (ms / 1000).toFixed(1);
  const rows = [["step", "fault", "repair s", "changes", "p50 s (before)", "p50 s", "max s", `>${s(thr)} s`, "disturbed s", "verify", "dups"]];
  for (const r of rs) rows.push([r.step, r.fault, s(r.repair_ms), String(r.during.changes), s(r.baseline.p50_ms), s(r.during.p50_ms), s(r.during.max_ms),
    String(r.during.slow), s(r.during.disturbed_ms), r.verify_exact ? "exact" : "FAILED", String(r.duplicates)]);
  const w = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  for (const row of rows) console.log(row.map((c, i) => c.padEnd(w[i])).join("  "));' "$OUT/results.json" "$THRESHOLD_MS"
echo "freshness: commit-to-visible delay of the changes committed from the fault until the load stopped; disturbed: from the first change slower than $((THRESHOLD_MS)) ms (plus that) to the last of them visible. Details: $OUT"
exit $rc
