#!/usr/bin/env bash
# labgate node benchmark, one command: bench/nodes.sh   (NODES=1000 by default)
#
# Starts one `labgate gateway` on 127.0.0.1, pairs NODES state dirs with it (pairing codes, real
# Ed25519 node keys), and brings them online as real SSH agent sessions from AGENT_PROCS (4)
# labgate_bench_multi_node processes. Then measures: the gateway's RSS with every node online; the
# wall time of `labgate run group:fleet -- true` to all of them; and a warm MCP `run true` on one
# node vs on `local` vs a bare posix_spawn + waitpid of /bin/true (a C++ loop in the helper).
# Everything lives in a mktemp dir; only loopback traffic; only the processes it started are stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
NODES=${NODES:-1000}
AGENT_PROCS=${AGENT_PROCS:-4}
ITER=${BENCH_ITER:-200}
FANOUT_REPS=5

cmake -S . -B build -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build build -j"${LABGATE_JOBS:-2}" --target labgate labgate_bench_multi_node >&2
LABGATE=$ROOT/build/labgate
HELPER=$ROOT/build/bench/labgate_bench_multi_node

# The gateway holds one socket per node and each agent process one socket and one eventfd per
# node, plus pipes while commands run: raise the soft limit before anything starts.
want_fds=$((NODES * 2 + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_fds" ]; then
  ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_fds" ]; then
    echo "warning: open files limited to $(ulimit -n) (hard limit); $NODES nodes want about $want_fds" >&2
  fi
fi

WORK=$(mktemp -d /tmp/labgate-nodes.XXXXXX)
PIDS=()
GATEWAY_PID=""
cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ -f "$WORK/gateway.log" ]; then
    echo "--- failed (exit $rc); last lines of the gateway's stderr:" >&2
    tail -n 20 "$WORK/gateway.log" >&2
  fi
  # Agents first, so the gateway does not log 1000 dropped links on its way out.
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$GATEWAY_PID" ]; then
    kill "$GATEWAY_PID" 2>/dev/null || true
    wait "$GATEWAY_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
CONFIG=$WORK/hosts.toml
ids=()
for i in $(seq 1 "$NODES"); do ids+=("$(printf 'n%04d' "$i")"); done
{
  printf '[gateway]\nlisten = "127.0.0.1:%s"\nstate_dir = "%s/state"\nmax_parallel = 64\n\n' "$PORT" "$WORK"
  # `solo` runs in its own `labgate node run` process, as on a real device.
  printf '[[nodes]]\nid = "solo"\ncapabilities = ["run"]\n\n'
  for id in "${ids[@]}"; do printf '[[nodes]]\nid = "%s"\ncapabilities = ["run"]\ngroups = ["fleet"]\n\n' "$id"; done
} > "$CONFIG"

"$LABGATE" gateway --config "$CONFIG" 2> "$WORK/gateway.log" &
GATEWAY_PID=$!
for _ in $(seq 1 200); do
  "$LABGATE" nodes list --config "$CONFIG" >/dev/null 2>&1 && break
  kill -0 "$GATEWAY_PID" 2>/dev/null || { echo "the gateway exited at start" >&2; exit 1; }
  sleep 0.05
done

# Setup, not measured: a code per node from the gateway, then pairing a state dir with it.
pair_one() {
  local code
  code=$("$LABGATE" pair new --node "$1" --json --config "$CONFIG" | sed -n 's/.*"code": *"\([^"]*\)".*/\1/p')
  "$LABGATE" node pair "$code" --state-dir "$WORK/dev/$1" > /dev/null 2>> "$WORK/pair.log" ||
    { echo "pairing $1 failed: $(tail -n 1 "$WORK/pair.log")" >&2; return 1; }
}
export -f pair_one
export LABGATE CONFIG WORK
echo "pairing $((NODES + 1)) state dirs (4 at a time)..." >&2
t0=$EPOCHREALTIME
printf '%s\n' solo "${ids[@]}" | xargs -P 4 -I{} bash -c 'pair_one "$@"' _ {}
echo "paired in $(python3 -c "print(f'{$EPOCHREALTIME - $t0:.1f}')") s" >&2

online_count() {
  "$LABGATE" nodes list --json --config "$CONFIG" |
    python3 -c 'import json, sys; print(sum(1 for n in json.load(sys.stdin)["nodes"] if n["online"]))'
}

t0=$EPOCHREALTIME
"$LABGATE" node run --state-dir "$WORK/dev/solo" > "$WORK/solo.log" 2>&1 &
PIDS+=($!)
per=$(((NODES + AGENT_PROCS - 1) / AGENT_PROCS))
for ((p = 0; p < AGENT_PROCS; p++)); do
  dirs=()
  for id in "${ids[@]:p*per:per}"; do dirs+=("$WORK/dev/$id"); done
  [ ${#dirs[@]} -eq 0 ] && continue
  "$HELPER" "${dirs[@]}" > "$WORK/agents$p.log" 2>&1 &
  PIDS+=($!)
done
online=0
deadline=$((SECONDS + 300))
while [ "$online" -lt $((NODES + 1)) ]; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "only $online of $((NODES + 1)) nodes came online in 300 s; agent logs say:" >&2
    grep -hv "connected to gateway" "$WORK"/agents*.log | sort | uniq -c | sort -rn | head -n 10 >&2
    exit 1
  fi
  sleep 0.5
  online=$(online_count || echo 0)
done
online_s=$(python3 -c "print(f'{$EPOCHREALTIME - $t0:.2f}')")
echo "all $((NODES + 1)) nodes online after ${online_s} s" >&2

status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }  # utime + stime
rss_online_kb=$(status_kb "$GATEWAY_PID" VmRSS)
threads_online=$(status_kb "$GATEWAY_PID" Threads)
agent_rss_kb=0
for pid in "${PIDS[@]:1}"; do agent_rss_kb=$((agent_rss_kb + $(status_kb "$pid" VmRSS))); done
agent_rss_kb=$((agent_rss_kb / (${#PIDS[@]} - 1)))

echo "measuring on $(nproc) cores: fan-out x$FANOUT_REPS, then $ITER warm MCP calls per target..." >&2
gw_ticks=$(cpu_ticks "$GATEWAY_PID")
agent_ticks=0
for pid in "${PIDS[@]:1}"; do agent_ticks=$((agent_ticks - $(cpu_ticks "$pid"))); done
fanout=$(node bench/time_cmd.mjs "$FANOUT_REPS" 0 -- "$LABGATE" run group:fleet --config "$CONFIG" -- true)
gw_ticks=$(($(cpu_ticks "$GATEWAY_PID") - gw_ticks))
for pid in "${PIDS[@]:1}"; do agent_ticks=$((agent_ticks + $(cpu_ticks "$pid"))); done
rss_after_kb=$(status_kb "$GATEWAY_PID" VmRSS)
hwm_kb=$(status_kb "$GATEWAY_PID" VmHWM)
fork_exec=$("$HELPER" --fork-exec "$ITER")
on_local=$(node bench/mcp_driver.mjs "$LABGATE" "$CONFIG" single local "$ITER")
on_node=$(node bench/mcp_driver.mjs "$LABGATE" "$CONFIG" single n0001 "$ITER")
on_solo=$(node bench/mcp_driver.mjs "$LABGATE" "$CONFIG" single solo "$ITER")
online=$(online_count)

python3 - "$fork_exec" "$on_local" "$on_node" "$on_solo" "$fanout" "$NODES" "$AGENT_PROCS" "$per" "$online_s" \
  "$rss_online_kb" "$rss_after_kb" "$hwm_kb" "$threads_online" "$online" "$agent_rss_kb" "$gw_ticks" "$agent_ticks" \
  "$(getconf CLK_TCK)" "$FANOUT_REPS" <<'PY'
import json, sys
fe, lo, nd, so, fan = (json.loads(a) for a in sys.argv[1:6])
nodes, procs, per, online_s = int(sys.argv[6]), sys.argv[7], sys.argv[8], float(sys.argv[9])
rss, rss_after, hwm, threads, still_online, agent_rss, gw_ticks, agent_ticks, hz, reps = (int(a) for a in sys.argv[10:20])
fe_ms = fe["median_us"] / 1000
mb = lambda kb: kb / 1024
met = lambda ok: "met" if ok else "**missed**"
over = nd["median_ms"] - lo["median_ms"]
print(f"## labgate node benchmark (medians; {nodes} nodes in {procs} agent processes on loopback, {still_online} online at the end)\n")
print("| warm MCP `run true` | ms | difference |")
print("|---|---:|---|")
print(f"| node n0001 (one of {per} sessions in a helper process) | {nd['median_ms']:.3f} | "
      f"{over:+.3f} ms vs local (goal < 1 ms over local: {met(over < 1)}) |")
print(f"| node solo (its own `labgate node run`) | {so['median_ms']:.3f} | {so['median_ms'] - lo['median_ms']:+.3f} ms vs local |")
print(f"| local | {lo['median_ms']:.3f} | {lo['median_ms'] - fe_ms:+.3f} ms vs bare fork/exec |")
print(f"| bare posix_spawn + waitpid of /bin/true (C++ loop) | {fe_ms:.3f} | - |")
print()
print(f"| gateway with {nodes} nodes | value | goal |")
print("|---|---:|---|")
print(f"| time until all online (agents started together) | {online_s:.1f} s | - |")
print(f"| gateway RSS, all online ({threads} threads) | {mb(rss):.1f} MB | < 256 MB: {met(mb(rss) < 256)} |")
print(f"| gateway RSS after the fan-outs (peak {mb(hwm):.1f} MB) | {mb(rss_after):.1f} MB | < 256 MB: {met(mb(hwm) < 256)} |")
print(f"| agent process RSS ({per} sessions each, mean) | {mb(agent_rss):.1f} MB | - |")
print(f"| fan-out `labgate run group:fleet -- true` (new CLI process) | {fan['median_ms'] / 1000:.2f} s | "
      f"< 10 s: {met(fan['median_ms'] < 10000)} |")
print(f"| CPU per fan-out: gateway / all agent processes | {gw_ticks / hz / reps:.2f} s / {agent_ticks / hz / reps:.2f} s | - |")
PY
