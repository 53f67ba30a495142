#!/usr/bin/env bash
# Configures and builds into ./build (two parallel jobs: small machines are the norm). With no
# arguments it builds everything (labgate, the tests, the benchmarks); otherwise the named
# targets only (scripts/run.sh builds just `labgate`). The libraries are unity builds at the
# quick flags of CMakeLists.txt (-O1 -g1) unless CMAKE_BUILD_TYPE says otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/configure.sh build -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-}" -DCMAKE_UNITY_BUILD=ON \
  -DCMAKE_UNITY_BUILD_BATCH_SIZE=16
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build build -j"${LABGATE_JOBS:-2}" "${targets[@]}"
