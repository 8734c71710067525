#!/usr/bin/env bash
# make logs: where the logs are; `infra/logs.sh NAME` (or `make logs ARGS=NAME`) follows one,
# `infra/logs.sh -f` follows them all.
CDC_TAG=logs
# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$INFRA_DIR/defaults.env"
LOG_DIR=$DATA_DIR/logs
[[ -d $LOG_DIR ]] || { echo "no logs yet ($LOG_DIR): run make up"; exit 0; }
case ${1:-} in
  "") echo "logs in $LOG_DIR (one file per component):"
      ls -l --time-style=+%H:%M:%S "$LOG_DIR" | awk 'NR>1 {printf "  %-22s %10s bytes  %s\n", $7, $5, $6}'
      echo "follow one: bash infra/logs.sh kafka|connect|registry|processor|source-pg|warehouse-pg; all: bash infra/logs.sh -f"
      for f in "$LOG_DIR"/*.log; do echo "== $(basename "$f") (last 3 lines)"; tail -n 3 "$f" | cut -c1-200; done ;;
  -f) exec tail -n 20 -F "$LOG_DIR"/*.log ;;
  *) f=$LOG_DIR/${1%.log}.log; [[ -f $f ]] || { echo "no such log: $f" >&2; exit 1; }; exec tail -n 50 -F "$f" ;;
esac
