#!/usr/bin/env bash
# Every test from a fresh checkout: install what is missing, build, fetch the pinned MCP SDK
# client, run the unit, integration and client suites, then the fuzzers (30 s each).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
(cd tests/client && npm ci --no-audit --no-fund --loglevel=error)
(cd build && ctest --output-on-failure -j2 "$@")
# Every parser that takes input from outside, 30 s each under ASan and UBSan.
scripts/fuzz.sh
