// Human confirmation through the official MCP TypeScript SDK client: elicitation when the client
// offers it, approval requests answered with `labgate approvals approve` when it does not.
import { describe, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { textOf } from './helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = process.env.LABGATE_BIN || path.resolve(here, '../../build/labgate');
const TIMEOUT_MS = 30_000;
const callOptions = { timeout: TIMEOUT_MS };

// A labgate MCP server on a fresh inventory; `elicit` answers elicitation/create when given.
async function startServer(tmp, { ttl = 900, elicit } = {}) {
  const configPath = path.join(tmp, 'hosts.toml');
  fs.writeFileSync(configPath, [
    '[gateway]',
    `state_dir = ${JSON.stringify(path.join(tmp, 'state'))}`,
    `approval_ttl_s = ${ttl}`,
    '',
    '[[nodes]]',
    'id = "phone"',
    'capabilities = ["run"]',
    '',
  ].join('\n'));
  const transport = new StdioClientTransport({ command: bin, args: ['mcp', '--config', configPath], stderr: 'inherit' });
  const client = new Client(
    { name: 'labgate-guardrails-test', version: '1.0.0' },
    elicit ? { capabilities: { elicitation: {} } } : {},
  );
  if (elicit) client.setRequestHandler(ElicitRequestSchema, elicit);
  await client.connect(transport, callOptions);
  return { client, configPath };
}

function approve(configPath, id, verb = 'approve') {
  return execFileSync(bin, ['approvals', verb, id, '--config', configPath], { encoding: 'utf8' });
}

function runArgs(dir, extra = {}) {
  return { name: 'run', arguments: { target: 'local', command: ['rm', '-r', dir], ...extra } };
}

describe('elicitation: a human confirms through the MCP client', () => {
  let tmp;
  let client;
  let asked = [];
  let answer;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'labgate-elicit-'));
    ({ client } = await startServer(tmp, {
      elicit: async (request) => {
        asked.push(request.params);
        return answer;
      },
    }));
  }, { timeout: TIMEOUT_MS });

  after(async () => {
    await client?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('accept runs exactly the command that was shown', { timeout: TIMEOUT_MS }, async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'accept-'));
    asked = [];
    answer = { action: 'accept', content: { confirm: true } };
    const result = await client.callTool(runArgs(dir), undefined, callOptions);
    assert.ok(!result.isError, textOf(result));
    assert.equal(asked.length, 1);
    assert.match(asked[0].message, /Targets: local/);
    assert.ok(asked[0].message.includes(`Command: rm -r ${dir}`), asked[0].message);
    assert.match(asked[0].message, /Risk: destructive/);
    assert.match(asked[0].message, /Rule: mode\.confirm-destructive/);
    assert.equal(asked[0].requestedSchema.properties.confirm.type, 'boolean');
    const [r] = result.structuredContent.results;
    assert.equal(r.decision, 'confirmed');
    assert.match(r.approver, /elicitation/);
    assert.equal(r.exitCode, 0);
    assert.ok(!fs.existsSync(dir));
  });

  for (const action of ['decline', 'cancel']) {
    test(`${action} refuses and runs nothing`, { timeout: TIMEOUT_MS }, async () => {
      const dir = fs.mkdtempSync(path.join(tmp, `${action}-`));
      asked = [];
      answer = { action };
      const result = await client.callTool(runArgs(dir), undefined, callOptions);
      assert.equal(result.isError, true);
      assert.equal(asked.length, 1);
      const [r] = result.structuredContent.results;
      assert.equal(r.decision, 'refused');
      assert.match(r.error, action === 'decline' ? /confirmation\.declined/ : /confirmation\.cancelled/);
      assert.ok(fs.existsSync(dir), 'the directory must still be there');
    });
  }

  test('accept without ticking the box is a no', { timeout: TIMEOUT_MS }, async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'unticked-'));
    answer = { action: 'accept', content: { confirm: false } };
    const result = await client.callTool(runArgs(dir), undefined, callOptions);
    assert.equal(result.isError, true);
    assert.ok(fs.existsSync(dir));
  });

  test('read-only commands are not asked about', { timeout: TIMEOUT_MS }, async () => {
    asked = [];
    const result = await client.callTool({ name: 'run', arguments: { target: 'local', command: ['uptime'] } },
      undefined, callOptions);
    assert.ok(!result.isError, textOf(result));
    assert.equal(asked.length, 0);
  });
});

describe('approvals: a client without elicitation gets a request the operator answers', () => {
  let tmp;
  let client;
  let configPath;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'labgate-approve-'));
    ({ client, configPath } = await startServer(tmp));
  }, { timeout: TIMEOUT_MS });

  after(async () => {
    await client?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('approve lets the repeated call run once; replays with other argv, cwd or target do not', { timeout: TIMEOUT_MS }, async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'victim-'));
    const first = await client.callTool(runArgs(dir, { cwd: tmp }), undefined, callOptions);
    assert.equal(first.isError, true);
    const [pending] = first.structuredContent.results;
    assert.equal(pending.decision, 'approval-pending');
    assert.match(pending.approvalId, /^apr-/);
    assert.ok(textOf(first).includes(`labgate approvals approve ${pending.approvalId}`), textOf(first));

    assert.match(approve(configPath, pending.approvalId), /approved/);

    const otherArgv = await client.callTool(
      { name: 'run', arguments: { target: 'local', command: ['rm', '-r', tmp], cwd: tmp } }, undefined, callOptions);
    assert.equal(otherArgv.structuredContent.results[0].decision, 'approval-pending');
    const otherCwd = await client.callTool(runArgs(dir, { cwd: '/' }), undefined, callOptions);
    assert.equal(otherCwd.structuredContent.results[0].decision, 'approval-pending');
    const otherTarget = await client.callTool(
      { name: 'run', arguments: { target: 'phone', command: ['rm', '-r', dir], cwd: tmp } }, undefined, callOptions);
    assert.equal(otherTarget.isError, true);
    assert.notEqual(otherTarget.structuredContent.results[0].decision, 'confirmed');
    assert.ok(fs.existsSync(dir));

    const second = await client.callTool(runArgs(dir, { cwd: tmp }), undefined, callOptions);
    assert.ok(!second.isError, textOf(second));
    assert.equal(second.structuredContent.results[0].decision, 'confirmed');
    assert.equal(second.structuredContent.results[0].approvalId, pending.approvalId);
    assert.ok(!fs.existsSync(dir));

    fs.mkdirSync(dir);
    const third = await client.callTool(runArgs(dir, { cwd: tmp }), undefined, callOptions);
    assert.equal(third.structuredContent.results[0].decision, 'approval-pending');
    assert.notEqual(third.structuredContent.results[0].approvalId, pending.approvalId);
    assert.ok(fs.existsSync(dir), 'the approval was single-use');
  });

  test('confirm: true in the arguments changes nothing', { timeout: TIMEOUT_MS }, async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'confirm-arg-'));
    for (const extra of [{ confirm: true }, { approved: true, force: true }]) {
      const result = await client.callTool(runArgs(dir, extra), undefined, callOptions);
      assert.equal(result.isError, true);
      assert.equal(result.structuredContent.results[0].decision, 'approval-pending');
      assert.match(textOf(result), /only a human approves/);
    }
    assert.ok(fs.existsSync(dir));
  });

  test('deny closes the request', { timeout: TIMEOUT_MS }, async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'denied-'));
    const first = await client.callTool(runArgs(dir), undefined, callOptions);
    const id = first.structuredContent.results[0].approvalId;
    assert.match(approve(configPath, id, 'deny'), /denied/);
    const again = await client.callTool(runArgs(dir), undefined, callOptions);
    assert.equal(again.structuredContent.results[0].decision, 'approval-pending');
    assert.notEqual(again.structuredContent.results[0].approvalId, id);
    assert.ok(fs.existsSync(dir));
  });

  test('dryRun reports the decision and runs nothing', { timeout: TIMEOUT_MS }, async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'dry-'));
    const result = await client.callTool(runArgs(dir, { dryRun: true }), undefined, callOptions);
    assert.ok(!result.isError, textOf(result));
    const [r] = result.structuredContent.results;
    assert.equal(r.decision, 'dry-run:confirm');
    assert.equal(r.risk, 'destructive');
    assert.equal(r.rule, 'mode.confirm-destructive');
    assert.ok(fs.existsSync(dir));
  });
});

describe('approvals expire', () => {
  let tmp;
  let client;
  let configPath;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'labgate-expire-'));
    ({ client, configPath } = await startServer(tmp, { ttl: 1 }));
  }, { timeout: TIMEOUT_MS });

  after(async () => {
    await client?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('an expired approval is refused', { timeout: TIMEOUT_MS }, async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'late-'));
    const first = await client.callTool(runArgs(dir), undefined, callOptions);
    const id = first.structuredContent.results[0].approvalId;
    approve(configPath, id);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const late = await client.callTool(runArgs(dir), undefined, callOptions);
    assert.equal(late.structuredContent.results[0].decision, 'approval-pending');
    assert.ok(fs.existsSync(dir));

    const lateId = late.structuredContent.results[0].approvalId;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.throws(() => approve(configPath, lateId), /expired/);
  });
});
