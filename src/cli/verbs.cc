#include "cli/verbs.h"

namespace labgate::cli {

const std::map<std::string, VerbHelp>& Verbs() {
  static const std::map<std::string, VerbHelp> verbs = {
      {"mcp",
       {"serve MCP on stdin/stdout for an AI client",
        "usage: labgate mcp [--config FILE]\n\n"
        "Speaks the Model Context Protocol (2025-11-25 down to 2024-11-05) on stdin/stdout and publishes the\n"
        "tools `run`, `screen`, `camera`, `location`, `file` and `targets`. When a gateway daemon runs for the same\n"
        "config, it relays to it (so paired nodes are reachable); otherwise it runs an embedded gateway.\n"
        "stdout carries only MCP messages; logs go to stderr (LABGATE_LOG=debug for more). Exits when stdin\n"
        "closes, stopping any command still running.\n\n"
        "  --config FILE   inventory to use (default: ./hosts.toml, then ~/.config/labgate/hosts.toml,\n"
        "                  else built-in defaults with only the `local` target)\n"}},
      {"run",
       {"run a command on targets, like the MCP `run` tool",
        "usage: labgate run TARGET [options] [--] PROGRAM [ARGS...]\n"
        "       labgate run TARGET [options] --shell 'COMMAND'\n\n"
        "TARGET is an id, group:NAME, tag:NAME or *. PROGRAM and ARGS run without a shell; --shell runs\n"
        "COMMAND with sh -c. Output streams are printed as they were captured (capped head+tail).\n"
        "Exit code: the command's own for one target; 124 on timeout; 128+N when killed by signal N;\n"
        "255 when labgate could not run it (refused, unknown target, audit log unwritable); for several\n"
        "targets 0 when all succeeded, else 1.\n\n"
        "  --shell CMD      run CMD via sh -c instead of an argv\n"
        "  --timeout DUR    deadline (500ms, 30s, 5m; default [gateway] default_timeout_ms); stops the\n"
        "                   whole process group\n"
        "  --cwd DIR        working directory on the target\n"
        "  --dry-run        show the decision, rule, risk class and targets; run nothing\n"
        "  --sudo           run as root through sudo -S with the host's sudo_password_env/_file\n"
        "                   (on stdin, never in argv); privileged: refused on daily-use targets\n"
        "  --json           print the structured result (same shape as the MCP tool)\n"
        "A command that policy says needs a human's yes is asked about on your terminal; without a\n"
        "terminal, an approval request is filed (see `labgate approvals`).\n"
        "  --config FILE    inventory to use\n"}},
      {"targets",
       {"list targets and what they can do",
        "usage: labgate targets [SELECTOR] [--json] [--config FILE]\n\n"
        "Lists the built-in `local` target, SSH hosts and nodes from the inventory with kind, online\n"
        "state, capabilities, groups, device and purpose. SELECTOR is an id, group:NAME, tag:NAME or *.\n"}},
      {"hosts",
       {"list, add, remove and change SSH hosts; trust their host keys",
        "usage: labgate hosts list [--json] [--config FILE]\n"
        "       labgate hosts trust ID [--fingerprint SHA256:...] [--config FILE]\n"
        "       labgate hosts add ID --address ADDRESS [--port N] [--user USER] [--identity-file FILE]\n"
        "                         [--groups a,b] [--tags a,b] [--caps run,...] [--device TEXT] [--owner TEXT]\n"
        "                         [--purpose TEXT] [--role admin|daily] [--config FILE]\n"
        "       labgate hosts remove ID [--config FILE]\n"
        "       labgate hosts set ID KEY=VALUE [KEY=VALUE ...] [--config FILE]\n"
        "       labgate hosts check [--json] [--config FILE]\n"
        "       labgate hosts import --from-ssh-config [FILE] [--match PATTERN] [--config FILE]\n"
        "       labgate hosts import --from-ansible INVENTORY [--config FILE]\n"
        "       labgate hosts export [--format ansible-yaml|ansible-json] [--config FILE]\n\n"
        "list   shows every [[hosts]] entry: address, user, groups, jump host, and whether its host key\n"
        "       is recorded (labgate's known_hosts in state_dir, or ~/.ssh/known_hosts).\n"
        "trust  connects to ID, shows the fingerprint of the key it offers and, after you confirm (or when\n"
        "       it equals --fingerprint), records it in labgate's known_hosts. A different key already\n"
        "       recorded is never overwritten: remove the old line first.\n"
        "add    appends a [[hosts]] entry after the last one; refuses an id already in use\n"
        "remove deletes the [[hosts]] or [[nodes]] entry ID with its subtables ([hosts.screen] ...) and the\n"
        "       comment lines directly above it; a removed node should also be `labgate nodes revoke`d\n"
        "set    changes keys of entry ID (a host or a node): port=2222, groups=servers,lab (or a TOML array),\n"
        "       user= removes a key. Secrets stay out: use passphrase_env=VAR or passphrase_file=PATH.\n"
        "add, remove and set keep every other line and comment of the file as it was, take a lock, and\n"
        "write only when the edited file still loads (else it is left unchanged and the problem named).\n"
        "They need a hosts.toml (--config, ./hosts.toml or ~/.config/labgate/hosts.toml).\n"
        "check  the inventory's part of `labgate doctor`: the file loads (else every file:line: key: error),\n"
        "       every host and node answers `uname -n`, no node key is stale, every entry has owner and\n"
        "       purpose. Exit 0 when all pass, 1 when any fails.\n"
        "import adds a [[hosts]] entry (like add, with a comment saying where it came from) for each\n"
        "       concrete Host alias of an ssh config (default ~/.ssh/config; Include followed, Host *\n"
        "       defaults applied, Match blocks skipped; --match a glob over aliases), or each host of an\n"
        "       Ansible inventory as `ansible-inventory --list -i INVENTORY` resolves it (any format;\n"
        "       groups kept). Ids already in use, wildcard patterns, templates and secrets are skipped,\n"
        "       each with the reason.\n"
        "export prints the [[hosts]] entries as an Ansible inventory (default YAML): ansible_host, _port,\n"
        "       _user, _ssh_private_key_file, a ProxyJump in ansible_ssh_common_args, owner, purpose,\n"
        "       device, role and tags as labgate_* variables; groups as groups, tags as groups tag_NAME.\n"
        "       Nodes and secrets are left out; what was left out or renamed is noted on stderr.\n"}},
      {"gateway",
       {"run the gateway daemon: node listener, MCP and operator sockets",
        "usage: labgate gateway [--config FILE]\n\n"
        "Runs in the foreground (use packaging/labgate-gateway.service under systemd). Listens for nodes on\n"
        "[gateway] listen (default 127.0.0.1:7022) with an Ed25519 host key made at first start in state_dir,\n"
        "and serves MCP (mcp.sock) and the operator CLI (operator.sock) on Unix sockets in state_dir that\n"
        "only the gateway's own user may use. `labgate mcp` with the same config bridges to it, so MCP\n"
        "clients reach paired nodes. SIGTERM closes everything cleanly.\n"}},
      {"pair",
       {"issue a pairing code for a device",
        "usage: labgate pair new --node ID|group:NAME|tag:NAME|* [--caps run,screen,camera,location]\n"
        "                        [--ttl 10m] [--json]\n\n"
        "Prints a single-use code that expires (default 10 minutes) for the [[nodes]] entry ID. It carries the\n"
        "gateway's address and host-key fingerprint; `labgate node pair CODE` on the device uses it. --caps\n"
        "narrows the capabilities to grant (default: those the node lists in hosts.toml). A group, tag or *\n"
        "prints one code per [[nodes]] entry it matches (with --json: {\"codes\": [...]}), for setting up\n"
        "many devices at once. Needs a running gateway.\n"}},
      {"nodes",
       {"list, approve, rotate and revoke paired nodes",
        "usage: labgate nodes list|pending [--json]\n"
        "       labgate nodes approve ID [--caps run,...]\n"
        "       labgate nodes reject|rotate|revoke ID\n\n"
        "list     every paired node: online or last seen, key fingerprint, capabilities, paired and rotated\n"
        "         dates, and `stale` once the key is older than [gateway] key_max_age_days (default 90)\n"
        "pending  pairing requests that came without a code (allow_pairing = true), with their key\n"
        "         fingerprints: compare with `labgate node status` on the device before approving\n"
        "approve  pairs a pending request; --caps may narrow what it asked for\n"
        "reject   drops a pending request\n"
        "rotate   the node makes a new key over its live channel; the old key is refused from then on\n"
        "revoke   refuses the node's key and drops its session at once\n"
        "All of these reach the gateway through its operator socket and are written to the audit log.\n"}},
      {"node",
       {"the agent on a device: pair it, run it",
        "usage: labgate node pair CODE [--state-dir DIR] [--caps run,...]\n"
        "       labgate node pair --gateway HOST:PORT --fingerprint SHA256:... --node ID [--caps ...]\n"
        "       labgate node run [--state-dir DIR] [--device-config FILE]\n"
        "       labgate node status [--state-dir DIR]\n\n"
        "pair    makes this device's Ed25519 key (0600) in the state dir (default\n"
        "        ~/.local/state/labgate-node), checks the gateway's host key and pairs; without a code the\n"
        "        request waits until the operator runs `labgate nodes approve ID`\n"
        "run     connects out to the gateway, serves the approved capabilities, reconnects with backoff;\n"
        "        screen, camera and location use the backends of --device-config FILE (default\n"
        "        STATE_DIR/device.toml when it exists, else auto-detection)\n"
        "status  shows the node id, gateway, key fingerprint and approved capabilities\n"}},
      {"approvals",
       {"approve or deny what an AI asked to run; time-boxed grants",
        "usage: labgate approvals list [--all] [--json]\n"
        "       labgate approvals approve|deny REQUEST-ID\n"
        "       labgate approvals grant --target SELECTOR --pattern 'COMMAND *' [--for 1h]\n"
        "       labgate approvals grants [--json]\n"
        "       labgate approvals revoke GRANT-ID\n\n"
        "list     open requests: targets, exact command, cwd, env, risk class, the rule that asked, who\n"
        "         asked and when it expires (default 15 minutes; [gateway] approval_ttl_s)\n"
        "approve  lets exactly that call (same targets, command, cwd and env) run once when it is repeated\n"
        "deny     closes the request\n"
        "grant    lets commands matching PATTERN (a glob; * matches anything) run on the targets without\n"
        "         asking until the grant expires; deny rules still refuse\n"
        "revoke   ends a grant early\n"
        "These talk to the running gateway or `labgate mcp` through its operator socket; a command that\n"
        "labgate itself started is refused, so an AI cannot approve its own requests.\n"}},
      {"audit",
       {"verify, tail and query the audit log",
        "usage: labgate audit verify [--against FILE|-] [--json] [--config FILE]\n"
        "       labgate audit tail [-n N] [-f] [--json] [--config FILE]\n"
        "       labgate audit query [--target ID] [--since TIME] [--until TIME] [--decision allowed|refused]\n"
        "                           [--actor TEXT] [--json] [--config FILE]\n\n"
        "Reads [gateway] audit_log and its rotated files (PATH.1, PATH.2, ... oldest first); changes nothing.\n\n"
        "verify  checks every record of every file: JSON, format version, seq, the prev link, the hash, and\n"
        "        that the newest record is the one PATH.head names (so records cut off the end show).\n"
        "        Exit 0 when intact, 1 with the first broken seq and what is wrong, 255 when unreadable.\n"
        "        Keep the printed last hash elsewhere to notice a chain rewritten as a whole.\n"
        "        --against FILE also compares every record a copy holds ([audit] forward: the output of\n"
        "        `journalctl -o json --all MESSAGE_ID=5f0c7d2a9b3e4c61a8d7e2f41b6c9a03`, a syslog file, or\n"
        "        a copy of the log; - reads stdin) with the local chain: a record edited, removed or cut off\n"
        "        since it was sent fails (exit 1), as does a copy that contradicts itself.\n"
        "tail    the last N records (-n, default 20), one line each or JSON lines with --json; -f keeps\n"
        "        printing new records, across rotations, until Ctrl-C\n"
        "query   the records that match every filter given, as lines or one JSON array with --json:\n"
        "          --target ID         the target (or one of a refusal's targets)\n"
        "          --since/--until T   ISO-8601 UTC (2026-11-18T09:30:00Z, 2026-11-18) or a duration ago\n"
        "                              (30m, 1h, 2d)\n"
        "          --decision D        allowed or refused; results follow their intent\n"
        "          --actor TEXT        part of the OS user, MCP client name, via (mcp, cli, agent) or session\n"}},
      {"screen",
       {"take a screenshot or record a target's screen",
        "usage: labgate screen TARGET [--record 5s] [--fps 10] [--screen N] [-o FILE|-] [--json] [--config FILE]\n\n"
        "Without --record: a PNG snapshot. With it: an mp4 of that length (at most 60s).\n"
        "The file goes to -o FILE (- for stdout) or TARGET-screen-snapshot-TIME.png here; the metadata is\n"
        "printed. Backends: x11 (ffmpeg x11grab), wayland (grim / wf-recorder), macos (screencapture).\n"}},
      {"camera",
       {"take a photo or a clip with a target's camera; list its cameras",
        "usage: labgate camera TARGET [--facing back|front] [--device ID] [--quality 1-100] [--max-width PX]\n"
        "                      [--clip 3s] [-o FILE|-] [--json] [--config FILE]\n"
        "       labgate camera list TARGET [--json]\n\n"
        "Without --clip: a JPEG photo. With it: an mp4 of that length (at most 60s).\n"
        "Backends: v4l2 (ffmpeg), termux (termux-camera-photo).\n"}},
      {"file",
       {"read, stat, list, fetch and write files on a target",
        "usage: labgate file read TARGET PATH [--offset N] [--length N] [--json]\n"
        "       labgate file stat|list TARGET PATH [--max-entries N] [--json]\n"
        "       labgate file get TARGET PATH [-o FILE|-] [--json]\n"
        "       labgate file put TARGET PATH --from LOCAL-FILE|- [--mode 0644] [--create-only] [--no-overwrite]\n"
        "                        [--expect SHA256] [--sudo] [--json]\n"
        "       (all: [--timeout 20s] [--config FILE])\n\n"
        "PATH is absolute or ~/...; it is normalised and its symlinks resolved on the target before\n"
        "[policies.file] judges it. Private keys and credential stores are refused unless a read_allow rule\n"
        "names them; writes into system paths ask a human; labgate's own files are never touched.\n"
        "put writes atomically (a temporary file beside PATH, fsync, rename) and keeps mode and owner;\n"
        "--expect refuses the write unless the current content has that SHA-256 (\"\" : must not exist).\n"
        "get keeps the file as an artifact and writes it to -o FILE (default: its name here).\n"
        "Hosts are reached over SFTP; every action is audited with sizes and digests, never content.\n"}},
      {"location",
       {"where a target is: gpsd, Termux or a fixed position",
        "usage: labgate location TARGET [--accuracy coarse|balanced|precise] [--timeout 30s] [--max-age 5m]\n"
        "                        [--json] [--config FILE]\n\n"
        "--max-age accepts a fix the gateway got no longer ago than that. precise waits for a 3D fix.\n"}},
      {"doctor",
       {"check the whole setup: pairing, remote commands, capture, audit log, keys",
        "usage: labgate doctor [--capture TARGET] [--strict] [--json] [--config FILE]\n\n"
        "The guide's final checklist against the real lab, one line per item (PASS/FAIL, the facts, and\n"
        "what to do next). Exit 0 when every item passes, 1 when any fails, 255 when labgate itself failed.\n"
        "An item can pass with warnings (a listed host that does not answer while two others do): they are\n"
        "shown under it and counted in the summary; with --strict they make the exit status 3.\n\n"
        "  pairing      [[nodes]] entries vs the pairing store: never paired, paired but not listed, or a\n"
        "               key that differs from the entry's key_fingerprint\n"
        "  remote-exec  `uname -n` (read-only, 10 s) on every target with run (nodes: when online), with\n"
        "               timings; passes when at least two answer\n"
        "  capture      the last screen or camera capture that worked (STATE_DIR/last-capture.json);\n"
        "               --capture TARGET takes one now (a screen snapshot, else a camera photo)\n"
        "  audit        the hash chain verifies and run/capture records carry who, target, payload,\n"
        "               timestamps and exit code or outcome\n"
        "  keys         every node key is younger than [gateway] key_max_age_days, no revoked node is\n"
        "               still listed, and where docs/key-rotation.md is\n"
        "With a gateway running it checks through it (nodes reachable); otherwise in-process, where\n"
        "nodes cannot be reached. Its probes are written to the audit log like any other action.\n"
        "  --json   {ok, warnings, items:[{id, title, ok, details[], next, warnings[]}]}\n"}},
      {"checks",
       {"routine checks from hosts.toml: status, next run, run one now",
        "usage: labgate checks list [--json] [--config FILE]\n"
        "       labgate checks run NAME [--target ID] [--json] [--config FILE]\n\n"
        "[[checks]] in hosts.toml are read-only commands (or a camera/screen snapshot) that the gateway daemon\n"
        "runs on their targets every DURATION, at HH:MM, or when a node comes back after being offline.\n"
        "A failure runs the check's alert once (until it passes again) and, when it has a remediation,\n"
        "files an approval request: the remediation runs once, through policy and the audit log, only after\n"
        "`labgate approvals approve ID`.\n\n"
        "list  every check and target: last status and summary, when it last ran, when it runs next, and a\n"
        "      remediation waiting for approval\n"
        "run   runs NAME now on its targets (or only --target ID); exit 0 when all pass, 1 otherwise.\n"
        "      Without a running gateway it runs in this process and still records the result.\n"}},
      {"help",
       {"show help for labgate or one verb; the man page",
        "usage: labgate help [VERB]\n"
        "       labgate help --man\n\n"
        "--man  prints labgate(1) in roff, made from these help texts (man -l <(labgate help --man))\n"}},
      {"completion",
       {"shell completion for bash and zsh",
        "usage: labgate completion bash|zsh\n"
        "       labgate completion words -- WORDS...\n\n"
        "bash   prints the bash completion script: verbs, subcommands, options, their fixed values, and\n"
        "       target ids, group:NAME and tag:NAME from the inventory in force (--config on the line,\n"
        "       ./hosts.toml, ~/.config/labgate/hosts.toml). The package installs it; from a source build:\n"
        "       labgate completion bash > ~/.local/share/bash-completion/completions/labgate\n"
        "zsh    prints the zsh completion function: save it as _labgate in a directory of $fpath\n"
        "words  what both scripts call: one candidate per line for the last of WORDS (the words after\n"
        "       `labgate`; the last is the one being completed, maybe empty)\n"}},
  };
  return verbs;
}

}  // namespace labgate::cli
