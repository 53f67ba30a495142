// The 2026-07-28 revision beside 2025-11-25, through the official v2 client packages
// (@modelcontextprotocol/client) over stdio and Streamable HTTP: stateless requests with
// server/discover, confirmations as input_required results whose requestState is bound to the
// call, and the assistant's attempts to forge, replay or re-target that state.
import { describe, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { gatewayTable, rawHttpClient, rawStdioClient, startHttpGateway, stopProcess, textOf, which } from './helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = process.env.LABGATE_BIN || path.resolve(here, '../../build/labgate');
const TIMEOUT_MS = 60_000;
const MODERN = '2026-07-28';

const metaFor = (capabilities = {}) => ({
  'io.modelcontextprotocol/protocolVersion': MODERN,
  'io.modelcontextprotocol/clientCapabilities': capabilities,
  'io.modelcontextprotocol/clientInfo': { name: 'raw-modern', version: '1' },
});

for (const transportKind of ['stdio', 'http']) {
  describe(`2026-07-28 over ${transportKind} with the v2 client`, () => {
    let tmp;
    let configPath;
    let auditPath;
    let gateway;
    let url;
    let token;
    let raw; // sends one raw JSON-RPC request and returns the answer (for what a client library would not send)
    const cleanups = [];

    async function connect(name, { era = { pin: MODERN }, elicit } = {}) {
      const transport = transportKind === 'stdio'
        ? new StdioClientTransport({ command: bin, args: ['mcp', '--config', configPath], stderr: 'inherit' })
        : new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
      const client = new Client({ name, version: '2.0.0' }, {
        capabilities: elicit ? { elicitation: { form: {} } } : {},
        versionNegotiation: { mode: era },
      });
      if (elicit) client.setRequestHandler('elicitation/create', elicit);
      await client.connect(transport, { timeout: TIMEOUT_MS });
      cleanups.push(() => client.close());
      return client;
    }

    const audit = () => fs.readFileSync(auditPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l));

    before(async () => {
      assert.ok(fs.existsSync(bin), `labgate binary not found at ${bin}`);
      assert.ok(which('bwrap'), 'bubblewrap is not installed (Debian: apt install bubblewrap)');
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), `labgate-modern-${transportKind}-`));
      configPath = path.join(tmp, 'hosts.toml');
      auditPath = path.join(tmp, 'audit', 'audit.jsonl');
      fs.writeFileSync(configPath, [
        ...await gatewayTable(tmp, auditPath),
        '[policies.run]',
        'deny = ["shutdown *"]',
        '',
        '[local]',
        'capabilities = ["run"]',
        '',
      ].join('\n'));
      if (transportKind === 'http') {
        ({ gateway, url } = await startHttpGateway(bin, configPath, tmp));
        token = fs.readFileSync(path.join(tmp, 'state', 'http.token'), 'utf8').trim();
        raw = rawHttpClient(url, token).call;
      } else {
        const stdio = rawStdioClient(bin, configPath);
        raw = stdio.call;
        cleanups.push(() => stdio.stop());
      }
    }, { timeout: TIMEOUT_MS });

    after(async () => {
      for (const c of cleanups) await Promise.resolve().then(c).catch(() => {});
      await stopProcess(gateway);
      if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });

    test('modern: discover, list tools, run on local, a refusal names its rule', { timeout: TIMEOUT_MS }, async () => {
      const client = await connect('v2-modern');
      assert.equal(client.getProtocolEra(), 'modern');
      const discovered = client.getDiscoverResult();
      assert.ok(discovered.supportedVersions.includes(MODERN));
      assert.ok(discovered.supportedVersions.includes('2025-11-25'));
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), ['camera', 'file', 'location', 'run', 'screen', 'targets']);
      const ran = await client.callTool({ name: 'run', arguments: { target: 'local', command: 'echo modern' } });
      assert.equal(ran.isError, false, textOf(ran));
      assert.equal(ran.structuredContent.results[0].stdout, 'modern\n');
      const refused = await client.callTool({ name: 'run', arguments: { target: 'local', command: 'shutdown now' } });
      assert.equal(refused.isError, true);
      assert.match(textOf(refused), /policies\.run\.deny/);
      const intent = audit().find((r) => r.kind === 'intent' && JSON.stringify(r.payload).includes('echo modern'));
      assert.equal(intent.who.client.name, 'v2-modern');
    });

    test('legacy and auto negotiation reach the same tools', { timeout: TIMEOUT_MS }, async () => {
      const legacy = await connect('v2-legacy', { era: 'legacy' });
      assert.equal(legacy.getProtocolEra(), 'legacy');
      assert.equal((await legacy.callTool({ name: 'run', arguments: { target: 'local', command: 'echo legacy' } }))
        .structuredContent.results[0].stdout, 'legacy\n');
      const auto = await connect('v2-auto', { era: 'auto' });
      assert.equal(auto.getProtocolEra(), 'modern');
    });

    test('a destructive command is confirmed through input_required: accept runs it, decline does not',
      { timeout: TIMEOUT_MS }, async () => {
        let answer = 'accept';
        const asked = [];
        const client = await connect('v2-confirm', {
          elicit: async (request) => {
            asked.push(request.params);
            return answer === 'accept' ? { action: 'accept', content: { confirm: true } } : { action: 'decline' };
          },
        });
        const victim = fs.mkdtempSync(path.join(tmp, 'victim-'));
        const accepted = await client.callTool({ name: 'run', arguments: { target: 'local', command: ['rm', '-r', victim] } });
        assert.equal(accepted.isError, false, textOf(accepted));
        assert.equal(fs.existsSync(victim), false);
        assert.equal(asked.length, 1);
        assert.match(asked[0].message, /rm -r/);
        assert.ok(audit().some((r) => r.event === 'confirmation.accepted' && /input_required/.test(r.details.who)));

        answer = 'decline';
        const kept = fs.mkdtempSync(path.join(tmp, 'kept-'));
        const declined = await client.callTool({ name: 'run', arguments: { target: 'local', command: ['rm', '-r', kept] } });
        assert.equal(declined.isError, true);
        assert.match(textOf(declined), /declined/);
        assert.equal(fs.existsSync(kept), true);
      });

    test('a client without elicitation gets the approval-request path', { timeout: TIMEOUT_MS }, async () => {
      const client = await connect('v2-plain');
      const kept = fs.mkdtempSync(path.join(tmp, 'plain-'));
      const r = await client.callTool({ name: 'run', arguments: { target: 'local', command: ['rm', '-r', kept] } });
      assert.equal(r.structuredContent.results[0].decision, 'approval-pending', textOf(r));
      assert.equal(fs.existsSync(kept), true);
    });

    test('the assistant cannot forge, tamper with, replay or re-target a requestState', { timeout: TIMEOUT_MS }, async () => {
      const caps = { elicitation: { form: {} } };
      const victim = fs.mkdtempSync(path.join(tmp, 'forge-'));
      const other = fs.mkdtempSync(path.join(tmp, 'other-'));
      const call = (dir, extra = {}) => raw('tools/call', { name: 'run',
        arguments: { target: 'local', command: ['rm', '-r', dir] }, _meta: metaFor(caps), ...extra });
      const yes = { 'labgate-confirm': { action: 'accept', content: { confirm: true } } };
      const refusals = () => audit().filter((r) => r.event === 'request-state.refused').length;

      // An answer the server never asked for.
      let before = refusals();
      const unasked = await call(victim, { inputResponses: yes });
      assert.equal(unasked.result.isError, true);
      assert.match(unasked.result.content[0].text, /without the requestState/);
      // A state made up by the assistant.
      const forged = await call(victim, { inputResponses: yes, requestState: 'eyJ2IjoxfQ.AAAA' });
      assert.match(forged.result.content[0].text, /not issued by this gateway or was altered/);
      assert.equal(fs.existsSync(victim), true);
      assert.equal(refusals(), before + 2);

      // The real question, then a tampered copy of its state.
      const asked = await call(victim);
      assert.equal(asked.result.resultType, 'input_required', JSON.stringify(asked));
      const state = asked.result.requestState;
      assert.equal(asked.result.inputRequests['labgate-confirm'].method, 'elicitation/create');
      const [body, mac] = state.split('.');
      const decoded = JSON.parse(Buffer.from(body, 'base64url').toString());
      decoded.a = decoded.a.replace(/^./, (c) => (c === '0' ? '1' : '0'));
      const tampered = `${Buffer.from(JSON.stringify(decoded)).toString('base64url')}.${mac}`;
      assert.match((await call(victim, { inputResponses: yes, requestState: tampered })).result.content[0].text,
        /altered/);
      // Re-targeted: the state of one directory used to delete another.
      assert.match((await call(other, { inputResponses: yes, requestState: state })).result.content[0].text,
        /other arguments/);
      assert.equal(fs.existsSync(other), true);
      // The genuine answer runs it once...
      const ran = await call(victim, { inputResponses: yes, requestState: state });
      assert.equal(ran.result.isError, false, JSON.stringify(ran.result));
      assert.equal(fs.existsSync(victim), false);
      // ...and replaying it does nothing more.
      fs.mkdirSync(victim);
      before = refusals();
      const replayed = await call(victim, { inputResponses: yes, requestState: state });
      assert.match(replayed.result.content[0].text, /already used/);
      assert.equal(fs.existsSync(victim), true);
      assert.equal(refusals(), before + 1);
    });

    test('malformed modern requests get the revision\'s errors', { timeout: TIMEOUT_MS }, async () => {
      const noCaps = await raw('tools/list', { _meta: { 'io.modelcontextprotocol/protocolVersion': MODERN } });
      assert.equal(noCaps.error.code, -32602);
      const future = await raw('tools/list', { _meta: { ...metaFor(), 'io.modelcontextprotocol/protocolVersion': '2099-01-01' } });
      assert.equal(future.error.code, -32022);
      assert.ok(future.error.data.supported.includes(MODERN));
      assert.equal(future.error.data.requested, '2099-01-01');
      const gone = await raw('logging/setLevel', { level: 'debug', _meta: metaFor() });
      assert.equal(gone.error.code, -32601);
      const listed = await raw('tools/list', { _meta: metaFor() });
      assert.equal(listed.result.resultType, 'complete');
      assert.equal(typeof listed.result.ttlMs, 'number');
      assert.equal(listed.result.cacheScope, 'public');
      assert.equal(listed.result._meta['io.modelcontextprotocol/serverInfo'].name, 'labgate');
      if (transportKind === 'http') {
        assert.equal(future.status, 400);
        assert.equal(gone.status, 404);
        const res = await fetch(url, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json',
            accept: 'application/json, text/event-stream', 'mcp-protocol-version': MODERN, 'mcp-method': 'tools/list' },
          body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'run', _meta: metaFor() } }),
        });
        assert.equal(res.status, 400);
        assert.equal((await res.json()).error.code, -32020);
      }
    });
  });
}
