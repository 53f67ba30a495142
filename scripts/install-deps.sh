#!/usr/bin/env bash
# Installs what labgate needs to build and test on Debian 12, and only what is missing.
set -euo pipefail

packages=(
  cmake g++ make ninja-build pkg-config
  libssh-dev libssl-dev nlohmann-json3-dev libboost-dev libboost-filesystem-dev
  libspdlog-dev libtomlplusplus-dev libgtest-dev libre2-dev
  procps openssh-server openssh-client sudo
  # screen, camera and location tests: a virtual X display, ffmpeg, gpsd with gpsfake
  xvfb x11-xserver-utils ffmpeg gpsd gpsd-clients
  # policy: the parser differential test (shfmt, dash, bash); the sandbox for local commands;
  # zsh and bash-completion for the completion test
  shfmt dash bash zsh bash-completion bubblewrap
  # packaging/system: systemd-analyze verifies the units, systemd-sysusers the accounts; the
  # arm64 package's node agent runs under qemu-user in the integration suite
  systemd qemu-user-static
  # `labgate hosts export` is read back by ansible-inventory
  ansible-core
  # tests/fuzz: libFuzzer harnesses under ASan and UBSan (scripts/fuzz.sh)
  clang libclang-rt-14-dev
)
# The MCP client test needs Node.js 18 or newer; keep a Node that is already there.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "labgate: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
