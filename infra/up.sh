#!/usr/bin/env bash
# make up: install what is missing, start every local component that is not running yet,
# wait (bounded) for each to be healthy, register the connector, print a summary.
# Components given by URL in the environment are external: checked, never started (infra/README.md).
CDC_TAG=up
# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for f in pg kafka registry connect processor install migrate; do
  # shellcheck source=/dev/null
  source "$INFRA_DIR/$f.sh"
done

cdc_init
topology_record
log "data in $DATA_DIR, logs in $LOG_DIR, downloads in $CACHE_DIR"
is_cluster && log "cluster: $KAFKA_BROKERS Kafka broker(s) (replication factor $REPLICATION_FACTOR, min.insync.replicas $MIN_INSYNC_REPLICAS), $CONNECT_WORKERS Connect worker(s), $PROCESSORS processor(s)"

# 1. Prerequisites, and every external component reachable (fail fast, before starting anything).
install_all
(( KAFKA_LOCAL )) || kafka_check_external
(( REGISTRY_LOCAL )) || registry_check_external
(( CONNECT_LOCAL )) || connect_check_external
(( SOURCE_LOCAL )) || pg_check_wal_level "$SOURCE_DATABASE_URL"
if (( ! WAREHOUSE_LOCAL )); then
  [[ -n $WAREHOUSE_ADMIN_URL ]] || die "an external warehouse needs WAREHOUSE_ADMIN_URL too (roles, databases and migrations are applied through it)"
  parse_pg_url "$WAREHOUSE_ADMIN_URL" _WX
  psql_url "$WAREHOUSE_ADMIN_URL" -c 'SELECT 1' >/dev/null 2>&1 \
    || die "external warehouse PostgreSQL at $_WX_HOST:$_WX_PORT (WAREHOUSE_ADMIN_URL) is unreachable or refuses $_WX_USER"
fi

# 2. The databases: local clusters, roles, databases, the orders table, migrations.
if (( SOURCE_LOCAL )); then
  pg_start source
else
  log "using external source PostgreSQL $(pg_url_without_password "$SOURCE_DATABASE_URL")"
fi
if (( WAREHOUSE_LOCAL )); then
  pg_start warehouse
else
  log "using external warehouse PostgreSQL $(pg_url_without_password "$WAREHOUSE_DATABASE_URL")"
fi
if [[ -n $SOURCE_ADMIN_URL ]]; then
  pg_setup_source "$SOURCE_ADMIN_URL" >>"$LOG_DIR/setup.log" 2>&1 \
    || { log_tail "$LOG_DIR/setup.log"; die "setting up the source database failed; see $LOG_DIR/setup.log"; }
  log "source ready: database $SOURCE_DB, table public.orders, publication dbz_publication, roles shop and $DEBEZIUM_USER"
else
  log "no SOURCE_ADMIN_URL: assuming the external source already has the orders table, dbz_publication and the $DEBEZIUM_USER role"
fi
pg_check_wal_level "$SOURCE_DATABASE_URL"
pg_setup_warehouse "$WAREHOUSE_ADMIN_URL" >>"$LOG_DIR/setup.log" 2>&1 \
  || { log_tail "$LOG_DIR/setup.log"; die "setting up the warehouse failed; see $LOG_DIR/setup.log"; }
log "warehouse ready: databases $WAREHOUSE_DB and $REGISTRY_DB, roles processor, analyst (read-only), registry"
migrate "$WAREHOUSE_ADMIN_URL"

# 3. Kafka and the registry start side by side; Connect needs Kafka.
kafka_start
registry_start
kafka_wait
kafka_security_apply
connect_start
registry_wait
connect_wait

# 4. The connector (created if missing, never overwritten: make connector-apply), then the processor.
# The infra's Kafka clients share the processor's options module (dist/processor/src/kafka-options.js).
processor_build
export_env
# The signal topic first: the connector's Kafka signal channel reads its partition 0.
out=$(node "$INFRA_DIR/ensure-topics.js" "$KAFKA_BOOTSTRAP_SERVERS" 1 dbserver1-signal 2>&1) \
  || die "could not create topic dbserver1-signal on $KAFKA_BOOTSTRAP_SERVERS: $out"
connector_register
# The change topic exists before anything subscribes to it (Debezium creates it only with the
# table's first event), with the partitions the connector would give it.
out=$(node "$INFRA_DIR/ensure-topics.js" "$KAFKA_BOOTSTRAP_SERVERS" 2 dbserver1.public.orders 2>&1) \
  || die "could not create topic dbserver1.public.orders on $KAFKA_BOOTSTRAP_SERVERS: $out"
[[ $out == created* ]] && log "Kafka topic $out (2 partitions)"
processor_start

# 5. Summary.
parse_pg_url "$WAREHOUSE_DATABASE_URL" _W
cat <<EOF
[up $(_elapsed)] the pipeline is up:
    source PostgreSQL   $(pg_url_without_password "$SOURCE_DATABASE_URL")   (table public.orders)
    Kafka               $KAFKA_BOOTSTRAP_SERVERS   (topic dbserver1.public.orders)
    schema registry     $SCHEMA_REGISTRY_URL   (Apicurio API: $APICURIO_REGISTRY_URL)
    Kafka Connect       $CONNECT_URL/connectors/$CONNECTOR_NAME/status$( (( CONNECT_WORKERS == 1 )) || printf '   (workers: %s)' "$CONNECT_URLS")
    processor           $PROCESSOR_URL/health$( (( PROCESSORS == 1 )) || printf '   (all: %s)' "$PROCESSOR_URLS")
    warehouse           $(pg_url_without_password "$WAREHOUSE_DATABASE_URL")
  connect:  eval "\$(make -s env)"; psql "\$ANALYST_DATABASE_URL"      (read-only analyst role; make env prints every URL)
  BI tool:  PostgreSQL at host $_W_HOST port $_W_PORT, database $_W_DB, user analyst, password: make -s env | grep ANALYST; or make bi (Apache Superset on port $BI_PORT)
  logs:     $LOG_DIR   (make logs);  make status;  make down
EOF
