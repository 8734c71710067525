#!/usr/bin/env bash
# The Kafka broker, KRaft combined mode (broker + controller in one JVM):
# `infra/kafka.sh start|stop|restart|status`.
# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_MARKER() { printf -- '-Dcdc.component=kafka:%s' "$DATA_DIR"; }

kafka_write_conf() {
  cat >"$CONF_DIR/kafka.properties" <<EOF
# Written by infra/kafka.sh at every start: edit infra/kafka.sh or defaults.env, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$BIND_HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$BIND_HOST:$KAFKA_PORT,CONTROLLER://$BIND_HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$BIND_HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$DATA_DIR/kafka
# One broker: every internal topic has one replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
default.replication.factor=1
min.insync.replicas=1
# Topics a client asks for before Debezium has written to them (the processor subscribing to an
# empty table's topic) are created like Debezium's own (topic.creation.default.partitions=2).
auto.create.topics.enable=true
num.partitions=2
group.initial.rebalance.delay.ms=0
log.retention.hours=-1
log.retention.bytes=-1
EOF
}

kafka_start() {
  local pid logf=$LOG_DIR/kafka.log
  if (( ! KAFKA_LOCAL )); then kafka_check_external; return 0; fi
  if pid=$(running_pid kafka "$(KAFKA_MARKER)"); then log "Kafka already running (pid $pid) on $KAFKA_BOOTSTRAP_SERVERS"; KAFKA_PID=$pid KAFKA_WAS_UP=1; return 0; fi
  KAFKA_WAS_UP=0
  [[ -d $KAFKA_LIBS ]] || die "Kafka $KAFKA_VERSION is not installed in $KAFKA_LIBS: run make install"
  find_java
  require_free_port "$KAFKA_PORT" KAFKA_PORT Kafka
  require_free_port "$KAFKA_CONTROLLER_PORT" KAFKA_CONTROLLER_PORT "Kafka's controller"
  kafka_write_conf
  local jopts=(-Dlog4j2.configurationFile="$INFRA_DIR/conf/log4j2.properties" -Djava.awt.headless=true)
  if [[ ! -f $DATA_DIR/kafka/meta.properties ]]; then
    # Format the storage once. The cluster id is a random base64url UUID, as kafka-storage random-uuid makes.
    local cid; cid=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    log "formatting Kafka storage in $DATA_DIR/kafka (cluster id $cid)"
    mkdir -p "$DATA_DIR/kafka"
    "$JAVA" -Xmx256m "${jopts[@]}" -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format \
        -t "$cid" -c "$CONF_DIR/kafka.properties" >>"$logf" 2>&1 \
      || { log_tail "$logf"; die "formatting Kafka storage failed; see $logf"; }
  fi
  KAFKA_LOG_OFFSET=$(stat -c %s "$logf" 2>/dev/null || echo 0)
  KAFKA_T0=$(date +%s%N)
  start_bg kafka "$logf" "$JAVA" "$(KAFKA_MARKER)" -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC \
    -XX:MaxGCPauseMillis=20 "${jopts[@]}" -cp "$KAFKA_LIBS/*" kafka.Kafka "$CONF_DIR/kafka.properties"
  KAFKA_PID=$STARTED_PID
  log "Kafka $KAFKA_VERSION starting (pid $KAFKA_PID, log $logf)"
}

_kafka_started_line() { tail -c +"$((KAFKA_LOG_OFFSET + 1))" "$LOG_DIR/kafka.log" | grep -q 'Kafka Server started'; }
_kafka_ready() { tcp_open "$BIND_HOST" "$KAFKA_PORT" && _kafka_started_line; }

kafka_wait() {
  (( KAFKA_LOCAL )) || return 0
  [[ -n ${KAFKA_PID:-} ]] || return 0
  if (( ${KAFKA_WAS_UP:-0} )); then   # started by an earlier run: its port is enough
    wait_for_port "$BIND_HOST" "$KAFKA_PORT" "$START_TIMEOUT" Kafka "$KAFKA_PID" "$LOG_DIR/kafka.log"; return 0
  fi
  wait_until "$START_TIMEOUT" Kafka "$KAFKA_PID" "$LOG_DIR/kafka.log" _kafka_ready
  log "Kafka ready on $KAFKA_BOOTSTRAP_SERVERS ($(( ($(date +%s%N) - KAFKA_T0) / 1000000 )) ms)"
}

kafka_check_external() {
  local hp; read -r -a hp <<<"$(host_port_of "$KAFKA_BOOTSTRAP_SERVERS")"
  tcp_open "${hp[0]}" "${hp[1]}" || die "external Kafka KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS is unreachable"
  log "using external Kafka at $KAFKA_BOOTSTRAP_SERVERS"
}

kafka_stop() { stop_component kafka "$(KAFKA_MARKER)"; }

kafka_status() {
  local pid
  if (( ! KAFKA_LOCAL )); then
    local hp; read -r -a hp <<<"$(host_port_of "$KAFKA_BOOTSTRAP_SERVERS")"
    if tcp_open "${hp[0]}" "${hp[1]}"; then echo "kafka: external $KAFKA_BOOTSTRAP_SERVERS reachable"; else echo "kafka: external $KAFKA_BOOTSTRAP_SERVERS UNREACHABLE"; return 1; fi
  elif pid=$(running_pid kafka "$(KAFKA_MARKER)"); then
    if tcp_open "$BIND_HOST" "$KAFKA_PORT"; then echo "kafka: up ($KAFKA_BOOTSTRAP_SERVERS, pid $pid)"; else echo "kafka: starting (pid $pid)"; fi
  else echo "kafka: down"; return 1; fi
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  CDC_TAG=kafka; cdc_init
  case ${1:-} in start) kafka_start; kafka_wait ;; restart) kafka_stop; kafka_start; kafka_wait ;; *) dispatch_component kafka "$@" ;; esac
fi
