#!/usr/bin/env bash
# Configures a build directory: scripts/configure.sh DIR [cmake arguments]. New directories use
# Ninja, which compiles a library's sources while the libraries it links are still building
# (make waits for them), so the few large unity sources keep both cores busy: measured here, an
# ASan build took 500 s with Ninja where CI's make took 640-760 s. A directory configured
# earlier with make keeps it (CMake cannot switch a directory's generator).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:?usage: scripts/configure.sh DIR [cmake arguments]}
shift
generator=()
if command -v ninja >/dev/null 2>&1; then
  if [ ! -f "$dir/CMakeCache.txt" ] || grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$dir/CMakeCache.txt"; then
    generator=(-G Ninja)
  fi
fi
cmake -S . -B "$dir" "${generator[@]}" "$@" >/dev/null
