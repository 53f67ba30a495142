// Small helpers the SDK-client suites share.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';

export function textOf(result) {
  return result.content.filter((b) => b.type === 'text').map((b) => b.text).join('\n');
}

export function which(program) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    const candidate = path.join(dir, program);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export async function waitFor(what, check, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    }
    await sleep(100);
  }
}

// The IHDR of a PNG: width, height, bit depth, colour type.

// Starts `labgate gateway --config CONFIG` (its log in DIR/gateway.log) and waits until it serves
// MCP over HTTP; returns the process (with `exitedWith` once it ends) and the endpoint it logged.
export async function startHttpGateway(bin, configPath, dir) {
  const logPath = path.join(dir, 'gateway.log');
  const log = fs.openSync(logPath, 'w');
  const gateway = spawn(bin, ['gateway', '--config', configPath], { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  gateway.on('exit', (code, signal) => { gateway.exitedWith = { code, signal }; });
  const url = await waitFor('the gateway to serve MCP over HTTP', () => {
    if (gateway.exitedWith) throw new Error(`gateway exited: ${fs.readFileSync(logPath, 'utf8')}`);
    return fs.readFileSync(logPath, 'utf8').match(/MCP over HTTP at (\S+)/)?.[1];
  });
  return { gateway, url };
}

// Ends a process a test started (SIGTERM) and waits for it; nothing when it already ended.
export async function stopProcess(child) {
  if (!child || child.exitedWith) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  process.kill(child.pid, 'SIGTERM');
  await exited;
}

// The [gateway] lines every suite's hosts.toml starts with: free loopback ports for the agent
// listener and MCP over HTTP, state and audit log under `dir`; `extra` lines are added to the table.
export async function gatewayTable(dir, auditPath, extra = []) {
  return [
    '[gateway]',
    `listen = "127.0.0.1:${await freePort()}"`,
    `http_listen = "127.0.0.1:${await freePort()}"`,
    `state_dir = ${JSON.stringify(path.join(dir, 'state'))}`,
    `audit_log = ${JSON.stringify(auditPath)}`,
    ...extra,
    '',
  ];
}

// The last JSON-RPC message of an HTTP answer: a JSON body, or the last event of a stream.
function lastMessage(text) {
  return JSON.parse(text.startsWith('{') ? text : text.split('\n').filter((l) => l.startsWith('data: ')).at(-1).slice(6));
}

// Raw 2026-07-28 JSON-RPC over Streamable HTTP, as a client library would not send it (the
// assistant's view). `call(method, params, headers)` answers { status, ...response } with the
// routing headers the revision asks for (overridable); `dispatch({method, params})` answers the
// bare response, for a requester that frames its own requests.
export function rawHttpClient(url, token, defaultVersion = '2026-07-28') {
  let n = 0;
  const post = (method, params, body, headers) => fetch(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`, 'content-type': 'application/json',
      accept: 'application/json, text/event-stream', 'mcp-method': method,
      'mcp-protocol-version': params?._meta?.['io.modelcontextprotocol/protocolVersion'] ?? defaultVersion,
      ...(params?.name ?? params?.taskId ? { 'mcp-name': params.name ?? params.taskId } : {}),
      ...headers,
    },
    body: JSON.stringify(body),
  });
  return {
    call: async (method, params, headers = {}) => {
      const res = await post(method, params, { jsonrpc: '2.0', id: `raw-${++n}`, method, params }, headers);
      return { status: res.status, ...lastMessage(await res.text()) };
    },
    dispatch: async (request) => {
      const res = await post(request.method, request.params, { jsonrpc: '2.0', id: `raw-${++n}`, ...request }, {});
      return lastMessage(await res.text());
    },
  };
}

// The same over a `labgate mcp` process of its own on stdio. Requests go out under ids of our
// own; `dispatch` answers under the caller's. `stop()` closes stdin and waits for the exit.
export function rawStdioClient(bin, configPath) {
  const child = spawn(bin, ['mcp', '--config', configPath], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.on('exit', (code, signal) => { child.exitedWith = { code, signal }; });
  const waiting = new Map();
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    const m = JSON.parse(line);
    if (m.id !== undefined && waiting.has(m.id)) waiting.get(m.id)(m);
  });
  let n = 0;
  const dispatch = (request) => new Promise((resolve) => {
    const id = `raw-${++n}`;
    waiting.set(id, (m) => resolve(request.id === undefined ? m : { ...m, id: request.id }));
    child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', ...request, id })}\n`);
  });
  return {
    call: (method, params) => dispatch({ method, params }),
    dispatch,
    stop: async () => {
      if (child.exitedWith) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin.end();
      await exited;
    },
  };
}
