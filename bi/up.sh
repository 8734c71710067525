#!/usr/bin/env bash
# make bi: Apache Superset on the warehouse, through the read-only `analyst` role, with a live
# "Orders" dashboard. Run after `make up`. Idempotent: every step is skipped (or, for the REST
# provisioning, updates in place) when already done, so a re-run takes a few seconds.
#
#   1. browser    Debian's chromium (for the browser test and screenshots), installed in the background when missing
#   2. install    Superset into a venv under $DATA_DIR/bi (versions pinned by bi/superset-constraints.txt)
#   3. metadata   Superset's SQLite metadata, roles, and the admin user ($BI_USER / $BI_PASSWORD)
#   4. start      gunicorn on $BIND_HOST:$BI_PORT, pid in $DATA_DIR/run/superset.pid, log in $LOG_DIR/superset.log
#   5. provision  through the REST API: the warehouse database (analyst role, DML off), datasets, charts, dashboard
#   6. browser    waits for the chromium install started in step 1, if any
#
# Settings (environment): BI_PORT (18088), BI_USER (admin), BI_PASSWORD (generated into
# $DATA_DIR/bi/secrets.env), BI_PYTHON (a Python 3.10-3.12; default python3.11 or python3),
# BI_INSTALL_BROWSER=no to skip chromium, BI_START_TIMEOUT (120 s), BI_TABLE_WAIT (20 s),
# BI_WORKERS / BI_THREADS (gunicorn), BI_VENV (default $DATA_DIR/bi/venv).
CDC_TAG=bi
# shellcheck source=bi/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
set -E
STEP=setup
trap 'rc=$?; printf "[%s %s] ERROR: step \"%s\" failed (exit %s); details in %s\n" "$CDC_TAG" "$(_elapsed)" "$STEP" "$rc" "$LOG_DIR" >&2; exit $rc' ERR
bi_init
INSTALL_LOG=$LOG_DIR/bi-install.log

# ---------------------------------------------------------------- 1. and 6. browser (installed in the background)

BROWSER_PID=''
BROWSER_LOG=$LOG_DIR/bi-browser-install.log

start_browser_install() {
  STEP=browser
  if command -v chromium >/dev/null 2>&1; then
    log "1/6 browser: $(chromium --version 2>/dev/null | head -1 || echo chromium) present"
    return
  fi
  if [[ ${BI_INSTALL_BROWSER:-yes} == no ]]; then
    log "1/6 browser: chromium missing, not installed (BI_INSTALL_BROWSER=no): the browser test will fail"
    return
  fi
  (( EUID == 0 )) && command -v apt-get >/dev/null 2>&1 \
    || die "chromium is missing and cannot be installed here (needs root and apt-get): apt-get install chromium, or BI_INSTALL_BROWSER=no"
  log "1/6 browser: installing Debian's chromium in the background (about 1 min; log: $BROWSER_LOG)"
  ( { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >>"$BROWSER_LOG" 2>&1 ) &
  BROWSER_PID=$!
}

finish_browser_install() {
  [[ -n $BROWSER_PID ]] || return 0
  STEP=browser
  log "6/6 browser: waiting for the chromium install"
  wait "$BROWSER_PID" || { log_tail "$BROWSER_LOG"; die "apt-get install chromium failed; see $BROWSER_LOG"; }
  command -v chromium >/dev/null 2>&1 || die "apt-get installed chromium but there is no chromium command; see $BROWSER_LOG"
  log "6/6 browser: $(chromium --version 2>/dev/null | head -1) installed"
}

# ---------------------------------------------------------------- 2. install

pick_python() {  # sets PY
  local c v
  for c in ${BI_PYTHON:-} python3.11 python3 python3.12 python3.10; do
    command -v "$c" >/dev/null 2>&1 || continue
    v=$("$c" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || continue
    case $v in 3.10|3.11|3.12) PY=$c; return 0 ;; esac
    [[ -n ${BI_PYTHON:-} && $c == "$BI_PYTHON" ]] && die "BI_PYTHON=$BI_PYTHON is Python $v: Superset $SUPERSET_VERSION needs 3.10-3.12"
  done
  die "no Python 3.10-3.12 found (Superset $SUPERSET_VERSION needs one; 3.11 was tested): install python3.11 or set BI_PYTHON"
}

# The pinned versions (comments aside): a change reinstalls the venv and restarts Superset.
pins_hash() { grep -v '^[[:space:]]*\(#\|$\)' "$BI_CONSTRAINTS" | sha256sum | cut -d' ' -f1; }

install_superset() {
  STEP=install
  local stamp=$BI_VENV/.constraints.sha256 want
  want=$(pins_hash)
  if [[ -x $BI_VENV/bin/gunicorn && -f $stamp && $(<"$stamp") == "$want" ]]; then
    log "2/6 install: apache-superset $SUPERSET_VERSION already in $BI_VENV"
    return
  fi
  pick_python
  log "2/6 install: apache-superset $SUPERSET_VERSION into $BI_VENV with $("$PY" --version 2>&1) (about 1-2 min, ~850 MB; log: $INSTALL_LOG)"
  if bi_running >/dev/null; then bi_stop; fi  # do not pull the files from under a running server
  rm -rf "$BI_VENV"
  "$PY" -m venv "$BI_VENV" >>"$INSTALL_LOG" 2>&1 || die "could not create a venv with $PY (Debian: apt-get install python3-venv); see $INSTALL_LOG"
  # rich and cachetools are imported by Superset 6.1 but not declared (without cachetools the
  # PostgreSQL driver "cannot be loaded"); flask-caching 2.5 breaks start-up.
  if ! "$BI_VENV/bin/pip" install --disable-pip-version-check --no-input -q -c "$BI_CONSTRAINTS" \
      "apache-superset==$SUPERSET_VERSION" psycopg2-binary rich cachetools 'flask-caching<2.5' >>"$INSTALL_LOG" 2>&1; then
    log_tail "$INSTALL_LOG"
    die "pip could not install apache-superset $SUPERSET_VERSION (see $INSTALL_LOG)"
  fi
  "$BI_VENV/bin/python" -c 'import superset, psycopg2, rich, cachetools, gunicorn' >>"$INSTALL_LOG" 2>&1 \
    || die "apache-superset installed but does not import; see $INSTALL_LOG"
  printf '%s\n' "$want" >"$stamp"
}

# ---------------------------------------------------------------- 3. metadata

superset_cli() { "$BI_VENV/bin/superset" "$@" >>"$BI_LOG" 2>&1; }

ensure_admin() {  # creates the admin user, or resets its password to $BI_PASSWORD (never on argv or in logs)
  BI_USER=$BI_USER BI_PASSWORD=$BI_PASSWORD "$BI_VENV/bin/python" "$BI_DIR/admin.py" >>"$BI_LOG" 2>&1
}

init_metadata() {
  STEP=metadata
  local stamp=$BI_HOME/.metadata-version
  if [[ -s $BI_HOME/superset.db && -f $stamp && $(<"$stamp") == "$SUPERSET_VERSION" ]]; then
    log "3/6 metadata: $BI_HOME/superset.db ready"
    return
  fi
  log "3/6 metadata: creating Superset's metadata in $BI_HOME/superset.db (about 30-60 s; log: $BI_LOG)"
  superset_cli db upgrade || { log_tail "$BI_LOG"; die "superset db upgrade failed; see $BI_LOG"; }
  superset_cli init || { log_tail "$BI_LOG"; die "superset init failed; see $BI_LOG"; }
  ensure_admin || { log_tail "$BI_LOG"; die "could not create the admin user $BI_USER; see $BI_LOG"; }
  printf '%s\n' "$SUPERSET_VERSION" >"$stamp"
}

# ---------------------------------------------------------------- 4. start

start_superset() {
  STEP=start
  local pid stamp=$RUN_DIR/superset.config want
  # What the running server was started with: its configuration, versions, venv and address.
  want=$( { cat "$BI_DIR/superset_config.py"; pins_hash; echo "$BI_VENV $BI_URL"; } | sha256sum | cut -d' ' -f1)
  if pid=$(bi_running) && [[ $(cat "$stamp" 2>/dev/null) != "$want" ]]; then
    log "4/6 start: bi/superset_config.py or the versions changed since superset (pid $pid) started: restarting it"
    bi_stop
  fi
  if pid=$(bi_running); then
    if ! bi_healthy; then
      log "4/6 start: superset (pid $pid) is starting; waiting"
      wait_for_http "$BI_URL/health" "${BI_START_TIMEOUT:-120}" superset "$pid" "$BI_LOG"
    fi
    log "4/6 start: superset already running (pid $pid) at $BI_URL"
    return
  fi
  rm -f "$(pidfile superset)"
  require_free_port "$BI_PORT" BI_PORT superset
  log "4/6 start: superset on $BI_URL (log: $BI_LOG)"
  # One worker with threads: enough for a few viewers on 2 cores, ~350 MB. Idle keep-alive
  # connections stay open longer than clients keep them (Node's fetch: 4 s), so a client never
  # reuses a connection the server is closing at that moment.
  start_bg superset "$BI_LOG" env -u BI_PASSWORD "$BI_VENV/bin/gunicorn" \
    --bind "$BIND_HOST:$BI_PORT" --workers "${BI_WORKERS:-1}" --worker-class gthread --threads "${BI_THREADS:-8}" \
    --timeout 120 --graceful-timeout 10 --keep-alive 75 --limit-request-line 0 --limit-request-field_size 0 \
    "$BI_MARKER"
  printf '%s\n' "$want" >"$stamp"
  wait_for_http "$BI_URL/health" "${BI_START_TIMEOUT:-120}" superset "$STARTED_PID" "$BI_LOG"
  log "4/6 start: superset ready (pid $STARTED_PID)"
}

# ---------------------------------------------------------------- 5. provision

# The warehouse, as the analyst role, with the tables the processor creates on the first change.
wait_for_tables() {
  STEP=provision
  local t=${BI_TABLE_WAIT:-20} i have
  for (( i = 0; i <= t; i++ )); do
    have=$(psql_url "$ANALYST_DATABASE_URL" -Atc \
      "SELECT count(to_regclass(t)) FROM unnest(ARRAY['public.orders_latest', 'public.orders_fact']) AS t" 2>/dev/null) || have=x
    [[ $have == 2 ]] && return 0
    (( i == 0 )) && [[ $have != x ]] && log "5/6 provision: waiting up to ${t}s for public.orders_latest and orders_fact (the processor creates them with the first captured change)"
    sleep 1
  done
  [[ $have == x ]] && die "the warehouse does not answer as analyst at $(pg_url_without_password "$ANALYST_DATABASE_URL"): start the stack first (make up)"
  die "public.orders_latest and orders_fact do not exist yet (the processor creates them with the first captured change): add orders (make seed), then run make bi again"
}

provision() {
  STEP=provision
  wait_for_tables
  log "5/6 provision: warehouse database (analyst, read-only), datasets, charts, dashboard"
  local rc=0
  run_provision || rc=$?
  if (( rc == 3 )); then
    # The admin password changed (BI_PASSWORD set to a new value): apply it and try again.
    log "5/6 provision: login refused for $BI_USER: setting its password from BI_PASSWORD"
    ensure_admin || { log_tail "$BI_LOG"; die "could not reset the password of $BI_USER; see $BI_LOG"; }
    rc=0; run_provision || rc=$?
  fi
  (( rc == 0 )) || die "provisioning through Superset's REST API failed (see the lines above and $BI_LOG)"
}

run_provision() {
  BI_URL=$BI_URL BI_USER=$BI_USER BI_PASSWORD=$BI_PASSWORD ANALYST_DATABASE_URL=$ANALYST_DATABASE_URL \
    "$BI_VENV/bin/python" "$BI_DIR/provision.py" 2>&1 | sed "s/^/[$CDC_TAG]          /"
  return "${PIPESTATUS[0]}"
}

preflight() {
  STEP=preflight
  [[ -n $PSQL ]] || die "psql not found (Debian: apt-get install postgresql-client); make up installs it"
  local err
  if ! err=$(psql_url "$ANALYST_DATABASE_URL" -Atc 'SELECT 1' 2>&1 >/dev/null); then
    err=$(tr '\n' ' ' <<<"$err" | sed -E 's/^psql: (error: )?//; s/ +$//')
    die "cannot connect to the warehouse as analyst at $(pg_url_without_password "$ANALYST_DATABASE_URL") (${err:0:200}): is the stack up (make up)?"
  fi
}

preflight
start_browser_install
install_superset
init_metadata
start_superset
provision
finish_browser_install
STEP=done
log "Orders dashboard: $BI_DASHBOARD_URL  (user $BI_USER; password: make env, BI_PASSWORD)"
