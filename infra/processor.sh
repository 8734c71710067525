#!/usr/bin/env bash
# The TypeScript processor (processor/, built to dist/): `infra/processor.sh start|stop|restart|status|build`,
# per instance `start-node|stop-node|kill-node N` (PROCESSORS instances in one consumer group).
# start: npm ci if node_modules is missing or stale, npm run build if sources changed, then
# node dist/processor/src/main.js in the background with the env of `make env`, log in
# $LOG_DIR/processor.log, and a bounded wait for GET $PROCESSOR_URL/health.
# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PROCESSOR_MAIN() { printf '%s/dist/processor/src/main.js' "$REPO_DIR"; }

# npm dependencies: npm ci when node_modules is missing or older than package-lock.json.
node_deps_ensure() {
  command -v node >/dev/null && command -v npm >/dev/null || die "Node.js 20+ and npm are needed: install them (e.g. from Debian or nodejs.org packages)"
  local major; major=$(node -p 'process.versions.node.split(".")[0]')
  (( major >= 20 )) || die "Node.js $(node -v) is too old: install Node.js 20 or newer"
  local stamp=$REPO_DIR/node_modules/.cdc-lock.sha256 want
  want=$(sha256sum "$REPO_DIR/package-lock.json" | cut -d' ' -f1)
  [[ -f $stamp && $(<"$stamp") == "$want" ]] && return 0
  if [[ -f $REPO_DIR/node_modules/.package-lock.json && ! $REPO_DIR/package-lock.json -nt $REPO_DIR/node_modules/.package-lock.json ]]; then
    printf '%s\n' "$want" >"$stamp"; return 0
  fi
  log "installing npm dependencies (npm ci; log: $LOG_DIR/npm.log)"
  ( cd "$REPO_DIR" && npm ci --no-audit --no-fund ) >>"$LOG_DIR/npm.log" 2>&1 \
    || { log_tail "$LOG_DIR/npm.log"; die "npm ci failed; see $LOG_DIR/npm.log"; }
  printf '%s\n' "$want" >"$stamp"
}

# npm run build when a TypeScript source (or the build config) is newer than the last build.
processor_build() {
  node_deps_ensure
  local stamp=$REPO_DIR/dist/.cdc-build-stamp changed=1
  if ! compgen -G "$REPO_DIR/processor/src/*.ts" >/dev/null; then
    return 0   # nothing to build yet
  fi
  if [[ -f $stamp ]]; then
    local p paths=()
    for p in processor/src seed bench e2e/lib tsconfig.json package.json; do
      [[ -e $REPO_DIR/$p ]] && paths+=("$REPO_DIR/$p")
    done
    changed=$( { find "${paths[@]}" -newer "$stamp" \( -name '*.ts' -o -name '*.json' \) 2>/dev/null || true; } | head -1 | wc -l)
  fi
  (( changed )) || return 0
  log "building TypeScript (npm run build; log: $LOG_DIR/build.log)"
  if ! ( cd "$REPO_DIR" && npm run --silent build ) >"$LOG_DIR/build.log" 2>&1; then
    log_tail "$LOG_DIR/build.log" 20
    die "npm run build failed; see $LOG_DIR/build.log"
  fi
  mkdir -p "$REPO_DIR/dist"; touch "$stamp"
}

# processor_start_node N: processor N (1: "processor", i>1: "processor-i") on its own health port,
# in the one consumer group: the group shares the topics' partitions among the processors.
processor_start_node() {
  local n=$1 pid main name logf port url
  main=$(PROCESSOR_MAIN) name=$(node_name processor "$n") logf=$LOG_DIR/$(node_name processor "$n").log
  port=$(processor_port_of "$n") url=http://$BIND_HOST:$(processor_port_of "$n")
  (( PROCESSORS > 1 )) || url=$PROCESSOR_URL
  if pid=$(running_pid "$name" "$main"); then
    # A processor started before the last build runs old code: restart it (graceful; it resumes
    # from the offsets stored in the warehouse, so nothing is lost or doubled).
    if [[ $REPO_DIR/dist/.cdc-build-stamp -nt $(pidfile "$name") ]]; then
      log "$name (pid $pid) runs an older build: restarting it"
      processor_stop_node "$n"
    else
      log "$name already running (pid $pid)"; return 0
    fi
  fi
  if [[ ! -f $main ]]; then
    warn "processor not built yet (no dist/processor/src/main.js): the pipeline runs up to Kafka; start it later with infra/processor.sh start"
    return 0
  fi
  require_free_port "$port" PROCESSOR_PORT "$name"
  export_env
  # With CONNECT_URL (make env) the processor follows capture: every Debezium connector of the
  # worker, but those whose config says cdc.warehouse.follow=false (the tests' own), or only
  # PROCESSOR_CONNECTORS when set.
  local t0 envs=(); t0=$(date +%s%N)
  if (( PROCESSORS > 1 )); then
    # Its own port and client id (make status tells the group's members apart by it); the
    # processors ask different Connect workers, so one worker down leaves the others informed.
    local urls; IFS=, read -r -a urls <<<"$CONNECT_URLS"
    envs=(PROCESSOR_PORT="$port" PROCESSOR_URL="$url" PROCESSOR_CLIENT_ID="cdc-processor-$n"
          CONNECT_URL="${urls[$(( (n - 1) % ${#urls[@]} ))]}")
  fi
  (
    # A secured local Kafka: the processor's own user (least privilege), not the admin of make env;
    # exported here rather than given to env(1), so the password is on no command line.
    if (( KAFKA_LOCAL )) && security_on; then export KAFKA_SASL_USERNAME=processor KAFKA_SASL_PASSWORD=$KAFKA_PROCESSOR_PASSWORD; fi
    cd "$REPO_DIR" && start_bg "$name" "$logf" env "${envs[@]}" node "$main"
  )
  pid=$(<"$(pidfile "$name")")
  log "$name starting (pid $pid, log $logf)"
  wait_for_http "$url/health" "$PROCESSOR_START_TIMEOUT" "$name" "$pid" "$logf"
  log "$name healthy at $url ($(( ($(date +%s%N) - t0) / 1000000 )) ms)"
}

processor_start() {
  local i
  processor_build
  for (( i = 1; i <= PROCESSORS; i++ )); do processor_start_node "$i"; done
}

processor_stop_node() { stop_component "$(node_name processor "$1")" "$(PROCESSOR_MAIN)"; }

processor_stop() {
  local i
  for i in $(extra_nodes processor "$PROCESSORS"); do processor_stop_node "$i"; done
  for (( i = PROCESSORS; i >= 1; i-- )); do processor_stop_node "$i"; done
}

# processor_kill_node N: SIGKILL, no shutdown (make chaos).
processor_kill_node() {
  local pid name; name=$(node_name processor "$1")
  pid=$(running_pid "$name" "$(PROCESSOR_MAIN)") || die "$name is not running"
  kill -KILL "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  log "killed $name (pid $pid, SIGKILL)"
}

processor_status() {
  local pid code i rc=0 name url
  for (( i = 1; i <= PROCESSORS; i++ )); do
    name=$(node_name processor "$i") url=http://$BIND_HOST:$(processor_port_of "$i")
    (( PROCESSORS > 1 )) || url=$PROCESSOR_URL
    if pid=$(running_pid "$name" "$(PROCESSOR_MAIN)"); then
      code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url/health" || true)
      echo "$name: up (pid $pid, $url/health -> HTTP $code)"
    elif [[ -f $(PROCESSOR_MAIN) ]]; then echo "$name: down"; rc=1
    else echo "$name: not built yet"; rc=1; fi
  done
  return $rc
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  CDC_TAG=processor; cdc_init
  case ${1:-} in
    build) processor_build ;;
    start-node) [[ ${2:-} =~ ^[0-9]+$ ]] || die "usage: $0 start-node N"; processor_build; processor_start_node "$2" ;;
    stop-node) [[ ${2:-} =~ ^[0-9]+$ ]] || die "usage: $0 stop-node N"; processor_stop_node "$2" ;;
    kill-node) [[ ${2:-} =~ ^[0-9]+$ ]] || die "usage: $0 kill-node N"; processor_kill_node "$2" ;;
    *) dispatch_component processor "$@" ;;
  esac
fi
