#!/usr/bin/env bash
# Every test from a fresh checkout: install what is missing, build, fetch the pinned MCP SDK
# client, run the unit, integration and client suites; then the unit and integration suites
# again under AddressSanitizer+UBSan and under ThreadSanitizer; then the fuzzers (30 s each).
# Extra arguments go to the first ctest run (e.g. -R SshHosts).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
(cd tests/client && npm ci --no-audit --no-fund --loglevel=error)
(cd build && ctest --output-on-failure -j2 "$@")
# Memory errors, undefined behaviour and data races, in labgate and in the processes the
# integration tests start (each sanitizer has its own build directory).
scripts/sanitize.sh asan
scripts/sanitize.sh tsan
# Every parser that takes input from outside, 30 s each under ASan and UBSan.
scripts/fuzz.sh
