// MCP over Streamable HTTP: a real `labgate gateway` with [gateway] http_listen, driven by the
// official TypeScript SDK's StreamableHTTPClientTransport and by plain fetch() for what a client
// library would never send (no token, a wrong one, a foreign Origin, a 10 MB body).
import { describe, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import https from 'node:https';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { freePort, startHttpGateway, stopProcess, textOf, waitFor, which } from './helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = process.env.LABGATE_BIN || path.resolve(here, '../../build/labgate');
const TIMEOUT_MS = 60_000;
const callOptions = { timeout: TIMEOUT_MS };

describe('MCP over Streamable HTTP with the official SDK client', () => {
  let tmp;
  let configPath;
  let state;
  let auditPath;
  let gateway;
  let url;
  let token;
  const clients = [];

  const labgate = (...args) => execFileSync(bin, [...args, '--config', configPath],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

  async function connect(name, { elicit, headers } = {}) {
    const transport = new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: headers ?? { Authorization: `Bearer ${token}` } },
    });
    const client = new Client({ name, version: '1.0.0' }, elicit ? { capabilities: { elicitation: {} } } : {});
    if (elicit) client.setRequestHandler(ElicitRequestSchema, elicit);
    await client.connect(transport, callOptions);
    clients.push(client);
    return client;
  }

  const post = (body, headers = {}) => fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

  const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'fetch', version: '1' } } };

  const auditRecords = () => fs.readFileSync(auditPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l));

  before(async () => {
    assert.ok(fs.existsSync(bin), `labgate binary not found at ${bin}; build it first or set LABGATE_BIN`);
    assert.ok(which('bwrap'), 'bubblewrap is not installed (Debian: apt install bubblewrap)');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'labgate-http-'));
    state = path.join(tmp, 'state');
    auditPath = path.join(tmp, 'audit', 'audit.jsonl');
    configPath = path.join(tmp, 'hosts.toml');
    const [agentPort, httpPort] = [await freePort(), await freePort()];
    fs.writeFileSync(configPath, [
      '[gateway]',
      `listen = "127.0.0.1:${agentPort}"`,
      `http_listen = "127.0.0.1:${httpPort}"`,
      `state_dir = ${JSON.stringify(state)}`,
      `audit_log = ${JSON.stringify(auditPath)}`,
      '',
      '[policies.run]',
      'mode = "confirm-destructive"',
      'deny = ["shutdown *"]',
      '',
      '[local]',
      'capabilities = ["run"]',
      '',
    ].join('\n'));
    ({ gateway, url } = await startHttpGateway(bin, configPath, tmp));
    assert.equal(url, `http://127.0.0.1:${httpPort}/mcp`);
    token = fs.readFileSync(path.join(state, 'http.token'), 'utf8').trim();
    assert.equal(fs.statSync(path.join(state, 'http.token')).mode & 0o777, 0o600);
  }, { timeout: TIMEOUT_MS });

  after(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await stopProcess(gateway);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('lists tools and runs a command on local', { timeout: TIMEOUT_MS }, async () => {
    const client = await connect('http-basic');
    const { tools } = await client.listTools(undefined, callOptions);
    assert.deepEqual(tools.map((t) => t.name).sort(), ['camera', 'file', 'location', 'run', 'screen', 'targets']);
    const progress = [];
    const result = await client.callTool({ name: 'run', arguments: { target: 'local', command: 'echo over-http' } },
      undefined, { ...callOptions, onprogress: (p) => progress.push(p) });
    assert.equal(result.isError, false, textOf(result));
    assert.equal(result.structuredContent.results[0].stdout, 'over-http\n');
    assert.ok(progress.length >= 1, 'progress travels on the call\'s event stream');
    const { resources } = await client.listResources(undefined, callOptions);
    assert.ok(Array.isArray(resources));
    const intent = auditRecords().find((r) => r.kind === 'intent' && JSON.stringify(r).includes('over-http'));
    assert.ok(intent, 'the call was audited');
    assert.equal(intent.who.via, 'mcp-http');
    assert.equal(intent.who.osUser, 'http 127.0.0.1');
  });

  test('a refusal names the rule that refused', { timeout: TIMEOUT_MS }, async () => {
    const client = await connect('http-refusal');
    const result = await client.callTool({ name: 'run', arguments: { target: 'local', command: 'shutdown now' } },
      undefined, callOptions);
    assert.equal(result.isError, true);
    assert.match(textOf(result), /hosts\.toml:\d+ policies\.run\.deny/);
  });

  test('a destructive command is confirmed through elicitation on the call\'s stream: accept and decline',
    { timeout: TIMEOUT_MS }, async () => {
      let answer = 'accept';
      const asked = [];
      const client = await connect('http-elicit', {
        elicit: async (request) => {
          asked.push(request.params.message);
          return answer === 'accept' ? { action: 'accept', content: { confirm: true } } : { action: 'decline' };
        },
      });
      const victim = fs.mkdtempSync(path.join(tmp, 'victim-'));
      const accepted = await client.callTool({ name: 'run', arguments: { target: 'local', command: ['rm', '-r', victim] } },
        undefined, callOptions);
      assert.equal(accepted.isError, false, textOf(accepted));
      assert.equal(fs.existsSync(victim), false);
      assert.equal(asked.length, 1);
      assert.match(asked[0], /rm -r/);

      answer = 'decline';
      const kept = fs.mkdtempSync(path.join(tmp, 'kept-'));
      const declined = await client.callTool({ name: 'run', arguments: { target: 'local', command: ['rm', '-r', kept] } },
        undefined, callOptions);
      assert.equal(declined.isError, true);
      assert.match(textOf(declined), /declined/);
      assert.equal(fs.existsSync(kept), true);
    });

  test('without a token: 401 with a WWW-Authenticate challenge naming the resource metadata', async () => {
    const res = await post(initialize);
    assert.equal(res.status, 401);
    const challenge = res.headers.get('www-authenticate');
    assert.match(challenge, /^Bearer resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/mcp"$/);
    const meta = await fetch(challenge.match(/"(.*)"/)[1]);
    assert.equal(meta.status, 200);
    const doc = await meta.json();
    assert.equal(doc.resource, url);
    assert.deepEqual(doc.bearer_methods_supported, ['header']);
    // The SDK client says so too, instead of hanging or crashing.
    await assert.rejects(connect('no-token', { headers: {} }));
  });

  test('a wrong token: 401, audited without the token; a token in the URL does not count', async () => {
    const before = auditRecords().filter((r) => r.event === 'http.refused').length;
    const wrong = 'x'.repeat(token.length);
    const res = await post(initialize, { authorization: `Bearer ${wrong}` });
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate'), /error="invalid_token"/);
    const inUrl = await fetch(`${url}?access_token=${token}`, {
      method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify(initialize),
    });
    assert.equal(inUrl.status, 401);
    const refused = await waitFor('the refusal in the audit log', () => {
      const r = auditRecords().filter((x) => x.event === 'http.refused');
      return r.length > before ? r : null;
    });
    assert.match(JSON.stringify(refused.at(-1)), /wrong bearer token/);
    const everything = fs.readFileSync(auditPath, 'utf8') + fs.readFileSync(path.join(tmp, 'gateway.log'), 'utf8');
    assert.ok(!everything.includes(token), 'the real token is never logged');
    assert.ok(!everything.includes(wrong), 'nor the wrong one');
  });

  test('a foreign Origin: 403, even with the right token; the listener\'s own origin passes', async () => {
    const bad = await post(initialize, { authorization: `Bearer ${token}`, origin: 'https://evil.example' });
    assert.equal(bad.status, 403);
    const nul = await post(initialize, { authorization: `Bearer ${token}`, origin: 'null' });
    assert.equal(nul.status, 403);
    const own = await post(initialize, { authorization: `Bearer ${token}`, origin: new URL(url).origin });
    assert.equal(own.status, 200);
    assert.match(own.headers.get('mcp-session-id'), /^[0-9a-f]{32}$/);
  });

  test('a 10 MB body: 413 without harm; the gateway keeps serving', { timeout: TIMEOUT_MS }, async () => {
    const huge = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call',
      params: { name: 'run', arguments: { target: 'local', command: `echo ${'a'.repeat(10 * 1024 * 1024)}` } } });
    const res = await post(huge, { authorization: `Bearer ${token}` });
    assert.equal(res.status, 413);
    assert.match(await res.text(), /http_max_body_bytes/);
    const client = await connect('after-413');
    const r = await client.callTool({ name: 'targets', arguments: {} }, undefined, callOptions);
    assert.equal(r.isError, false);
    assert.equal(gateway.exitedWith, undefined);
  });

  test('malformed messages get JSON-RPC errors, unknown sessions 404', async () => {
    const auth = { authorization: `Bearer ${token}` };
    assert.equal((await post('{"jsonrpc":', auth)).status, 400);
    assert.equal((await post('[' .repeat(100000), auth)).status, 400);
    const batch = await post([initialize], auth);
    assert.equal(batch.status, 400);
    assert.match((await batch.json()).error.message, /batches/);
    const noSession = await post({ jsonrpc: '2.0', id: 2, method: 'tools/list' }, auth);
    assert.equal(noSession.status, 400);
    const unknown = await post({ jsonrpc: '2.0', id: 2, method: 'tools/list' }, { ...auth, 'mcp-session-id': 'f'.repeat(32) });
    assert.equal(unknown.status, 404);
    const version = await post(initialize, { ...auth, 'mcp-protocol-version': '1999-01-01' });
    assert.equal(version.status, 400);
  });

  test('a command the assistant runs on local cannot read the token or reach the endpoint without it',
    { timeout: TIMEOUT_MS }, async () => {
      // A careless human accepts every confirmation, so only the sandbox and the token stand in the way.
      const client = await connect('http-adversary', { elicit: async () => ({ action: 'accept', content: { confirm: true } }) });
      const tokenPath = path.join(state, 'http.token');
      const read = await client.callTool({ name: 'run', arguments: { target: 'local', command: ['cat', tokenPath] } },
        undefined, callOptions);
      assert.ok(!JSON.stringify(read).includes(token), 'the token leaked to a command');
      const script = `fetch(${JSON.stringify(url)}, {method:'POST', headers:{'content-type':'application/json'}, ` +
        `body: ${JSON.stringify(JSON.stringify(initialize))}}).then(r => console.log('status', r.status))`;
      const probe = await client.callTool({ name: 'run', arguments: { target: 'local', command: [process.execPath, '-e', script] } },
        undefined, callOptions);
      assert.match(probe.structuredContent.results[0].stdout ?? '', /status 401/, JSON.stringify(probe.structuredContent));
    });

  test('100 concurrent clients are all answered', { timeout: 120_000 }, async () => {
    const results = await Promise.all(Array.from({ length: 100 }, async (_, i) => {
      const client = await connect(`crowd-${i}`);
      const r = await client.callTool({ name: 'run', arguments: { target: 'local', command: ['echo', `n${i}`] } },
        undefined, callOptions);
      await client.close();
      return r.structuredContent?.results?.[0]?.stdout;
    }));
    assert.deepEqual(results, Array.from({ length: 100 }, (_, i) => `n${i}\n`));
    // The gateway still answers the operator.
    labgate('nodes', 'list');
  });
});

describe('MCP over HTTPS: TLS from the operator\'s certificate and key files', () => {
  let tmp;
  let gateway;
  let port;
  let cert;
  let token;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'labgate-https-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', path.join(tmp, 'key.pem'), '-out', path.join(tmp, 'cert.pem')], { stdio: 'ignore' });
    cert = fs.readFileSync(path.join(tmp, 'cert.pem'));
    token = 'T'.repeat(40);
    fs.writeFileSync(path.join(tmp, 'token'), `${token}\n`, { mode: 0o600 });
    port = await freePort();
    const configPath = path.join(tmp, 'hosts.toml');
    fs.writeFileSync(configPath, [
      '[gateway]',
      `listen = "127.0.0.1:${await freePort()}"`,
      `http_listen = "127.0.0.1:${port}"`,
      'http_token_file = "token"',
      'http_tls_cert_file = "cert.pem"',
      'http_tls_key_file = "key.pem"',
      `state_dir = ${JSON.stringify(path.join(tmp, 'state'))}`,
      `audit_log = ${JSON.stringify(path.join(tmp, 'audit.jsonl'))}`,
      '',
    ].join('\n'));
    let url;
    ({ gateway, url } = await startHttpGateway(bin, configPath, tmp));
    assert.equal(url, `https://127.0.0.1:${port}/mcp`);
  }, { timeout: TIMEOUT_MS });

  after(async () => {
    await stopProcess(gateway);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const request = (body, headers) => new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/mcp', method: 'POST', ca: cert,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers } },
    (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });

  test('initialize over TLS with the token from http_token_file; plain HTTP on that port gets nothing', async () => {
    const init = { jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'https', version: '1' } } };
    const ok = await request(init, { authorization: `Bearer ${token}` });
    assert.equal(ok.status, 200);
    assert.equal(JSON.parse(ok.text).result.serverInfo.name, 'labgate');
    assert.equal((await request(init, {})).status, 401);
    // A client speaking plain HTTP to the TLS port is not answered in clear text.
    const plain = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write('POST /mcp HTTP/1.1\r\nHost: x\r\n\r\n'));
      let got = '';
      socket.on('data', (d) => { got += d; });
      socket.on('close', () => resolve(got));
      socket.on('error', () => resolve(got));
    });
    assert.ok(!plain.includes('HTTP/1.1 200'), plain);
  });
});
