#!/usr/bin/env bash
# Every test from a fresh checkout: install what is missing, build, fetch the pinned MCP SDK
# client, and run the unit, integration and client suites.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
(cd tests/client && npm ci --no-audit --no-fund --loglevel=error)
cd build
ctest --output-on-failure -j2 "$@"
