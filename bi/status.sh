#!/usr/bin/env bash
# One line: is Superset (make bi) up and where. Exit 1 only if it runs but does not answer.
CDC_TAG=bi-status
# shellcheck source=bi/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bi_init
if pid=$(bi_running); then
  if bi_healthy; then
    echo "superset: up (pid $pid, $BI_URL/health -> HTTP 200); dashboard $BI_DASHBOARD_URL"
  else
    echo "superset: starting or unhealthy (pid $pid, $BI_URL/health does not answer; see $BI_LOG)"
    exit 1
  fi
else
  echo "superset: not running (make bi starts it)"
fi
