// The MCP Inspector's CLI (pinned in package-lock) against labgate on stdio and over HTTP, in each
// of its protocol eras: it lists the tools, runs a command on local, reads a capture as a
// resource, and sees a refusal that names the rule.
import { describe, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort, startHttpGateway, stopProcess, which } from './helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = process.env.LABGATE_BIN || path.resolve(here, '../../build/labgate');
const inspector = path.join(here, 'node_modules', '.bin', 'mcp-inspector');
const TIMEOUT_MS = 120_000;
const run = promisify(execFile);

describe('MCP Inspector CLI', () => {
  let tmp;
  let configPath;
  let gateway;
  let url;
  let token;
  let artifact;

  before(async () => {
    assert.ok(fs.existsSync(inspector), 'the Inspector is not installed: run `npm ci` in tests/client');
    assert.ok(which('bwrap'), 'bubblewrap is not installed (Debian: apt install bubblewrap)');
    assert.ok(which('ffmpeg'), 'ffmpeg is not installed (Debian: apt install ffmpeg)');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'labgate-inspector-'));
    configPath = path.join(tmp, 'hosts.toml');
    fs.writeFileSync(configPath, [
      '[gateway]',
      `listen = "127.0.0.1:${await freePort()}"`,
      `http_listen = "127.0.0.1:${await freePort()}"`,
      `state_dir = ${JSON.stringify(path.join(tmp, 'state'))}`,
      `audit_log = ${JSON.stringify(path.join(tmp, 'audit', 'audit.jsonl'))}`,
      '',
      '[policies.run]',
      'deny = ["shutdown *"]',
      '',
      '[policies.camera]',
      'enabled = true',
      '',
      '[local]',
      'capabilities = ["run", "camera"]',
      '',
      '[local.camera]',
      'backend = "v4l2"',
      'input_format = "lavfi"',
      'device = "testsrc=size=160x120:rate=5"',
      '',
    ].join('\n'));
    // A capture for resources/read: ffmpeg's test source as the camera.
    const out = execFileSync(bin, ['camera', 'local', '--config', configPath, '-o', path.join(tmp, 'snap.jpg')],
      { encoding: 'utf8', cwd: tmp });
    artifact = out.match(/labgate:\/\/artifacts\/[0-9a-f]+/)[0];
    ({ gateway, url } = await startHttpGateway(bin, configPath, tmp));
    token = fs.readFileSync(path.join(tmp, 'state', 'http.token'), 'utf8').trim();
  }, { timeout: TIMEOUT_MS });

  after(async () => {
    await stopProcess(gateway);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  // Runs the Inspector CLI with `args`; returns its exit code and parsed JSON output.
  async function inspect(transport, era, args) {
    const target = transport === 'stdio'
      ? ['--', bin, 'mcp', '--config', configPath]
      : [url, '--transport', 'http', '--header', `Authorization: Bearer ${token}`];
    const argv = transport === 'stdio'
      ? ['--cli', '--protocol-era', era, ...args, '--format', 'json', ...target]
      : ['--cli', ...target, '--protocol-era', era, ...args, '--format', 'json'];
    try {
      const { stdout } = await run(inspector, argv, { timeout: 60_000, maxBuffer: 16 << 20 });
      return { code: 0, out: JSON.parse(stdout) };
    } catch (err) {
      if (err.code === undefined || typeof err.code !== 'number') throw err;
      const text = (err.stdout || '').trim() || (err.stderr || '').trim().split('\n').at(-1);
      return { code: err.code, out: JSON.parse(text), stderr: err.stderr };
    }
  }

  for (const transport of ['stdio', 'http']) {
    for (const era of ['legacy', 'auto', 'modern']) {
      test(`${transport}, --protocol-era ${era}: tools, run, a resource and a refusal`, { timeout: TIMEOUT_MS }, async () => {
        const listed = await inspect(transport, era, ['--method', 'tools/list']);
        assert.equal(listed.code, 0, JSON.stringify(listed.out));
        assert.deepEqual(listed.out.result.tools.map((t) => t.name).sort(), ['camera', 'file', 'location', 'run', 'screen', 'targets']);

        const ran = await inspect(transport, era, ['--method', 'tools/call', '--tool-name', 'run',
          '--tool-args-json', JSON.stringify({ target: 'local', command: `echo inspector-${transport}-${era}` })]);
        assert.equal(ran.code, 0, JSON.stringify(ran.out));
        assert.equal(ran.out.result.structuredContent.results[0].stdout, `inspector-${transport}-${era}\n`);
        assert.equal(ran.out.result._meta?.['io.modelcontextprotocol/serverInfo']?.name,
          era === 'legacy' ? undefined : 'labgate', 'modern results carry serverInfo; legacy ones do not');

        const read = await inspect(transport, era, ['--method', 'resources/read', '--uri', artifact]);
        assert.equal(read.code, 0, JSON.stringify(read.out));
        assert.equal(read.out.result.contents[0].mimeType, 'image/jpeg');
        assert.equal(Buffer.from(read.out.result.contents[0].blob, 'base64').subarray(0, 2).toString('hex'), 'ffd8');

        const refused = await inspect(transport, era, ['--method', 'tools/call', '--tool-name', 'run',
          '--tool-args-json', JSON.stringify({ target: 'local', command: 'shutdown now' })]);
        assert.notEqual(refused.code, 0);
        assert.match(JSON.stringify(refused.out), /policies\.run\.deny/);
      });
    }
  }
});
