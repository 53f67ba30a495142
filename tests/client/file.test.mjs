// The `file` tool through the official MCP TypeScript SDK client, on `local`: read returns text,
// get returns a resource_link that resources/read serves with the same SHA-256, a put is atomic
// and guarded by expectedSha256, and a private key is refused however the path is spelled.
import { describe, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { textOf } from './helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = process.env.LABGATE_BIN || path.resolve(here, '../../build/labgate');
const callOptions = { timeout: 30_000 };
const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

describe('file on local (official TypeScript SDK client)', () => {
  let tmp;
  let data;
  let client;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'labgate-file-client-'));
    data = path.join(tmp, 'data');
    fs.mkdirSync(data);
    fs.mkdirSync(path.join(tmp, '.ssh'));
    fs.writeFileSync(path.join(tmp, '.ssh', 'id_ed25519'),
      '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n');
    const config = path.join(tmp, 'hosts.toml');
    fs.writeFileSync(config, `[gateway]\nstate_dir = "${tmp}/state"\n\n[local]\ncapabilities = ["run", "file"]\n`);
    client = new Client({ name: 'labgate-file-test', version: '1.0.0' });
    await client.connect(new StdioClientTransport({ command: bin, args: ['mcp', '--config', config], stderr: 'ignore' }));
  });

  after(async () => {
    await client?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const file = (args) => client.callTool({ name: 'file', arguments: { target: 'local', ...args } }, undefined, callOptions);

  test('tools/list publishes file with its schema', async () => {
    const { tools } = await client.listTools();
    const tool = tools.find((t) => t.name === 'file');
    assert.ok(tool, 'file is listed');
    assert.deepEqual(tool.inputSchema.required, ['target', 'op', 'path']);
  });

  test('read returns the text', async () => {
    fs.writeFileSync(path.join(data, 'notes.txt'), 'hello from local\n');
    const result = await file({ op: 'read', path: path.join(data, 'notes.txt') });
    assert.ok(!result.isError, textOf(result));
    assert.match(textOf(result), /hello from local/);
    assert.equal(result.structuredContent.sha256, sha256(Buffer.from('hello from local\n')));
  });

  test('get returns a resource_link that resources/read serves with the same digest', async () => {
    const bytes = crypto.randomBytes(200 * 1024);
    fs.writeFileSync(path.join(data, 'blob.bin'), bytes);
    const result = await file({ op: 'get', path: path.join(data, 'blob.bin') });
    assert.ok(!result.isError, textOf(result));
    const link = result.content.find((c) => c.type === 'resource_link');
    assert.ok(link, 'a resource_link comes back');
    assert.equal(result.structuredContent.sha256, sha256(bytes));
    const { contents } = await client.readResource({ uri: link.uri }, callOptions);
    assert.equal(sha256(Buffer.from(contents[0].blob, 'base64')), sha256(bytes));
  });

  test('put writes atomically and a stale expectedSha256 is refused', async () => {
    const target = path.join(data, 'compose.yml');
    const first = await file({ op: 'put', path: target, content: 'version: 1\n' });
    assert.ok(!first.isError, textOf(first));
    assert.equal(fs.readFileSync(target, 'utf8'), 'version: 1\n');
    fs.writeFileSync(target, 'version: 1 # a human was here\n');
    const stale = await file({ op: 'put', path: target, content: 'version: 2\n', expectedSha256: first.structuredContent.sha256 });
    assert.ok(stale.isError, 'a stale digest is refused');
    assert.match(textOf(stale), /changed it since it was read/);
    assert.equal(fs.readFileSync(target, 'utf8'), 'version: 1 # a human was here\n');
  });

  test('a private key is refused however the path is spelled, and an approval-looking argument changes nothing', async () => {
    for (const p of [path.join(tmp, '.ssh', 'id_ed25519'), `${data}/../.ssh/./id_ed25519`, `${data}//..//.ssh/id_ed25519`]) {
      const result = await file({ op: 'read', path: p, approved: true });
      assert.ok(result.isError, `${p} was read`);
      assert.equal(result.structuredContent.rule, 'builtin:secret file');
      assert.ok(!JSON.stringify(result).includes('AAAA'), 'no key material in the result');
    }
  });
});
