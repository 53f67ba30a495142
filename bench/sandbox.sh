#!/usr/bin/env bash
# What the local sandbox costs, one command: bench/sandbox.sh   (ITER=200 by default)
#
# Times warm MCP `run true` calls on the `local` target through `labgate mcp` twice in one run:
# with the bubblewrap sandbox in force, and with bwrap out of reach (PATH holds only `true`), which
# is what a machine without bubblewrap gets. Prints both medians, what the sandbox adds per call
# and the ratio. Everything lives in a mktemp dir; nothing leaves this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ITER=${ITER:-200}
LABGATE=${LABGATE:-$(bench/build.sh labgate)/labgate}
BWRAP=$(command -v bwrap) || { echo "bubblewrap is not installed (Debian: apt install bubblewrap)" >&2; exit 1; }
NODE=$(command -v node) || { echo "node is not installed (Debian: apt install nodejs)" >&2; exit 1; }

export LABGATE_LOG=${LABGATE_LOG:-warn}  # the two servers' start-up lines would split the table
WORK=$(mktemp -d /tmp/labgate-bench-sandbox.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cat >"$WORK/hosts.toml" <<TOML
[gateway]
state_dir = "$WORK/state"

[local]
capabilities = ["run"]
TOML
mkdir "$WORK/bin"
ln -s "$(type -P true)" "$WORK/bin/true"

# Which sandbox each run gets, as labgate itself reports it.
sandbox_of() {
  # doctor exits 1 when any item fails (remote-exec does, with one target); only the JSON counts.
  { "$@" "$LABGATE" doctor --config "$WORK/hosts.toml" --json 2>/dev/null || true; } |
    "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const i=JSON.parse(s).items.find(x=>x.id==="sandbox");console.log(i.ok?"on":"off")})'
}
with_state=$(sandbox_of env)
without_state=$(sandbox_of env PATH="$WORK/bin")
if [ "$with_state" != on ] || [ "$without_state" != off ]; then
  echo "expected the sandbox on, then off; got $with_state, $without_state (bwrap at $BWRAP)" >&2
  exit 1
fi

with=$("$NODE" bench/mcp_driver.mjs "$LABGATE" "$WORK/hosts.toml" single local "$ITER")
without=$(PATH="$WORK/bin" "$NODE" bench/mcp_driver.mjs "$LABGATE" "$WORK/hosts.toml" single local "$ITER")

"$NODE" -e '
const [w, wo, n] = [JSON.parse(process.argv[1]), JSON.parse(process.argv[2]), process.argv[3]];
const pad = (s) => String(s).padEnd(34);
console.log(`warm MCP run true on local, median of ${n} calls (p90 in brackets)`);
console.log(`${pad("with the bubblewrap sandbox")}${w.median_ms.toFixed(2)} ms  (${w.p90_ms.toFixed(2)})`);
console.log(`${pad("without a sandbox")}${wo.median_ms.toFixed(2)} ms  (${wo.p90_ms.toFixed(2)})`);
console.log(`${pad("the sandbox adds")}${(w.median_ms - wo.median_ms).toFixed(2)} ms per call, ` +
            `ratio ${(w.median_ms / wo.median_ms).toFixed(2)}x`);
' "$with" "$without" "$ITER"
