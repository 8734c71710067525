#!/usr/bin/env bash
# Kafka Connect in distributed mode with the Debezium PostgreSQL connector and Apicurio's Avro
# converter: `infra/connect.sh start|stop|restart|status|register|apply|wait`, and per worker
# `start-node|stop-node|kill-node N`. CONNECT_WORKERS workers form one group (CONNECT_GROUP_ID);
# worker 1 is "connect" (connect-distributed.properties, connect.log), worker i>1 "connect-i".
# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONNECT_MARKER() { printf -- '-Dcdc.component=%s:%s' "$(node_name connect "${1:-1}")" "$DATA_DIR"; }
connect_conf_file() { if (( $1 == 1 )); then printf '%s/connect-distributed.properties' "$CONF_DIR"; else printf '%s/connect-distributed-%s.properties' "$CONF_DIR" "$1"; fi; }
connect_what() { if (( CONNECT_WORKERS == 1 )); then printf 'Kafka Connect'; else printf 'Kafka Connect worker %s' "$1"; fi; }

# connect_listener_conf N: worker N's REST listener. The one place for REST listener and security
# settings (HTTPS, authentication); the Kafka client security of the worker goes after bootstrap.servers.
connect_listener_conf() {
  local p; p=$(connect_port_of "$1")
  cat <<EOC
listeners=http://$BIND_HOST:$p
rest.advertised.host.name=$BIND_HOST
rest.advertised.port=$p
EOC
  # SECURITY=on: HTTP basic authentication on every REST call (Kafka's extension, JAAS login
  # "KafkaConnect" against a properties file; connect_write_rest_auth). Workers forward a user's
  # request to the leader with its Authorization header; their own internal calls (task configs)
  # are signed with the group's session key, which the extension accepts without a user.
  if security_on; then
    printf 'rest.extension.classes=org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension\n'
  fi
}

connect_rest_auth_dir() { printf '%s/connect-basic-auth-%s' "$DIST_DIR" "$CONNECT_VERSION"; }

# connect_write_rest_auth: the JAAS file (its path goes to the JVM) and the users file it names
# (user=password, mode 600): the password is never on a command line.
connect_write_rest_auth() {
  rest_auth_check_local CONNECT_USERNAME CONNECT_PASSWORD
  ( umask 077
    printf '%s=%s\n' "$CONNECT_USERNAME" "$CONNECT_PASSWORD" >"$CONF_DIR/connect-rest-users.properties"
    printf 'KafkaConnect {\n  org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule required\n  file="%s";\n};\n' \
      "$CONF_DIR/connect-rest-users.properties" >"$CONF_DIR/connect-rest-jaas.conf" )
  chmod 600 "$CONF_DIR/connect-rest-users.properties" "$CONF_DIR/connect-rest-jaas.conf"
}

# The Debezium JDBC sink (make bench compares against it): optional, installed by
# `infra/install.sh debezium-jdbc`, linked below whenever it is there. Set after cdc_init.
jdbc_sink_plugin_dir() {
  local v; v=$(sed -n 's#.*<debezium.jdbc.version>\(.*\)</debezium.jdbc.version>.*#\1#p' "$INFRA_DIR/maven/debezium-jdbc/pom.xml" | head -1)
  printf '%s/plugins/debezium-jdbc-%s' "$DIST_DIR" "$v"
}

# What connector configs may name as ${env:NAME}: passed to the worker, and allowed by its config provider.
CONNECT_ENV_NAMES=(DEBEZIUM_DB_HOST DEBEZIUM_DB_PORT DEBEZIUM_DB_NAME DEBEZIUM_USER DEBEZIUM_PASSWORD APICURIO_REGISTRY_URL KAFKA_BOOTSTRAP_SERVERS
                   KAFKA_CLIENT_SECURITY_PROTOCOL KAFKA_CLIENT_SASL_MECHANISM KAFKA_CLIENT_SASL_JAAS_CONFIG
                   KAFKA_CLIENT_SSL_TRUSTSTORE_TYPE KAFKA_CLIENT_SSL_TRUSTSTORE_LOCATION)

# Who Connect is to Kafka: the user connect of a secured local Kafka, else the KAFKA_SASL_* given.
connect_kafka_user() {
  if (( KAFKA_LOCAL )) && security_on; then CONNECT_KAFKA_USER=connect CONNECT_KAFKA_PASSWORD=$KAFKA_CONNECT_PASSWORD
  else CONNECT_KAFKA_USER=${KAFKA_SASL_USERNAME:-} CONNECT_KAFKA_PASSWORD=$(kafka_sasl_password); fi
}

# The KAFKA_CLIENT_* names above: the security of the connector's own Kafka consumer (Debezium's
# signal channel, signal.consumer.* in connectors/orders-source.json), which does not inherit the
# worker's. A plaintext Kafka gets the clients' defaults, so the one connector file fits both.
connect_client_env() {
  local line k v
  KAFKA_CLIENT_SECURITY_PROTOCOL=PLAINTEXT KAFKA_CLIENT_SASL_MECHANISM=GSSAPI KAFKA_CLIENT_SASL_JAAS_CONFIG=
  KAFKA_CLIENT_SSL_TRUSTSTORE_TYPE=JKS KAFKA_CLIENT_SSL_TRUSTSTORE_LOCATION=
  while IFS= read -r line; do
    k=${line%%=*} v=${line#*=}
    # The properties file's escaping undone: the value goes through the environment as is.
    [[ $k == sasl.jaas.config ]] && v=${v//\\\\/\\}
    case $k in
      security.protocol) KAFKA_CLIENT_SECURITY_PROTOCOL=$v ;;
      sasl.mechanism) KAFKA_CLIENT_SASL_MECHANISM=$v ;;
      sasl.jaas.config) KAFKA_CLIENT_SASL_JAAS_CONFIG=$v ;;
      ssl.truststore.type) KAFKA_CLIENT_SSL_TRUSTSTORE_TYPE=$v ;;
      ssl.truststore.location) KAFKA_CLIENT_SSL_TRUSTSTORE_LOCATION=$v ;;
    esac
  done < <(kafka_java_client_conf "$CONNECT_KAFKA_USER" "$CONNECT_KAFKA_PASSWORD")
}

# The registry's writer (Connect's converters register schemas), when the registry asks for credentials.
connect_env_names() {
  printf '%s\n' "${CONNECT_ENV_NAMES[@]}"
  [[ -z ${REGISTRY_WRITER_USERNAME:-} ]] || printf '%s\n' REGISTRY_WRITER_USERNAME REGISTRY_WRITER_PASSWORD
}

connect_link_plugins() {
  # plugin.path names a folder of plugin folders: one link per plugin, exactly the versions pinned in the pom.
  local pdir=$DATA_DIR/connect-plugins
  rm -rf "$pdir"; mkdir -p "$pdir"
  ln -s "$DEBEZIUM_PLUGIN" "$pdir/debezium-connector-postgres"
  ln -s "$CONVERTER_PLUGIN" "$pdir/apicurio-converter"
  JDBC_SINK_PLUGIN=$(jdbc_sink_plugin_dir)
  # Installed by make bench only; absent on a new machine (a bare `[[ ]] &&` here would fail the function).
  if [[ -f $JDBC_SINK_PLUGIN/.cdc-stamp ]]; then ln -s "$JDBC_SINK_PLUGIN" "$pdir/debezium-connector-jdbc"; fi
}

# connect_write_conf [FILE] [N]: worker N's properties (by default where the worker reads them).
connect_write_conf() {
  local pdir=$DATA_DIR/connect-plugins allow n=${2:-1} rf=$REPLICATION_FACTOR out=${1:-$(connect_conf_file "${2:-1}")} pre names
  mapfile -t names < <(connect_env_names)
  allow=$(IFS='|'; echo "${names[*]}")
  connect_kafka_user
  ( umask 077; : >"$out" )
  {
  cat <<EOF
# Written by infra/connect.sh at every start: edit infra/connect.sh or defaults.env, not this file.
# Worker environment: ${names[*]}
bootstrap.servers=$KAFKA_BOOTSTRAP_SERVERS
group.id=$CONNECT_GROUP_ID
EOF
  # A secured Kafka: the worker and the clients it makes for connectors (this file is mode 600).
  for pre in '' producer. consumer. admin.; do kafka_java_client_conf "$CONNECT_KAFKA_USER" "$CONNECT_KAFKA_PASSWORD" "$pre"; done
  connect_listener_conf "$n"
  cat <<EOF

# Worker-level defaults; the orders connector sets Avro converters of its own.
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter

# Connector configs, source offsets and statuses live in Kafka: they survive restarts.
config.storage.topic=$CONNECT_GROUP_ID-configs
offset.storage.topic=$CONNECT_GROUP_ID-offsets
status.storage.topic=$CONNECT_GROUP_ID-status
config.storage.replication.factor=$rf
offset.storage.replication.factor=$rf
status.storage.replication.factor=$rf
offset.flush.interval.ms=5000

plugin.path=$pdir
plugin.discovery=service_load

# \${env:NAME} in connector configs is resolved from this worker's environment, limited to these names:
# connectors/orders-source.json holds no password and no host.
config.providers=env
config.providers.env.class=org.apache.kafka.common.config.provider.EnvVarConfigProvider
config.providers.env.param.allowlist.pattern=^($allow)\$

topic.creation.enable=true
EOF
  # Several workers: a worker that vanished (killed, host lost) has its connectors and tasks moved
  # to the others after this delay, not the 5-minute default (a worker back sooner gets them back).
  (( CONNECT_WORKERS == 1 )) || printf '\n# %s workers in one group.\nscheduled.rebalance.max.delay.ms=%s\n' "$CONNECT_WORKERS" "$CONNECT_REBALANCE_DELAY_MS"
  } >"$out"
}

declare -A CONNECT_PIDS=() CONNECT_UP_BEFORE=() CONNECT_T0S=()

connect_start_node() {
  local n=$1 pid name logf conf what
  name=$(node_name connect "$n") conf=$(connect_conf_file "$n") what=$(connect_what "$n")
  logf=$LOG_DIR/$name.log
  if pid=$(running_pid "$name" "$(CONNECT_MARKER "$n")"); then
    # A worker started by an older version of this script lacks settings or environment that
    # connector configs now refer to: restart it (capture resumes from its stored offsets).
    local want; want=$(mktemp)
    connect_write_conf "$want" "$n"
    if cmp -s "$want" "$conf"; then
      rm -f "$want"
      log "$what already running (pid $pid)"; CONNECT_PIDS[$n]=$pid CONNECT_UP_BEFORE[$n]=1; return 0
    fi
    rm -f "$want"
    log "$what (pid $pid) runs an older worker configuration: restarting it with the current one"
    connect_stop_node "$n"
  fi
  CONNECT_UP_BEFORE[$n]=0
  require_free_port "$(connect_port_of "$n")" CONNECT_PORT "$what"
  connect_write_conf "" "$n"
  CONNECT_T0S[$n]=$(date +%s%N)
  # The worker's environment carries what the connector config refers to as ${env:...}.
  # Exported in a subshell, not given to env(1): passwords stay off every command line.
  connect_client_env
  local v cp=$CONNECT_LIBS/* auth=()
  # On the worker's class path, not in plugin.path: JAAS loads PropertyFileLoginModule through the
  # application class loader, which does not see a plugin's (every login then fails with 401).
  if security_on; then
    connect_write_rest_auth
    auth=(-Djava.security.auth.login.config="$CONF_DIR/connect-rest-jaas.conf")
    cp+=:$(connect_rest_auth_dir)/*
  fi
  (
    while read -r v; do export "${v?}"; done < <(connect_env_names)
    start_bg "$name" "$logf" \
      "$JAVA" "$(CONNECT_MARKER "$n")" -Xms256m -Xmx"$CONNECT_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 "${auth[@]}" \
      -Djava.awt.headless=true -Dlog4j2.configurationFile="$INFRA_DIR/conf/log4j2.properties" \
      -cp "$cp" org.apache.kafka.connect.cli.ConnectDistributed "$conf"
  )
  STARTED_PID=$(<"$(pidfile "$name")")
  CONNECT_PIDS[$n]=$STARTED_PID
  if (( CONNECT_WORKERS == 1 )); then log "Kafka Connect $CONNECT_VERSION starting (pid $STARTED_PID, log $logf)"
  else log "Kafka Connect $CONNECT_VERSION worker $n starting (pid $STARTED_PID, log $logf)"; fi
}

connect_prepare() {
  [[ -d $CONNECT_LIBS && -d $DEBEZIUM_PLUGIN && -d $CONVERTER_PLUGIN ]] || die "Kafka Connect or its plugins are not installed in $DIST_DIR: run make install"
  if security_on && [[ ! -f $(connect_rest_auth_dir)/.cdc-stamp ]]; then
    die "SECURITY=on: Kafka's basic-auth REST extension is not installed in $(connect_rest_auth_dir): run bash infra/install.sh connect-rest-auth (make up does)"
  fi
  find_java
  # Linked anew only while no worker runs: a running worker may still read its plugin folders.
  local i
  for (( i = 1; i <= CONNECT_WORKERS; i++ )); do
    running_pid "$(node_name connect "$i")" "$(CONNECT_MARKER "$i")" >/dev/null && return 0
  done
  connect_link_plugins
}

connect_start() {
  if (( ! CONNECT_LOCAL )); then connect_check_external; return 0; fi
  local i
  connect_prepare
  for (( i = 1; i <= CONNECT_WORKERS; i++ )); do connect_start_node "$i"; done
}

connect_wait_node() {
  local n=$1 url; url=http://$BIND_HOST:$(connect_port_of "$1")
  [[ -n ${CONNECT_PIDS[$n]:-} ]] || return 0
  wait_until "$START_TIMEOUT" "$(connect_what "$n")" "${CONNECT_PIDS[$n]}" "$LOG_DIR/$(node_name connect "$n").log" connect_ok "$url/connector-plugins"
  (( ${CONNECT_UP_BEFORE[$n]:-0} )) && return 0
  log "$(connect_what "$n") REST ready at $url ($(( ($(date +%s%N) - CONNECT_T0S[$n]) / 1000000 )) ms)"
}

connect_wait() {
  (( CONNECT_LOCAL )) || return 0
  local i
  for (( i = 1; i <= CONNECT_WORKERS; i++ )); do connect_wait_node "$i"; done
}

connect_check_external() {
  local code
  code=$(connect_curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "$CONNECT_URL/" 2>/dev/null || true)
  [[ $code == 401 || $code == 403 ]] && die "external Kafka Connect CONNECT_URL=$CONNECT_URL refuses ${CONNECT_USERNAME:-requests without credentials} (HTTP $code): set CONNECT_USERNAME and CONNECT_PASSWORD"
  [[ $code == 200 ]] || die "external Kafka Connect CONNECT_URL=$CONNECT_URL is unreachable (HTTP ${code:-none})"
  log "using external Kafka Connect at $CONNECT_URL"
}

connect_stop_node() { stop_component "$(node_name connect "$1")" "$(CONNECT_MARKER "$1")"; }

connect_stop() {
  local i
  for i in $(extra_nodes connect "$CONNECT_WORKERS"); do connect_stop_node "$i"; done
  for (( i = CONNECT_WORKERS; i >= 1; i-- )); do connect_stop_node "$i"; done
}

# connect_kill_node N: SIGKILL, no shutdown (make chaos).
connect_kill_node() {
  local pid
  pid=$(running_pid "$(node_name connect "$1")" "$(CONNECT_MARKER "$1")") || die "Connect worker $1 is not running"
  kill -KILL "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  log "killed Connect worker $1 (pid $pid, SIGKILL)"
}

# connector_states -> "CONNECTOR_STATE TASK0_STATE ..." (empty if unknown)
connector_states() {
  connect_curl -fsS --max-time 3 "$CONNECT_URL/connectors/$CONNECTOR_NAME/status" 2>/dev/null \
    | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const j=JSON.parse(s);console.log([j.connector.state,...j.tasks.map(t=>t.state)].join(" "))}catch(e){}})'
}

# connector_task_workers -> "task N: STATE on host:port" per task of the connector
connector_task_workers() {
  connect_curl -fsS --max-time 3 "$CONNECT_URL/connectors/$CONNECTOR_NAME/status" 2>/dev/null \
    | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{for(const t of JSON.parse(s).tasks)console.log(`task ${t.id}: ${t.state} on worker ${t.worker_id}`)}catch(e){}})'
}

connect_status() {
  local pid st i rc=0 p u
  if (( ! CONNECT_LOCAL )); then
    local code; code=$(connect_curl -sS -o /dev/null -w '%{http_code}' --max-time 3 "$CONNECT_URL/" 2>/dev/null || true)
    case $code in
      200) echo "connect: external $CONNECT_URL reachable" ;;
      401|403) echo "connect: external $CONNECT_URL REFUSES ${CONNECT_USERNAME:-requests without credentials} (HTTP $code: CONNECT_USERNAME, CONNECT_PASSWORD)"; return 1 ;;
      *) echo "connect: external $CONNECT_URL UNREACHABLE"; return 1 ;;
    esac
  elif (( CONNECT_WORKERS == 1 )); then
    if pid=$(running_pid connect "$(CONNECT_MARKER)"); then
      if connect_ok "$CONNECT_URL/"; then echo "connect: up ($CONNECT_URL, pid $pid)"; else echo "connect: starting (pid $pid)"; fi
    else echo "connect: down"; return 1; fi
  else
    for (( i = 1; i <= CONNECT_WORKERS; i++ )); do
      p=$(connect_port_of "$i")
      if pid=$(running_pid "$(node_name connect "$i")" "$(CONNECT_MARKER "$i")"); then
        if connect_ok "http://$BIND_HOST:$p/"; then echo "connect worker $i: up (http://$BIND_HOST:$p, pid $pid)"; else echo "connect worker $i: starting (pid $pid)"; fi
      else echo "connect worker $i: down (http://$BIND_HOST:$p)"; rc=1; fi
    done
    # Any worker answers for the group: ask one that is up.
    for u in ${CONNECT_URLS//,/ }; do connect_ok "$u/" 2>/dev/null && { CONNECT_URL=$u; break; }; done
  fi
  st=$(connector_states || true)
  if [[ -z $st ]]; then echo "connector $CONNECTOR_NAME: not registered"
  else
    read -r -a st <<<"$st"; echo "connector $CONNECTOR_NAME: ${st[0]}; tasks: ${st[*]:1}"
    (( CONNECT_WORKERS == 1 )) || connector_task_workers | sed 's/^/  /'
  fi
  return $rc
}

# The connector config to send: connectors/orders-source.json as is for the local worker (its
# environment resolves ${env:...}). An external worker cannot know those names, so the non-secret
# ones are filled in here; the password stays a reference unless CONNECT_INLINE_PASSWORD=true.
# A registry that asks for credentials (SECURITY=on, or REGISTRY_WRITER_USERNAME given for an external
# one): both converters get the writer's, as ${env:REGISTRY_WRITER_*} references too, so that the file
# stays valid for a registry without authentication.
connector_payload() {
  if (( CONNECT_LOCAL )) && [[ -z ${REGISTRY_WRITER_USERNAME:-} ]]; then cat "$REPO_DIR/connectors/$CONNECTOR_NAME.json"; return; fi
  connect_kafka_user; connect_client_env
  export KAFKA_CLIENT_SECURITY_PROTOCOL KAFKA_CLIENT_SASL_MECHANISM KAFKA_CLIENT_SSL_TRUSTSTORE_TYPE KAFKA_CLIENT_SSL_TRUSTSTORE_LOCATION
  CDC_LOCAL=$CONNECT_LOCAL REGISTRY_AUTH=${REGISTRY_WRITER_USERNAME:+1} REGISTRY_WRITER_USERNAME=${REGISTRY_WRITER_USERNAME:-} \
  DEBEZIUM_DB_HOST=$DEBEZIUM_DB_HOST DEBEZIUM_DB_PORT=$DEBEZIUM_DB_PORT DEBEZIUM_DB_NAME=$DEBEZIUM_DB_NAME \
  DEBEZIUM_USER=$DEBEZIUM_USER APICURIO_REGISTRY_URL=$APICURIO_REGISTRY_URL KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS \
  node -e '
    const fs = require("fs"); const cfg = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    if (process.env.REGISTRY_AUTH) for (const side of ["key", "value"]) {
      cfg[`${side}.converter.apicurio.registry.auth.username`] = "${env:REGISTRY_WRITER_USERNAME}";
      cfg[`${side}.converter.apicurio.registry.auth.password`] = "${env:REGISTRY_WRITER_PASSWORD}";
    }
    if (process.env.CDC_LOCAL === "1") { process.stdout.write(JSON.stringify(cfg)); process.exit(0); }
    const inline = new Set(["DEBEZIUM_DB_HOST","DEBEZIUM_DB_PORT","DEBEZIUM_DB_NAME","DEBEZIUM_USER","APICURIO_REGISTRY_URL","KAFKA_BOOTSTRAP_SERVERS",
      "KAFKA_CLIENT_SECURITY_PROTOCOL","KAFKA_CLIENT_SASL_MECHANISM","KAFKA_CLIENT_SSL_TRUSTSTORE_TYPE","KAFKA_CLIENT_SSL_TRUSTSTORE_LOCATION","REGISTRY_WRITER_USERNAME"]);
    if (process.env.CONNECT_INLINE_PASSWORD === "true") { inline.add("DEBEZIUM_PASSWORD"); inline.add("REGISTRY_WRITER_PASSWORD"); }
    for (const k of Object.keys(cfg)) cfg[k] = String(cfg[k]).replace(/\$\{env:([A-Z_]+)\}/g, (m, n) => inline.has(n) ? process.env[n] : m);
    process.stdout.write(JSON.stringify(cfg));' "$REPO_DIR/connectors/$CONNECTOR_NAME.json"
}

# config_diff WANT_JSON GOT_FILE: one line per key that differs between the file's config (WANT)
# and the running one (GOT, as GET .../config returns it; "name" aside); nothing when they are equal.
# Values of keys that look like secrets are not shown.
config_diff() {
  node -e '
    const fs = require("fs"); const want = JSON.parse(process.argv[1]); const got = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
    delete got.name; delete want.name;
    const show = (k, v) => (/password|secret/i.test(k) && !/^\$\{env:/.test(String(v)) ? "(hidden)" : JSON.stringify(String(v)));
    for (const k of [...new Set([...Object.keys(got), ...Object.keys(want)])].sort()) {
      if (!(k in want)) console.log(`  - ${k}: ${show(k, got[k])}   (running only: removed by the file)`);
      else if (!(k in got)) console.log(`  + ${k}: ${show(k, want[k])}   (file only: added)`);
      else if (String(got[k]) !== String(want[k])) console.log(`  ~ ${k}: ${show(k, got[k])} -> ${show(k, want[k])}`);
    }' "$1" "$2"
}

# same_config JSON FILE: the config in FILE (as GET .../config returns it) is JSON, key for key ("name" aside)
same_config() { [[ -z $(config_diff "$1" "$2" 2>/dev/null || echo error) ]]; }

# connector_put URL PAYLOAD BODYFILE: PUT the config, retrying while the worker rebalances (409) or starts; prints the HTTP code.
connector_put() {
  local url=$1 payload=$2 body=$3 code deadline=$(( $(date +%s) + START_TIMEOUT ))
  while :; do
    code=$(connect_curl -sS -o "$body" -w '%{http_code}' --max-time 60 -X PUT -H 'Content-Type: application/json' \
             --data-binary "$payload" "$url/config" 2>/dev/null || echo 000)
    [[ $code == 200 || $code == 201 ]] && { echo "$code"; return 0; }
    if (( $(date +%s) >= deadline )) || [[ $code != 409 && $code != 000 && $code != 5* ]]; then
      sed 's/^/    | /' "$body" >&2
      die "PUT $url/config failed: HTTP $code"
    fi
    sleep 1
  done
}

# connector_readback URL PAYLOAD: a change sent during a rebalance can be acknowledged and still not apply.
connector_readback() {
  local url=$1 payload=$2 body i; body=$(mktemp)
  for (( i = 0; i < 30; i++ )); do
    connect_curl -fsS --max-time 5 "$url/config" >"$body" 2>/dev/null || true
    same_config "$payload" "$body" && { rm -f "$body"; return 0; }
    sleep 1
  done
  rm -f "$body"
  die "connector $CONNECTOR_NAME: the config read back from $url/config differs from connectors/$CONNECTOR_NAME.json"
}

# connector_wait_running: the connector and its tasks RUNNING (bounded); a FAILED task stops the
# wait with its trace. A connector the user paused or stopped is left so, and said so.
connector_wait_running() {
  local url=$CONNECT_URL/connectors/$CONNECTOR_NAME st t0 deadline=$(( $(date +%s) + START_TIMEOUT ))
  t0=$(date +%s%N)
  while :; do
    st=$(connector_states || true)
    [[ $st =~ ^RUNNING(\ RUNNING)+$ ]] && break
    if [[ $st == PAUSED* || $st == STOPPED* ]]; then
      warn "connector $CONNECTOR_NAME is ${st%% *} (left so; to resume: curl -X PUT $url/resume)"
      return 0
    fi
    # Right after a worker (re)start the status topic can still show the previous task's FAILED
    # until the new task reports: a failure counts once it outlives that moment.
    if [[ $st == *FAILED* ]] && (( $(date +%s%N) - t0 > 15000000000 )); then
      connect_curl -sS "$url/status" | head -c 2000 >&2; echo >&2
      die "connector $CONNECTOR_NAME is FAILED ($st); see $LOG_DIR/connect.log; after fixing the cause: curl -X POST '$url/restart?includeTasks=true&onlyFailed=true'"
    fi
    (( $(date +%s) >= deadline )) && die "connector $CONNECTOR_NAME not RUNNING within ${START_TIMEOUT}s (states: ${st:-none}); see $LOG_DIR/connect.log"
    sleep 0.3
  done
  log "connector $CONNECTOR_NAME and its task RUNNING ($(( ($(date +%s%N) - t0) / 1000000 )) ms)"
}

# make up: creates the connector when the worker does not have it, and never overwrites one that
# exists: REST is the source of truth for a running connector (a table added through REST stays).
# A running config that differs from the file is reported in one line; `make connector-apply` applies the file.
connector_register() {
  local url=$CONNECT_URL/connectors/$CONNECTOR_NAME code body payload n
  payload=$(connector_payload)
  body=$(mktemp)
  code=$(connect_curl -sS -o "$body" -w '%{http_code}' --max-time 10 "$url/config" 2>/dev/null || echo 000)
  if [[ $code == 404 ]]; then
    code=$(connector_put "$url" "$payload" "$body")
    connector_readback "$url" "$payload"
    log "connector $CONNECTOR_NAME created from connectors/$CONNECTOR_NAME.json"
  elif [[ $code == 200 ]]; then
    if ! same_config "$payload" "$body"; then
      n=$(config_diff "$payload" "$body" | wc -l)
      log "connector $CONNECTOR_NAME runs a config that differs from connectors/$CONNECTOR_NAME.json in $n key(s); kept (REST is the source of truth): make connector-apply shows the difference and applies the file"
    else
      log "connector $CONNECTOR_NAME already registered with the file's config"
    fi
  else
    sed 's/^/    | /' "$body" >&2; rm -f "$body"
    die "Kafka Connect answered HTTP $code to GET $url/config"
  fi
  rm -f "$body"
  connector_wait_running
}

# The former lsn.flush.mode=connector_and_driver let the JDBC driver confirm WAL positions that
# Connect had not stored, so on a stack that ran it the slot can already be past the stored offset:
# Debezium, now trusting only its stored offset, would fail ("no longer available on the server").
# prints "STORED SLOT" (bytes) when that is the case for the running connector, nothing otherwise.
connector_slot_ahead() {
  local url=$1 config=$2 slot stored ahead
  slot=$(node -e 'const c=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); if (c["lsn.flush.mode"]==="connector_and_driver") console.log(c["slot.name"]||"")' "$config" 2>/dev/null)
  [[ -n $slot ]] || return 0
  stored=$(connect_curl -fsS --max-time 10 "$url/offsets" 2>/dev/null \
    | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const o=JSON.parse(s).offsets[0];console.log(o&&o.offset.lsn!==undefined?String(o.offset.lsn):"")}catch(e){}})')
  [[ $stored =~ ^[0-9]+$ ]] || return 0
  [[ $slot =~ ^[a-z0-9_]+$ ]] || return 0 # PostgreSQL's rule for slot names: safe to quote as a literal
  ahead=$(psql_url "$SOURCE_DATABASE_URL" -At -c "SELECT (confirmed_flush_lsn - '0/0')::bigint FROM pg_replication_slots WHERE slot_name = '$slot'" 2>/dev/null | head -1)
  [[ $ahead =~ ^[0-9]+$ ]] && (( ahead > stored )) && echo "$stored $ahead"
  return 0
}

# connector_wait_state URL STATE: the connector itself reaches STATE (STOPPED, RUNNING), bounded.
connector_wait_state() {
  local url=$1 want=$2 st deadline=$(( $(date +%s) + START_TIMEOUT ))
  until st=$(connector_states || true); [[ ${st%% *} == "$want" ]]; do
    (( $(date +%s) >= deadline )) && die "connector $CONNECTOR_NAME did not reach $want within ${START_TIMEOUT}s (states: ${st:-none})"
    sleep 0.3
  done
}

# One-off, while moving off connector_and_driver: the connector is stopped, its stored offset set to
# the slot's confirmed position (what PostgreSQL can still send), the file's config applied, resumed.
connector_apply_realigned() {
  local url=$1 payload=$2 body=$3 stored=$4 slot=$5 code
  warn "the running config has lsn.flush.mode=connector_and_driver and its slot ($slot bytes) is past the stored offset ($stored): moving the stored offset to the slot once (changes in between that never reached Kafka cannot be read again; make verify shows whether any are missing)"
  connect_curl -fsS --max-time 30 -X PUT "$url/stop" >/dev/null || die "PUT $url/stop failed"
  connector_wait_state "$url" STOPPED
  code=$(connector_put "$url" "$payload" "$body")
  connector_readback "$url" "$payload"
  connect_curl -fsS --max-time 10 "$url/offsets" >"$body" || die "GET $url/offsets failed"
  node -e '
    const fs = require("fs"); const cur = JSON.parse(fs.readFileSync(process.argv[1], "utf8")).offsets[0];
    const n = Number(process.argv[2]);
    const offset = { ...cur.offset, lsn: n, lsn_proc: n, lsn_commit: n, messageType: "COMMIT" };
    fs.writeFileSync(process.argv[1], JSON.stringify({ offsets: [{ partition: cur.partition, offset }] }));' "$body" "$slot" \
    || die "could not build the offset for $url/offsets"
  code=$(connect_curl -sS -o /dev/null -w '%{http_code}' --max-time 30 -X PATCH -H 'Content-Type: application/json' --data-binary @"$body" "$url/offsets")
  [[ $code == 200 ]] || die "PATCH $url/offsets answered HTTP $code"
  connect_curl -fsS --max-time 30 -X PUT "$url/resume" >/dev/null || die "PUT $url/resume failed"
  log "connector $CONNECTOR_NAME: config of connectors/$CONNECTOR_NAME.json applied, stored offset moved to the slot ($slot)"
}

# make connector-apply: shows the running config against connectors/<name>.json key by key and,
# once confirmed (or YES=1), applies the file's config (a PUT restarts the connector's task).
connector_apply() {
  local url=$CONNECT_URL/connectors/$CONNECTOR_NAME code body payload diff answer
  payload=$(connector_payload)
  body=$(mktemp)
  code=$(connect_curl -sS -o "$body" -w '%{http_code}' --max-time 10 "$url/config" 2>/dev/null || echo 000)
  case $code in
    404) echo "connector $CONNECTOR_NAME does not exist: it will be created from connectors/$CONNECTOR_NAME.json" ;;
    200)
      diff=$(config_diff "$payload" "$body")
      if [[ -z $diff ]]; then rm -f "$body"; log "connector $CONNECTOR_NAME already runs the config of connectors/$CONNECTOR_NAME.json: nothing to apply"; return 0; fi
      echo "connector $CONNECTOR_NAME: running config (left) -> connectors/$CONNECTOR_NAME.json (right):"
      printf '%s\n' "$diff" ;;
    *) sed 's/^/    | /' "$body" >&2; rm -f "$body"; die "Kafka Connect answered HTTP $code to GET $url/config" ;;
  esac
  if [[ ${YES:-} != 1 ]]; then
    [[ -t 0 ]] || { rm -f "$body"; die "not applied: confirm on a terminal, or run with YES=1"; }
    read -r -p "apply connectors/$CONNECTOR_NAME.json to the running connector (its task restarts)? [y/N] " answer
    [[ $answer == [yY]* ]] || { rm -f "$body"; log "not applied"; return 1; }
  fi
  local ahead=()
  [[ $code == 200 ]] && read -r -a ahead <<<"$(connector_slot_ahead "$url" "$body")"
  if (( ${#ahead[@]} == 2 )); then
    connector_apply_realigned "$url" "$payload" "$body" "${ahead[0]}" "${ahead[1]}"
    rm -f "$body"
  else
    code=$(connector_put "$url" "$payload" "$body")
    rm -f "$body"
    connector_readback "$url" "$payload"
    log "connector $CONNECTOR_NAME: config of connectors/$CONNECTOR_NAME.json applied (HTTP $code)"
  fi
  connector_wait_running
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  CDC_TAG=connect; cdc_init
  case ${1:-} in
    start) connect_start; connect_wait ;;
    restart) connect_stop; connect_start; connect_wait ;;
    start-node) [[ ${2:-} =~ ^[0-9]+$ ]] || die "usage: $0 start-node N"; connect_prepare; connect_start_node "$2"; connect_wait_node "$2" ;;
    stop-node) [[ ${2:-} =~ ^[0-9]+$ ]] || die "usage: $0 stop-node N"; connect_stop_node "$2" ;;
    kill-node) [[ ${2:-} =~ ^[0-9]+$ ]] || die "usage: $0 kill-node N"; connect_kill_node "$2" ;;
    register) connector_register ;;
    apply) connector_apply ;;
    wait) connector_wait_running ;;
    *) dispatch_component connect "$@" ;;
  esac
fi
