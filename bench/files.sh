#!/usr/bin/env bash
# labgate file-transfer benchmark, one command: bench/files.sh
#
# One OpenSSH sshd (with its internal SFTP server) on 127.0.1.1 and a BENCH_MB (default 100) MB
# file of random bytes. Measures side by side in one run: `file get` and `file put` through
# labgate's MCP server (warm: the pooled SFTP session; get keeps the file as an artifact, put
# writes it atomically from one) vs OpenSSH `sftp` and `scp` over a warm ControlMaster. Logs in
# as a user whose login shell is /bin/sh (created when run as root). Only loopback traffic.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MB=${BENCH_MB:-100}
ITER=${BENCH_ITER:-5}
PORT=2223

scripts/install-deps.sh >&2
BUILD=$(bench/build.sh labgate)

if [ "$(id -u)" -eq 0 ]; then
  BENCH_USER=labgate-bench
  id "$BENCH_USER" >/dev/null 2>&1 || useradd -m -s /bin/sh "$BENCH_USER"
  usermod -p '*' "$BENCH_USER"
  mkdir -p /run/sshd
else
  BENCH_USER=$(id -un)
  echo "note: not root, benchmarking as $BENCH_USER" >&2
fi

WORK=$(mktemp -d /tmp/labgate-bench-files.XXXXXX)
chmod 755 "$WORK"
SSHD_PID=
cleanup() {
  [ -S "$WORK/cm-master" ] && ssh -F "$WORK/ssh_config" -O exit -o ControlPath="$WORK/cm-master" 127.0.1.1 2>/dev/null || true
  [ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

ssh-keygen -q -t ed25519 -N '' -C bench -f "$WORK/client"
cp "$WORK/client.pub" "$WORK/authorized_keys"
chmod 644 "$WORK/authorized_keys"
ssh-keygen -q -t ed25519 -N '' -C '' -f "$WORK/host"
cat > "$WORK/sshd.conf" <<CONF
ListenAddress 127.0.1.1:$PORT
HostKey $WORK/host
PidFile $WORK/sshd.pid
AuthorizedKeysFile $WORK/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
Subsystem sftp internal-sftp
LogLevel ERROR
CONF
/usr/sbin/sshd -D -e -f "$WORK/sshd.conf" 2>>"$WORK/sshd.log" &
SSHD_PID=$!
echo "[127.0.1.1]:$PORT $(cat "$WORK/host.pub")" > "$WORK/known_hosts"
mkdir -p "$WORK/state" "$WORK/remote" "$WORK/local"
cp "$WORK/known_hosts" "$WORK/state/known_hosts"
chmod 777 "$WORK/remote"
cat > "$WORK/hosts.toml" <<TOML
[gateway]
state_dir = "$WORK/state"

[[hosts]]
id = "b1"
address = "127.0.1.1"
port = $PORT
user = "$BENCH_USER"
identity_file = "$WORK/client"
capabilities = ["run", "file"]
mode = "full"
TOML
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
for _ in $(seq 1 200); do
  timeout 1 bash -c "exec 3<>/dev/tcp/127.0.1.1/$PORT && head -c 4 <&3" 2>/dev/null | grep -q SSH- && break
  sleep 0.02
done
head -c $((MB * 1024 * 1024)) /dev/urandom > "$WORK/remote/src.bin"
chmod 644 "$WORK/remote/src.bin"
cp "$WORK/remote/src.bin" "$WORK/local/src.bin"

T="node $ROOT/bench/time_cmd.mjs"
SSH=(ssh -F "$WORK/ssh_config")
CM=(-F "$WORK/ssh_config" -o ControlMaster=no -o "ControlPath=$WORK/cm-master")
"${SSH[@]}" -o ControlMaster=yes -o ControlPath="$WORK/cm-master" -o ControlPersist=300 -fN 127.0.1.1
echo "measuring $MB MB transfers on $(nproc) cores, $ITER iterations each..." >&2

LG=${LABGATE_BIN:-$BUILD/labgate}
lg_get=$(BENCH_FILE="$WORK/remote/src.bin" node bench/mcp_driver.mjs "$LG" "$WORK/hosts.toml" fileget b1 "$ITER")
lg_put=$(BENCH_FILE="$WORK/remote/src.bin" BENCH_DEST="$WORK/remote/dst.bin" \
  node bench/mcp_driver.mjs "$LG" "$WORK/hosts.toml" fileput b1 "$ITER")
cmp "$WORK/remote/src.bin" "$WORK/remote/dst.bin"
printf 'get %s/remote/src.bin %s/local/got.bin\n' "$WORK" "$WORK" > "$WORK/get.batch"
printf 'put %s/local/src.bin %s/remote/put.bin\n' "$WORK" "$WORK" > "$WORK/put.batch"
sftp_get=$($T "$ITER" 1 -- sftp "${CM[@]}" -q -b "$WORK/get.batch" 127.0.1.1)
sftp_put=$($T "$ITER" 1 -- sftp "${CM[@]}" -q -b "$WORK/put.batch" 127.0.1.1)
scp_get=$($T "$ITER" 1 -- scp "${CM[@]}" -q "127.0.1.1:$WORK/remote/src.bin" "$WORK/local/scp.bin")
scp_put=$($T "$ITER" 1 -- scp "${CM[@]}" -q "$WORK/local/src.bin" "127.0.1.1:$WORK/remote/scp.bin")
# What labgate's durability costs OpenSSH: the same copy, then an fsync of the file on the host.
scp_put_sync=$($T "$ITER" 1 -- bash -c "scp $(printf '%q ' "${CM[@]}") -q '$WORK/local/src.bin' '127.0.1.1:$WORK/remote/scps.bin' && ssh $(printf '%q ' "${CM[@]}") 127.0.1.1 sync '$WORK/remote/scps.bin'")
cmp "$WORK/local/src.bin" "$WORK/local/got.bin"

python3 - "$MB" "$lg_get" "$lg_put" "$sftp_get" "$sftp_put" "$scp_get" "$scp_put" "$scp_put_sync" <<'PY'
import json, sys
mb = sys.argv[1]
lg_get, lg_put, sftp_get, sftp_put, scp_get, scp_put, scp_put_sync = (json.loads(a) for a in sys.argv[2:9])
def row(name, r, ref=None):
    ms = r["median_ms"]
    ratio = "-" if ref is None else f"{ms / ref:.2f}x labgate's time"
    return f"| {name} | {ms:.0f} | {int(mb) / (ms / 1000):.0f} | {ratio} |"
print(f"## labgate file benchmark (medians; {mb} MB of random bytes, one sshd on loopback)\n")
for what, lg, sftp, scp in (("get", lg_get, sftp_get, scp_get), ("put", lg_put, sftp_put, scp_put)):
    print(f"| {what} {mb} MB | ms | MB/s | vs labgate |")
    print("|---|---:|---:|---|")
    print(row(f"labgate `file {what}` (MCP, pooled SFTP session)", lg))
    print(row("OpenSSH `sftp` over a warm ControlMaster", sftp, lg["median_ms"]))
    print(row("OpenSSH `scp` over a warm ControlMaster", scp, lg["median_ms"]))
    best = min(sftp["median_ms"], scp["median_ms"])
    ratio = lg["median_ms"] / best
    if what == "put":
        print(row("OpenSSH `scp`, then `sync FILE` on the host (durable, as labgate's put is)", scp_put_sync,
                  lg["median_ms"]))
    print(f"\n{what}: labgate takes {ratio:.2f}x the time of the faster OpenSSH tool (goal <= 1.2x): "
          f"{'met' if ratio <= 1.2 else 'missed'}")
    if what == "put":
        print(f"put against the durable copy: {lg['median_ms'] / scp_put_sync['median_ms']:.2f}x "
              "(labgate fsyncs the new file before it replaces the old one; sftp and scp do not)")
    print()
PY
