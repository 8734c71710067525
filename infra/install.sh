#!/usr/bin/env bash
# Installs what the local stack needs and is missing (also run by up.sh):
#  - Debian's postgresql packages (as root), when no PostgreSQL server binaries are found;
#  - npm dependencies (npm ci) when node_modules is missing or stale;
#  - the Java artifacts, resolved by Maven from infra/maven (pinned versions, Central only)
#    into CACHE_DIR ($CACHE_DIR/m2 local repository, $CACHE_DIR/dist unpacked distributions).
# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=infra/pg.sh
source "$INFRA_DIR/pg.sh"
# shellcheck source=infra/processor.sh
source "$INFRA_DIR/processor.sh"
# shellcheck source=infra/connect.sh
source "$INFRA_DIR/connect.sh"

# module -> output folder (relative to DIST_DIR); a stamp per module holds the hash of the poms
maven_modules() {
  echo "kafka kafka-$KAFKA_VERSION"
  echo "connect connect-$CONNECT_VERSION"
  echo "debezium plugins/debezium-postgres-$DEBEZIUM_VERSION"
  echo "apicurio-converter plugins/apicurio-converter-$CONVERTER_VERSION"
  echo "apicurio-registry apicurio-registry-$REGISTRY_VERSION"
}

# Optional modules, resolved only on request (`infra/install.sh debezium-jdbc`; make bench asks):
# they are not in the aggregator, so `make up` neither fetches nor re-checks them.
maven_optional_modules() {
  local jdbc; jdbc=$(jdbc_sink_plugin_dir)
  echo "debezium-jdbc ${jdbc#"$DIST_DIR/"}"
  echo "connect-rest-auth connect-basic-auth-$CONNECT_VERSION"
}

# maven_artifacts_ensure [MODULE...]: the aggregator's modules, or the optional MODULEs named
maven_artifacts_ensure() {
  local mdir=$INFRA_DIR/maven module out want todo=() outs=() optional=$*
  while read -r module out; do
    [[ -z $optional || " $optional " == *" $module "* ]] || continue
    want=$(cat "$mdir/pom.xml" "$mdir/settings.xml" "$mdir/$module/pom.xml" | sha256sum | cut -d' ' -f1)
    if [[ -f $DIST_DIR/$out/.cdc-stamp && $(<"$DIST_DIR/$out/.cdc-stamp") == "$want" ]]; then continue; fi
    todo+=("$module"); outs+=("$out:$want")
  done < <(if [[ -n $optional ]]; then maven_optional_modules; else maven_modules; fi)
  (( ${#todo[@]} )) || return 0

  command -v mvn >/dev/null || die "Maven is needed to fetch Kafka, Debezium and Apicurio: install it (Debian: apt-get install maven)"
  find_java
  mkdir -p "$DIST_DIR"
  exec 9>"$CACHE_DIR/.install.lock"
  flock 9
  local list=${todo[*]}
  [[ " $list " == *" apicurio-converter "* ]] && todo=(apicurio-converter/parent-stub "${todo[@]}")
  log "resolving Maven artifacts (${list// /, }) into $CACHE_DIR (log: $LOG_DIR/maven.log)"
  local o
  for o in "${outs[@]}"; do rm -rf "${DIST_DIR:?}/${o%%:*}"; done
  local t0 sel=(-pl "$(IFS=,; echo "${todo[*]}")"); t0=$(date +%s%N)
  [[ -n $optional ]] && sel=(-f "$mdir/${todo[0]}/pom.xml")   # not in the reactor: its own pom
  if ! ( cd "$mdir" && JAVA_HOME=$(dirname "$(dirname "$(readlink -f "$JAVA")")") \
         mvn -B -ntp -s "$mdir/settings.xml" -Dmaven.repo.local="$CACHE_DIR/m2" -Dcdc.out="$DIST_DIR" \
             "${sel[@]}" package ) >>"$LOG_DIR/maven.log" 2>&1; then
    grep -E '^\[ERROR\]' "$LOG_DIR/maven.log" | head -5 | sed 's/^/    | /' >&2
    die "Maven could not resolve the stack's artifacts; see $LOG_DIR/maven.log"
  fi
  for o in "${outs[@]}"; do printf '%s\n' "${o##*:}" >"$DIST_DIR/${o%%:*}/.cdc-stamp"; done
  flock -u 9
  log "Maven artifacts ready ($(( ($(date +%s%N) - t0) / 1000000 )) ms; $(du -sh "$DIST_DIR" | cut -f1) in $DIST_DIR)"
}

install_all() {
  command -v curl >/dev/null || {
    [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null || die "curl is needed: install it (apt-get install curl)"
    log "installing curl"; DEBIAN_FRONTEND=noninteractive apt-get install -y -q curl >>"$LOG_DIR/install.log" 2>&1 || die "apt-get install curl failed"
  }
  if (( SOURCE_LOCAL || WAREHOUSE_LOCAL )); then pg_ensure_binaries; fi
  [[ -n ${PSQL:-} ]] || pg_ensure_binaries
  node_deps_ensure
  if (( KAFKA_LOCAL || CONNECT_LOCAL || REGISTRY_LOCAL )); then
    find_java
    maven_artifacts_ensure
    # Connect's REST behind basic auth (SECURITY=on): its extension, resolved only then.
    if (( CONNECT_LOCAL )) && security_on; then maven_artifacts_ensure connect-rest-auth; fi
    if (( REGISTRY_LOCAL )); then find_java21; fi
  fi
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  CDC_TAG=install; cdc_init
  if (( $# )); then
    for m in "$@"; do
      maven_optional_modules | grep -q "^$m " || die "no optional module $m (have: $(maven_optional_modules | cut -d' ' -f1 | tr '\n' ' '))"
      find_java; maven_artifacts_ensure "$m"
    done
    log "installed: $*"
    exit 0
  fi
  install_all
  log "everything installed"
fi
