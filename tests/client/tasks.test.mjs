// Long calls as tasks (2025-11-25 experimental tasks) through the official SDK client, over stdio
// and over Streamable HTTP: a call that outlives the client's request timeout still completes,
// partial progress is visible while it runs, a confirmation asked during a task reaches the
// human, and a cancelled task leaves no process behind.
import { describe, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { freePort, sleep, startHttpGateway, stopProcess, textOf, waitFor, which } from './helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = process.env.LABGATE_BIN || path.resolve(here, '../../build/labgate');
const TIMEOUT_MS = 60_000;
// Every single request of the client gives up after this long; the tasks below run longer.
const SHORT = { timeout: 1500 };

function processesWith(marker) {
  try {
    return execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

async function collect(stream) {
  const events = [];
  for await (const message of stream) events.push(message);
  return events;
}

for (const transportKind of ['stdio', 'http']) {
  describe(`tasks over ${transportKind}: calls that outlive the request timeout`, () => {
    let tmp;
    let configPath;
    let gateway;
    let url;
    let token;
    const clients = [];

    async function connect(name, elicit) {
      const transport = transportKind === 'stdio'
        ? new StdioClientTransport({ command: bin, args: ['mcp', '--config', configPath], stderr: 'inherit' })
        : new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
      const client = new Client({ name, version: '1.0.0' }, elicit ? { capabilities: { elicitation: {} } } : {});
      if (elicit) client.setRequestHandler(ElicitRequestSchema, elicit);
      await client.connect(transport, { timeout: TIMEOUT_MS });
      clients.push(client);
      return client;
    }

    before(async () => {
      assert.ok(fs.existsSync(bin), `labgate binary not found at ${bin}`);
      assert.ok(which('bwrap'), 'bubblewrap is not installed (Debian: apt install bubblewrap)');
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), `labgate-tasks-${transportKind}-`));
      configPath = path.join(tmp, 'hosts.toml');
      const httpPort = await freePort();
      fs.writeFileSync(configPath, [
        '[gateway]',
        `listen = "127.0.0.1:${await freePort()}"`,
        `http_listen = "127.0.0.1:${httpPort}"`,
        `state_dir = ${JSON.stringify(path.join(tmp, 'state'))}`,
        `audit_log = ${JSON.stringify(path.join(tmp, 'audit', 'audit.jsonl'))}`,
        '',
        '[local]',
        'capabilities = ["run"]',
        '',
      ].join('\n'));
      if (transportKind === 'http') {
        ({ gateway, url } = await startHttpGateway(bin, configPath, tmp));
        token = fs.readFileSync(path.join(tmp, 'state', 'http.token'), 'utf8').trim();
      }
    }, { timeout: TIMEOUT_MS });

    after(async () => {
      for (const c of clients) await c.close().catch(() => {});
      await stopProcess(gateway);
      if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });

    test('the server offers tasks for run, screen, camera and file', { timeout: TIMEOUT_MS }, async () => {
      const client = await connect('tasks-caps');
      assert.deepEqual(client.getServerCapabilities().tasks?.requests?.tools?.call, {});
      const { tools } = await client.listTools();
      const support = Object.fromEntries(tools.map((t) => [t.name, t.execution?.taskSupport ?? 'forbidden']));
      assert.deepEqual(support, { run: 'optional', screen: 'optional', camera: 'optional', location: 'forbidden',
        file: 'optional', targets: 'forbidden' });
    });

    test('a run that takes longer than any single request completes as a task', { timeout: TIMEOUT_MS }, async () => {
      const client = await connect('tasks-long');
      // Without a task the same call fails: the client stops waiting after 1.5 s.
      await assert.rejects(client.callTool({ name: 'run', arguments: { target: 'local', command: 'sleep 3' } },
        undefined, SHORT), /timed out|Request timed out/i);
      const started = Date.now();
      const events = await collect(client.experimental.tasks.callToolStream(
        { name: 'run', arguments: { target: 'local', command: 'sleep 4; echo pulled', timeoutMs: 30000 } },
        undefined, { ...SHORT, task: { ttl: 60_000 } }));
      const kinds = events.map((e) => e.type);
      assert.equal(kinds[0], 'taskCreated', JSON.stringify(events));
      assert.ok(kinds.filter((k) => k === 'taskStatus').length >= 2, 'polled while it ran');
      const result = events.find((e) => e.type === 'result')?.result;
      assert.ok(result, JSON.stringify(events.find((e) => e.type === 'error')?.error?.message));
      assert.ok(Date.now() - started >= 4000);
      assert.equal(result.structuredContent.results[0].stdout, 'pulled\n');
      assert.equal(result._meta['io.modelcontextprotocol/related-task'].taskId, events[0].task.taskId);
      const done = await client.experimental.tasks.getTask(events[0].task.taskId, SHORT);
      assert.equal(done.status, 'completed');
      assert.equal(done.ttl, 60_000);
    });

    test('tasks/get shows the output so far while the command runs', { timeout: TIMEOUT_MS }, async () => {
      const client = await connect('tasks-partial');
      const stream = client.experimental.tasks.callToolStream(
        { name: 'run', arguments: { target: 'local', command: 'for i in 1 2 3 4; do echo step$i; sleep 0.7; done' } },
        undefined, { ...SHORT, task: { ttl: 60_000 } });
      let taskId;
      const seen = [];
      for await (const e of stream) {
        if (e.type === 'taskCreated') taskId = e.task.taskId;
        if (e.type === 'taskStatus' && e.task.status === 'working') seen.push(e.task);
      }
      assert.ok(taskId);
      const midway = seen.find((t) => /local: step[123]/.test(t.statusMessage ?? ''));
      assert.ok(midway, `no poll saw output while it ran: ${JSON.stringify(seen.map((t) => t.statusMessage))}`);
      assert.match(midway.statusMessage, /^running for \d+ s/);
      assert.match(midway._meta['io.labgate/partial'].output.local, /step1\n/);
      const final = await client.experimental.tasks.getTask(taskId, SHORT);
      assert.equal(final.status, 'completed');
      assert.match(final.statusMessage, /finished/);
      assert.match(JSON.stringify(final._meta['io.labgate/partial'].finished), /local: exit 0/);
    });

    test('a cancelled task stops its process group and leaves nothing behind', { timeout: TIMEOUT_MS }, async () => {
      const client = await connect('tasks-cancel');
      const marker = `labgate-task-cancel-${process.pid}-${transportKind}`;
      const created = await client.request({ method: 'tools/call', params: {
        name: 'run', arguments: { target: 'local', command: ['sh', '-c', `sleep 30; echo ${marker}`, marker], timeoutMs: 60000 },
        task: { ttl: 60_000 } } }, (await import('@modelcontextprotocol/sdk/types.js')).CreateTaskResultSchema, SHORT);
      const { taskId } = created.task;
      await waitFor('the command to start', () => processesWith(marker).length > 0);
      const cancelled = await client.experimental.tasks.cancelTask(taskId, { timeout: 10_000 });
      assert.equal(cancelled.status, 'cancelled');
      await waitFor('the process group to be gone', () => processesWith(marker).length === 0, 10_000);
      const again = await client.experimental.tasks.getTask(taskId, SHORT);
      assert.equal(again.status, 'cancelled');
      await assert.rejects(client.experimental.tasks.cancelTask(taskId, SHORT), /already cancelled/);
      const { tasks } = await client.experimental.tasks.listTasks(undefined, SHORT);
      assert.ok(tasks.some((t) => t.taskId === taskId));
    });

    test('a confirmation asked during a task reaches the human (input_required), accept and decline',
      { timeout: TIMEOUT_MS }, async () => {
        let answer = 'accept';
        const asked = [];
        const client = await connect('tasks-elicit', async (request) => {
          asked.push(request.params);
          return answer === 'accept' ? { action: 'accept', content: { confirm: true } } : { action: 'decline' };
        });
        const victim = fs.mkdtempSync(path.join(tmp, 'victim-'));
        const events = await collect(client.experimental.tasks.callToolStream(
          { name: 'run', arguments: { target: 'local', command: ['rm', '-r', victim] } },
          undefined, { timeout: 20_000, task: { ttl: 60_000 } }));
        const result = events.find((e) => e.type === 'result')?.result;
        assert.ok(result, JSON.stringify(events));
        assert.equal(result.isError, false, textOf(result));
        assert.equal(fs.existsSync(victim), false);
        assert.equal(asked.length, 1);
        assert.equal(asked[0]._meta['io.modelcontextprotocol/related-task'].taskId, events[0].task.taskId);

        answer = 'decline';
        const kept = fs.mkdtempSync(path.join(tmp, 'kept-'));
        const declined = await collect(client.experimental.tasks.callToolStream(
          { name: 'run', arguments: { target: 'local', command: ['rm', '-r', kept] } },
          undefined, { timeout: 20_000, task: { ttl: 60_000 } }));
        const r2 = declined.find((e) => e.type === 'result')?.result;
        assert.equal(r2.isError, true);
        assert.match(textOf(r2), /declined/);
        assert.equal(fs.existsSync(kept), true);
      });

    test('a tool that answers quickly refuses to run as a task; a bad ttl is refused', { timeout: TIMEOUT_MS }, async () => {
      const client = await connect('tasks-refused');
      const { CreateTaskResultSchema } = await import('@modelcontextprotocol/sdk/types.js');
      await assert.rejects(client.request({ method: 'tools/call', params: { name: 'targets', arguments: {}, task: {} } },
        CreateTaskResultSchema, SHORT), /does not run as a task/);
      await assert.rejects(client.request({ method: 'tools/call', params: { name: 'run',
        arguments: { target: 'local', command: 'true' }, task: { ttl: 'soon' } } }, CreateTaskResultSchema, SHORT), /ttl/);
      await assert.rejects(client.experimental.tasks.getTask('task-nope', SHORT), /no task task-nope/);
      await sleep(10);
    });
  });
}
