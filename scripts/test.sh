#!/usr/bin/env bash
# Every test from a fresh checkout: install what is missing, start the MCP server the way the
# README does, fetch the pinned MCP clients, build and check the Debian packages (amd64 and
# arm64), then build everything with AddressSanitizer and run the unit, integration and client
# suites against it (a memory error anywhere fails the run);
# the unit and integration suites again under ThreadSanitizer; then the fuzzers (15 s each,
# under ASan and UBSan). Extra arguments go to the integration ctest run (e.g. -R SshHosts).
# Each suite runs once, on an instrumented build: three builds (plain `labgate`, ASan, TSan)
# plus the fuzzers' is what fits CI's hour with room to spare on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each stage says when it starts, so a slow CI run shows where its time went.
stage() { echo "== $1 (at $SECONDS s)"; }
stage "dependencies"
scripts/install-deps.sh
# The main job first, the way the README starts it: scripts/run.sh builds only `labgate`, and the
# server must answer `initialize` on the bundled hosts.toml.
init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"test.sh","version":"1"}}}'
stage "scripts/run.sh"
started=$SECONDS
answer=$(printf '%s\n' "$init" | LABGATE_CONFIG=hosts.toml scripts/run.sh | head -n 1)
case "$answer" in
  *'"protocolVersion":"2025-11-25"'*) echo "scripts/run.sh answered initialize after $((SECONDS - started)) s" ;;
  *) echo "scripts/run.sh did not answer initialize: $answer" >&2; exit 1 ;;
esac
(cd tests/client && npm ci --no-audit --no-fund --loglevel=error)
# The Debian packages for amd64 and arm64 (cross-built), each passed by lintian; the amd64 one
# installed here, checked and removed again. Unoptimised (--quick) to keep CI within its hour;
# that changes the compiler flags only, not what the package holds or does.
stage "packages"
packaging/build-deb.sh --arch amd64,arm64 --quick
packaging/test-deb.sh "dist/labgate_$(sed -n 's/^project(labgate VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)_amd64.deb"
# Memory errors and data races, in labgate and in the processes the tests start (each
# sanitizer has its own build directory).
stage "AddressSanitizer: unit, integration and client suites"
LABGATE_CLIENT_TESTS=1 scripts/sanitize.sh asan "$@"
# Under TSan everything runs several times slower; the capture tests wait on real devices
# (Xvfb, ffmpeg, gpsd) with real-time limits and ran past them, so they run under ASan only.
stage "ThreadSanitizer"
scripts/sanitize.sh tsan -E '^Capture\.'
# Every parser that takes input from outside, 15 s each under ASan and UBSan (FUZZ_SECONDS).
stage "fuzzers"
scripts/fuzz.sh
stage "done"
