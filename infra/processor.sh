#!/usr/bin/env bash
# The TypeScript processor (processor/, built to dist/): `infra/processor.sh start|stop|restart|status|build`.
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

processor_start() {
  local pid main logf=$LOG_DIR/processor.log
  main=$(PROCESSOR_MAIN)
  processor_build
  if pid=$(running_pid processor "$main"); then
    # A processor started before the last build runs old code: restart it (graceful; it resumes
    # from the offsets stored in the warehouse, so nothing is lost or doubled).
    if [[ $REPO_DIR/dist/.cdc-build-stamp -nt $(pidfile processor) ]]; then
      log "processor (pid $pid) runs an older build: restarting it"
      processor_stop
    else
      log "processor already running (pid $pid)"; return 0
    fi
  fi
  if [[ ! -f $main ]]; then
    warn "processor not built yet (no dist/processor/src/main.js): the pipeline runs up to Kafka; start it later with infra/processor.sh start"
    return 0
  fi
  require_free_port "$PROCESSOR_PORT" PROCESSOR_PORT processor
  export_env
  # With CONNECT_URL (make env) the processor follows capture: every Debezium connector of the
  # worker, but those whose config says cdc.warehouse.follow=false (the tests' own), or only
  # PROCESSOR_CONNECTORS when set.
  local t0; t0=$(date +%s%N)
  ( cd "$REPO_DIR" && start_bg processor "$logf" node "$main" )
  pid=$(<"$(pidfile processor)")
  log "processor starting (pid $pid, log $logf)"
  wait_for_http "$PROCESSOR_URL/health" "$PROCESSOR_START_TIMEOUT" processor "$pid" "$logf"
  log "processor healthy at $PROCESSOR_URL ($(( ($(date +%s%N) - t0) / 1000000 )) ms)"
}

processor_stop() { stop_component processor "$(PROCESSOR_MAIN)"; }

processor_status() {
  local pid code
  if pid=$(running_pid processor "$(PROCESSOR_MAIN)"); then
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$PROCESSOR_URL/health" || true)
    echo "processor: up (pid $pid, $PROCESSOR_URL/health -> HTTP $code)"
  elif [[ -f $(PROCESSOR_MAIN) ]]; then echo "processor: down"; return 1
  else echo "processor: not built yet"; return 1; fi
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  CDC_TAG=processor; cdc_init
  case ${1:-} in build) processor_build ;; *) dispatch_component processor "$@" ;; esac
fi
