#!/usr/bin/env bash
# labgate SSH benchmark, one command: bench/run.sh
#
# Starts BENCH_HOSTS (default 20) OpenSSH sshd instances on 127.0.1.x and measures, side by side
# in one run: a warm `run true` through labgate vs a raw libssh channel exec vs OpenSSH with a
# ControlMaster vs fresh `ssh`; and a fan-out of `uptime` to every host, cold and warm, vs
# parallel-ssh and Ansible; and a screen snapshot of an Xvfb display on a host through labgate vs
# the same ffmpeg command over OpenSSH. Logs in as a user whose login shell is /bin/sh (created when run as
# root), so no shell start-up file distorts the numbers. Only loopback traffic.
# The hosts share this machine's cores with the client, so it also splits each fan-out's CPU
# into the hosts' part and the client's (bench/cpu.mjs): the hosts' part over the cores is the
# least time any client can take here, and the client's part is what carries over to hosts
# that are other machines.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
HOSTS=${BENCH_HOSTS:-20}
ITER=${BENCH_ITER:-200}
PORT=2222

scripts/install-deps.sh >&2
missing=()
for p in pssh ansible-core; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
BUILD=$(bench/build.sh labgate labgate_bench_raw_libssh)
LABGATE=$BUILD/labgate

if [ "$(id -u)" -eq 0 ]; then
  BENCH_USER=labgate-bench
  id "$BENCH_USER" >/dev/null 2>&1 || useradd -m -s /bin/sh "$BENCH_USER"
  # sshd without PAM refuses accounts whose password field is locked ('!'); '*' only disables passwords.
  usermod -p '*' "$BENCH_USER"
  mkdir -p /run/sshd
else
  BENCH_USER=$(id -un)
  echo "note: not root, benchmarking as $BENCH_USER (login shell $(getent passwd "$BENCH_USER" | cut -d: -f7))" >&2
fi

WORK=$(mktemp -d /tmp/labgate-bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
# A 1280x720 display every user may use (-ac; Unix socket only) for the screenshot comparison.
DISPLAY_NO=$((90 + RANDOM % 100))
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  # Every ControlPersist master this run opened (ours, parallel-ssh's, Ansible's), so none outlives it.
  for sock in "$WORK/cm-master" "$WORK"/pcm-* "$WORK"/ansible-cp/*; do
    [ -S "$sock" ] && ssh -F "$WORK/ssh_config" -O exit -o ControlPath="$sock" 127.0.1.1 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
Xvfb ":$DISPLAY_NO" -screen 0 1280x720x24 -nolisten tcp -noreset -ac 2>/dev/null &
PIDS+=($!)

ssh-keygen -q -t ed25519 -N '' -C bench -f "$WORK/client"
cp "$WORK/client.pub" "$WORK/authorized_keys"
chmod 644 "$WORK/authorized_keys"
: > "$WORK/known_hosts"
: > "$WORK/pssh_hosts"
printf '[bench]\n' > "$WORK/inventory.ini"
printf '[gateway]\nstate_dir = "%s/state"\nmax_parallel = 32\n\n' "$WORK" > "$WORK/hosts.toml"
for i in $(seq 1 "$HOSTS"); do
  ip=127.0.1.$i
  ssh-keygen -q -t ed25519 -N '' -C '' -f "$WORK/host$i"
  cat > "$WORK/sshd$i.conf" <<CONF
ListenAddress $ip:$PORT
HostKey $WORK/host$i
PidFile $WORK/sshd$i.pid
AuthorizedKeysFile $WORK/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
MaxSessions 20
MaxStartups 200:30:400
LogLevel ERROR
CONF
  /usr/sbin/sshd -D -e -f "$WORK/sshd$i.conf" 2>>"$WORK/sshd.log" &
  PIDS+=($!)
  echo "[$ip]:$PORT $(cat "$WORK/host$i.pub")" >> "$WORK/known_hosts"
  echo "$ip" >> "$WORK/pssh_hosts"
  echo "b$i ansible_host=$ip" >> "$WORK/inventory.ini"
  printf '[[hosts]]\nid = "b%s"\naddress = "%s"\nport = %s\nuser = "%s"\nidentity_file = "%s/client"\ngroups = ["bench"]\n' \
    "$i" "$ip" "$PORT" "$BENCH_USER" "$WORK" >> "$WORK/hosts.toml"
  printf 'capabilities = ["run", "screen"]\n[hosts.screen]\nbackend = "x11"\ndisplay = ":%s"\n\n' "$DISPLAY_NO" >> "$WORK/hosts.toml"
done
mkdir -p "$WORK/state" && cp "$WORK/known_hosts" "$WORK/state/known_hosts"
cat >> "$WORK/inventory.ini" <<INV
[bench:vars]
ansible_port=$PORT
ansible_user=$BENCH_USER
ansible_ssh_private_key_file=$WORK/client
ansible_python_interpreter=/usr/bin/python3
INV
cat > "$WORK/ssh_config" <<CFG
Host *
  User $BENCH_USER
  Port $PORT
  IdentityFile $WORK/client
  IdentitiesOnly yes
  UserKnownHostsFile $WORK/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
CFG
for i in $(seq 1 "$HOSTS"); do
  for _ in $(seq 1 200); do
    timeout 1 bash -c "exec 3<>/dev/tcp/127.0.1.$i/$PORT && head -c 4 <&3" 2>/dev/null | grep -q SSH- && break
    sleep 0.02
  done
done

T="node $ROOT/bench/time_cmd.mjs"
SSH=(ssh -F "$WORK/ssh_config")
echo "measuring on $(nproc) cores, $HOSTS sshd instances, $ITER warm iterations..." >&2

raw=$("$BUILD/bench/labgate_bench_raw_libssh" 127.0.1.1 $PORT "$BENCH_USER" "$WORK/client" "$WORK/known_hosts" "$ITER")
lg_single=$(node bench/mcp_driver.mjs "$LABGATE" "$WORK/hosts.toml" single b1 "$ITER")
# The same MCP round trip to a call that runs nothing and writes no record (`targets` of that one
# host): what the stdio transport, this driver and a request's parse and answer cost on their own.
lg_targets=$(node bench/mcp_driver.mjs "$LABGATE" "$WORK/hosts.toml" targets b1 "$ITER")
# What an intent costs on this disk: a record-sized append and its fsync, beside the audit log,
# as labgate does before every command, at about the pace of the calls above (a disk that
# syncs back to back answers faster than one that idled between calls). A raw exec plus
# this is the least any gateway that makes its intent durable first can take here.
intent_sync=$(python3 - "$WORK/state" "$ITER" <<'PY'
import os, statistics, sys, time
path = os.path.join(sys.argv[1], "fsync-probe.jsonl")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
took = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    os.write(fd, b"x" * 700 + b"\n")
    os.fsync(fd)
    took.append((time.perf_counter() - t) * 1e6)
    time.sleep(0.002)
os.close(fd)
os.unlink(path)
print(f'{{"median_us": {statistics.median(took):.0f}}}')
PY
)
"${SSH[@]}" -o ControlMaster=yes -o ControlPath="$WORK/cm-master" -o ControlPersist=300 -fN 127.0.1.1
cm=$($T "$ITER" 5 -- "${SSH[@]}" -o ControlMaster=no -o ControlPath="$WORK/cm-master" 127.0.1.1 true)
fresh=$($T 20 2 -- "${SSH[@]}" -o ControlMaster=no -o ControlPath=none 127.0.1.1 true)

GRAB="ffmpeg -hide_banner -nostdin -loglevel error -f x11grab -draw_mouse 0 -probesize 32 -i :$DISPLAY_NO -frames:v 1 -f image2pipe -vcodec png -"
lg_screen=$(node bench/mcp_driver.mjs "$LABGATE" "$WORK/hosts.toml" screen b1 20)
cm_screen=$($T 20 2 -- "${SSH[@]}" -o ControlMaster=no -o ControlPath="$WORK/cm-master" 127.0.1.1 "$GRAB")
fresh_screen=$($T 10 1 -- "${SSH[@]}" -o ControlMaster=no -o ControlPath=none 127.0.1.1 "$GRAB")

lg_fan_cold=$($T 10 1 -- "$LABGATE" run group:bench --config "$WORK/hosts.toml" -- uptime)
lg_fan_warm=$(node bench/mcp_driver.mjs "$LABGATE" "$WORK/hosts.toml" fanout group:bench 30)
pssh_cold=$($T 10 1 -- parallel-ssh -p "$HOSTS" -t 60 -h "$WORK/pssh_hosts" -x "-F $WORK/ssh_config -o ControlPath=none" uptime)
pssh_warm=$($T 10 1 -- parallel-ssh -p "$HOSTS" -t 60 -h "$WORK/pssh_hosts" \
  -x "-F $WORK/ssh_config -o ControlMaster=auto -o ControlPersist=300 -o ControlPath=$WORK/pcm-%C" uptime)
export ANSIBLE_HOST_KEY_CHECKING=True ANSIBLE_SSH_CONTROL_PATH_DIR="$WORK/ansible-cp" ANSIBLE_LOCAL_TEMP="$WORK/ansible-tmp" \
  ANSIBLE_NOCOLOR=1 ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3
ans_cold=$(ANSIBLE_SSH_ARGS="-F $WORK/ssh_config -o ControlMaster=no -o ControlPath=none" \
  $T 3 0 -- ansible all -i "$WORK/inventory.ini" -m command -a uptime -f "$HOSTS")
ans_warm=$(ANSIBLE_SSH_ARGS="-F $WORK/ssh_config -o ControlMaster=auto -o ControlPersist=300" \
  $T 3 1 -- ansible all -i "$WORK/inventory.ini" -m command -a uptime -f "$HOSTS")

ROOT_DIR=$ROOT python3 - "$raw" "$lg_single" "$cm" "$fresh" "$lg_fan_cold" "$lg_fan_warm" "$pssh_cold" "$pssh_warm" \
  "$ans_cold" "$ans_warm" "$HOSTS" "$lg_screen" "$cm_screen" "$fresh_screen" "$(nproc)" "$intent_sync" "$lg_targets" <<'PY'
import json, sys
raw, lg, cm, fresh, lfc, lfw, pc, pw, ac, aw = (json.loads(a) for a in sys.argv[1:11])
hosts = sys.argv[11]
ls, cs, fs = (json.loads(a) for a in sys.argv[12:15])
raw_ms = raw["median_us"] / 1000
lg_ms = lg["median_ms"]
print(f"## labgate SSH benchmark (medians; {hosts} sshd on loopback)\n")
print("| single warm `true` | ms | labgate is |")
print("|---|---:|---|")
print(f"| labgate `run` (MCP, pooled session) | {lg_ms:.2f} | - |")
print(f"| raw libssh channel exec | {raw_ms:.2f} | {lg_ms / raw_ms:.2f}x the raw time (goal <= 1.25x) |")
print(f"| OpenSSH ControlMaster (warm) | {cm['median_ms']:.2f} | {cm['median_ms'] / lg_ms:.1f}x faster (goal >= 3x) |")
print(f"| OpenSSH fresh `ssh` | {fresh['median_ms']:.2f} | {fresh['median_ms'] / lg_ms:.1f}x faster |")
sync_ms = json.loads(sys.argv[16])["median_us"] / 1000
mcp_ms = json.loads(sys.argv[17])["median_ms"]
least_ms = raw_ms + sync_ms + mcp_ms
print(f"| raw exec + one fsync'd append on this disk ({sync_ms:.2f} ms) + an MCP call that runs nothing "
      f"(`targets` of b1, {mcp_ms:.2f} ms): the least over MCP with a durable intent | {least_ms:.2f} | "
      f"{lg_ms / least_ms:.2f}x that least time; {1000 * (lg_ms - least_ms):.0f} us of labgate's own work above it |")
print()
print(f"| fan-out `uptime` to {hosts} hosts | ms | labgate is |")
print("|---|---:|---|")
print(f"| labgate cold (new `labgate run group:bench` process) | {lfc['median_ms']:.1f} | - |")
print(f"| labgate warm (MCP, pooled sessions) | {lfw['median_ms']:.1f} | - |")
print(f"| parallel-ssh -p {hosts} cold | {pc['median_ms']:.1f} | {pc['median_ms'] / lfc['median_ms']:.1f}x faster cold (goal >= 3x) |")
print(f"| parallel-ssh -p {hosts} with ControlMaster | {pw['median_ms']:.1f} | {pw['median_ms'] / lfw['median_ms']:.1f}x faster warm |")
print(f"| ansible -f {hosts} cold | {ac['median_ms']:.1f} | {ac['median_ms'] / lfc['median_ms']:.1f}x faster cold (goal >= 10x) |")
print(f"| ansible -f {hosts} with ControlPersist | {aw['median_ms']:.1f} | {aw['median_ms'] / lfw['median_ms']:.1f}x faster warm |")
print()
print("| screen snapshot of a 1280x720 Xvfb on a host | ms | labgate is |")
print("|---|---:|---|")
print(f"| labgate `screen` (MCP, pooled session; audited, kept as artifact) | {ls['median_ms']:.1f} | - |")
print(f"| same ffmpeg over OpenSSH ControlMaster | {cs['median_ms']:.1f} | {cs['median_ms'] / ls['median_ms']:.2f}x as fast |")
print(f"| same ffmpeg over fresh `ssh` | {fs['median_ms']:.1f} | {fs['median_ms'] / ls['median_ms']:.2f}x as fast |")
# The hosts are sshd processes on this machine: per fan-out, what they and their commands used
# (the machine's busy CPU less the client's and the driver's) bounds the wall time of any client
# at hosts / cores. The clients' own CPU is what carries over to hosts that are other machines.
cores = int(sys.argv[15])
hosts_cpu = lambda r: max(r["busy_ms"] - r["client_ms"] - r["driver_ms"], 1.0)
floor_cold, floor_warm = hosts_cpu(lfc) / cores, hosts_cpu(lfw) / cores
print()
print(f"| CPU per fan-out (ms; {cores} cores shared by client and hosts) | the {hosts} sshd and their commands | the client | least wall time any client can take here |")
print("|---|---:|---:|---:|")
print(f"| labgate cold | {hosts_cpu(lfc):.0f} | {lfc['client_ms']:.0f} | {floor_cold:.0f} |")
print(f"| labgate warm | {hosts_cpu(lfw):.0f} | {lfw['client_ms']:.0f} | {floor_warm:.0f} |")
print(f"| parallel-ssh cold | {hosts_cpu(pc):.0f} | {pc['client_ms']:.0f} | - |")
print(f"| parallel-ssh warm (its ControlMaster daemons count as hosts) | {hosts_cpu(pw):.0f} | {pw['client_ms']:.0f} | - |")
print(f"\nA client costing nothing would be {pc['median_ms'] / floor_cold:.2f}x faster than parallel-ssh cold and "
      f"{pw['median_ms'] / floor_warm:.2f}x warm on this machine; labgate takes {lfc['median_ms'] / floor_cold:.2f}x and "
      f"{lfw['median_ms'] / floor_warm:.2f}x that least time. Against hosts that are other machines its own CPU per fan-out "
      f"is {pc['client_ms'] / max(lfc['client_ms'], 1):.1f}x less than parallel-ssh's cold and "
      f"{pw['client_ms'] / max(lfw['client_ms'], 1):.1f}x less warm (parallel-ssh's masters not counted).")
met = lambda ok: "met" if ok else "**missed**"
print()
print("Goals (issue 19):")
print(f"- warm `run true` at least 3x faster than OpenSSH ControlMaster: {cm['median_ms'] / lg_ms:.2f}x: "
      f"{met(cm['median_ms'] / lg_ms >= 3)} (the raw libssh exec is {cm['median_ms'] / raw_ms:.2f}x; "
      f"over MCP with a durable intent at most {cm['median_ms'] / least_ms:.2f}x here)")
print(f"- warm `run true` within 1.25x of a raw libssh channel exec: {lg_ms / raw_ms:.2f}x: {met(lg_ms / raw_ms <= 1.25)} "
      f"(over MCP with a durable intent at least {least_ms / raw_ms:.2f}x here, which leaves "
      f"{1000 * (1.25 * raw_ms - least_ms):.0f} us for the policy, two audit records and the hand-offs)")
print(f"- fan-out at least 3x faster than parallel-ssh cold: {pc['median_ms'] / lfc['median_ms']:.2f}x: "
      f"{met(pc['median_ms'] / lfc['median_ms'] >= 3)} (at most {pc['median_ms'] / floor_cold:.2f}x on this machine)")
print(f"- fan-out at least 3x faster than parallel-ssh warm: {pw['median_ms'] / lfw['median_ms']:.2f}x: "
      f"{met(pw['median_ms'] / lfw['median_ms'] >= 3)} (at most {pw['median_ms'] / floor_warm:.2f}x on this machine)")
print(f"- fan-out at least 10x faster than Ansible: {ac['median_ms'] / lfc['median_ms']:.1f}x: "
      f"{met(ac['median_ms'] / lfc['median_ms'] >= 10)}")
print(f"- screen snapshot no slower than the same ffmpeg over a ControlMaster: {cs['median_ms'] / ls['median_ms']:.2f}x as fast: "
      f"{met(cs['median_ms'] >= ls['median_ms'])}")
PY
