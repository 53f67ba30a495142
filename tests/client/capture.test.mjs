// screen on a paired node, through the official MCP TypeScript SDK client: a real gateway daemon,
// a real node agent paired with a code, and an Xvfb screen the node's x11 backend captures.
// Capability policy refusals (approved_nodes, a target's own capability list) name their rule.
import { describe, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { freePort, sleep, textOf, waitFor, which } from './helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = process.env.LABGATE_BIN || path.resolve(here, '../../build/labgate');
const TIMEOUT_MS = 30_000;
const callOptions = { timeout: TIMEOUT_MS };
const SCREEN_W = 320;
const SCREEN_H = 240;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function pngHeader(buf) {
  assert.ok(buf.length > 33, `a PNG is longer than ${buf.length} bytes`);
  assert.deepEqual(buf.subarray(0, 8), PNG_SIGNATURE, 'PNG signature');
  assert.equal(buf.toString('latin1', 12, 16), 'IHDR', 'the first chunk is IHDR');
  return {
    width: buf.readUInt32BE(16),
    height: buf.readUInt32BE(20),
    bitDepth: buf[24],
    colourType: buf[25],
  };
}

const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

describe('screen on a paired node and capability policy (official TypeScript SDK client)', () => {
  let tmp;
  let configPath;
  let display;
  const children = [];
  let client;

  const labgate = (...args) => execFileSync(bin, [...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

  function start(command, args, name, env = process.env) {
    const log = fs.openSync(path.join(tmp, `${name}.log`), 'w');
    const child = spawn(command, args, { stdio: ['ignore', log, log], env });
    fs.closeSync(log);
    children.push({ child, name });
    child.on('exit', (code, signal) => {
      child.exitedWith = { code, signal };
    });
    return child;
  }

  function alive(child, name) {
    if (child.exitedWith) {
      const log = fs.readFileSync(path.join(tmp, `${name}.log`), 'utf8');
      throw new Error(`${name} exited (${JSON.stringify(child.exitedWith)}):\n${log}`);
    }
    return true;
  }

  function setRoot(colour) {
    execFileSync('xsetroot', ['-display', display, '-solid', colour], { stdio: ['ignore', 'pipe', 'pipe'] });
  }

  async function screen(args, options = callOptions) {
    return client.callTool({ name: 'screen', arguments: { target: 'desk', ...args } }, undefined, options);
  }

  before(async () => {
    assert.ok(fs.existsSync(bin), `labgate binary not found at ${bin}; build it first or set LABGATE_BIN to its path`);
    for (const program of ['Xvfb', 'xsetroot', 'ffmpeg']) {
      assert.ok(which(program), `${program} is not installed: the screen test needs Xvfb, xsetroot and ffmpeg ` +
        '(Debian: apt install xvfb x11-xserver-utils ffmpeg)');
    }

    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'labgate-capture-'));
    // A display number unlikely to clash with a real one or a parallel run; skip ones in use.
    const base = 400 + (process.pid % 200);
    const displayNumber = Array.from({ length: 50 }, (_, i) => base + i).find(
      (n) => !fs.existsSync(`/tmp/.X11-unix/X${n}`) && !fs.existsSync(`/tmp/.X${n}-lock`));
    assert.ok(displayNumber !== undefined, `X displays :${base} to :${base + 49} are all in use`);
    display = `:${displayNumber}`;
    const socket = `/tmp/.X11-unix/X${displayNumber}`;

    // -noreset: without it the server resets (and forgets the root colour) when its last client leaves.
    const xvfb = start('Xvfb', [display, '-screen', '0', `${SCREEN_W}x${SCREEN_H}x24`, '-nolisten', 'tcp', '-noreset'],
      'xvfb');
    await waitFor(`Xvfb on ${display}`, () => alive(xvfb, 'xvfb') && fs.existsSync(socket));

    const port = await freePort();
    configPath = path.join(tmp, 'hosts.toml');
    fs.writeFileSync(configPath, [
      '[gateway]',
      `listen = "127.0.0.1:${port}"`,
      `state_dir = ${JSON.stringify(path.join(tmp, 'state'))}`,
      '',
      '[local]',
      'capabilities = ["run", "camera"]',
      '',
      '[policies.camera]',
      'enabled = true',
      'approved_nodes = ["phone"]',
      '',
      '[[nodes]]',
      'id = "desk"',
      'device = "test desk"',
      'owner = "test"',
      'purpose = "screen test"',
      'capabilities = ["run", "screen"]',
      '',
      '[[nodes]]',
      'id = "phone"',
      'device = "test phone"',
      'owner = "test"',
      'purpose = "only named by policies.camera.approved_nodes; never connects"',
      'capabilities = ["camera"]',
      '',
    ].join('\n'));
    labgate('targets', '--config', configPath); // fails loudly on a schema problem

    const gateway = start(bin, ['gateway', '--config', configPath], 'gateway');
    await waitFor('the gateway daemon', () => alive(gateway, 'gateway') &&
      (labgate('nodes', 'list', '--config', configPath), true));

    const pairing = JSON.parse(labgate('pair', 'new', '--node', 'desk', '--caps', 'run,screen', '--config', configPath,
      '--json'));
    assert.match(pairing.code, /^lgpair1\./);
    const nodeDir = path.join(tmp, 'node');
    labgate('node', 'pair', pairing.code, '--state-dir', nodeDir);
    fs.writeFileSync(path.join(nodeDir, 'device.toml'), ['[screen]', 'backend = "x11"', `display = "${display}"`, '']
      .join('\n'));

    // The node must find its screen through device.toml, not through an inherited DISPLAY.
    const nodeEnv = { ...process.env };
    delete nodeEnv.DISPLAY;
    delete nodeEnv.WAYLAND_DISPLAY;
    const node = start(bin, ['node', 'run', '--state-dir', nodeDir], 'node', nodeEnv);
    await waitFor('node desk online', () => {
      alive(gateway, 'gateway');
      alive(node, 'node');
      const { targets } = JSON.parse(labgate('targets', '--config', configPath, '--json'));
      return targets.find((t) => t.id === 'desk')?.online === true;
    });

    const transport = new StdioClientTransport({ command: bin, args: ['mcp', '--config', configPath], stderr: 'inherit' });
    client = new Client({ name: 'labgate-capture-test', version: '1.0.0' });
    await client.connect(transport, callOptions);
  }, { timeout: TIMEOUT_MS });

  after(async () => {
    await client?.close();
    for (const { child } of children.reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      try {
        process.kill(child.pid, 'SIGTERM');
      } catch {
        continue;
      }
      const timer = setTimeout(() => {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }, 3000);
      await exited;
      clearTimeout(timer);
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  let snapshot; // the first snapshot's result, for the resources/read test

  test('screen snapshot on a node is a PNG of the whole X screen', { timeout: TIMEOUT_MS }, async () => {
    setRoot('#ff0000');
    const result = await screen({});
    assert.ok(!result.isError, `unexpected error: ${textOf(result)}`);

    const images = result.content.filter((b) => b.type === 'image');
    assert.equal(images.length, 1, `expected one image block in ${JSON.stringify(result.content.map((b) => b.type))}`);
    const [image] = images;
    assert.equal(image.mimeType, 'image/png');
    const png = Buffer.from(image.data, 'base64');
    const header = pngHeader(png);
    assert.equal(header.width, SCREEN_W);
    assert.equal(header.height, SCREEN_H);
    assert.ok([2, 6].includes(header.colourType), `PNG colour type ${header.colourType} is not RGB or RGBA`);

    const s = result.structuredContent;
    assert.equal(s.target, 'desk');
    assert.equal(s.via, 'node');
    assert.equal(s.action, 'screen.snapshot');
    assert.equal(s.format, 'png');
    assert.equal(s.mimeType, 'image/png');
    assert.equal(s.width, SCREEN_W);
    assert.equal(s.height, SCREEN_H);
    assert.equal(s.bytes, png.length);
    assert.equal(s.error, null);
    assert.equal(s.sha256, sha256(png));
    assert.equal(typeof s.uri, 'string', `no uri in ${JSON.stringify(s)}`);
    snapshot = { uri: s.uri, png };

    // A different picture on the screen gives a different PNG.
    setRoot('#0000ff');
    const second = await screen({ action: 'snapshot' });
    assert.ok(!second.isError, `unexpected error: ${textOf(second)}`);
    const png2 = Buffer.from(second.content.find((b) => b.type === 'image').data, 'base64');
    assert.deepEqual(pngHeader(png2), header);
    assert.notEqual(sha256(png2), sha256(png), 'the screen changed colour but the snapshot did not');
    assert.notEqual(second.structuredContent.uri, s.uri);
  });

  test('resources/read of the snapshot uri returns the same bytes', { timeout: TIMEOUT_MS }, async () => {
    assert.ok(snapshot, 'the snapshot test did not get as far as a uri');
    const { contents } = await client.readResource({ uri: snapshot.uri }, callOptions);
    assert.equal(contents.length, 1);
    const [content] = contents;
    assert.equal(content.uri, snapshot.uri);
    assert.equal(content.mimeType, 'image/png');
    assert.equal(typeof content.blob, 'string', 'expected a blob (base64) resource');
    assert.ok(Buffer.from(content.blob, 'base64').equals(snapshot.png), 'resources/read returned other bytes');
  });

  test('screen record returns an mp4 and reports progress', { timeout: TIMEOUT_MS }, async () => {
    const progress = [];
    const result = await screen({ action: 'record', durationMs: 1500 }, {
      ...callOptions,
      onprogress: (p) => progress.push(p),
    });
    assert.ok(!result.isError, `unexpected error: ${textOf(result)}`);

    const resources = result.content.filter((b) => b.type === 'resource');
    assert.equal(resources.length, 1, `expected one resource block in ${JSON.stringify(result.content.map((b) => b.type))}`);
    const { resource } = resources[0];
    assert.equal(resource.mimeType, 'video/mp4');
    const mp4 = Buffer.from(resource.blob, 'base64');
    assert.ok(mp4.length > 8, `mp4 of ${mp4.length} bytes`);
    assert.equal(mp4.toString('latin1', 4, 8), 'ftyp', 'an mp4 starts with an ftyp box');

    const s = result.structuredContent;
    assert.equal(s.target, 'desk');
    assert.equal(s.via, 'node');
    assert.equal(s.action, 'screen.record');
    assert.equal(s.mimeType, 'video/mp4');
    assert.equal(s.bytes, mp4.length);
    assert.equal(resource.uri, s.uri);

    assert.ok(progress.length >= 1, 'no progress notification arrived while recording');
    let previous = -1;
    for (const p of progress) {
      assert.equal(typeof p.progress, 'number');
      assert.ok(p.progress > previous, `progress does not increase: ${JSON.stringify(progress)}`);
      previous = p.progress;
      if (p.total !== undefined) assert.ok(p.progress <= p.total, JSON.stringify(p));
    }
  });

  test('camera on local is refused by policies.camera.approved_nodes', { timeout: TIMEOUT_MS }, async () => {
    const result = await client.callTool({ name: 'camera', arguments: { target: 'local' } }, undefined, callOptions);
    assert.equal(result.isError, true, textOf(result));
    assert.equal(result.structuredContent.rule, 'policies.camera.approved_nodes');
    assert.equal(result.structuredContent.decision, 'refused');
    assert.equal(result.structuredContent.via, 'local');
    assert.ok(textOf(result).includes('policies.camera.approved_nodes'), textOf(result));
    assert.ok(!result.content.some((b) => b.type === 'image'), 'a refused capture returned a picture');
  });

  test('a capability the target does not list is refused by its capabilities', { timeout: TIMEOUT_MS }, async () => {
    for (const [tool, target] of [['location', 'desk'], ['screen', 'local']]) {
      const result = await client.callTool({ name: tool, arguments: { target } }, undefined, callOptions);
      assert.equal(result.isError, true, textOf(result));
      const rule = `targets.${target}.capabilities`;
      assert.equal(result.structuredContent.rule, rule, JSON.stringify(result.structuredContent));
      assert.equal(result.structuredContent.decision, 'refused');
      assert.ok(textOf(result).includes(rule), textOf(result));
    }
  });
});
