#!/usr/bin/env bash
# Installs a labgate .deb built by packaging/build-deb.sh on this machine and checks what an
# operator gets: the binary, accounts, state directories, units (verified by systemd-analyze,
# none enabled), man page, completion, `labgate doctor` on the default config; then that
# `dpkg -r` leaves only the operator's config and state, and `dpkg --purge` nothing.
#
#   packaging/test-deb.sh dist/labgate_VERSION_amd64.deb
#
# Needs root (or sudo) and a machine where labgate is not installed as a package. Accounts the
# package creates are removed at the end when they did not exist before.
set -euo pipefail
deb=$(realpath "${1:?usage: packaging/test-deb.sh PACKAGE.deb}")
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
version=$(dpkg-deb -f "$deb" Version)

failures=0
pass() { echo "ok    $1"; }
fail() { echo "FAIL  $1" >&2; failures=$((failures + 1)); }
check() {  # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

# dpkg's state of labgate: empty when dpkg does not know it, `not-installed` after a purge.
state() { dpkg-query -W -f='${db:Status-Status}' labgate 2>/dev/null || true; }
if [ -n "$(state)" ] && [ "$(state)" != not-installed ]; then
  echo "test-deb.sh: labgate is installed (or its config is) on this machine; this test would remove it" >&2
  exit 1
fi
made_accounts=()
getent passwd labgate >/dev/null || made_accounts+=(user:labgate)
getent passwd labgate-run >/dev/null || made_accounts+=(user:labgate-run)
getent group labgate-ops >/dev/null || made_accounts+=(group:labgate-ops)
cleanup() {
  if [ -n "$(state)" ] && [ "$(state)" != not-installed ]; then
    $sudo dpkg --purge labgate >/dev/null 2>&1 || true
  fi
  for account in "${made_accounts[@]}"; do
    case "$account" in
      user:*) $sudo userdel "${account#user:}" 2>/dev/null || true ;;
      group:*) $sudo groupdel "${account#group:}" 2>/dev/null || true ;;
    esac
  done
}
trap cleanup EXIT

echo "== dpkg -i $(basename "$deb")"
$sudo dpkg -i "$deb"

check "labgate --version says $version" test "$(/usr/bin/labgate --version)" = "labgate $version"
check "account labgate: home /var/lib/labgate, no login shell" \
  bash -c '[[ $(getent passwd labgate) == labgate:x:*:*:*:/var/lib/labgate:/usr/sbin/nologin ]]'
check "account labgate-run: home /var/lib/labgate-run" \
  bash -c '[[ $(getent passwd labgate-run) == labgate-run:x:*:*:*:/var/lib/labgate-run:* ]]'
check "group labgate-ops exists" bash -c "getent group labgate-ops >/dev/null"
check "/var/lib/labgate belongs to labgate, mode 711" test "$(stat -c '%U %a' /var/lib/labgate)" = "labgate 711"
check "/var/lib/labgate-run belongs to labgate-run, mode 700" \
  test "$(stat -c '%U %a' /var/lib/labgate-run)" = "labgate-run 700"
check "/etc/labgate/hosts.toml belongs to root, not writable by others" \
  test "$(stat -c '%U %a' /etc/labgate/hosts.toml)" = "root 644"

units=(/lib/systemd/system/labgate-gateway.service /lib/systemd/system/labgate-runner.service)
verify=$(systemd-analyze verify --man=no "${units[@]}" 2>&1) && [ -z "$verify" ] &&
  pass "systemd-analyze verify: the system units" || { echo "$verify" >&2; fail "systemd-analyze verify: the system units"; }
verify=$(systemd-analyze verify --man=no /usr/lib/systemd/user/labgate-node.service 2>&1) && [ -z "$verify" ] &&
  pass "systemd-analyze verify: the user unit" || { echo "$verify" >&2; fail "systemd-analyze verify: the user unit"; }
for unit in labgate-gateway.service labgate-runner.service; do
  check "$unit is not enabled by the installation" test "$(systemctl is-enabled "$unit" 2>/dev/null)" = "disabled"
done
check "the user unit runs /usr/bin/labgate" grep -q '^ExecStart=/usr/bin/labgate node run ' \
  /usr/lib/systemd/user/labgate-node.service

check "man labgate finds the page" test "$(man -w labgate)" = "/usr/share/man/man1/labgate.1.gz"
warnings=$(MANWIDTH=80 man --warnings labgate 2>&1 >/dev/null)
check "man labgate renders without warnings" test -z "$warnings"
[ -z "$warnings" ] || echo "$warnings" >&2
check "bash-completion loads labgate's completion on demand" bash -c '
  source /usr/share/bash-completion/bash_completion
  _completion_loader labgate
  [[ $(complete -p labgate) == "complete -o default -F _labgate labgate" ]]'
check "zsh completion is where Debian's zsh looks" test -f /usr/share/zsh/vendor-completions/_labgate

# The packaged service's view: doctor as the gateway's account, on the shipped config. No gateway
# runs and no node is paired yet, so it fails, naming what to do; it must not crash (255).
set +e
doctor_err=$(mktemp)
doctor=$($sudo runuser -u labgate -- /usr/bin/labgate doctor --config /etc/labgate/hosts.toml --json 2>"$doctor_err")
status=$?
set -e
check "labgate doctor on the default config runs its checks (exit $status, 1 expected)" test "$status" -eq 1
check "doctor finds the installed key-rotation guide" \
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); k=[i for i in d["items"] if i["id"]=="keys"][0]; sys.exit(0 if any("/usr/share/doc/labgate/key-rotation.md" in x for x in k["details"]) else 1)' "$doctor"
check "doctor says this-server still has to be paired" \
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); p=[i for i in d["items"] if i["id"]=="pairing"][0]; sys.exit(0 if not p["ok"] and "this-server" in json.dumps(p) else 1)' "$doctor"
# The shipped config sends audit copies to journald; whether they arrive depends on the machine
# (a container may have no journald), but doctor must say where they go.
check "doctor reports the audit copies to journald" \
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); a=[i for i in d["items"] if i["id"]=="audit"][0]; sys.exit(0 if any("copies to journald /run/systemd/journal/socket" in x for x in a["details"]) else 1)' "$doctor"
[ "$failures" -eq 0 ] || { echo "$doctor"; cat "$doctor_err"; } >&2
rm -f "$doctor_err"

# Something the operator made in the state directory, which removal must keep.
$sudo runuser -u labgate -- sh -c 'echo kept > /var/lib/labgate/operator-note'
files=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./|/|')

echo "== dpkg -r labgate"
$sudo dpkg -r labgate >/dev/null
left=()
for f in $files; do
  [ "$f" = /etc/labgate/hosts.toml ] && continue
  [ -e "$f" ] && left+=("$f")
done
check "dpkg -r removes every file of the package (left: ${left[*]:-none})" test ${#left[@]} -eq 0
check "dpkg -r removes /usr/share/doc/labgate" test ! -e /usr/share/doc/labgate
check "dpkg -r keeps the operator's config (/etc/labgate/hosts.toml)" test -f /etc/labgate/hosts.toml
check "dpkg -r keeps the state (/var/lib/labgate)" test -f /var/lib/labgate/operator-note

echo "== dpkg --purge labgate"
$sudo dpkg --purge labgate >/dev/null
check "dpkg --purge removes /etc/labgate" test ! -e /etc/labgate
check "dpkg --purge removes the state directories" test ! -e /var/lib/labgate -a ! -e /var/lib/labgate-run

if [ "$failures" -ne 0 ]; then
  echo "test-deb.sh: $failures check(s) failed for $(basename "$deb")" >&2
  exit 1
fi
echo "test-deb.sh: every check passed for $(basename "$deb")"
