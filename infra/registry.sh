#!/usr/bin/env bash
# Apicurio Registry 3 (Quarkus), schemas stored in PostgreSQL (database "registry" of the
# warehouse cluster): `infra/registry.sh start|stop|restart|status`.
# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REGISTRY_MARKER() { printf -- '-Dcdc.component=registry:%s' "$DATA_DIR"; }

# registry_write_auth FILE: with SECURITY=on, every API path (ccompat and v3, reads too) needs HTTP basic
# credentials, checked against two users embedded in Quarkus's properties realm (the app ships it) and
# mapped to Apicurio's roles: the writer sr-developer (Connect's converter registers schemas), the
# reader sr-readonly (the processor; a write answers 403). The file holds the passwords: mode 600, in
# $CONF_DIR, named on the command line by its path only. The management port (health) stays open.
registry_write_auth() {
  rest_auth_check_local REGISTRY_WRITER_USERNAME REGISTRY_WRITER_PASSWORD SCHEMA_REGISTRY_USERNAME SCHEMA_REGISTRY_PASSWORD
  ( umask 077
    cat >"$1" <<EOF
# Written by infra/registry.sh at every start (SECURITY=on): edit defaults.env or secrets.env, not this file.
quarkus.http.auth.basic=true
apicurio.auth.role-based-authorization=true
apicurio.auth.role-source=token
quarkus.security.users.embedded.enabled=true
quarkus.security.users.embedded.plain-text=true
quarkus.security.users.embedded.users.$REGISTRY_WRITER_USERNAME=$REGISTRY_WRITER_PASSWORD
quarkus.security.users.embedded.roles.$REGISTRY_WRITER_USERNAME=sr-developer
quarkus.security.users.embedded.users.$SCHEMA_REGISTRY_USERNAME=$SCHEMA_REGISTRY_PASSWORD
quarkus.security.users.embedded.roles.$SCHEMA_REGISTRY_USERNAME=sr-readonly
EOF
  )
  chmod 600 "$1"
}

registry_start() {
  local pid logf=$LOG_DIR/registry.log
  if (( ! REGISTRY_LOCAL )); then registry_check_external; return 0; fi
  if pid=$(running_pid registry "$(REGISTRY_MARKER)"); then log "Apicurio Registry already running (pid $pid)"; REGISTRY_PID=$pid REGISTRY_WAS_UP=1; return 0; fi
  REGISTRY_WAS_UP=0
  [[ -f $REGISTRY_HOME/quarkus-run.jar ]] || die "Apicurio Registry $REGISTRY_VERSION is not installed in $REGISTRY_HOME: run make install"
  find_java; find_java21
  require_free_port "$REGISTRY_PORT" REGISTRY_PORT "Apicurio Registry"
  require_free_port "$REGISTRY_MGMT_PORT" REGISTRY_MGMT_PORT "Apicurio Registry (management)"
  parse_pg_url "$WAREHOUSE_ADMIN_URL" _WHA
  local auth=()
  if security_on; then
    registry_write_auth "$CONF_DIR/registry-auth.properties"
    auth=(-Dquarkus.config.locations="$CONF_DIR/registry-auth.properties")
  fi
  REGISTRY_T0=$(date +%s%N)
  # Secrets and storage settings through the environment (not argv); ports on the command line.
  # Pooled connections idle for a second are checked before use: after a restart of the warehouse
  # cluster (which stores the schemas) a dead one answered 500 to Connect's converter, and
  # Debezium's task failed for good.
  start_bg registry "$logf" env -C "$REGISTRY_HOME" \
    APICURIO_STORAGE_KIND=sql APICURIO_STORAGE_SQL_KIND=postgresql \
    APICURIO_DATASOURCE_URL="jdbc:postgresql://$_WHA_HOST:$_WHA_PORT/$REGISTRY_DB" \
    APICURIO_DATASOURCE_USERNAME=registry APICURIO_DATASOURCE_PASSWORD="$REGISTRY_DB_PASSWORD" \
    APICURIO_DATASOURCE_JDBC_INITIAL_SIZE="$REGISTRY_DB_POOL_MIN" APICURIO_DATASOURCE_JDBC_MIN_SIZE="$REGISTRY_DB_POOL_MIN" \
    APICURIO_DATASOURCE_JDBC_MAX_SIZE="$REGISTRY_DB_POOL_MAX" \
    "$REGISTRY_JAVA" "$(REGISTRY_MARKER)" -Xms128m -Xmx"$REGISTRY_HEAP" -XX:+UseSerialGC -Djava.awt.headless=true \
    -Dquarkus.http.host="$BIND_HOST" -Dquarkus.http.port="$REGISTRY_PORT" \
    -Dquarkus.management.host="$BIND_HOST" -Dquarkus.management.port="$REGISTRY_MGMT_PORT" "${auth[@]}" \
    -Dquarkus.datasource.postgresql.jdbc.foreground-validation-interval=PT1S \
    -Dquarkus.datasource.postgresql.jdbc.background-validation-interval=PT10S \
    -jar quarkus-run.jar
  REGISTRY_PID=$STARTED_PID
  log "Apicurio Registry $REGISTRY_VERSION starting (pid $REGISTRY_PID, $("$REGISTRY_JAVA" -version 2>&1 | head -1 | tr -d '"'), log $logf)"
}

registry_wait() {
  (( REGISTRY_LOCAL )) || return 0
  [[ -n ${REGISTRY_PID:-} ]] || return 0
  wait_for_http "http://$BIND_HOST:$REGISTRY_MGMT_PORT/health/ready" "$START_TIMEOUT" "Apicurio Registry" "$REGISTRY_PID" "$LOG_DIR/registry.log"
  wait_until 30 "Apicurio Registry (ccompat API)" "$REGISTRY_PID" "$LOG_DIR/registry.log" registry_ok "$SCHEMA_REGISTRY_URL/subjects"
  (( ${REGISTRY_WAS_UP:-0} )) && return 0
  log "Apicurio Registry ready at $SCHEMA_REGISTRY_URL ($(( ($(date +%s%N) - REGISTRY_T0) / 1000000 )) ms)"
}

registry_check_external() {
  local code
  code=$(registry_curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "$SCHEMA_REGISTRY_URL/subjects" 2>/dev/null || true)
  [[ $code == 401 || $code == 403 ]] && die "external schema registry SCHEMA_REGISTRY_URL=$SCHEMA_REGISTRY_URL refuses ${SCHEMA_REGISTRY_USERNAME:-requests without credentials} (HTTP $code): set SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD"
  [[ $code == 200 ]] || die "external schema registry SCHEMA_REGISTRY_URL=$SCHEMA_REGISTRY_URL is unreachable (GET /subjects: HTTP ${code:-none})"
  log "using external schema registry at $SCHEMA_REGISTRY_URL (Apicurio API $APICURIO_REGISTRY_URL)"
}

registry_stop() { stop_component registry "$(REGISTRY_MARKER)"; }

registry_status() {
  local pid
  if (( ! REGISTRY_LOCAL )); then
    local code; code=$(registry_curl -sS -o /dev/null -w '%{http_code}' --max-time 3 "$SCHEMA_REGISTRY_URL/subjects" 2>/dev/null || true)
    case $code in
      200) echo "registry: external $SCHEMA_REGISTRY_URL reachable" ;;
      401|403) echo "registry: external $SCHEMA_REGISTRY_URL REFUSES ${SCHEMA_REGISTRY_USERNAME:-requests without credentials} (HTTP $code: SCHEMA_REGISTRY_USERNAME, SCHEMA_REGISTRY_PASSWORD)"; return 1 ;;
      *) echo "registry: external $SCHEMA_REGISTRY_URL UNREACHABLE"; return 1 ;;
    esac
  elif pid=$(running_pid registry "$(REGISTRY_MARKER)"); then
    if http_ok "http://$BIND_HOST:$REGISTRY_MGMT_PORT/health/ready"; then echo "registry: up ($SCHEMA_REGISTRY_URL, pid $pid)"; else echo "registry: not ready (pid $pid)"; fi
  else echo "registry: down"; return 1; fi
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  CDC_TAG=registry; cdc_init
  case ${1:-} in start) registry_start; registry_wait ;; restart) registry_stop; registry_start; registry_wait ;; *) dispatch_component registry "$@" ;; esac
fi
