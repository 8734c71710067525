#!/usr/bin/env bash
# `make test`: unit tests (no services), then the real stack (`make up`, reused when already
# running), the BI layer (`make bi`), and the end-to-end suite against all of it. Ends with one
# summary line: "tests: N passed, N failed, N skipped". The stack is left running; `make down` stops it.
set -uo pipefail
cd "$(dirname "$0")/.."

reports=$(mktemp -d)
trap 'rm -rf "$reports"' EXIT
step() { printf '\n[test] %s\n' "$*"; }

step "install what is missing (npm dependencies, Maven artifacts, PostgreSQL)"
bash infra/install.sh || { echo "[test] install failed"; exit 1; }

step "unit tests"
npx jest --selectProjects unit --json --outputFile "$reports/unit.json"

step "the stack (make up)"
if ! make up; then
  echo "[test] make up failed: end-to-end tests cannot run (logs: make logs)"
  node e2e/lib/summary.js "$reports/unit.json" "$reports/e2e.json"
  exit 1
fi

step "seed data (make seed): the BI layer needs the warehouse tables to exist"
make seed || echo "[test] make seed failed: the end-to-end tests will say why"

step "BI (make bi)"
make bi || echo "[test] make bi failed: the BI tests will say why"

step "end-to-end tests against the real stack"
bash infra/with-env.sh npx jest --selectProjects e2e --runInBand --json --outputFile "$reports/e2e.json"

node e2e/lib/summary.js "$reports/unit.json" "$reports/e2e.json"
