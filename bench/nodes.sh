#!/usr/bin/env bash
# labgate node benchmark, one command: bench/nodes.sh          (1000 nodes)
#                                      NODES=10000 bench/nodes.sh   (the fleet-scale mode)
#
# Starts one `labgate gateway` on 127.0.0.1, pairs NODES state dirs with it (one
# `labgate pair new --node group:fleet` for the codes, real Ed25519 node keys made by the same
# PairDevice as `labgate node pair`), and brings them online as real SSH agent sessions from
# AGENT_PROCS labgate_bench_multi_node processes (250 to 1250 sessions each). Then measures: the
# gateway's RSS with every node online; the wall time of `labgate run group:fleet -- true` to all of
# them and the agents' CPU per `true` against a bare posix_spawn + waitpid and against a minimal
# agent driven over loopback TCP (the helper's --socket-floor); a warm MCP `run true` on
# one node vs on `local`; and, after a SIGTERM and a restart of the gateway, how long until every
# node is back online and whether a fan-out then reaches all of them. Prints one line per goal of
# issue 19 (met / missed). Everything lives in a mktemp dir; only loopback traffic; only the
# processes it started are stopped. LABGATE_BENCH_BINARY runs another labgate in its place (a
# wrapper that starts the gateway under gdb, for one).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
NODES=${NODES:-1000}
AGENT_PROCS=${AGENT_PROCS:-$(((NODES + 1249) / 1250 > 4 ? (NODES + 1249) / 1250 : 4))}
ITER=${BENCH_ITER:-200}
FANOUT_REPS=5
IDLE_S=${BENCH_IDLE_S:-10}

# Optimised as the packages are, in build-bench/ (bench/build.sh), beside the tests' build/.
BUILD=$(bench/build.sh labgate labgate_bench_multi_node)
LABGATE=${LABGATE_BENCH_BINARY:-$BUILD/labgate}
HELPER=$BUILD/bench/labgate_bench_multi_node

# The gateway holds one socket per node and each agent process one socket and one eventfd per
# node, plus pipes while commands run: raise the soft limit before anything starts.
want_fds=$((NODES * 3 + 1024))
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

start_gateway() {
  "$LABGATE" gateway --config "$CONFIG" 2>> "$WORK/gateway.log" &
  GATEWAY_PID=$!
  for _ in $(seq 1 600); do
    "$LABGATE" nodes list --config "$CONFIG" >/dev/null 2>&1 && return 0
    kill -0 "$GATEWAY_PID" 2>/dev/null || { echo "the gateway exited at start" >&2; exit 1; }
    sleep 0.05
  done
  echo "the gateway did not answer within 30 s" >&2
  exit 1
}
start_gateway

# Setup: one code per node from the gateway, then every state dir paired with its code.
echo "pairing $((NODES + 1)) state dirs..." >&2
t0=$EPOCHREALTIME
"$LABGATE" pair new --node group:fleet --json --config "$CONFIG" > "$WORK/codes.json"
codes_s=$(python3 -c "print(f'{$EPOCHREALTIME - $t0:.1f}')")
"$LABGATE" pair new --node solo --json --config "$CONFIG" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["code"])' > "$WORK/solo.code"
python3 - "$WORK" > "$WORK/pairs.txt" <<'PY'
import json, sys
work = sys.argv[1]
for c in json.load(open(f"{work}/codes.json"))["codes"]:
    print(f"{work}/dev/{c['nodeId']} {c['code']}")
print(f"{work}/dev/solo {open(f'{work}/solo.code').read().strip()}")
PY
# A pairing can fail on a saturated machine (a login that timed out, an answer lost with its
# link); its code may be used up, so a failed device gets a new code and tries again, twice.
paired=0
for round in 1 2 3; do
  if "$HELPER" --pair "$WORK/pairs.txt" > "$WORK/pair.out" 2>> "$WORK/pair.log"; then
    paired=$((paired + $(head -n 1 "$WORK/pair.out")))
    break
  fi
  paired=$((paired + $(head -n 1 "$WORK/pair.out")))
  [ "$round" = 3 ] && { echo "pairing failed 3 times:" >&2; grep 'pairing failed' "$WORK/pair.log" | tail -n 5 >&2; exit 1; }
  echo "$(($(wc -l < "$WORK/pair.out") - 1)) pairings failed (first: $(grep -m1 'pairing failed' "$WORK/pair.log")); new codes for them" >&2
  : > "$WORK/pairs.txt"
  while read -r dir; do
    code=$("$LABGATE" pair new --node "$(basename "$dir")" --json --config "$CONFIG" |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["code"])')
    echo "$dir $code" >> "$WORK/pairs.txt"
  done < <(tail -n +2 "$WORK/pair.out")
done
pair_s=$(python3 -c "print(f'{$EPOCHREALTIME - $t0:.1f}')")
echo "paired $paired in ${pair_s} s (codes for the fleet: ${codes_s} s)" >&2

online_count() {
  "$LABGATE" nodes list --json --config "$CONFIG" |
    python3 -c 'import json, sys; print(sum(1 for n in json.load(sys.stdin)["nodes"] if n["online"]))'
}
# Polls until all NODES+1 are online; prints the seconds since $1 (an $EPOCHREALTIME) and
# appends "SECONDS POLL_SECONDS ONLINE" lines to the file $3 (ONLINE -1 when the poll failed),
# to tell a slow ramp from a long tail.
wait_online() {
  local since=$1 limit=$2 ramp=$3 online=0 deadline=$((SECONDS + $2))
  while [ "$online" -lt $((NODES + 1)) ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "only $online of $((NODES + 1)) nodes came online in $limit s; agent logs say:" >&2
      grep -hv "connected to gateway" "$WORK"/agents*.log | sort | uniq -c | sort -rn | head -n 10 >&2
      exit 1
    fi
    sleep 1
    kill -0 "$GATEWAY_PID" 2>/dev/null || { echo "the gateway exited while $online of $((NODES + 1)) were online" >&2; exit 1; }
    local t=$EPOCHREALTIME counted
    counted=$(online_count 2>/dev/null || echo -1)  # -1: the gateway did not answer the poll
    python3 -c "print(f'{$t - $since:.1f} {$EPOCHREALTIME - $t:.1f} $counted')" >> "$ramp"
    [ "$counted" -ge 0 ] && online=$counted
  done
  python3 -c "print(f'{$EPOCHREALTIME - $since:.2f}')"
}

# The agents get the PATH systemd gives a service (the packaged units run the node that way),
# not this shell's: every `true` is looked up along it, one stat per directory before /usr/bin.
SERVICE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
t0=$EPOCHREALTIME
PATH=$SERVICE_PATH "$LABGATE" node run --state-dir "$WORK/dev/solo" > "$WORK/solo.log" 2>&1 &
PIDS+=($!)
per=$(((NODES + AGENT_PROCS - 1) / AGENT_PROCS))
for ((p = 0; p < AGENT_PROCS; p++)); do
  dirs=()
  for id in "${ids[@]:p*per:per}"; do dirs+=("$WORK/dev/$id"); done
  [ ${#dirs[@]} -eq 0 ] && continue
  PATH=$SERVICE_PATH "$HELPER" "${dirs[@]}" > "$WORK/agents$p.log" 2>&1 &
  PIDS+=($!)
done
online_s=$(wait_online "$t0" 600 "$WORK/ramp-start")
echo "all $((NODES + 1)) nodes online after ${online_s} s" >&2

status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }  # utime + stime, children not included
rss_online_kb=$(status_kb "$GATEWAY_PID" VmRSS)
threads_online=$(status_kb "$GATEWAY_PID" Threads)
agent_rss_kb=0
for pid in "${PIDS[@]:1}"; do agent_rss_kb=$((agent_rss_kb + $(status_kb "$pid" VmRSS))); done
agent_rss_kb=$((agent_rss_kb / (${#PIDS[@]} - 1)))

agents_ticks() { local sum=0 pid; for pid in "${PIDS[@]:1}"; do sum=$((sum + $(cpu_ticks "$pid"))); done; echo "$sum"; }
# What the fleet costs doing nothing (heartbeats): the same CPU is in the fan-out's figures, so
# the agents' share of it over the fan-out's wall time is printed beside them.
echo "measuring on $(nproc) cores: ${IDLE_S}s idle, fan-out x$FANOUT_REPS, then $ITER warm MCP calls per target..." >&2
idle_gw=$(cpu_ticks "$GATEWAY_PID")
idle_agents=$(agents_ticks)
sleep "$IDLE_S"
idle_gw=$(($(cpu_ticks "$GATEWAY_PID") - idle_gw))
idle_agents=$(($(agents_ticks) - idle_agents))
gw_ticks=$(cpu_ticks "$GATEWAY_PID")
agent_ticks=$((0 - $(agents_ticks)))
fan_t0=$EPOCHREALTIME
fanout=$(node bench/time_cmd.mjs "$FANOUT_REPS" 0 -- "$LABGATE" run group:fleet --config "$CONFIG" -- true)
fan_wall_s=$(python3 -c "print($EPOCHREALTIME - $fan_t0)")
gw_ticks=$(($(cpu_ticks "$GATEWAY_PID") - gw_ticks))
agent_ticks=$((agent_ticks + $(agents_ticks)))
rss_after_kb=$(status_kb "$GATEWAY_PID" VmRSS)
hwm_kb=$(status_kb "$GATEWAY_PID" VmHWM)
fork_exec=$("$HELPER" --fork-exec "$ITER")
# The same spawn driven over a socket, by the least an agent can do (no SSH, no JSON), with as
# many sessions as one agent process holds: the goal's ratio read against this machine.
socket_floor=$("$HELPER" --socket-floor "$per" $((2000 / per > 0 ? 2000 / per : 1)))
on_local=$(node bench/mcp_driver.mjs "$LABGATE" "$CONFIG" single local "$ITER")
on_node=$(node bench/mcp_driver.mjs "$LABGATE" "$CONFIG" single n0001 "$ITER")
on_solo=$(node bench/mcp_driver.mjs "$LABGATE" "$CONFIG" single solo "$ITER")

# A gateway restart: every agent sees its link drop and comes back on its own backoff.
echo "restarting the gateway..." >&2
t0=$EPOCHREALTIME
kill -TERM "$GATEWAY_PID"
wait "$GATEWAY_PID" 2>/dev/null || true
stop_s=$(python3 -c "print(f'{$EPOCHREALTIME - $t0:.2f}')")
t0=$EPOCHREALTIME
storm_agents=$((0 - $(agents_ticks)))
start_gateway
restart_s=$(wait_online "$t0" 300 "$WORK/ramp-restart")
# Who spent the machine's CPU while the fleet came back: the new gateway (its whole life so
# far) and the agent processes (their handshakes, and their side of the fleet's heartbeats).
storm_gw=$(cpu_ticks "$GATEWAY_PID")
storm_agents=$((storm_agents + $(agents_ticks)))
echo "all $((NODES + 1)) nodes back online ${restart_s} s after the restart" >&2
rss_restart_kb=$(status_kb "$GATEWAY_PID" VmRSS)
"$LABGATE" run group:fleet --json --config "$CONFIG" -- true > "$WORK/after.json" || true
after=$(python3 -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))["summary"]))' "$WORK/after.json")

python3 - "$fork_exec" "$on_local" "$on_node" "$on_solo" "$fanout" "$after" "$NODES" "$AGENT_PROCS" "$per" \
  "$online_s" "$restart_s" "$pair_s" "$rss_online_kb" "$rss_after_kb" "$hwm_kb" "$rss_restart_kb" "$threads_online" \
  "$agent_rss_kb" "$gw_ticks" "$agent_ticks" "$(getconf CLK_TCK)" "$FANOUT_REPS" "$stop_s" \
  "$idle_gw" "$idle_agents" "$IDLE_S" "$fan_wall_s" "$socket_floor" "$WORK/ramp-start" "$WORK/ramp-restart" \
  "$storm_gw" "$storm_agents" <<'PY'
import json, os, sys
cores = os.cpu_count()
fe, lo, nd, so, fan, after = (json.loads(a) for a in sys.argv[1:7])
nodes, procs, per = int(sys.argv[7]), sys.argv[8], sys.argv[9]
online_s, restart_s, pair_s = (float(a) for a in sys.argv[10:13])
rss, rss_after, hwm, rss_restart, threads, agent_rss, gw_ticks, agent_ticks, hz, reps = (int(a) for a in sys.argv[13:23])
stop_s = float(sys.argv[23])
idle_gw, idle_agents, idle_s = (int(a) for a in sys.argv[24:27])
fan_wall_s = float(sys.argv[27])
floor = json.loads(sys.argv[28])
def ramp(path):
    """When 50%, 90% and 99% of the fleet were first seen online: a slow ramp or a long tail."""
    points = [tuple(float(x) for x in line.split()) for line in open(path) if line.strip()]
    at = lambda share: next((t for t, _, n in points if n >= share * (nodes + 1)), float("nan"))
    failed = sum(1 for _, _, n in points if n < 0)
    slowest = max((took for _, took, _ in points), default=0.0)
    return (f"50% {at(0.5):.1f} s, 90% {at(0.9):.1f} s, 99% {at(0.99):.1f} s; {len(points)} polls, "
            f"{failed} unanswered, the slowest {slowest:.1f} s")
ramp_start, ramp_restart = ramp(sys.argv[29]), ramp(sys.argv[30])
storm_gw, storm_agents = int(sys.argv[31]), int(sys.argv[32])
idle_gw_pct = idle_gw / hz / idle_s * 100
idle_agents_pct = idle_agents / hz / idle_s * 100
# The agents' heartbeat CPU over the fan-outs' wall time, taken out: what the commands cost.
agent_marginal_us = max(0.0, agent_ticks / hz - idle_agents / hz / idle_s * fan_wall_s) / (reps * nodes) * 1e6
fe_ms = fe["median_us"] / 1000
mb = lambda kb: kb / 1024
met = lambda ok: "met" if ok else "**missed**"
over = nd["median_ms"] - lo["median_ms"]
agent_cpu_us = agent_ticks / hz / (reps * nodes) * 1e6
cpu_ratio = agent_cpu_us / fe["cpu_us"]
print(f"## labgate node benchmark (medians; {nodes} nodes in {procs} agent processes on loopback)\n")
print("| warm MCP `run true` | ms | difference |")
print("|---|---:|---|")
print(f"| node n0001 (one of {per} sessions in a helper process) | {nd['median_ms']:.3f} | {over:+.3f} ms vs local |")
print(f"| node solo (its own `labgate node run`) | {so['median_ms']:.3f} | {so['median_ms'] - lo['median_ms']:+.3f} ms vs local |")
print(f"| local (sandboxed) | {lo['median_ms']:.3f} | {lo['median_ms'] - fe_ms:+.3f} ms vs a bare spawn |")
print(f"| bare posix_spawn + waitpid of /bin/true (C++ loop) | {fe_ms:.3f} | - |")
print()
print(f"| gateway with {nodes} nodes | value |")
print("|---|---:|")
print(f"| pairing: codes for the fleet, keys, pair.request over SSH | {pair_s:.1f} s |")
print(f"| time until all online (agents started together) | {online_s:.1f} s ({ramp_start}) |")
print(f"| gateway RSS, all online ({threads} threads) | {mb(rss):.1f} MB |")
print(f"| gateway RSS after the fan-outs (peak {mb(hwm):.1f} MB) | {mb(rss_after):.1f} MB |")
print(f"| gateway RSS after a restart, all back online | {mb(rss_restart):.1f} MB |")
print(f"| agent process RSS ({per} sessions each, mean) | {mb(agent_rss):.1f} MB |")
print(f"| fan-out `labgate run group:fleet -- true` (new CLI process) | {fan['median_ms'] / 1000:.2f} s |")
print(f"| CPU per fan-out: gateway / all agent processes | {gw_ticks / hz / reps:.2f} s / {agent_ticks / hz / reps:.2f} s |")
print(f"| agent CPU per fanned-out `true` / a bare spawn's own CPU | {agent_cpu_us:.0f} us / {fe['cpu_us']:.0f} us |")
print(f"| the same without the agents' idle (heartbeat) CPU over the fan-outs' {fan_wall_s:.1f} s | {agent_marginal_us:.0f} us ({agent_marginal_us / fe['cpu_us']:.2f}x) |")
print(f"| a minimal socket agent's CPU per `true` ({per} loopback TCP sessions, no SSH, no JSON) | {floor['cpu_us']:.0f} us ({floor['cpu_us'] / fe['cpu_us']:.2f}x) |")
print(f"| idle, every node connected: gateway / all agent processes | {idle_gw_pct:.1f}% / {idle_agents_pct:.1f}% of a core |")
print(f"| gateway stop: SIGTERM until it exited, every node connected | {stop_s:.2f} s |")
print(f"| all back online after a gateway restart | {restart_s:.1f} s ({ramp_restart}) |")
print(f"| CPU until all were back: new gateway / all agent processes (of {restart_s * cores:.0f} s on {cores} cores) | "
      f"{storm_gw / hz:.1f} s / {storm_agents / hz:.1f} s |")
print(f"| fan-out after the restart: ok / total | {after['ok']} / {after['total']} |")
print()
print("Goals (issue 19):")
print(f"- `run true` on a node in a {per}-session agent process within 1 ms of `local`: {over:+.2f} ms: {met(over <= 1)}")
print(f"- agent CPU per fanned-out `true` within 2x of a bare posix_spawn + waitpid: {cpu_ratio:.2f}x: {met(cpu_ratio <= 2)} "
      f"(a minimal socket agent: {floor['cpu_us'] / fe['cpu_us']:.2f}x; labgate {agent_cpu_us / floor['cpu_us']:.2f}x of that)")
scale = "" if nodes >= 10000 else f" (goal set for 10,000 nodes; this run has {nodes})"
print(f"- {nodes} nodes online within 512 MB gateway RSS: peak {mb(max(hwm, rss_restart)):.0f} MB: "
      f"{met(mb(max(hwm, rss_restart)) <= 512)}{scale}")
print(f"- all back online within 60 s of a gateway restart: {restart_s:.1f} s: {met(restart_s <= 60)}{scale}")
lost = nodes - after["ok"]
print(f"- fan-out of `true` to all {nodes} after the restart, none lost: {lost} lost: {met(lost == 0)}{scale}")
PY
