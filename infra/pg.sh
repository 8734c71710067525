#!/usr/bin/env bash
# The two local PostgreSQL clusters: `infra/pg.sh source|warehouse start|stop|restart|status`.
# Also sourced by up.sh / down.sh / status.sh for pg_* functions.
# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pg_dir()  { printf '%s/pg/%s' "$DATA_DIR" "$1"; }
pg_log()  { printf '%s/%s-pg.log' "$LOG_DIR" "$1"; }
pg_port() { if [[ $1 == source ]]; then printf '%s' "$SOURCE_PG_PORT"; else printf '%s' "$WAREHOUSE_PG_PORT"; fi; }
pg_port_var() { if [[ $1 == source ]]; then printf SOURCE_PG_PORT; else printf WAREHOUSE_PG_PORT; fi; }

# Debian's postgresql packages, when the server binaries are missing (as root only).
pg_ensure_binaries() {
  [[ -n ${PG_BIN:-} && -x $PG_BIN/initdb && -n ${PSQL:-} ]] && return 0
  [[ $(id -u) == 0 ]] || die "PostgreSQL server binaries not found: install them (Debian: sudo apt-get install postgresql) or set PG_BIN"
  command -v apt-get >/dev/null || die "PostgreSQL server binaries not found and no apt-get: install PostgreSQL 15+ and set PG_BIN"
  log "installing PostgreSQL (apt-get install postgresql; log: $LOG_DIR/install.log)"
  # No default cluster on 5432: this project runs its own clusters.
  mkdir -p /etc/postgresql-common/createcluster.d
  echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/50-cdc-warehouse-no-main.conf
  { DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; } \
    >>"$LOG_DIR/install.log" 2>&1 || die "apt-get install postgresql failed; see $LOG_DIR/install.log"
  PG_BIN='' ; find_pg_bin
  [[ -n ${PG_BIN:-} && -x $PG_BIN/initdb ]] || die "postgresql installed but initdb not found; set PG_BIN"
}

# Running as root, the server runs as "postgres": its folder and log file must be its own,
# and every folder above DATA_DIR must let it through (search permission only).
pg_prepare_dirs() {
  local name=$1 dir logf; dir=$(pg_dir "$name"); logf=$(pg_log "$name")
  mkdir -p "$dir"; touch "$logf"
  chmod 700 "$dir"
  if [[ $(id -u) == 0 ]]; then
    id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' OS user to run PostgreSQL (install the postgresql package)"
    chown postgres: "$DATA_DIR/pg" "$dir" "$logf"
    if ! runuser -u postgres -- test -w "$dir"; then
      local d=$DATA_DIR/pg
      while [[ $d != / ]]; do
        d=$(dirname "$d")
        if ! runuser -u postgres -- test -x "$d"; then
          log "letting the postgres user through $d (chmod o+x) so it can reach its data folder"
          chmod o+x "$d"
        fi
      done
      runuser -u postgres -- test -w "$dir" || die "the postgres OS user cannot write $dir: choose a DATA_DIR it can reach"
    fi
  fi
}

pg_ctl_() { ( cd / && as_pg_user "$PG_BIN/pg_ctl" "$@" ); }

pg_running() {
  local dir; dir=$(pg_dir "$1")
  [[ -f $dir/postmaster.pid && -n ${PG_BIN:-} ]] && pg_ctl_ -D "$dir" status >/dev/null 2>&1
}

pg_write_conf() {
  local name=$1 dir; dir=$(pg_dir "$name")
  {
    echo "# Written by infra/pg.sh at every start: edit infra/pg.sh or defaults.env, not this file."
    echo "listen_addresses = '$BIND_HOST'"
    echo "port = $(pg_port "$name")"
    echo "unix_socket_directories = ''        # TCP only: no socket path length or permission issues"
    echo "max_connections = 100"
    echo "shared_buffers = 128MB"
    echo "log_min_error_statement = panic     # never log statement text (ALTER ROLE ... PASSWORD)"
    echo "log_line_prefix = '%m [%p] %q%u@%d '"
    echo "timezone = 'UTC'"
    if [[ $name == warehouse ]]; then
      # Write-heavy: every change adds history and index entries. Fewer checkpoints, smaller WAL.
      echo "shared_buffers = 256MB"
      echo "max_wal_size = 4GB"
      echo "checkpoint_timeout = 15min"
      echo "wal_compression = on"
    fi
    if [[ $name == source ]]; then
      echo "wal_level = logical"
      echo "max_replication_slots = 10"
      echo "max_wal_senders = 10"
    fi
  } >"$dir/cdc.conf"
  [[ $(id -u) == 0 ]] && chown postgres: "$dir/cdc.conf"
  grep -q "^include_if_exists = 'cdc.conf'" "$dir/postgresql.conf" \
    || echo "include_if_exists = 'cdc.conf'" >>"$dir/postgresql.conf"
}

pg_initdb() {
  local name=$1 dir pwf; dir=$(pg_dir "$name")
  log "initialising the $name PostgreSQL cluster in $dir"
  pwf=$DATA_DIR/pg/.pwfile-$name
  ( umask 077; printf '%s\n' "$PG_ADMIN_PASSWORD" >"$pwf" )
  [[ $(id -u) == 0 ]] && chown postgres: "$pwf"
  if ! ( cd / && as_pg_user "$PG_BIN/initdb" -D "$dir" -U postgres --pwfile="$pwf" -E UTF8 --locale=C \
          --auth-local=scram-sha-256 --auth-host=scram-sha-256 ) >>"$(pg_log "$name")" 2>&1; then
    rm -f "$pwf"; log_tail "$(pg_log "$name")"; die "initdb of the $name cluster failed; see $(pg_log "$name")"
  fi
  rm -f "$pwf"
}

pg_start() {
  local name=$1 dir port; dir=$(pg_dir "$name"); port=$(pg_port "$name")
  pg_ensure_binaries
  if pg_running "$name"; then log "$name PostgreSQL already running on port $port"; return 0; fi
  require_free_port "$port" "$(pg_port_var "$name")" "the $name PostgreSQL"
  rotate_log "$(pg_log "$name")"
  pg_prepare_dirs "$name"
  [[ -f $dir/PG_VERSION ]] || pg_initdb "$name"
  pg_write_conf "$name"
  local t0; t0=$(date +%s%N)
  if ! pg_ctl_ -D "$dir" -l "$(pg_log "$name")" -w -t "$START_TIMEOUT" start >/dev/null 2>&1; then
    log_tail "$(pg_log "$name")"; die "the $name PostgreSQL did not start on port $port; see $(pg_log "$name")"
  fi
  head -1 "$dir/postmaster.pid" >"$(pidfile "$name-pg")"
  log "$name PostgreSQL ready on $BIND_HOST:$port ($(( ($(date +%s%N) - t0) / 1000000 )) ms)"
}

pg_stop() {
  local name=$1 dir; dir=$(pg_dir "$name")
  if pg_running "$name"; then
    log "stopping the $name PostgreSQL"
    pg_ctl_ -D "$dir" -m fast -w -t "$STOP_TIMEOUT" stop >/dev/null 2>&1 \
      || pg_ctl_ -D "$dir" -m immediate -w -t 10 stop >/dev/null 2>&1 || warn "could not stop the $name PostgreSQL"
  fi
  rm -f "$(pidfile "$name-pg")"
}

pg_status() {
  local name=$1
  if pg_running "$name"; then echo "$name-pg: up (port $(pg_port "$name"), pid $(head -1 "$(pg_dir "$name")/postmaster.pid"))"
  else echo "$name-pg: down"; return 1; fi
}

# ---------------------------------------------------------------- roles, databases, table

# The source: roles shop and debezium, database shop, table orders, publication dbz_publication.
# Idempotent; passwords go through psql variables read from the environment, never argv.
pg_setup_source() {
  local admin_url=$1
  psql_url "$(url_with_db "$admin_url" postgres)" -v src_db="$SOURCE_DB" -v dbz_user="$DEBEZIUM_USER" <<'SQL'
\getenv shop_pw SHOP_PASSWORD
\getenv dbz_pw DEBEZIUM_PASSWORD
\getenv monitor_pw MONITOR_PASSWORD
SELECT 'CREATE ROLE cdc_monitor LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cdc_monitor') \gexec
ALTER ROLE cdc_monitor WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'monitor_pw';
ALTER ROLE cdc_monitor SET default_transaction_read_only = on;
GRANT pg_monitor TO cdc_monitor;
SELECT 'CREATE ROLE shop LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shop') \gexec
ALTER ROLE shop WITH LOGIN NOSUPERUSER PASSWORD :'shop_pw';
SELECT format('CREATE ROLE %I LOGIN REPLICATION', :'dbz_user')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'dbz_user') \gexec
ALTER ROLE :"dbz_user" WITH LOGIN REPLICATION NOSUPERUSER PASSWORD :'dbz_pw';
SELECT format('CREATE DATABASE %I OWNER shop', :'src_db')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'src_db') \gexec
\connect :"src_db"
SET ROLE shop;
CREATE TABLE IF NOT EXISTS public.orders (
    order_id     bigserial     PRIMARY KEY,
    customer_id  bigint        NOT NULL,
    product_name text          NOT NULL,
    amount       numeric(12,2) NOT NULL,
    status       text          NOT NULL,
    created_at   timestamptz   NOT NULL DEFAULT now(),
    updated_at   timestamptz   NOT NULL DEFAULT now()
);
-- Full before-images in update and delete events (not only the key).
SELECT 'ALTER TABLE public.orders REPLICA IDENTITY FULL'
 WHERE (SELECT relreplident FROM pg_class WHERE oid = 'public.orders'::regclass) <> 'f' \gexec
-- Debezium's own tables. The heartbeat: heartbeat.action.query upserts its one row, so the
-- connector sees a change (and stores an offset, and the slot moves) even while the captured
-- tables idle and other tables fill the WAL. The signal table: execute-snapshot and other
-- signals are inserted here, and incremental snapshots write their watermarks here. Both are
-- in the publication but not in table.include.list: no warehouse table for either.
CREATE TABLE IF NOT EXISTS public.debezium_heartbeat (id int PRIMARY KEY, ts timestamptz);
CREATE TABLE IF NOT EXISTS public.debezium_signal (
    id   varchar(42) PRIMARY KEY,
    type varchar(32) NOT NULL,
    data varchar(2048)
);
SELECT 'CREATE PUBLICATION dbz_publication FOR TABLE public.orders'
 WHERE NOT EXISTS (SELECT FROM pg_publication WHERE pubname = 'dbz_publication') \gexec
SELECT format('ALTER PUBLICATION dbz_publication ADD TABLE %s', t)
  FROM unnest(ARRAY['public.debezium_heartbeat', 'public.debezium_signal']) t
 WHERE NOT EXISTS (SELECT FROM pg_publication_tables
                    WHERE pubname = 'dbz_publication' AND format('%I.%I', schemaname, tablename) = t) \gexec
RESET ROLE;
GRANT CONNECT ON DATABASE :"src_db" TO :"dbz_user";
GRANT USAGE ON SCHEMA public TO :"dbz_user";
GRANT SELECT ON public.orders TO :"dbz_user";
-- make status reads the commit time of the oldest change a slot has not confirmed from the WAL.
SELECT 'CREATE EXTENSION IF NOT EXISTS pg_walinspect'
 WHERE EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pg_walinspect') \gexec
-- The processor's slot metrics read the commit time of a slot's oldest unconfirmed change from
-- the WAL: that one function, not the pg_read_server_files role it defaults to.
SELECT 'GRANT EXECUTE ON FUNCTION pg_get_wal_records_info(pg_lsn, pg_lsn) TO cdc_monitor'
 WHERE EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_walinspect') \gexec
GRANT CONNECT ON DATABASE :"src_db" TO cdc_monitor;
GRANT SELECT, INSERT, UPDATE ON public.debezium_heartbeat TO :"dbz_user";
GRANT SELECT, INSERT, UPDATE, DELETE ON public.debezium_signal TO :"dbz_user";
SQL
}

# The warehouse: roles processor, analyst (read-only), registry; databases warehouse and registry.
pg_setup_warehouse() {
  local admin_url=$1
  psql_url "$(url_with_db "$admin_url" postgres)" -v wh_db="$WAREHOUSE_DB" -v reg_db="$REGISTRY_DB" <<'SQL'
\getenv processor_pw PROCESSOR_PASSWORD
\getenv analyst_pw ANALYST_PASSWORD
\getenv registry_pw REGISTRY_DB_PASSWORD
SELECT 'CREATE ROLE processor LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'processor') \gexec
ALTER ROLE processor WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'processor_pw';
SELECT 'CREATE ROLE analyst LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'analyst') \gexec
ALTER ROLE analyst WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'analyst_pw';
ALTER ROLE analyst SET default_transaction_read_only = on;
SELECT 'CREATE ROLE registry LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'registry') \gexec
ALTER ROLE registry WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'registry_pw';
SELECT format('CREATE DATABASE %I', :'wh_db')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'wh_db') \gexec
SELECT format('CREATE DATABASE %I OWNER registry', :'reg_db')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'reg_db') \gexec
REVOKE CONNECT, TEMPORARY ON DATABASE :"wh_db" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"wh_db" TO processor, analyst;
GRANT TEMPORARY ON DATABASE :"wh_db" TO processor;
REVOKE CONNECT, TEMPORARY ON DATABASE :"reg_db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"reg_db" TO registry;
SQL
}

# The source must allow logical decoding.
pg_check_wal_level() {
  local url=$1 wl
  parse_pg_url "$url" _CHK
  if ! wl=$(psql_url "$url" -At -c 'SHOW wal_level' 2>/dev/null); then
    wl=$( { psql_url "$url" -At -c 'SHOW wal_level' 2>&1 >/dev/null || true; } | head -2 | tr '\n' ' ')
    die "source PostgreSQL at $_CHK_HOST:$_CHK_PORT is unreachable or refuses $_CHK_USER: $wl"
  fi
  [[ $wl == logical ]] \
    || die "source PostgreSQL at $_CHK_HOST:$_CHK_PORT has wal_level=$wl: Debezium needs wal_level=logical (ALTER SYSTEM SET wal_level = logical; then restart it)"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  CDC_TAG=pg; cdc_init
  name=${1:-}; [[ $name == source || $name == warehouse ]] || { echo "usage: $0 source|warehouse start|stop|restart|status" >&2; exit 2; }
  case ${2:-} in
    start) pg_start "$name" ;;
    stop) pg_stop "$name" ;;
    restart) pg_stop "$name"; pg_start "$name" ;;
    status) pg_status "$name" ;;
    *) echo "usage: $0 source|warehouse start|stop|restart|status" >&2; exit 2 ;;
  esac
fi
