#!/usr/bin/env bash
# make status: each component up or down, connector and task states, replication slot lag, processor health.
CDC_TAG=status
# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for f in pg kafka registry connect processor; do
  # shellcheck source=/dev/null
  source "$INFRA_DIR/$f.sh"
done
# Per replication slot of the source: WAL retained (restart_lsn) and not yet confirmed by the
# connector (confirmed_flush_lsn), in bytes, and how old the oldest unconfirmed commit is (read
# from the WAL with pg_walinspect, when installed). A slot that PostgreSQL invalidated, or the
# connector's slot missing, is reported with the way out.
slots_status() {
  local url=${SOURCE_ADMIN_URL:-$SOURCE_DATABASE_URL} rows want name active wal_status retained unconfirmed age any=0 st=0
  local c=$CONNECT_URL/connectors/$CONNECTOR_NAME
  want=$(connect_curl -fsS --max-time 3 "$c/config" 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s)["slot.name"]||"")}catch(e){}})' || true)
  rows=$(psql_url "$url" -At -F '|' 2>/dev/null <<'SQL'
SELECT s.slot_name, s.active, coalesce(s.wal_status, ''),
       coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint::text, ''),
       coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint::text, ''),
       CASE WHEN s.confirmed_flush_lsn IS NULL OR s.confirmed_flush_lsn >= pg_current_wal_lsn() THEN ''
            WHEN NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_walinspect') THEN '?'
            ELSE coalesce((
              -- the first commit after the confirmed position, within 64 MB of WAL
              SELECT extract(epoch FROM now() - split_part(w.description, ';', 1)::timestamptz)::bigint::text
                FROM pg_get_wal_records_info(s.confirmed_flush_lsn,
                       least(pg_current_wal_lsn(), s.confirmed_flush_lsn + 64 * 1024 * 1024)) w
               WHERE w.resource_manager = 'Transaction' AND w.record_type IN ('COMMIT', 'COMMIT_PREPARED')
               ORDER BY w.start_lsn LIMIT 1),
              -- no commit in the unconfirmed WAL: nothing waits, unless only part of it was read
              CASE WHEN pg_current_wal_lsn() - s.confirmed_flush_lsn > 64 * 1024 * 1024 THEN '>64MB' ELSE '' END) END
  FROM pg_replication_slots s WHERE s.slot_type = 'logical' ORDER BY s.slot_name
SQL
  ) || { echo "replication slots: cannot read pg_replication_slots (source down?)"; return 1; }
  while IFS='|' read -r name active wal_status retained unconfirmed age; do
    [[ -n $name ]] || continue
    any=1
    if [[ $wal_status == lost ]]; then
      echo "replication slot $name: INVALIDATED (PostgreSQL removed WAL it still needed; max_slot_wal_keep_size?). Changes since are lost to it."
      echo "  way out: curl -X PUT $c/stop; psql -c \"SELECT pg_drop_replication_slot('$name')\"; curl -X DELETE $c/offsets; curl -X PUT $c/resume   (a new slot and a new initial snapshot)"
      st=1; continue
    fi
    case $age in
      '') age='none' ;;
      '?') age='unknown (no pg_walinspect)' ;;
      '>64MB') age='older than the first 64 MB of unconfirmed WAL' ;;
      *) age="${age} s ago" ;;
    esac
    echo "replication slot $name: $([[ $active == t ]] && echo active || echo INACTIVE)${wal_status:+ (wal_status $wal_status)}, retained WAL $retained bytes (restart_lsn), unconfirmed $unconfirmed bytes, oldest unconfirmed commit: $age"
  done <<<"$rows"
  if [[ -n $want ]] && ! grep -q "^$want|" <<<"$rows"; then
    echo "replication slot $want (of connector $CONNECTOR_NAME): MISSING. At its next start the connector creates it at the current WAL position: changes since its stored offset would be skipped."
    echo "  way out: curl -X PUT $c/stop; curl -X DELETE $c/offsets; curl -X PUT $c/resume   (a new slot and a new initial snapshot)"
    return 1
  fi
  (( any )) || echo "replication slots: none (connector never started)"
  return $st
}

# Per source: how far the warehouse is transaction-consistent, and what the watermark waits for.
consistency_status() {
  local rows source through lag pending waiting
  rows=$(psql_url "$WAREHOUSE_DATABASE_URL" -At -F '|' -c "SELECT source, coalesce(consistent_through::text, 'none yet'), coalesce(round(lag_seconds::numeric, 1)::text, '-'), transactions_pending, coalesce(waiting_for, '') FROM public.pipeline_status ORDER BY source" 2>/dev/null) || return 0
  while IFS='|' read -r source through lag pending waiting; do
    [[ -n $source ]] || continue
    # The step counts pending transactions up to 10,000 (migration 0008): more is a backlog.
    [[ $pending == 10000 ]] && pending='10,000 or more'
    echo "consistency $source: whole transactions through $through (lag ${lag} s, $pending pending)${waiting:+; waiting for $waiting}"
  done <<<"$rows"
}

# Events the processor held back in the last hour (cdc.rejected_events), most frequent reasons
# first: a column type change rejects every later event of its table, and nothing else shows it.
rejects_status() {
  local rows total=0 entries=0 n stage table reason shown=""
  # The newest 10,000 by id (its index), not a scan of every reject ever kept. The count comes
  # first and is checked to be a number; '|' and line breaks in names and reasons (a pattern
  # rule, a database error) are replaced, so a field never spills into the next or into $(( )).
  rows=$(psql_url "$WAREHOUSE_DATABASE_URL" -At -F '|' -c "SELECT count(*), stage, translate(coalesce(source_table, '?'), E'|\\n\\r', '/  '), translate(left(reason, 120), E'|\\n\\r', '/  ') FROM (SELECT * FROM cdc.rejected_events ORDER BY id DESC LIMIT 10000) AS r WHERE rejected_at > now() - interval '1 hour' GROUP BY 2, 3, 4 ORDER BY 1 DESC" 2>/dev/null) || return 0
  while IFS='|' read -r n stage table reason; do
    [[ $n =~ ^[0-9]+$ ]] || continue
    total=$((total + n))
    entries=$((entries + 1))
    (( entries <= 3 )) && shown+="${shown:+; }$table/$stage ×$n: $reason"
  done <<<"$rows"
  if (( total == 0 )); then
    echo "rejected events: none in the last hour"
  else
    (( total >= 10000 )) && total="10,000 or more"
    echo "rejected events: $total in the last hour ($shown); see public.rejected_events_summary"
  fi
}

cdc_init
export_env
set +e
rc=0
if (( SOURCE_LOCAL )); then pg_status source || rc=1; else echo "source-pg: external $(pg_url_without_password "$SOURCE_DATABASE_URL")"; fi
if (( WAREHOUSE_LOCAL )); then pg_status warehouse || rc=1; else echo "warehouse-pg: external $(pg_url_without_password "$WAREHOUSE_DATABASE_URL")"; fi
kafka_status || rc=1
if (( KAFKA_LOCAL )); then
  if security_on; then echo "security: on (Kafka SASL_SSL, SCRAM-SHA-512, ACLs; CA $KAFKA_SSL_CA_FILE)"; else echo "security: off (Kafka PLAINTEXT)"; fi
else
  echo "kafka clients: TLS ${KAFKA_SSL:-false}${KAFKA_SSL_CA_FILE:+ (CA $KAFKA_SSL_CA_FILE)}, SASL ${KAFKA_SASL_MECHANISM:-none}${KAFKA_SASL_USERNAME:+ as $KAFKA_SASL_USERNAME}"
fi
registry_status || rc=1
connect_status || rc=1
slots_status || rc=1
processor_status || rc=1
consistency_status
rejects_status
if is_cluster; then
  # Partition leaders and in-sync replicas, and which processor holds which partitions.
  node "$INFRA_DIR/cluster-status.js" "$KAFKA_BOOTSTRAP_SERVERS" "${PROCESSOR_GROUP_ID:-cdc-warehouse}" || rc=1
fi
[[ -f $REPO_DIR/bi/status.sh ]] && { bash "$REPO_DIR/bi/status.sh" || rc=1; }
exit $rc
