// Small helpers the SDK-client suites share.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

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
