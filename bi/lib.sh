# shellcheck shell=bash
# What the bi/ scripts share: the stack's configuration (infra/lib.sh), and Superset's own.
# Source it, then call bi_init.

BI_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=infra/lib.sh
source "$BI_DIR/../infra/lib.sh"

# The Superset version is the one pinned in the constraints file (one place to change it).
BI_CONSTRAINTS=$BI_DIR/superset-constraints.txt
# The processes' marker on their command line (pid-reuse guard) and the Superset app factory.
BI_MARKER='superset.app:create_app()'

# bi_init: cdc_init, then BI_HOME, BI_VENV, BI_URL, BI_USER, BI_PASSWORD, SUPERSET_SECRET_KEY.
bi_init() {
  cdc_init
  BI_HOME=${BI_HOME:-$DATA_DIR/bi}
  BI_VENV=${BI_VENV:-$BI_HOME/venv}
  BI_LOG=$LOG_DIR/superset.log
  BI_URL=${BI_URL:-http://$BIND_HOST:$BI_PORT}
  BI_URL=${BI_URL%/}
  BI_USER=${BI_USER:-admin}
  BI_DASHBOARD_URL=$BI_URL/superset/dashboard/orders/
  SUPERSET_VERSION=$(sed -n 's/^apache[-_]superset==//Ip' "$BI_CONSTRAINTS" | head -1)
  [[ -n $SUPERSET_VERSION ]] || die "no apache-superset pin in $BI_CONSTRAINTS"
  mkdir -p "$BI_HOME"
  chmod 700 "$BI_HOME"  # metadata holds the analyst connection and the admin login
  bi_load_secrets
  export SUPERSET_CONFIG_PATH=$BI_DIR/superset_config.py BI_HOME SUPERSET_SECRET_KEY
  export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in bi/ (Superset imports superset_config.py from there)
  # Superset's "now" and the warehouse session (TimeZone=UTC) must agree.
  export TZ=UTC
}

# BI_PASSWORD and SUPERSET_SECRET_KEY: the environment wins (and is remembered, so that `make env`
# prints the password in use); otherwise $BI_HOME/secrets.env, generated on first use (mode 600).
# Never printed to logs.
bi_load_secrets() {
  local f=$BI_HOME/secrets.env k v line dirty=0
  if [[ ! -f $f ]]; then ( umask 077; : >"$f" ); fi
  chmod 600 "$f"
  declare -A filev=()
  while IFS= read -r line; do
    [[ $line =~ ^([A-Z_]+)=(.*)$ ]] || continue
    filev[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
  done <"$f"
  for k in BI_PASSWORD SUPERSET_SECRET_KEY; do
    if [[ -n ${!k:-} ]]; then
      [[ ${filev[$k]:-} == "${!k}" ]] || { filev[$k]=${!k}; dirty=1; }
    elif [[ -z ${filev[$k]:-} ]]; then
      v=$(gen_password); [[ $k == SUPERSET_SECRET_KEY ]] && v+=$(gen_password)
      filev[$k]=$v; dirty=1
    fi
    printf -v "$k" '%s' "${filev[$k]}"
  done
  if (( dirty )); then
    ( umask 077; for k in BI_PASSWORD SUPERSET_SECRET_KEY; do printf '%s=%s\n' "$k" "${filev[$k]}"; done >"$f.tmp" )
    mv "$f.tmp" "$f"
  fi
}

# bi_running: prints Superset's pid and returns 0 if the process in the pid file is ours and alive.
bi_running() { running_pid superset "$BI_MARKER"; }

# bi_healthy: Superset answers its health check.
bi_healthy() { curl -fsS -o /dev/null --max-time 3 "$BI_URL/health"; }

bi_stop() {
  local pid
  if pid=$(bi_running); then
    log "stopping superset (pid $pid)"
    stop_pid superset "$pid"
  fi
  rm -f "$(pidfile superset)" "$RUN_DIR/superset.config"
}

bi_print_env() {
  local k v
  for k in BI_URL BI_USER BI_PASSWORD; do
    v=${!k}
    if [[ $v =~ ^[A-Za-z0-9_./:@%,+=-]*$ ]]; then printf '%s=%s\n' "$k" "$v"
    else printf "%s='%s'\n" "$k" "${v//\'/\'\\\'\'}"; fi
  done
}
