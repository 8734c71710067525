#!/usr/bin/env bash
# bash infra/with-env.sh CMD...: runs CMD with every variable of `make env` exported, plus the
# passwords (SHOP_PASSWORD, DEBEZIUM_PASSWORD, PROCESSOR_PASSWORD, ANALYST_PASSWORD, REGISTRY_DB_PASSWORD, PG_ADMIN_PASSWORD).
CDC_TAG=with-env
# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
(( $# )) || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }
cdc_init
export_env
exec "$@"
