#!/usr/bin/env bash
# The main job from a fresh checkout: install what is missing, build, and serve MCP on stdio
# with the bundled hosts.toml (its `local` target needs no other set-up).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh >&2
echo "labgate: building the labgate binary into build/ (a few minutes the first time)" >&2
scripts/build.sh labgate >&2
exec build/labgate mcp --config "${LABGATE_CONFIG:-hosts.toml}"
