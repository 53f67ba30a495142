#!/usr/bin/env bash
# The unit and integration suites under a sanitizer: `asan` (AddressSanitizer; LABGATE_UBSAN=1
# adds UndefinedBehaviorSanitizer) or `tsan` (ThreadSanitizer); any finding fails. Each has its
# own build directory (build-asan, build-tsan); the libraries are built as unity builds at -O1
# to keep this affordable on two cores. LABGATE_CLIENT_TESTS=1 also runs the official MCP
# clients' suites (tests/client, after `npm ci` there) against the sanitized binary.
#   scripts/sanitize.sh asan                      # everything
#   scripts/sanitize.sh asan -R SshHosts          # extra arguments go to ctest (integration)
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?usage: scripts/sanitize.sh asan|tsan [ctest arguments]}
shift
case "$kind" in
  asan)
    option="-DLABGATE_SANITIZE=ON -DLABGATE_UBSAN=$([ "${LABGATE_UBSAN:-0}" = 1 ] && echo ON || echo OFF)"
    # Findings end the process with a non-zero status, so the test that caused one fails.
    asan_options="detect_leaks=0:halt_on_error=1"
    ubsan_options="print_stacktrace=1:halt_on_error=1" ;;
  tsan)
    option=-DLABGATE_TSAN=ON
    tsan_options="halt_on_error=1:second_deadlock_stack=1" ;;
  *) echo "unknown sanitizer '$kind' (asan or tsan)" >&2; exit 2 ;;
esac
dir=build-$kind
# Every process writes its findings here, the labgate processes the integration tests start too:
# a finding in a child that the test did not notice still fails the run.
reports=$PWD/$dir/sanitizer-reports
rm -rf "$reports"
mkdir -p "$reports"
chmod 1777 "$reports"  # the tests run some processes as other users
# shellcheck disable=SC2086 # $option holds one or two -D flags
scripts/configure.sh "$dir" $option -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
  -DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=16
cmake --build "$dir" -j"${LABGATE_JOBS:-2}" --target labgate labgate_unit_tests labgate_integration_tests
export ASAN_OPTIONS="${asan_options:-}:log_path=$reports/asan"
export UBSAN_OPTIONS="${ubsan_options:-}:log_path=$reports/ubsan"
export TSAN_OPTIONS="${tsan_options:-}:log_path=$reports/tsan"
status=0
echo "== $kind: built in $SECONDS s"
# The unit tests in one process (one per test would spend minutes starting sanitized binaries),
# the integration tests one process each, as ctest runs them.
"$dir/tests/labgate_unit_tests" --gtest_brief=1 || status=$?
(cd "$dir" && ctest --output-on-failure -j2 -L integration "$@") || status=$?
if [ "${LABGATE_CLIENT_TESTS:-0}" = 1 ]; then
  echo "== $kind: client suites (at $SECONDS s)"
  (cd "$dir" && LABGATE_BIN="$PWD/labgate" ctest --output-on-failure -L client) || status=$?
fi
if [ -n "$(ls -A "$reports")" ]; then
  echo "$kind: findings in $(ls "$reports" | wc -l) process(es):" >&2
  for f in "$reports"/*; do echo "== $f" >&2; head -60 "$f" >&2; done
  status=1
fi
exit $status
