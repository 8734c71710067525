#!/usr/bin/env bash
# Applies warehouse-migrations/NNNN_name.sql in order, each once, each in its own transaction,
# as the warehouse superuser (WAREHOUSE_ADMIN_URL). Applied versions (NNNN) are recorded in
# cdc.schema_migrations. Files must not contain BEGIN/COMMIT of their own.
# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

migrate() {
  local admin_url=$1 dir=$REPO_DIR/warehouse-migrations f base version applied n=0
  psql_url "$admin_url" <<'SQL'
CREATE SCHEMA IF NOT EXISTS cdc;
CREATE TABLE IF NOT EXISTS cdc.schema_migrations (
    version    text        PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
SQL
  applied=$(psql_url "$admin_url" -At -c 'SELECT version FROM cdc.schema_migrations ORDER BY version')
  declare -A seen=()
  for f in "$dir"/[0-9]*.sql; do
    [[ -e $f ]] || continue
    base=$(basename "$f" .sql)
    [[ $base =~ ^([0-9]+)_[A-Za-z0-9_.-]+$ ]] || die "migration file name must be NNNN_name.sql: $f"
    version=${BASH_REMATCH[1]}
    [[ -z ${seen[$version]:-} ]] || die "two migrations share version $version: ${seen[$version]} and $base"
    seen[$version]=$base
    grep -qx -- "$version" <<<"$applied" && continue
    log "applying migration $base"
    # One transaction: the file and its record commit together, or neither does.
    # The advisory lock serialises concurrent runners.
    if ! { printf 'BEGIN;\nSELECT pg_advisory_xact_lock(727001);\n'
           printf "SELECT count(*) AS n FROM cdc.schema_migrations WHERE version = '%s' \\\\gset already_\n" "$version"
           printf '\\if :already_n\n\\echo skipped: applied meanwhile\nROLLBACK;\n\\q\n\\endif\n'
           printf '\\i %s\n' "$f"
           printf "INSERT INTO cdc.schema_migrations(version) VALUES ('%s');\nCOMMIT;\n" "$version"
         } | psql_url "$admin_url" >>"$LOG_DIR/migrations.log" 2>&1; then
      log_tail "$LOG_DIR/migrations.log"
      die "migration $base failed (rolled back); see $LOG_DIR/migrations.log"
    fi
    n=$((n + 1))
  done
  log "warehouse migrations: $n applied now, $(( ${#seen[@]} - n )) already applied"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  CDC_TAG=migrate; cdc_init
  migrate "$WAREHOUSE_ADMIN_URL"
fi
