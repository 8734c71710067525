#!/usr/bin/env bash
# make clean: delete the data directory (make down runs first). The download cache stays.
CDC_TAG=clean
# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$INFRA_DIR/defaults.env"
[[ -d $DATA_DIR ]] || { log "nothing to delete"; exit 0; }
DATA_DIR=$(cd "$DATA_DIR" && pwd)
case $DATA_DIR in /|"$HOME"|"$REPO_DIR") die "refusing to delete DATA_DIR=$DATA_DIR" ;; esac
for pidf in "$DATA_DIR"/run/*.pid; do
  [[ -e $pidf ]] || continue
  pid=$(<"$pidf")
  if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then die "something from $pidf still runs (pid $pid): run make down first"; fi
done
rm -rf "$DATA_DIR"
log "deleted $DATA_DIR (downloads stay in ${CACHE_DIR})"
