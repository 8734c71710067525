#!/usr/bin/env bash
# The Kafka brokers, KRaft combined mode (broker + controller in one JVM), KAFKA_BROKERS of them in
# one quorum: `infra/kafka.sh start|stop|restart|status` (every node), `start-node|stop-node|kill-node N`.
# Node 1 is "kafka" (kafka.properties, kafka.log, $DATA_DIR/kafka), node i>1 "kafka-i".
# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_MARKER() { printf -- '-Dcdc.component=%s:%s' "$(node_name kafka "${1:-1}")" "$DATA_DIR"; }
kafka_data_dir() { printf '%s/%s' "$DATA_DIR" "$(node_name kafka "$1")"; }
kafka_conf_file() { printf '%s/%s.properties' "$CONF_DIR" "$(node_name kafka "$1")"; }
kafka_what() { if (( KAFKA_BROKERS == 1 )); then printf Kafka; else printf 'Kafka node %s' "$1"; fi; }
kafka_log_file() { printf '%s/%s.log' "$LOG_DIR" "$(node_name kafka "$1")"; }

# kafka_listener_conf N: how broker N listens and is reached. The one place for listener and
# security settings. SECURITY=on: clients and the other brokers come in over SASL_SSL with
# SCRAM-SHA-512 (inter-broker as the admin user, bootstrapped at storage format). The controller
# listener uses SSL with client certificates instead: KRaft controllers cannot authenticate with
# SCRAM (its credentials live in the metadata the controllers serve), and mutual TLS needs no
# password in the quorum's own traffic; the broker certificate's principal (BROKER_PRINCIPAL) is a
# super user, like admin. Passwords in this file: it is written mode 600.
BROKER_PRINCIPAL='User:CN=kafka-broker'
kafka_listener_conf() {
  local p c; p=$(kafka_port_of "$1") c=$(kafka_controller_port_of "$1")
  if ! security_on; then
    cat <<EOC
listeners=PLAINTEXT://$BIND_HOST:$p,CONTROLLER://$BIND_HOST:$c
advertised.listeners=PLAINTEXT://$BIND_HOST:$p
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
EOC
    return 0
  fi
  cat <<EOC
listeners=SASL_SSL://$BIND_HOST:$p,CONTROLLER://$BIND_HOST:$c
advertised.listeners=SASL_SSL://$BIND_HOST:$p
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$(jaas_conf SCRAM-SHA-512 admin "$KAFKA_ADMIN_PASSWORD")
listener.name.controller.ssl.client.auth=required
ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS_DIR/broker.p12
ssl.keystore.password=$KAFKA_TLS_PASSWORD
ssl.truststore.type=PKCS12
ssl.truststore.location=$TLS_DIR/truststore.p12
ssl.truststore.password=$KAFKA_TLS_PASSWORD
# ACLs (infra/README.md "Security"): anything not granted is denied.
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin;$BROKER_PRINCIPAL
EOC
}

# Every broker is a voter of the controller quorum.
kafka_quorum_voters() {
  local i out=()
  for (( i = 1; i <= KAFKA_BROKERS; i++ )); do out+=("$i@$BIND_HOST:$(kafka_controller_port_of "$i")"); done
  (IFS=,; printf '%s' "${out[*]}")
}

kafka_replication_conf() {
  if (( KAFKA_BROKERS == 1 )); then
    echo "# One broker: every internal topic has one replica."
  else
    echo "# $KAFKA_BROKERS brokers: every topic has $REPLICATION_FACTOR replicas; a write (acks=all) needs $MIN_INSYNC_REPLICAS in sync."
  fi
  local rf=$REPLICATION_FACTOR isr=$MIN_INSYNC_REPLICAS
  cat <<EOC
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
default.replication.factor=$rf
min.insync.replicas=$isr
EOC
}

kafka_write_conf() {
  local n=${1:-1}
  ( umask 077; : >"$(kafka_conf_file "$n")" )
  {
    echo "# Written by infra/kafka.sh at every start: edit infra/kafka.sh or defaults.env, not this file."
    echo "process.roles=broker,controller"
    echo "node.id=$n"
    echo "controller.quorum.voters=$(kafka_quorum_voters)"
    kafka_listener_conf "$n"
    echo "log.dirs=$(kafka_data_dir "$n")"
    kafka_replication_conf
    cat <<EOC
# Topics a client asks for before Debezium has written to them (the processor subscribing to an
# empty table's topic) are created like Debezium's own (topic.creation.default.partitions=2).
auto.create.topics.enable=true
num.partitions=2
group.initial.rebalance.delay.ms=0
log.retention.hours=-1
log.retention.bytes=-1
EOC
    (( KAFKA_BROKERS == 1 )) || cat <<EOC
# A broker back from a crash catches up and takes its partitions' leadership back.
unclean.leader.election.enable=false
auto.leader.rebalance.enable=true
EOC
  } >"$(kafka_conf_file "$n")"
  chmod 600 "$(kafka_conf_file "$n")"
}

# kafka_tls_ensure: the CA and the broker certificate in $TLS_DIR, made once (kept while present).
# ca.pem is what clients trust (KAFKA_SSL_CA_FILE; Java clients read it as a PEM truststore);
# broker.p12 (key + certificate, SAN 127.0.0.1, localhost, BIND_HOST; server and client use: the
# controller listener wants client certificates) and truststore.p12 are the brokers'. Private keys
# and keystores mode 600; passwords through the environment, never argv.
kafka_tls_ensure() {
  local d=$TLS_DIR san
  [[ -s $d/ca.pem && -s $d/broker.p12 && -s $d/truststore.p12 ]] && return 0
  command -v openssl >/dev/null || die "openssl is needed to make the Kafka certificates (SECURITY=on): install it (Debian: apt-get install openssl)"
  command -v keytool >/dev/null || find_java
  local keytool; keytool=$(command -v keytool || echo "$(dirname "$JAVA")/keytool")
  log "making the Kafka CA and broker certificate in $d"
  mkdir -p "$d"; chmod 700 "$d"
  rm -f "$d"/{ca.key,ca.pem,ca.srl,broker.key,broker.csr,broker.pem,broker.p12,truststore.p12}
  san="IP:127.0.0.1,DNS:localhost"
  if [[ $BIND_HOST =~ ^[0-9.]+$ ]]; then [[ $BIND_HOST == 127.0.0.1 ]] || san+=",IP:$BIND_HOST"; else san+=",DNS:$BIND_HOST"; fi
  (
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=cdc-warehouse local Kafka CA" \
      -keyout "$d/ca.key" -out "$d/ca.pem" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kafka-broker" -keyout "$d/broker.key" -out "$d/broker.csr"
    openssl x509 -req -in "$d/broker.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 3650 -out "$d/broker.pem" \
      -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' "$san")
    openssl pkcs12 -export -name kafka-broker -inkey "$d/broker.key" -in "$d/broker.pem" -certfile "$d/ca.pem" \
      -out "$d/broker.p12" -passout env:KAFKA_TLS_PASSWORD
    "$keytool" -importcert -noprompt -alias cdc-ca -file "$d/ca.pem" -keystore "$d/truststore.p12" -storetype PKCS12 \
      -storepass:env KAFKA_TLS_PASSWORD
  ) >>"$LOG_DIR/tls.log" 2>&1 || { log_tail "$LOG_DIR/tls.log"; die "making the Kafka certificates failed; see $LOG_DIR/tls.log"; }
  rm -f "$d/broker.csr" "$d/ca.srl"
  chmod 644 "$d/ca.pem" "$d/broker.pem"
}

# Who may do what (SECURITY=on), one ACL a line: principal resource-type pattern-type name operation.
# Found by running the pipeline with the authorizer on and reading its denials in the Kafka log.
# The admin user (tests, seed/verify, bench, infra scripts) and the brokers are super users.
kafka_acls() {
  local c=User:connect p=User:processor g=$CONNECT_GROUP_ID pg=${PROCESSOR_GROUP_ID:-cdc-warehouse} op
  # Connect: its worker group and internal topics; Debezium's change, transaction and heartbeat
  # topics (created on first use); the signal topic, read by the connector's own consumer.
  printf '%s group literal %s %s\n' $c "$g" READ $c "$g" DESCRIBE
  for op in READ WRITE DESCRIBE CREATE DESCRIBE_CONFIGS; do printf '%s topic prefixed %s %s\n' $c "$g-" $op; done
  for op in WRITE DESCRIBE CREATE DESCRIBE_CONFIGS; do printf '%s topic prefixed %s %s\n' $c dbserver1. $op $c __debezium-heartbeat.dbserver1 $op; done
  printf '%s topic literal %s %s\n' $c dbserver1-signal READ $c dbserver1-signal DESCRIBE
  # (the signal consumer looks up its group, Debezium's default signal.consumer.group.id, at start)
  printf '%s group literal %s %s\n' $c kafka-signal READ $c kafka-signal DESCRIBE
  printf '%s cluster literal kafka-cluster %s\n' $c IDEMPOTENT_WRITE
  # The processor: reads the change and transaction topics in its group; writes the signal topic
  # (incremental snapshots it asks of a connector, processor/src/signals.ts).
  printf '%s topic prefixed %s %s\n' $p dbserver1. READ $p dbserver1. DESCRIBE
  printf '%s group prefixed %s %s\n' $p "$pg" READ $p "$pg" DESCRIBE
  printf '%s topic literal %s %s\n' $p dbserver1-signal WRITE $p dbserver1-signal DESCRIBE
}

# kafka_security_apply: (SECURITY=on, local Kafka) the SCRAM users connect and processor with their
# passwords of now (a changed password takes effect, like the PostgreSQL roles), and the ACLs of
# kafka_acls exactly (a grant no longer listed is removed). Through Kafka's Admin API as admin, in
# one JVM (infra/KafkaSecurity.java); passwords through the environment.
kafka_security_apply() {
  (( KAFKA_LOCAL )) && security_on || return 0
  find_java
  local conf t0 src=$INFRA_DIR/KafkaSecurity.java cls=$DATA_DIR/classes javac main
  conf=$(kafka_admin_conf_file) t0=$(date +%s%N)
  # Compiled once into $DATA_DIR/classes when the JDK has javac (the launcher's compile from source
  # took 5-25 s of every make up here); otherwise run from source.
  javac=$(dirname "$(readlink -f "$JAVA")")/javac
  if [[ -x $javac && ( ! -f $cls/KafkaSecurity.class || $src -nt $cls/KafkaSecurity.class ) ]]; then
    mkdir -p "$cls"
    "$javac" -nowarn -cp "$KAFKA_LIBS/*" -d "$cls" "$src" >>"$LOG_DIR/kafka-security.log" 2>&1 || rm -f "$cls/KafkaSecurity.class"
  fi
  if [[ -f $cls/KafkaSecurity.class ]]; then main=(-cp "$KAFKA_LIBS/*:$cls" KafkaSecurity); else main=(-cp "$KAFKA_LIBS/*" "$src"); fi
  kafka_acls | KAFKA_USERS="connect processor" KAFKA_PASSWORD_connect=$KAFKA_CONNECT_PASSWORD KAFKA_PASSWORD_processor=$KAFKA_PROCESSOR_PASSWORD \
    "$JAVA" -Xmx128m -Dlog4j2.configurationFile="$INFRA_DIR/conf/log4j2.properties" "${main[@]}" \
      "$KAFKA_BOOTSTRAP_SERVERS" "$conf" >>"$LOG_DIR/kafka-security.log" 2>&1 \
    || { log_tail "$LOG_DIR/kafka-security.log"; die "setting the Kafka users and ACLs failed; see $LOG_DIR/kafka-security.log"; }
  log "Kafka users connect, processor and their ACLs applied ($(( ($(date +%s%N) - t0) / 1000000 )) ms; $LOG_DIR/kafka-security.log)"
}

declare -A KAFKA_PIDS=() KAFKA_UP_BEFORE=() KAFKA_LOG_OFFSETS=() KAFKA_T0S=()

# The cluster id every node is formatted with (one quorum): generated once, kept in $DATA_DIR.
kafka_cluster_id() {
  local f=$DATA_DIR/kafka-cluster-id
  # (One starting with '-' can only be left by a format that failed on it.)
  [[ -s $f && $(<"$f") != -* ]] || kafka_random_uuid >"$f"
  cat "$f"
}

# A random base64url UUID as kafka-storage random-uuid makes it, and like Kafka's own generator
# never one starting with '-': the tools' argument parser takes that for an option (a 1-in-64
# make up failed with "argument --cluster-id/-t: expected one argument").
kafka_random_uuid() {
  local id
  while id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '='); [[ $id == -* ]]; do :; done
  printf '%s' "$id"
}

kafka_start_node() {
  local n=$1 pid name logf dir conf
  name=$(node_name kafka "$n") logf=$(kafka_log_file "$n") dir=$(kafka_data_dir "$n") conf=$(kafka_conf_file "$n")
  if pid=$(running_pid "$name" "$(KAFKA_MARKER "$n")"); then
    log "$(kafka_what "$n") already running (pid $pid) on $BIND_HOST:$(kafka_port_of "$n")"
    KAFKA_PIDS[$n]=$pid KAFKA_UP_BEFORE[$n]=1; return 0
  fi
  KAFKA_UP_BEFORE[$n]=0
  require_free_port "$(kafka_port_of "$n")" KAFKA_PORT "$(kafka_what "$n")"
  require_free_port "$(kafka_controller_port_of "$n")" KAFKA_CONTROLLER_PORT "Kafka's controller"
  kafka_write_conf "$n"
  local jopts=(-Dlog4j2.configurationFile="$INFRA_DIR/conf/log4j2.properties" -Djava.awt.headless=true)
  if [[ ! -f $dir/meta.properties ]]; then
    local cid
    if (( KAFKA_BROKERS == 1 )); then
      # Format the storage once.
      cid=$(kafka_random_uuid)
    else
      cid=$(kafka_cluster_id)
    fi
    log "formatting Kafka storage in $dir (cluster id $cid)"
    mkdir -p "$dir"
    kafka_format "$n" "$cid" >>"$logf" 2>&1 \
      || { log_tail "$logf"; die "formatting Kafka storage failed; see $logf"; }
  fi
  # Rotated here rather than by start_bg: readiness is read from this offset of the log on.
  rotate_log "$logf"
  KAFKA_LOG_OFFSETS[$n]=$(stat -c %s "$logf" 2>/dev/null || echo 0)
  KAFKA_T0S[$n]=$(date +%s%N)
  start_bg "$name" "$logf" "$JAVA" "$(KAFKA_MARKER "$n")" -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC \
    -XX:MaxGCPauseMillis=20 "${jopts[@]}" -cp "$KAFKA_LIBS/*" kafka.Kafka "$conf"
  KAFKA_PIDS[$n]=$STARTED_PID
  if (( KAFKA_BROKERS == 1 )); then log "Kafka $KAFKA_VERSION starting (pid $STARTED_PID, log $logf)"
  else log "Kafka $KAFKA_VERSION node $n starting (pid $STARTED_PID, log $logf)"; fi
}

kafka_start() {
  if (( ! KAFKA_LOCAL )); then kafka_check_external; return 0; fi
  [[ -d $KAFKA_LIBS ]] || die "Kafka $KAFKA_VERSION is not installed in $KAFKA_LIBS: run make install"
  find_java
  if (( KAFKA_BROKERS > 1 )); then
    # A node formatted alone (a one-node data dir) cannot join a quorum of several.
    local i f=0 u=0
    for (( i = 1; i <= KAFKA_BROKERS; i++ )); do if [[ -f $(kafka_data_dir "$i")/meta.properties ]]; then f=1; else u=1; fi; done
    if (( f && u )) && [[ ! -s $DATA_DIR/kafka-cluster-id ]]; then
      die "$DATA_DIR holds the data of a one-broker Kafka: KAFKA_BROKERS=$KAFKA_BROKERS needs make clean (deletes all data) or another DATA_DIR"
    fi
  fi
  local i
  if security_on; then kafka_tls_ensure; fi
  (( KAFKA_BROKERS == 1 )) || kafka_format_nodes
  # Every node starts before any is waited for: a broker is ready only once the quorum has a majority.
  for (( i = 1; i <= KAFKA_BROKERS; i++ )); do kafka_start_node "$i"; done
}

# kafka_format N CLUSTER_ID: formats node N's storage. Secured, the admin user's SCRAM credential
# is written into the metadata here (the brokers authenticate to each other with it before any
# client could create it). Its password goes through a java @argfile (mode 600, removed after), not argv.
kafka_format() {
  local n=$1 cid=$2 rc=0 args
  local jvm=(-Xmx256m -Dlog4j2.configurationFile="$INFRA_DIR/conf/log4j2.properties" -Djava.awt.headless=true -cp "$KAFKA_LIBS/*")
  local cmd=(kafka.tools.StorageTool format -t "$cid" -c "$(kafka_conf_file "$n")")
  # How the storage was formatted: a later SECURITY=on make up needs the admin credential in it (topology_record).
  printf 'SECURITY=%s\n' "$SECURITY" >"$DATA_DIR/kafka-format.env"
  if ! security_on; then "$JAVA" "${jvm[@]}" "${cmd[@]}"; return; fi
  # (The class path stays on the command line: the launcher does not expand its * inside an @argfile.)
  args=$(umask 077; mktemp "$RUN_DIR/kafka-format-$n.XXXXXX")
  { printf '"%s"\n' "${cmd[@]}"; printf '"%s"\n' --add-scram "SCRAM-SHA-512=[name=admin,password=$KAFKA_ADMIN_PASSWORD]"; } >"$args"
  "$JAVA" "${jvm[@]}" "@$args" || rc=$?
  rm -f "$args"
  return $rc
}

# Several nodes: their storage is formatted side by side (one JVM each; one after the other took
# about 10 s per node here).
kafka_format_nodes() {
  local i pids=() nodes=() cid
  for (( i = 1; i <= KAFKA_BROKERS; i++ )); do
    [[ -f $(kafka_data_dir "$i")/meta.properties ]] && continue
    running_pid "$(node_name kafka "$i")" "$(KAFKA_MARKER "$i")" >/dev/null && continue
    cid=$(kafka_cluster_id)
    log "formatting Kafka storage in $(kafka_data_dir "$i") (cluster id $cid)"
    mkdir -p "$(kafka_data_dir "$i")"
    kafka_write_conf "$i"
    kafka_format "$i" "$cid" >>"$(kafka_log_file "$i")" 2>&1 &
    pids+=("$!") nodes+=("$i")
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { log_tail "$(kafka_log_file "${nodes[$i]}")"; die "formatting Kafka storage of node ${nodes[$i]} failed; see $(kafka_log_file "${nodes[$i]}")"; }
  done
}

_kafka_ready() {
  local n=$1
  # Not `tail | grep -q`: grep leaving at the first match ends tail by SIGPIPE when much of the log
  # follows it (a node waited for after the others), and pipefail then calls the node not ready.
  tcp_open "$BIND_HOST" "$(kafka_port_of "$n")" \
    && grep -q 'Kafka Server started' < <(tail -c +"$((KAFKA_LOG_OFFSETS[$n] + 1))" "$(kafka_log_file "$n")")
}

kafka_wait_node() {
  local n=$1 what; what=$(kafka_what "$1")
  [[ -n ${KAFKA_PIDS[$n]:-} ]] || return 0
  if (( ${KAFKA_UP_BEFORE[$n]:-0} )); then   # started by an earlier run: its port is enough
    wait_for_port "$BIND_HOST" "$(kafka_port_of "$n")" "$START_TIMEOUT" "$what" "${KAFKA_PIDS[$n]}" "$(kafka_log_file "$n")"; return 0
  fi
  wait_until "$START_TIMEOUT" "$what" "${KAFKA_PIDS[$n]}" "$(kafka_log_file "$n")" _kafka_ready "$n"
  if (( KAFKA_BROKERS == 1 )); then log "Kafka ready on $KAFKA_BOOTSTRAP_SERVERS ($(( ($(date +%s%N) - KAFKA_T0S[$n]) / 1000000 )) ms)"
  else log "Kafka node $n ready on $BIND_HOST:$(kafka_port_of "$n") ($(( ($(date +%s%N) - KAFKA_T0S[$n]) / 1000000 )) ms)"; fi
}

kafka_wait() {
  (( KAFKA_LOCAL )) || return 0
  local i
  for (( i = 1; i <= KAFKA_BROKERS; i++ )); do kafka_wait_node "$i"; done
}

kafka_check_external() {
  local hp; read -r -a hp <<<"$(host_port_of "$KAFKA_BOOTSTRAP_SERVERS")"
  tcp_open "${hp[0]}" "${hp[1]}" || die "external Kafka KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS is unreachable"
  log "using external Kafka at $KAFKA_BOOTSTRAP_SERVERS"
}

kafka_stop_node() { stop_component "$(node_name kafka "$1")" "$(KAFKA_MARKER "$1")"; }

# kafka_kill_node N: SIGKILL, no shutdown (make chaos); the pid file stays for a later start to clear.
kafka_kill_node() {
  local pid
  pid=$(running_pid "$(node_name kafka "$1")" "$(KAFKA_MARKER "$1")") || die "Kafka node $1 is not running"
  kill -KILL "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  log "killed Kafka node $1 (pid $pid, SIGKILL)"
}

kafka_stop() {
  local i pid nodes
  nodes=$(extra_nodes kafka "$KAFKA_BROKERS"; seq "$KAFKA_BROKERS" -1 1)
  # Several brokers are told to stop at once: stopped one after the other, the last ones would wait
  # in vain for a quorum majority to acknowledge their shutdown (until STOP_TIMEOUT, then SIGKILL).
  if (( KAFKA_BROKERS > 1 )); then
    for i in $nodes; do
      if pid=$(running_pid "$(node_name kafka "$i")" "$(KAFKA_MARKER "$i")"); then kill -TERM "$pid" 2>/dev/null || true; fi
    done
  fi
  for i in $nodes; do kafka_stop_node "$i"; done
}

# kafka_quorum_leader -> the node id of the active controller (the KRaft quorum's leader), empty if unknown
# (Kafka's own tool: in KRaft the metadata API names a random broker as "controller".) A JVM start
# on a busy machine, or a quorum in the middle of an election, can take a while: a few bounded tries.
kafka_quorum_leader() {
  local i id conf
  find_java
  conf=$(kafka_admin_conf_file)
  for (( i = 1; i <= ${1:-3}; i++ )); do
    id=$(timeout 60 "$JAVA" -Xmx128m -Dlog4j2.configurationFile="$INFRA_DIR/conf/log4j2.properties" -cp "$KAFKA_LIBS/*" \
      org.apache.kafka.tools.MetadataQuorumCommand --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" ${conf:+--command-config "$conf"} describe --status 2>>"$LOG_DIR/kafka-tools.log" \
      | sed -n 's/^LeaderId:[[:space:]]*\([0-9]*\).*/\1/p') || true
    [[ $id =~ ^[0-9]+$ ]] && { echo "$id"; return 0; }
    sleep 2
  done
  return 1
}

kafka_status() {
  local pid i rc=0 p
  if (( ! KAFKA_LOCAL )); then
    local hp; read -r -a hp <<<"$(host_port_of "$KAFKA_BOOTSTRAP_SERVERS")"
    if tcp_open "${hp[0]}" "${hp[1]}"; then echo "kafka: external $KAFKA_BOOTSTRAP_SERVERS reachable"; else echo "kafka: external $KAFKA_BOOTSTRAP_SERVERS UNREACHABLE"; return 1; fi
    return 0
  fi
  if (( KAFKA_BROKERS == 1 )); then
    if pid=$(running_pid kafka "$(KAFKA_MARKER)"); then
      if tcp_open "$BIND_HOST" "$KAFKA_PORT"; then echo "kafka: up ($KAFKA_BOOTSTRAP_SERVERS, pid $pid)"; else echo "kafka: starting (pid $pid)"; fi
    else echo "kafka: down"; return 1; fi
    return 0
  fi
  for (( i = 1; i <= KAFKA_BROKERS; i++ )); do
    p=$(kafka_port_of "$i")
    if pid=$(running_pid "$(node_name kafka "$i")" "$(KAFKA_MARKER "$i")"); then
      if tcp_open "$BIND_HOST" "$p"; then echo "kafka node $i: up ($BIND_HOST:$p, controller :$(kafka_controller_port_of "$i"), pid $pid)"; else echo "kafka node $i: starting (pid $pid)"; fi
    else echo "kafka node $i: down ($BIND_HOST:$p)"; rc=1; fi
  done
  local leader; leader=$(kafka_quorum_leader 1 || true)
  echo "kafka active controller (quorum leader): ${leader:-unknown}"
  return $rc
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  CDC_TAG=kafka; cdc_init
  case ${1:-} in
    start) kafka_start; kafka_wait ;;
    restart) kafka_stop; kafka_start; kafka_wait ;;
    start-node) [[ ${2:-} =~ ^[0-9]+$ ]] || die "usage: $0 start-node N"; find_java; kafka_start_node "$2"; kafka_wait_node "$2" ;;
    stop-node) [[ ${2:-} =~ ^[0-9]+$ ]] || die "usage: $0 stop-node N"; kafka_stop_node "$2" ;;
    kill-node) [[ ${2:-} =~ ^[0-9]+$ ]] || die "usage: $0 kill-node N"; kafka_kill_node "$2" ;;
    controller) kafka_quorum_leader ;;
    *) dispatch_component kafka "$@" ;;
  esac
fi
