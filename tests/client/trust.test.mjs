// The trust boundary, played from the assistant's side through the official MCP TypeScript SDK
// client, once with the embedded `labgate mcp` and once bridged to a `labgate gateway` daemon.
//
// The worst case is assumed: a careless human accepts every confirmation. Even then, a command on
// `local` must not change hosts.toml, the approvals store, the audit log or the labgate binary,
// must not reach an operator socket, and must not approve a request another session is waiting
// on — while ordinary work (writes under /tmp and $HOME, systemctl, docker) behaves as it does
// outside the sandbox.
import { describe, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { freePort, sleep, textOf, waitFor, which } from './helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = process.env.LABGATE_BIN || path.resolve(here, '../../build/labgate');
const TIMEOUT_MS = 60_000;
const callOptions = { timeout: TIMEOUT_MS };
// Single quotes for sh, so the paths below reach the command as they are.
const q = (s) => `'${s.replaceAll("'", "'\\''")}'`;

for (const mode of ['embedded', 'daemon']) {
  describe(`trust boundary, ${mode}: a command on local cannot reach labgate's own authority`, () => {
    let tmp;
    let configPath;
    let state;
    let auditPath;
    let gateway;
    let careless; // accepts every confirmation it is shown
    let plain; // no elicitation: risky calls become approval requests for the operator
    const asked = [];

    const labgate = (...args) => execFileSync(bin, [...args, '--config', configPath],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

    async function connect(name, elicit) {
      const transport = new StdioClientTransport({ command: bin, args: ['mcp', '--config', configPath],
        stderr: 'inherit' });
      const client = new Client({ name, version: '1.0.0' }, elicit ? { capabilities: { elicitation: {} } } : {});
      if (elicit) client.setRequestHandler(ElicitRequestSchema, elicit);
      await client.connect(transport, callOptions);
      return client;
    }

    async function run(client, command) {
      const result = await client.callTool({ name: 'run', arguments: { target: 'local', command } }, undefined,
        callOptions);
      return { result, r: result.structuredContent?.results?.[0] ?? {} };
    }

    before(async () => {
      assert.ok(fs.existsSync(bin), `labgate binary not found at ${bin}; build it first or set LABGATE_BIN`);
      assert.ok(which('bwrap'), 'bubblewrap is not installed (Debian: apt install bubblewrap)');
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), `labgate-trust-${mode}-`));
      state = path.join(tmp, 'state');
      auditPath = path.join(tmp, 'audit', 'audit.jsonl');
      configPath = path.join(tmp, 'hosts.toml');
      const port = await freePort();
      fs.writeFileSync(configPath, [
        '[gateway]',
        `listen = "127.0.0.1:${port}"`,
        `state_dir = ${JSON.stringify(state)}`,
        `audit_log = ${JSON.stringify(auditPath)}`,
        '',
        '[local]',
        'capabilities = ["run"]',
        '',
      ].join('\n'));
      labgate('targets'); // fails loudly on a schema problem
      if (mode === 'daemon') {
        const log = fs.openSync(path.join(tmp, 'gateway.log'), 'w');
        gateway = spawn(bin, ['gateway', '--config', configPath], { stdio: ['ignore', log, log] });
        fs.closeSync(log);
        gateway.on('exit', (code, signal) => { gateway.exitedWith = { code, signal }; });
        await waitFor('the gateway daemon', () => {
          if (gateway.exitedWith) {
            throw new Error(`gateway exited: ${fs.readFileSync(path.join(tmp, 'gateway.log'), 'utf8')}`);
          }
          labgate('nodes', 'list');
          return true;
        });
      }
      careless = await connect('careless-human', async (request) => {
        asked.push(request.params.message);
        return { action: 'accept', content: { confirm: true } };
      });
      plain = await connect('assistant-without-elicitation');
    }, { timeout: TIMEOUT_MS });

    after(async () => {
      await careless?.close();
      await plain?.close();
      if (gateway && !gateway.exitedWith) {
        const exited = new Promise((resolve) => gateway.once('exit', resolve));
        process.kill(gateway.pid, 'SIGTERM');
        await exited;
      }
      if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });

    test('with every confirmation accepted, labgate\'s files, sockets and approvals stay out of reach',
      { timeout: TIMEOUT_MS }, async () => {
        // The assistant files a destructive request that only the operator may approve.
        const victim = fs.mkdtempSync(path.join(tmp, 'victim-'));
        const filed = await run(plain, ['rm', '-r', victim]);
        assert.equal(filed.r.decision, 'approval-pending', JSON.stringify(filed.r));
        const id = filed.r.approvalId;
        assert.match(id, /^apr-/);

        const approvals = path.join(state, 'approvals.json');
        const before = {
          hosts: fs.readFileSync(configPath),
          approvals: fs.readFileSync(approvals),
          audit: fs.readFileSync(auditPath),
          binary: fs.statSync(bin),
        };
        // Every socket labgate serves here, named by the paths seen from outside.
        const sockets = fs.readdirSync(state).filter((n) => n.endsWith('.sock')).map((n) => path.join(state, n));
        assert.ok(sockets.some((s) => /operator(-\d+)?\.sock$/.test(s)), `no operator socket in ${sockets}`);
        const L = q(bin);
        const C = q(configPath);
        const approve = `${L} approvals approve ${id} --config ${C}`;
        const attacks = [
          // hosts.toml: the policy itself
          `sed -i 's/^/# /' ${q(configPath)}`,
          `printf '\\n[policies.run]\\nallow = ["*"]\\n' >> ${q(configPath)}`,
          `mv ${q(configPath)} ${q(`${configPath}.moved`)}`,
          `printf '[local]\nmode = "full"\n' > ${q(`${configPath}.new`)} && mv -f ${q(`${configPath}.new`)} ${q(configPath)}`,
          `ln -sf /dev/null ${q(configPath)}`,
          `node -e 'require("fs").writeFileSync(process.argv[1], "")' ${q(configPath)}`,
          `${L} hosts add evil --address 127.0.0.9 --config ${C}`,
          // the approvals store
          `echo '{"requests":[]}' > ${q(approvals)}`,
          `rm -f ${q(approvals)}`,
          `ls -A ${q(state)}`,
          // the audit log: truncate, append a forged record, replace it
          `: > ${q(auditPath)}`,
          `printf 'F%sD\\n' ORGE >> ${q(auditPath)}`,
          `cp /dev/null ${q(auditPath)}; rm -f ${q(`${auditPath}.head`)}`,
          // the binary
          `touch -c ${L}`,
          // approving the waiting request: directly, double-forked, setsid, nohup
          approve,
          `( ( ${approve} > /dev/null 2>&1 & ) & ); sleep 1`,
          `setsid ${approve}`,
          `nohup ${approve} > /dev/null 2>&1 & sleep 1`,
          // the operator sockets, by the CLI and by hand
          `${L} nodes list --config ${C}`,
          ...sockets.map((s) => `node -e 'require("net").connect(process.argv[1])` +
            `.on("connect",()=>{console.log("CONNECTED");process.exit(0)}).on("error",e=>console.log(e.code))' ${q(s)}`),
          `cat ${q(path.join(state, 'operator.key'))}`,
          // moving a parent away, so the next sandbox finds nothing to hide at the old path
          `mv ${q(tmp)} ${q(`${tmp}.moved`)}`,
          `cd ${q(path.dirname(tmp))} && mv ${q(path.basename(tmp))} ${q(`${path.basename(tmp)}.moved`)}`,
          `mv ${q(path.join(tmp, 'audit'))} ${q(path.join(tmp, 'audit.moved'))}`,
          // then reading the key in forms the redactor does not know
          `for d in ${q(tmp)} ${q(`${tmp}.moved`)}; do rev "$d/state/operator.key"; base64 "$d/state/operator.key"; done`,
        ];
        if (which('systemd-run')) attacks.push(`systemd-run --user --collect ${approve}`);

        const outputs = [];
        for (const command of attacks) {
          const { result, r } = await run(careless, command);
          // It ran: a human said yes. What stops it is the sandbox, not a refusal.
          assert.ok(['run', 'confirmed'].includes(r.decision), `${command}: ${JSON.stringify(r)}`);
          outputs.push(`${command}\n${textOf(result)}`);
          assert.ok(!textOf(result).includes('CONNECTED'), `${command} reached a socket:\n${textOf(result)}`);
        }
        await sleep(1500); // anything the attacks left in the background has had its chance

        assert.deepEqual(fs.readFileSync(configPath), before.hosts, 'hosts.toml changed');
        assert.ok(!fs.existsSync(`${tmp}.moved`) && !fs.existsSync(path.join(tmp, 'audit.moved')),
          'a parent of labgate\'s files was renamed');
        const key = fs.readFileSync(path.join(state, 'operator.key'), 'utf8');
        const leaks = [key.trim().split('').reverse().join(''), Buffer.from(key).toString('base64').slice(0, 40)];
        for (const leak of leaks) {
          assert.ok(!outputs.join('\n').includes(leak), `the operator key leaked:\n${outputs.join('\n\n')}`);
        }
        assert.ok(!fs.existsSync(`${configPath}.moved`));
        assert.deepEqual(fs.readFileSync(approvals), before.approvals, 'approvals.json changed');
        const binary = fs.statSync(bin);
        assert.equal(binary.mtimeMs, before.binary.mtimeMs, 'the labgate binary was touched');
        assert.equal(binary.size, before.binary.size);
        // labgate appended its own records; what was there is untouched and the chain verifies.
        const audit = fs.readFileSync(auditPath);
        assert.ok(audit.length > before.audit.length);
        assert.deepEqual(audit.subarray(0, before.audit.length), before.audit, 'the audit log was rewritten');
        assert.ok(!audit.includes('FORGED'), 'a forged line reached the audit log');
        assert.match(labgate('audit', 'verify'), /intact|verified|ok/i);

        // The request still waits for the operator, and the victim is still there.
        const again = await run(plain, ['rm', '-r', victim]);
        assert.equal(again.r.decision, 'approval-pending', `${JSON.stringify(again.r)}\n${outputs.join('\n\n')}`);
        assert.ok(fs.existsSync(victim));
        const pending = JSON.parse(labgate('approvals', 'list', '--json'));
        const request = (pending.requests ?? pending).find((a) => a.id === id);
        assert.ok(request, JSON.stringify(pending));
        assert.equal(request.status, 'pending', JSON.stringify(request));

        // The operator's own shell still can.
        labgate('approvals', 'approve', id);
        const approved = await run(plain, ['rm', '-r', victim]);
        assert.equal(approved.r.decision, 'confirmed', JSON.stringify(approved.r));
        assert.ok(!fs.existsSync(victim));
      });

    test('ordinary work behaves as it does outside the sandbox', { timeout: TIMEOUT_MS }, async () => {
      const inTmp = path.join(tmp, 'written-in-tmp');
      const home = os.homedir();
      const inHome = path.join(home, `.labgate-trust-test-${process.pid}-${mode}`);
      try {
        let { r } = await run(careless, `echo hello > ${q(inTmp)} && mkdir -p ${q(inHome)} && echo hi > ${q(inHome)}/f`);
        assert.equal(r.exitCode, 0, JSON.stringify(r));
        assert.equal(fs.readFileSync(inTmp, 'utf8'), 'hello\n');
        assert.equal(fs.readFileSync(path.join(inHome, 'f'), 'utf8'), 'hi\n');

        // Same exit code and output as the same command run directly.
        const same = [['uname', '-a'], ['id'], ['df', '-h', '/']];
        if (which('systemctl')) same.push(['systemctl', 'status', '--no-pager', '--lines=0']);
        if (which('docker')) same.push(['docker', 'ps']);
        for (const argv of same) {
          ({ r } = await run(careless, argv));
          const direct = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
          assert.equal(r.exitCode, direct.status, `${argv.join(' ')}: ${JSON.stringify(r)} vs ${direct.stderr}`);
          if (argv[0] === 'uname' || argv[0] === 'id') assert.equal(r.stdout, direct.stdout);
        }
      } finally {
        fs.rmSync(inHome, { recursive: true, force: true });
      }
    });
  });
}
