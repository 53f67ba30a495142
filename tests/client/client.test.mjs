import { describe, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv from 'ajv';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { textOf } from './helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = process.env.LABGATE_BIN || path.resolve(here, '../../build/labgate');
const clientInfo = { name: 'labgate-client-test', version: '1.0.0' };
const TIMEOUT_MS = 20_000;
const callOptions = { timeout: TIMEOUT_MS };

function assertMatchesSchema(value, schema) {
  const validate = new Ajv({ strict: false, allErrors: true }).compile(schema);
  const valid = validate(value);
  assert.ok(valid, `structuredContent does not match outputSchema:\n${JSON.stringify(validate.errors, null, 2)}`);
}

describe('labgate MCP server (official TypeScript SDK client)', () => {
  let tmp;
  let client;
  let tools;
  const tool = (name) => tools.find((t) => t.name === name);

  before(async () => {
    assert.ok(
      fs.existsSync(bin),
      `labgate binary not found at ${bin}; build it first or set LABGATE_BIN to its path`,
    );

    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'labgate-client-'));
    const configPath = path.join(tmp, 'hosts.toml');
    fs.writeFileSync(
      configPath,
      [
        '[gateway]',
        `state_dir = ${JSON.stringify(path.join(tmp, 'state'))}`,
        `audit_log = ${JSON.stringify(path.join(tmp, 'audit.jsonl'))}`,
        'default_timeout_ms = 20000',
        '',
      ].join('\n'),
    );

    const transport = new StdioClientTransport({
      command: bin,
      args: ['mcp', '--config', configPath],
      stderr: 'inherit',
    });
    client = new Client(clientInfo);
    await client.connect(transport, callOptions);
    ({ tools } = await client.listTools(undefined, callOptions));
  }, { timeout: TIMEOUT_MS });

  after(async () => {
    await client?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('server info and tool list', { timeout: TIMEOUT_MS }, () => {
    assert.equal(client.getServerVersion()?.name, 'labgate');

    const names = tools.map((t) => t.name);
    for (const name of ['run', 'targets', 'screen', 'camera', 'location']) {
      assert.ok(names.includes(name), `tools: ${names.join(', ')}`);
      assert.equal(tool(name).inputSchema?.type, 'object', `${name} declares its input schema`);
    }
    for (const name of ['screen', 'camera', 'location']) {
      assert.equal(tool(name).outputSchema?.type, 'object', `${name} declares its output schema`);
      assert.deepEqual(tool(name).inputSchema.required, ['target']);
    }

    const run = tool('run');
    assert.equal(run.inputSchema?.type, 'object');
    assert.equal(run.outputSchema?.type, 'object');
    assert.notEqual(run.annotations?.readOnlyHint, true);
    assert.equal(tool('targets').annotations?.readOnlyHint, true);
  });

  test('run argv command on local target', { timeout: TIMEOUT_MS }, async () => {
    const result = await client.callTool(
      { name: 'run', arguments: { target: 'local', command: ['uname', '-a'] } },
      undefined,
      callOptions,
    );
    assert.ok(!result.isError, `unexpected error: ${textOf(result)}`);

    const { results } = result.structuredContent;
    assert.ok(Array.isArray(results));
    assert.equal(results.length, 1);
    const [r] = results;
    assert.equal(r.target, 'local');
    assert.equal(r.via, 'local');
    assert.equal(r.exitCode, 0);
    assert.match(r.stdout, /Linux/);
    assert.equal(r.timedOut, false);
    assert.equal(r.truncated, false);
    assert.equal(typeof r.durationMs, 'number');

    assertMatchesSchema(result.structuredContent, tool('run').outputSchema);
    assert.ok(result.content.some((block) => block.type === 'text'), 'expected a text content block');
  });

  test('run shell string command with non-zero exit', { timeout: TIMEOUT_MS }, async () => {
    const result = await client.callTool(
      { name: 'run', arguments: { target: 'local', command: 'echo hello; exit 3' } },
      undefined,
      callOptions,
    );
    const [r] = result.structuredContent.results;
    assert.equal(r.exitCode, 3);
    assert.equal(r.stdout, 'hello\n');
  });

  test('run on unknown target is a tool error', { timeout: TIMEOUT_MS }, async () => {
    const result = await client.callTool(
      { name: 'run', arguments: { target: 'nope', command: ['true'] } },
      undefined,
      callOptions,
    );
    assert.equal(result.isError, true);
    assert.match(textOf(result), /nope/);
  });

  test('targets lists the local target', { timeout: TIMEOUT_MS }, async () => {
    const result = await client.callTool({ name: 'targets', arguments: {} }, undefined, callOptions);
    assert.ok(!result.isError, `unexpected error: ${textOf(result)}`);

    const { targets } = result.structuredContent;
    assert.ok(Array.isArray(targets));
    const local = targets.find((t) => t.id === 'local');
    assert.ok(local, `no "local" target in ${JSON.stringify(targets)}`);
    assert.equal(local.kind, 'local');
    assert.equal(local.online, true);
    assert.ok(local.capabilities.includes('run'));

    assertMatchesSchema(result.structuredContent, tool('targets').outputSchema);
  });

  test('audit log records intent and result', { timeout: TIMEOUT_MS }, () => {
    const lines = fs.readFileSync(path.join(tmp, 'audit.jsonl'), 'utf8').split('\n').filter(Boolean);
    const records = lines.map((line) => JSON.parse(line));
    assert.ok(records.length > 0, 'audit log is empty');

    let lastSeq = -Infinity;
    for (const record of records) {
      assert.equal(record.v, 1);
      assert.equal(typeof record.seq, 'number');
      assert.ok(record.seq > lastSeq, `seq not strictly increasing: ${record.seq} after ${lastSeq}`);
      lastSeq = record.seq;
    }

    const intents = records.filter(
      (r) => r.kind === 'intent' && r.action === 'run' && Array.isArray(r.payload?.argv) && r.payload.argv.join(' ') === 'uname -a',
    );
    assert.equal(intents.length, 1, 'expected exactly one intent record for uname -a');
    const [intent] = intents;
    assert.ok(intent.actionId, 'intent record has no actionId');
    assert.equal(intent.target, 'local');
    assert.deepEqual(intent.payload.argv, ['uname', '-a']);
    assert.equal(intent.who?.client?.name, clientInfo.name);
    assert.equal(intent.who?.client?.version, clientInfo.version);
    assert.equal(typeof intent.who?.osUser, 'string');
    assert.ok(intent.who.osUser.length > 0);

    const outcomes = records.filter((r) => r.kind === 'result' && r.actionId === intent.actionId);
    assert.equal(outcomes.length, 1, `expected exactly one result record for actionId ${intent.actionId}`);
    assert.equal(outcomes[0].exitCode, 0);
  });
});
