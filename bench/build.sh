#!/usr/bin/env bash
# Builds what a benchmark runs, optimised as the packages are (RelWithDebInfo: -O2, with symbols
# for perf), into build-bench/ (LABGATE_BENCH_BUILD to change; CMAKE_BUILD_TYPE to build another
# way), and prints that directory's absolute path. The tests' quick -O1 build in build/ is left
# as it was: measuring it would time a binary no one installs.
#   usage: BUILD=$(bench/build.sh TARGET...)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${LABGATE_BENCH_BUILD:-build-bench}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$BUILD" -j"${LABGATE_JOBS:-2}" "${targets[@]}" >&2
case $BUILD in /*) echo "$BUILD" ;; *) echo "$PWD/$BUILD" ;; esac
