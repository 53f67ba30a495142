#!/usr/bin/env bash
# MCP over Streamable HTTP vs stdio, one command: bench/http.sh
#
# Starts one `labgate gateway` with http_listen on loopback and times, side by side in one run,
# the same warm tool calls through `labgate mcp` (stdio, bridged to that gateway's MCP socket)
# and through its HTTP endpoint (one keep-alive connection): `targets` (the transport and the
# session alone) and `run true` on `local` (a sandboxed command). Prints medians and the ratio
# HTTP / stdio per call. Only loopback traffic.
set -euo pipefail
cd "$(dirname "$0")/.."
ITER=${BENCH_ITER:-300}
scripts/install-deps.sh >&2
LABGATE=$(bench/build.sh labgate)/labgate

WORK=$(mktemp -d /tmp/labgate-bench-http.XXXXXX)
GATEWAY_PID=
cleanup() {
  [ -n "$GATEWAY_PID" ] && kill "$GATEWAY_PID" 2>/dev/null && wait "$GATEWAY_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HTTP_PORT=$(free_port)
cat > "$WORK/hosts.toml" <<TOML
[gateway]
listen = "127.0.0.1:$(free_port)"
http_listen = "127.0.0.1:$HTTP_PORT"
state_dir = "$WORK/state"
audit_log = "$WORK/audit/audit.jsonl"

[local]
capabilities = ["run"]
TOML
"$LABGATE" gateway --config "$WORK/hosts.toml" 2>"$WORK/gateway.log" &
GATEWAY_PID=$!
for _ in $(seq 100); do [ -s "$WORK/state/http.token" ] && grep -q "MCP over HTTP" "$WORK/gateway.log" && break; sleep 0.1; done
export MCP_HTTP_TOKEN
MCP_HTTP_TOKEN=$(cat "$WORK/state/http.token")

median() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])["median_ms"])' "$1"; }
report() {  # name, stdio json, http json
  local s h
  s=$(median "$2"); h=$(median "$3")
  python3 -c 'import sys; n,s,h=sys.argv[1],float(sys.argv[2]),float(sys.argv[3]); print(f"{n:<22} stdio {s:8.3f} ms   http {h:8.3f} ms   http/stdio {h/s:5.2f}x")' "$1" "$s" "$h"
}
echo "warm calls, median of $ITER (labgate $("$LABGATE" --version 2>/dev/null | head -1))"
for mode in targets single; do
  target=-; [ "$mode" = single ] && target=local
  stdio=$(node bench/mcp_driver.mjs "$LABGATE" "$WORK/hosts.toml" "$mode" "$target" "$ITER")
  http=$(MCP_HTTP_URL="http://127.0.0.1:$HTTP_PORT/mcp" node bench/mcp_driver.mjs "$LABGATE" "$WORK/hosts.toml" "$mode" "$target" "$ITER")
  report "$([ "$mode" = single ] && echo 'run true on local' || echo 'targets')" "$stdio" "$http"
done
