// Drives labgate with raw JSON-RPC and times tool calls: `labgate mcp` over stdio, or with
// MCP_HTTP_URL and MCP_HTTP_TOKEN set, a gateway's Streamable HTTP endpoint (one keep-alive
// connection, a legacy session).
// usage: node mcp_driver.mjs LABGATE CONFIG single TARGET N
//        node mcp_driver.mjs LABGATE CONFIG fanout SELECTOR N
//        node mcp_driver.mjs LABGATE CONFIG screen TARGET N     (screen snapshots)
//        node mcp_driver.mjs LABGATE CONFIG targets SELECTOR N  (the targets tool, `-` for all of them:
//                                                               the transport's cost with nothing run)
//        node mcp_driver.mjs LABGATE CONFIG fileget TARGET N    (file get of $BENCH_FILE, kept as an artifact)
//        node mcp_driver.mjs LABGATE CONFIG fileput TARGET N    (file put to $BENCH_DEST of the bytes of one
//                                                               get of $BENCH_FILE, by fromArtifact)
// Prints {"first_ms", "median_ms", "p90_ms", "n"}: first is the cold call (connects), the rest warm;
// and, per warm call, the CPU the machine used ("busy_ms"), labgate's own ("client_ms", stdio
// only) and this driver's ("driver_ms"): see cpu.mjs.
import { spawn } from 'node:child_process';
import readline from 'node:readline';
import { machineBusyMs, processCpuMs } from './cpu.mjs';

const [bin, config, mode, target, nArg] = process.argv.slice(2);
const n = Number(nArg);
const httpUrl = process.env.MCP_HTTP_URL;
let nextId = 1;
let request;
let finish;
let child;
if (httpUrl) {
  let session;
  request = async (method, params) => {
    const headers = { authorization: `Bearer ${process.env.MCP_HTTP_TOKEN}`, 'content-type': 'application/json',
      accept: 'application/json, text/event-stream' };
    if (session) headers['mcp-session-id'] = session;
    const res = await fetch(httpUrl, { method: 'POST', headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params }) });
    session ??= res.headers.get('mcp-session-id');
    const text = await res.text();
    return JSON.parse(text.startsWith('{') ? text : text.split('\n').filter((l) => l.startsWith('data: ')).at(-1).slice(6));
  };
  finish = () => {};
} else {
  child = spawn(bin, ['mcp', '--config', config], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout });
  const waiting = new Map();
  lines.on('line', (line) => {
    const msg = JSON.parse(line);
    if (msg.id !== undefined && waiting.has(msg.id)) {
      waiting.get(msg.id)(msg);
      waiting.delete(msg.id);
    }
  });
  request = (method, params) => {
    const id = nextId++;
    return new Promise((resolve) => {
      waiting.set(id, resolve);
      child.stdin.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n');
    });
  };
  finish = () => child.stdin.end();
}

await request('initialize', { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench', version: '1' } });
if (!httpUrl) child.stdin.write(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) + '\n');
const tool = mode === 'screen' ? 'screen' : mode === 'targets' ? 'targets' : mode.startsWith('file') ? 'file' : 'run';
let args = mode === 'screen' ? { target }
  : mode === 'targets' ? (target === '-' ? {} : { selector: target })
  : mode === 'single' ? { target, command: ['true'] }
  : mode === 'fileget' ? { target, op: 'get', path: process.env.BENCH_FILE }
  : { target, command: ['uptime'] };
if (mode === 'fileput') {
  // The content comes from the artifact store, as an assistant would push a file it fetched.
  const got = await request('tools/call', { name: 'file', arguments: { target, op: 'get', path: process.env.BENCH_FILE } });
  const uri = got.result?.structuredContent?.uri;
  if (!uri) {
    console.error(JSON.stringify(got).slice(0, 2000));
    process.exit(1);
  }
  args = { target, op: 'put', path: process.env.BENCH_DEST, fromArtifact: uri };
}
async function call() {
  const t0 = process.hrtime.bigint();
  const r = await request('tools/call', { name: tool, arguments: args });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const s = r.result?.structuredContent?.summary;
  const failed = tool === 'run' ? !s || s.ok !== s.total : r.result?.isError !== false;
  if (failed) {
    console.error(JSON.stringify(r).slice(0, 2000));
    process.exit(1);
  }
  return ms;
}
const first = await call();
for (let i = 0; i < 3; i++) await call();
const times = [];
const cpu = () => ({ busy: machineBusyMs(), self: processCpuMs('self').own, labgate: child ? processCpuMs(child.pid).own : 0 });
const cpu0 = cpu();
for (let i = 0; i < n; i++) times.push(await call());
const cpu1 = cpu();
times.sort((a, b) => a - b);
const per = (key) => +((cpu1[key] - cpu0[key]) / n).toFixed(1);
console.log(JSON.stringify({
  first_ms: +first.toFixed(2),
  median_ms: +times[Math.floor(times.length / 2)].toFixed(3),
  p90_ms: +times[Math.floor(times.length * 0.9)].toFixed(3),
  n,
  busy_ms: per('busy'),
  client_ms: httpUrl ? null : per('labgate'),
  driver_ms: per('self'),
}));
finish();
