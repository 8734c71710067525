#!/usr/bin/env bash
# make status: each component up or down, connector and task states, replication slot lag, processor health.
CDC_TAG=status
# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for f in pg kafka registry connect processor; do
  # shellcheck source=/dev/null
  source "$INFRA_DIR/$f.sh"
done
cdc_init
set +e
rc=0
if (( SOURCE_LOCAL )); then pg_status source || rc=1; else echo "source-pg: external $(pg_url_without_password "$SOURCE_DATABASE_URL")"; fi
if (( WAREHOUSE_LOCAL )); then pg_status warehouse || rc=1; else echo "warehouse-pg: external $(pg_url_without_password "$WAREHOUSE_DATABASE_URL")"; fi
kafka_status || rc=1
registry_status || rc=1
connect_status || rc=1
slot=$(psql_url "${SOURCE_ADMIN_URL:-$SOURCE_DATABASE_URL}" -At -F ' ' -c \
  "SELECT slot_name, active, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint
     FROM pg_replication_slots WHERE slot_name = 'debezium_orders'" 2>/dev/null)
if [[ -n $slot ]]; then
  read -r name active retained unconfirmed <<<"$slot"
  echo "replication slot $name: active=$active, retained WAL $retained bytes (restart_lsn), $unconfirmed bytes not yet confirmed"
else
  echo "replication slot debezium_orders: none (source down, or connector never started)"
fi
processor_status || rc=1
[[ -f $REPO_DIR/bi/status.sh ]] && { bash "$REPO_DIR/bi/status.sh" || rc=1; }
exit $rc
