#!/usr/bin/env bash
# Configures and builds labgate into ./build (two parallel jobs: small machines are the norm).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build build -j"${LABGATE_JOBS:-2}"
