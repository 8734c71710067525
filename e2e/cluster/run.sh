#!/usr/bin/env bash
# make test-cluster: install what is missing, build, then the cluster tier (e2e/cluster/*.cluster-test.ts).
# The test brings up its own cluster on ports TEST_CLUSTER_PORT_BASE+5432, +9092 ... (default base
# 20000) with DATA_DIR .data-cluster (TEST_CLUSTER_DATA_DIR), runs make chaos and stops everything;
# then kafka-security brings the same (secured: SECURITY=auto is on for a cluster) cluster up again,
# checks that clients without credentials are refused and each Kafka user is limited, and stops it.
# rest-auth.cluster-test.ts does the same with a secured single node (base 21000, .data-rest-auth):
# clients without credentials refused by Connect's REST API and the registry.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash infra/install.sh
npm run --silent build
exec npx jest -c e2e/cluster/jest.config.js --runInBand "$@"
