#!/usr/bin/env bash
# BI_URL, BI_USER and BI_PASSWORD as KEY=value lines (for `make env`): Superset's address and its
# admin login. The password is BI_PASSWORD from the environment, or the one generated once into
# $DATA_DIR/bi/secrets.env (the same file `make bi` uses).
CDC_TAG=bi-env
# shellcheck source=bi/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bi_init
bi_print_env
