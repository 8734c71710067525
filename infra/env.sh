#!/usr/bin/env bash
# make env: KEY=value shell lines to reach the stack (the URLs carry the passwords).
#   eval "$(make -s env)"   or   bash infra/with-env.sh CMD...
CDC_TAG=env
# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cdc_init
print_env
