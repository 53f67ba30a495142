#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang, ASan + UBSan) in build-fuzz/ and runs each for
# FUZZ_SECONDS (default 15). Seeds come from tests/fuzz/seeds/NAME and the tests' own data; what
# a run discovers stays in build-fuzz/corpus/NAME. A crash fails the script and leaves its input
# in build-fuzz/crash-*: add it to tests/fuzz/seeds/NAME as a regression input once fixed.
#   FUZZ_SECONDS=600 scripts/fuzz.sh shell_policy     # one harness, longer
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_EACH=${FUZZ_SECONDS:-15}
ALL=(json_rpc shell_policy inventory audit_reader host_output agent_rpc mcp_session)
NAMES=("${@:-${ALL[@]}}")
[ $# -gt 0 ] || NAMES=("${ALL[@]}")

# Unity batches as in the other builds: the libraries are a few large sources instead of ninety.
CC=clang CXX=clang++ scripts/configure.sh build-fuzz -DLABGATE_FUZZ=ON -DLABGATE_TESTS=OFF -DCMAKE_UNITY_BUILD=ON \
  -DCMAKE_UNITY_BUILD_BATCH_SIZE=16
targets=()
for n in "${NAMES[@]}"; do targets+=("fuzz_$n"); done
cmake --build build-fuzz -j"${LABGATE_JOBS:-2}" --target "${targets[@]}" >&2

seed() {  # NAME: a corpus directory with the checked-in seeds and the tests' data for it
  local dir="build-fuzz/corpus/$1"
  mkdir -p "$dir"
  cp -n tests/fuzz/seeds/"$1"/* "$dir"/ 2>/dev/null || true
  case "$1" in
    shell_policy)
      # one seed per corpus line (the red-team, read-only and parser corpora)
      local i=0
      while IFS= read -r line; do
        case "$line" in ''|'#'*) continue ;; esac
        printf '%s' "$line" > "$dir/line-$i"; i=$((i + 1))
      done < <(cat tests/data/policy/*.txt) ;;
    inventory) cp -n hosts.toml "$dir/bundled-hosts.toml"; cp -n packaging/system/hosts.toml "$dir/system-hosts.toml" ;;
  esac
  echo "$dir"
}

status=0
for n in "${NAMES[@]}"; do
  corpus=$(seed "$n")
  echo "fuzz_$n: ${SECONDS_EACH}s, corpus $(ls "$corpus" | wc -l) inputs" >&2
  if ! (cd build-fuzz && ./tests/fuzz/fuzz_"$n" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
          -print_final_stats=1 "$ROOT/$corpus" 2> "fuzz_$n.log"); then
    echo "fuzz_$n FAILED; see build-fuzz/fuzz_$n.log and the crash-* input it names" >&2
    tail -n 40 "build-fuzz/fuzz_$n.log" >&2
    status=1
  else
    grep -E "^stat::number_of_executed_units|^stat::new_units_added|cov: " "build-fuzz/fuzz_$n.log" | tail -n 3 >&2
  fi
done
exit $status
