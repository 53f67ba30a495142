// The 2026-07-28 tasks extension (io.modelcontextprotocol/tasks), over stdio and Streamable HTTP,
// as raw JSON-RPC: the v2 client packages do not consume task handles yet. labgate decides: a
// call that declared the extension and is still running after [gateway] task_after_ms is
// answered with a task handle and goes on; the client polls tasks/get, answers questions with
// tasks/update and stops it with tasks/cancel. A client that gives up on a request after a few
// seconds can still see a long command through.
import { describe, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { createTaskSessionFromClient, resultFromTaskOutcome } from '@modelcontextprotocol/ext-tasks/client';
import { gatewayTable, rawHttpClient, rawStdioClient, sleep, startHttpGateway, stopProcess, waitFor, which } from './helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = process.env.LABGATE_BIN || path.resolve(here, '../../build/labgate');
const TIMEOUT_MS = 60_000;
const MODERN = '2026-07-28';
const TASKS = 'io.modelcontextprotocol/tasks';

const metaFor = (capabilities = {}) => ({
  'io.modelcontextprotocol/protocolVersion': MODERN,
  'io.modelcontextprotocol/clientCapabilities': capabilities,
  'io.modelcontextprotocol/clientInfo': { name: 'raw-tasks', version: '1' },
});
const withTasks = (more = {}) => metaFor({ ...more, extensions: { [TASKS]: {} } });

// A labgate MCP server on `transportKind` with `taskAfterMs`, spoken to in raw JSON-RPC.
async function startServer(transportKind, taskAfterMs) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `labgate-mtasks-${transportKind}-`));
  const configPath = path.join(tmp, 'hosts.toml');
  const auditPath = path.join(tmp, 'audit', 'audit.jsonl');
  fs.writeFileSync(configPath, [
    ...await gatewayTable(tmp, auditPath, [`task_after_ms = ${taskAfterMs}`]),
    '[local]',
    'capabilities = ["run"]',
    '',
  ].join('\n'));
  const server = { tmp, configPath, audit: () => fs.readFileSync(auditPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l)) };
  if (transportKind === 'http') {
    const { gateway, url } = await startHttpGateway(bin, configPath, tmp);
    const token = fs.readFileSync(path.join(tmp, 'state', 'http.token'), 'utf8').trim();
    const http = rawHttpClient(url, token);
    Object.assign(server, { url, token, rawHttp: http.call, dispatch: http.dispatch, stop: () => stopProcess(gateway) });
    server.raw = (method, params) => http.call(method, params);
  } else {
    const stdio = rawStdioClient(bin, configPath);
    Object.assign(server, { raw: stdio.call, dispatch: stdio.dispatch, stop: stdio.stop });
  }
  return server;
}

// Polls tasks/get until `until(task)` holds; returns that task.
async function poll(server, taskId, until, what, timeoutMs = 30_000) {
  let last;
  return waitFor(what, async () => {
    const r = await server.raw('tasks/get', { taskId, _meta: withTasks() });
    assert.ok(r.result, JSON.stringify(r));
    last = r.result;
    return until(last) ? last : null;
  }, timeoutMs).catch((err) => { throw new Error(`${err.message}; last tasks/get: ${JSON.stringify(last)}`); });
}

const running = (marker) => execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n')
  .filter((l) => l.startsWith(`sleep ${marker}`));

for (const transportKind of ['stdio', 'http']) {
  describe(`2026-07-28 tasks extension over ${transportKind}`, () => {
    let server; // task_after_ms = 1500: quick calls answer as before, long ones become tasks
    let eager; // task_after_ms = 0: every run call is a task at once
    const call = (s, command, meta, extra = {}) => s.raw('tools/call', {
      name: 'run', arguments: { target: 'local', command, timeoutMs: 600_000, ...extra }, _meta: meta,
    });

    before(async () => {
      assert.ok(fs.existsSync(bin), `labgate binary not found at ${bin}`);
      assert.ok(which('bwrap'), 'bubblewrap is not installed (Debian: apt install bubblewrap)');
      server = await startServer(transportKind, 1500);
      eager = await startServer(transportKind, 0);
    }, { timeout: TIMEOUT_MS });

    after(async () => {
      for (const s of [server, eager]) {
        if (!s) continue;
        await s.stop();
        fs.rmSync(s.tmp, { recursive: true, force: true });
      }
    });

    test('server/discover offers the extension', { timeout: TIMEOUT_MS }, async () => {
      const d = await server.raw('server/discover', { _meta: metaFor() });
      assert.deepEqual(d.result.capabilities.extensions[TASKS], {});
    });

    test('a call still running after task_after_ms is answered with a task; tasks/get shows its output, then the result',
      { timeout: TIMEOUT_MS }, async () => {
        const started = Date.now();
        const handle = await call(server, 'echo started; sleep 5; echo done', withTasks());
        const answeredAfter = Date.now() - started;
        const task = handle.result;
        assert.equal(task.resultType, 'task', JSON.stringify(handle));
        assert.equal(task.status, 'working');
        assert.match(task.taskId, /^task-[0-9a-f]{32}$/);
        assert.equal(task.ttlMs, 3_600_000);
        assert.equal(typeof task.pollIntervalMs, 'number');
        assert.ok(task.createdAt && task.lastUpdatedAt);
        // The request was answered long before the command ended: a client that gives up on a
        // request after a few seconds still has the task.
        assert.ok(answeredAfter >= 1400 && answeredAfter < 4500, `answered after ${answeredAfter} ms`);

        const live = await poll(server, task.taskId,
          (t) => t.status === 'working' && /started/.test(t.statusMessage ?? ''), 'the output so far');
        assert.equal(live.resultType, 'complete');
        assert.match(live._meta['io.labgate/partial'].output.local, /started/);
        assert.equal(live.result, undefined);

        const done = await poll(server, task.taskId, (t) => t.status !== 'working', 'the task to finish');
        assert.equal(done.status, 'completed', JSON.stringify(done));
        assert.equal(done.result.isError, false);
        assert.equal(done.result.structuredContent.results[0].stdout, 'started\ndone\n');
        assert.equal(done.result.resultType, 'complete');
        // Polled again it says the same; the run is audited once.
        assert.equal((await poll(server, task.taskId, () => true, 'again')).status, 'completed');
        const intents = server.audit().filter((r) => r.kind === 'intent' && JSON.stringify(r.payload).includes('echo started'));
        assert.equal(intents.length, 1);
        assert.equal(server.audit().filter((r) => r.kind === 'result' && r.actionId === intents[0].actionId).length, 1);
      });

    test('a quick call with the extension, and a long one without it, answer as before', { timeout: TIMEOUT_MS }, async () => {
      const quick = await call(server, 'echo quick', withTasks());
      assert.equal(quick.result.resultType, 'complete', JSON.stringify(quick));
      assert.equal(quick.result.structuredContent.results[0].stdout, 'quick\n');
      const plain = await call(server, 'sleep 2; echo plain', metaFor());
      assert.equal(plain.result.resultType, 'complete', JSON.stringify(plain));
      assert.equal(plain.result.structuredContent.results[0].stdout, 'plain\n');
      // targets never runs as a task.
      const targets = await server.raw('tools/call', { name: 'targets', arguments: {}, _meta: withTasks() });
      assert.equal(targets.result.resultType, 'complete');
    });

    test('tasks/cancel stops the whole process group', { timeout: TIMEOUT_MS }, async () => {
      const marker = transportKind === 'stdio' ? '3017' : '3019';
      const handle = await call(server, `sleep ${marker}1 & sleep ${marker}2`, withTasks());
      assert.equal(handle.result.resultType, 'task', JSON.stringify(handle));
      await waitFor('both sleeps to run', () => running(marker).length === 2);
      const ack = await server.raw('tasks/cancel', { taskId: handle.result.taskId, _meta: withTasks() });
      assert.deepEqual(Object.keys(ack.result).sort(), ['_meta', 'resultType']);
      assert.equal(ack.result.resultType, 'complete');
      const ended = await poll(server, handle.result.taskId, (t) => t.status !== 'working', 'the task to stop');
      assert.equal(ended.status, 'cancelled');
      assert.match(ended.statusMessage, /cancelled by the client/);
      await waitFor('no sleep left behind', () => running(marker).length === 0, 5000);
    });

    test('the assistant cannot reach a task without the extension, by a made-up id, or under another name',
      { timeout: TIMEOUT_MS }, async () => {
        const handle = await call(server, 'sleep 3', withTasks());
        const { taskId } = handle.result;
        const noExt = await server.raw('tasks/get', { taskId, _meta: metaFor() });
        assert.equal(noExt.error.code, -32021);
        assert.deepEqual(noExt.error.data.requiredCapabilities.extensions[TASKS], {});
        for (const forged of ['task-00000000000000000000000000000000', taskId.slice(0, -1), '../' + taskId]) {
          const r = await server.raw('tasks/get', { taskId: forged, _meta: withTasks() });
          assert.equal(r.error.code, -32602, forged);
          const u = await server.raw('tasks/cancel', { taskId: forged, _meta: withTasks() });
          assert.equal(u.error.code, -32602, forged);
        }
        const noId = await server.raw('tasks/update', { inputResponses: {}, _meta: withTasks() });
        assert.equal(noId.error.code, -32602);
        const removed = await server.raw('tasks/list', { _meta: withTasks() });
        assert.equal(removed.error.code, -32601);
        if (transportKind === 'http') {
          const mismatch = await server.rawHttp('tasks/get', { taskId, _meta: withTasks() }, { 'mcp-name': 'task-other' });
          assert.equal(mismatch.status, 400);
          assert.equal(mismatch.error.code, -32020);
          assert.equal(noExt.status, 400);
        }
        await poll(server, taskId, (t) => t.status === 'completed', 'the task to finish');
      });

    test('with task_after_ms = 0 a confirmation waits inside the task: tasks/update accept runs it, decline does not',
      { timeout: TIMEOUT_MS }, async () => {
        const caps = withTasks({ elicitation: { form: {} } });
        const victim = fs.mkdtempSync(path.join(eager.tmp, 'victim-'));
        const handle = await call(eager, ['rm', '-r', victim], caps);
        assert.equal(handle.result.resultType, 'task', JSON.stringify(handle));
        const { taskId } = handle.result;
        const asking = await poll(eager, taskId, (t) => t.status === 'input_required', 'the question');
        const keys = Object.keys(asking.inputRequests);
        assert.deepEqual(keys, ['labgate-confirm-1']);
        assert.equal(asking.inputRequests[keys[0]].method, 'elicitation/create');
        assert.match(asking.inputRequests[keys[0]].params.message, /rm -r/);
        assert.equal(fs.existsSync(victim), true);

        // An answer to a question never asked is ignored; so is a malformed one.
        const yes = { action: 'accept', content: { confirm: true } };
        assert.equal((await eager.raw('tasks/update', { taskId, inputResponses: { 'labgate-confirm-9': yes }, _meta: caps }))
          .result.resultType, 'complete');
        await eager.raw('tasks/update', { taskId, inputResponses: { 'labgate-confirm-1': { action: 'sure' } }, _meta: caps });
        await sleep(300);
        assert.equal((await poll(eager, taskId, () => true, 'still waiting')).status, 'input_required');
        assert.equal(fs.existsSync(victim), true);

        await eager.raw('tasks/update', { taskId, inputResponses: { 'labgate-confirm-1': yes }, _meta: caps });
        const done = await poll(eager, taskId, (t) => t.status === 'completed', 'the confirmed run');
        assert.equal(done.result.isError, false, JSON.stringify(done.result));
        assert.equal(fs.existsSync(victim), false);
        assert.ok(eager.audit().some((r) => r.event === 'confirmation.accepted' && /tasks\/update/.test(r.details.who)));

        const kept = fs.mkdtempSync(path.join(eager.tmp, 'kept-'));
        const second = await call(eager, ['rm', '-r', kept], caps);
        await poll(eager, second.result.taskId, (t) => t.status === 'input_required', 'the second question');
        await eager.raw('tasks/update', {
          taskId: second.result.taskId, inputResponses: { 'labgate-confirm-1': { action: 'decline' } }, _meta: caps,
        });
        const declined = await poll(eager, second.result.taskId, (t) => t.status === 'completed', 'the declined run');
        assert.equal(declined.result.isError, true);
        assert.match(JSON.stringify(declined.result), /declined/);
        assert.equal(fs.existsSync(kept), true);
      });

    // The official requester of the extension (@modelcontextprotocol/ext-tasks) over the v2 client.
    async function requester(s, name, onInputRequest) {
      const transport = transportKind === 'stdio'
        ? new StdioClientTransport({ command: bin, args: ['mcp', '--config', s.configPath], stderr: 'inherit' })
        : new StreamableHTTPClientTransport(new URL(s.url), { requestInit: { headers: { Authorization: `Bearer ${s.token}` } } });
      const client = new Client({ name, version: '2.0.0' }, { capabilities: {}, versionNegotiation: { mode: { pin: MODERN } } });
      await client.connect(transport, { timeout: TIMEOUT_MS });
      const session = createTaskSessionFromClient(client, {
        endpointId: `labgate-${transportKind}-${name}`,
        rawDispatch: (request) => s.dispatch(request),
        v2RequestFraming: {
          protocolVersion: MODERN,
          clientInfo: { name, version: '2.0.0' },
          clientCapabilities: { elicitation: { form: {} }, extensions: { [TASKS]: {} } },
        },
        ...(onInputRequest ? { onInputRequest } : {}),
      });
      return { session, close: async () => { await session.close(); await client.close(); } };
    }

    test('the official ext-tasks requester settles a long run through its task', { timeout: TIMEOUT_MS }, async () => {
      const { session, close } = await requester(server, 'ext-tasks-long');
      try {
        const execution = await session.callTool('run', { target: 'local', command: 'echo one; sleep 3; echo two', timeoutMs: 60_000 });
        assert.equal(execution.kind, 'task');
        const { outcome } = await execution.settle();
        assert.equal(outcome.status, 'completed', JSON.stringify(outcome));
        const result = resultFromTaskOutcome(outcome);
        assert.equal(result.structuredContent.results[0].stdout, 'one\ntwo\n');
        const quick = await session.callTool('run', { target: 'local', command: 'echo quick' });
        assert.equal(quick.kind, 'immediate');
        assert.equal(resultFromTaskOutcome((await quick.settle()).outcome).structuredContent.results[0].stdout, 'quick\n');
      } finally {
        await close();
      }
    });

    test('the official ext-tasks requester cancels a task and nothing is left running', { timeout: TIMEOUT_MS }, async () => {
      const marker = transportKind === 'stdio' ? '3027' : '3029';
      const { session, close } = await requester(server, 'ext-tasks-cancel');
      try {
        const execution = await session.callTool('run', { target: 'local', command: `sleep ${marker}1 & sleep ${marker}2`, timeoutMs: 600_000 });
        assert.equal(execution.kind, 'task');
        await waitFor('both sleeps to run', () => running(marker).length === 2);
        await execution.cancel();
        const { outcome } = await execution.settle();
        assert.equal(outcome.status, 'cancelled', JSON.stringify(outcome));
        await waitFor('no sleep left behind', () => running(marker).length === 0, 5000);
      } finally {
        await close();
      }
    });

    test('the official ext-tasks requester answers a confirmation inside a task', { timeout: TIMEOUT_MS }, async () => {
      const asked = [];
      const { session, close } = await requester(eager, 'ext-tasks-confirm', async (request) => {
        asked.push(request);
        return { action: 'accept', content: { confirm: true } };
      });
      try {
        const victim = fs.mkdtempSync(path.join(eager.tmp, 'ext-victim-'));
        const execution = await session.callTool('run', { target: 'local', command: ['rm', '-r', victim] });
        assert.equal(execution.kind, 'task');
        const { outcome } = await execution.settle();
        assert.equal(outcome.status, 'completed', JSON.stringify(outcome));
        assert.equal(resultFromTaskOutcome(outcome).isError, false);
        assert.equal(asked.length, 1);
        assert.equal(asked[0].kind, 'elicitation');
        assert.match(asked[0].params.message, /rm -r/);
        assert.equal(fs.existsSync(victim), false);
      } finally {
        await close();
      }
    });

    test('with task_after_ms = 0 a harmless command is a task at once and completes', { timeout: TIMEOUT_MS }, async () => {
      const handle = await call(eager, 'echo eager', withTasks());
      assert.equal(handle.result.resultType, 'task', JSON.stringify(handle));
      const done = await poll(eager, handle.result.taskId, (t) => t.status === 'completed', 'the task');
      assert.equal(done.result.structuredContent.results[0].stdout, 'eager\n');
    });
  });
}
