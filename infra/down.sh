#!/usr/bin/env bash
# make down: stop everything up.sh started (and a Superset left by bi/), in reverse order.
# Idempotent; data stays (make clean deletes it). External components are never touched.
CDC_TAG=down
# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for f in pg kafka registry connect processor; do
  # shellcheck source=/dev/null
  source "$INFRA_DIR/$f.sh"
done
cdc_init

processor_stop
# Superset (make bi) records its pid here.
if [[ -s $RUN_DIR/superset.pid ]]; then
  pid=$(<"$RUN_DIR/superset.pid")
  if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
    log "stopping superset (pid $pid)"
    pkill -TERM -P "$pid" 2>/dev/null || true
    stop_pid superset "$pid"
  fi
  rm -f "$RUN_DIR/superset.pid"
fi
connect_stop
registry_stop
kafka_stop
pg_stop warehouse
pg_stop source

# Nothing of ours may still listen on a configured port.
busy=()
for v in SOURCE_PG_PORT WAREHOUSE_PG_PORT KAFKA_PORT KAFKA_CONTROLLER_PORT REGISTRY_PORT REGISTRY_MGMT_PORT CONNECT_PORT PROCESSOR_PORT BI_PORT; do
  if tcp_open "$BIND_HOST" "${!v}"; then busy+=("$v=${!v} ($(port_owner "${!v}"))"); fi
done
# The other nodes of a cluster (node 1 is checked above).
if is_cluster; then
  for vp in $(topology_ports); do
    [[ $vp == *'[1]='* ]] && continue
    p=${vp##*=}
    if tcp_open "$BIND_HOST" "$p"; then busy+=("$vp ($(port_owner "$p"))"); fi
  done
fi
if (( ${#busy[@]} )); then
  warn "still listening after make down: ${busy[*]}"
  exit 1
fi
log "stopped; data kept in $DATA_DIR"
