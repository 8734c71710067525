#!/usr/bin/env bash
# Kafka Connect in distributed mode with the Debezium PostgreSQL connector and Apicurio's Avro
# converter: `infra/connect.sh start|stop|restart|status|register`.
# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONNECT_MARKER() { printf -- '-Dcdc.component=connect:%s' "$DATA_DIR"; }

# The Debezium JDBC sink (make bench compares against it): optional, installed by
# `infra/install.sh debezium-jdbc`, linked below whenever it is there. Set after cdc_init.
jdbc_sink_plugin_dir() {
  local v; v=$(sed -n 's#.*<debezium.jdbc.version>\(.*\)</debezium.jdbc.version>.*#\1#p' "$INFRA_DIR/maven/debezium-jdbc/pom.xml" | head -1)
  printf '%s/plugins/debezium-jdbc-%s' "$DIST_DIR" "$v"
}

connect_write_conf() {
  # plugin.path names a folder of plugin folders: one link per plugin, exactly the versions pinned in the pom.
  local pdir=$DATA_DIR/connect-plugins
  rm -rf "$pdir"; mkdir -p "$pdir"
  ln -s "$DEBEZIUM_PLUGIN" "$pdir/debezium-connector-postgres"
  ln -s "$CONVERTER_PLUGIN" "$pdir/apicurio-converter"
  JDBC_SINK_PLUGIN=$(jdbc_sink_plugin_dir)
  [[ -f $JDBC_SINK_PLUGIN/.cdc-stamp ]] && ln -s "$JDBC_SINK_PLUGIN" "$pdir/debezium-connector-jdbc"
  cat >"$CONF_DIR/connect-distributed.properties" <<EOF
# Written by infra/connect.sh at every start: edit infra/connect.sh or defaults.env, not this file.
bootstrap.servers=$KAFKA_BOOTSTRAP_SERVERS
group.id=$CONNECT_GROUP_ID
listeners=http://$BIND_HOST:$CONNECT_PORT
rest.advertised.host.name=$BIND_HOST
rest.advertised.port=$CONNECT_PORT

# Worker-level defaults; the orders connector sets Avro converters of its own.
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter

# Connector configs, source offsets and statuses live in Kafka: they survive restarts.
config.storage.topic=$CONNECT_GROUP_ID-configs
offset.storage.topic=$CONNECT_GROUP_ID-offsets
status.storage.topic=$CONNECT_GROUP_ID-status
config.storage.replication.factor=1
offset.storage.replication.factor=1
status.storage.replication.factor=1
offset.flush.interval.ms=5000

plugin.path=$pdir
plugin.discovery=service_load

# \${env:NAME} in connector configs is resolved from this worker's environment, limited to these names:
# connectors/orders-source.json holds no password and no host.
config.providers=env
config.providers.env.class=org.apache.kafka.common.config.provider.EnvVarConfigProvider
config.providers.env.param.allowlist.pattern=^(DEBEZIUM_[A-Z_]+|APICURIO_REGISTRY_URL)\$

topic.creation.enable=true
EOF
}

connect_start() {
  local pid logf=$LOG_DIR/connect.log
  if (( ! CONNECT_LOCAL )); then connect_check_external; return 0; fi
  if pid=$(running_pid connect "$(CONNECT_MARKER)"); then log "Kafka Connect already running (pid $pid)"; CONNECT_PID=$pid CONNECT_WAS_UP=1; return 0; fi
  CONNECT_WAS_UP=0
  [[ -d $CONNECT_LIBS && -d $DEBEZIUM_PLUGIN && -d $CONVERTER_PLUGIN ]] || die "Kafka Connect or its plugins are not installed in $DIST_DIR: run make install"
  find_java
  require_free_port "$CONNECT_PORT" CONNECT_PORT "Kafka Connect"
  connect_write_conf
  CONNECT_T0=$(date +%s%N)
  # The worker's environment carries what the connector config refers to as ${env:...}.
  start_bg connect "$logf" env DEBEZIUM_DB_HOST="$DEBEZIUM_DB_HOST" DEBEZIUM_DB_PORT="$DEBEZIUM_DB_PORT" \
    DEBEZIUM_DB_NAME="$DEBEZIUM_DB_NAME" DEBEZIUM_USER="$DEBEZIUM_USER" DEBEZIUM_PASSWORD="$DEBEZIUM_PASSWORD" \
    APICURIO_REGISTRY_URL="$APICURIO_REGISTRY_URL" \
    "$JAVA" "$(CONNECT_MARKER)" -Xms256m -Xmx"$CONNECT_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$INFRA_DIR/conf/log4j2.properties" \
    -cp "$CONNECT_LIBS/*" org.apache.kafka.connect.cli.ConnectDistributed "$CONF_DIR/connect-distributed.properties"
  CONNECT_PID=$STARTED_PID
  log "Kafka Connect $CONNECT_VERSION starting (pid $CONNECT_PID, log $logf)"
}

connect_wait() {
  (( CONNECT_LOCAL )) || return 0
  [[ -n ${CONNECT_PID:-} ]] || return 0
  wait_for_http "$CONNECT_URL/connector-plugins" "$START_TIMEOUT" "Kafka Connect" "$CONNECT_PID" "$LOG_DIR/connect.log"
  (( ${CONNECT_WAS_UP:-0} )) && return 0
  log "Kafka Connect REST ready at $CONNECT_URL ($(( ($(date +%s%N) - CONNECT_T0) / 1000000 )) ms)"
}

connect_check_external() {
  http_ok "$CONNECT_URL/" || die "external Kafka Connect CONNECT_URL=$CONNECT_URL is unreachable"
  log "using external Kafka Connect at $CONNECT_URL"
}

connect_stop() { stop_component connect "$(CONNECT_MARKER)"; }

# connector_states -> "CONNECTOR_STATE TASK0_STATE ..." (empty if unknown)
connector_states() {
  curl -fsS --max-time 3 "$CONNECT_URL/connectors/$CONNECTOR_NAME/status" 2>/dev/null \
    | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const j=JSON.parse(s);console.log([j.connector.state,...j.tasks.map(t=>t.state)].join(" "))}catch(e){}})'
}

connect_status() {
  local pid st
  if (( ! CONNECT_LOCAL )); then
    if http_ok "$CONNECT_URL/"; then echo "connect: external $CONNECT_URL reachable"; else echo "connect: external $CONNECT_URL UNREACHABLE"; return 1; fi
  elif pid=$(running_pid connect "$(CONNECT_MARKER)"); then
    if http_ok "$CONNECT_URL/"; then echo "connect: up ($CONNECT_URL, pid $pid)"; else echo "connect: starting (pid $pid)"; fi
  else echo "connect: down"; return 1; fi
  st=$(connector_states || true)
  if [[ -z $st ]]; then echo "connector $CONNECTOR_NAME: not registered"
  else read -r -a st <<<"$st"; echo "connector $CONNECTOR_NAME: ${st[0]}; tasks: ${st[*]:1}"; fi
}

# The connector config to send: connectors/orders-source.json as is for the local worker (its
# environment resolves ${env:...}). An external worker cannot know those names, so the non-secret
# ones are filled in here; the password stays a reference unless CONNECT_INLINE_PASSWORD=true.
connector_payload() {
  if (( CONNECT_LOCAL )); then cat "$REPO_DIR/connectors/$CONNECTOR_NAME.json"; return; fi
  DEBEZIUM_DB_HOST=$DEBEZIUM_DB_HOST DEBEZIUM_DB_PORT=$DEBEZIUM_DB_PORT DEBEZIUM_DB_NAME=$DEBEZIUM_DB_NAME \
  DEBEZIUM_USER=$DEBEZIUM_USER APICURIO_REGISTRY_URL=$APICURIO_REGISTRY_URL \
  node -e '
    const fs = require("fs"); const cfg = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    const inline = new Set(["DEBEZIUM_DB_HOST","DEBEZIUM_DB_PORT","DEBEZIUM_DB_NAME","DEBEZIUM_USER","APICURIO_REGISTRY_URL"]);
    if (process.env.CONNECT_INLINE_PASSWORD === "true") inline.add("DEBEZIUM_PASSWORD");
    for (const k of Object.keys(cfg)) cfg[k] = String(cfg[k]).replace(/\$\{env:([A-Z_]+)\}/g, (m, n) => inline.has(n) ? process.env[n] : m);
    process.stdout.write(JSON.stringify(cfg));' "$REPO_DIR/connectors/$CONNECTOR_NAME.json"
}

# same_config JSON FILE: the config in FILE (as GET .../config returns it) is JSON, key for key ("name" aside)
same_config() {
  node -e '
    const fs = require("fs"); const want = JSON.parse(process.argv[1]); const got = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
    delete got.name; delete want.name;
    const same = Object.keys(want).length === Object.keys(got).length && Object.keys(want).every((k) => String(got[k]) === String(want[k]));
    process.exit(same ? 0 : 1);' "$1" "$2" 2>/dev/null
}

# Idempotent registration: PUT the config (the same call the README shows), retry while the
# worker rebalances (409), then read the config back and wait for the connector and its task.
connector_register() {
  local url=$CONNECT_URL/connectors/$CONNECTOR_NAME code body i payload
  payload=$(connector_payload)
  local deadline=$(( $(date +%s) + START_TIMEOUT ))
  body=$(mktemp)
  # An identical PUT still restarts the connector: skip it when the worker already has this config.
  if curl -fsS --max-time 5 "$url/config" >"$body" 2>/dev/null && same_config "$payload" "$body"; then
    code=same
  fi
  while [[ ${code:-} != same ]]; do
    code=$(curl -sS -o "$body" -w '%{http_code}' --max-time 60 -X PUT -H 'Content-Type: application/json' \
             --data-binary "$payload" "$url/config" 2>/dev/null || echo 000)
    [[ $code == 200 || $code == 201 ]] && break
    if (( $(date +%s) >= deadline )) || [[ $code != 409 && $code != 000 && $code != 5* ]]; then
      sed 's/^/    | /' "$body" >&2; rm -f "$body"
      die "registering connector $CONNECTOR_NAME failed: HTTP $code from PUT $url/config"
    fi
    sleep 1
  done
  case $code in
    201) log "connector $CONNECTOR_NAME created" ;;
    200) log "connector $CONNECTOR_NAME config updated" ;;
    *) log "connector $CONNECTOR_NAME already registered with this config" ;;
  esac
  # Read it back: a change sent during a rebalance can be acknowledged and still not apply.
  for (( i = 0; i < 30; i++ )); do
    curl -fsS --max-time 5 "$url/config" >"$body" 2>/dev/null || true
    same_config "$payload" "$body" && break
    (( i == 29 )) && { rm -f "$body"; die "connector $CONNECTOR_NAME: the config read back from $url/config differs from connectors/$CONNECTOR_NAME.json"; }
    sleep 1
  done
  rm -f "$body"
  local st deadline=$(( $(date +%s) + START_TIMEOUT ))
  while :; do
    st=$(connector_states || true)
    [[ $st =~ ^RUNNING(\ RUNNING)+$ ]] && break
    if [[ $st == *FAILED* ]]; then
      curl -sS "$url/status" | head -c 2000 >&2; echo >&2
      die "connector $CONNECTOR_NAME is FAILED ($st); see $LOG_DIR/connect.log"
    fi
    (( $(date +%s) >= deadline )) && die "connector $CONNECTOR_NAME not RUNNING within ${START_TIMEOUT}s (states: ${st:-none}); see $LOG_DIR/connect.log"
    sleep 0.3
  done
  log "connector $CONNECTOR_NAME and its task RUNNING"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  CDC_TAG=connect; cdc_init
  case ${1:-} in
    start) connect_start; connect_wait ;;
    restart) connect_stop; connect_start; connect_wait ;;
    register) connector_register ;;
    *) dispatch_component connect "$@" ;;
  esac
fi
