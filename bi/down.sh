#!/usr/bin/env bash
# Stops Superset (started by `make bi`); data and metadata stay in $DATA_DIR/bi. Idempotent.
# `make down` (infra/down.sh) stops it too, through the same pid file ($DATA_DIR/run/superset.pid).
CDC_TAG=bi
# shellcheck source=bi/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bi_init
bi_stop
if tcp_open "$BIND_HOST" "$BI_PORT"; then
  die "port $BI_PORT (BI_PORT) still in use after stopping superset: $(port_owner "$BI_PORT")"
fi
log "superset stopped"
