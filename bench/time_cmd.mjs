// Times a command run N times in a row (after W warm-up runs) and prints {"median_ms","p90_ms","n"}
// and, per run, the CPU the machine used ("busy_ms") and the part the command and every process it
// waited for used ("client_ms"; a daemon it leaves behind, such as a ControlPersist master, is
// not in it): see cpu.mjs.
// usage: node time_cmd.mjs N W -- COMMAND [ARGS...]
import { spawnSync } from 'node:child_process';
import { machineBusyMs, processCpuMs } from './cpu.mjs';

const [nArg, wArg, dash, cmd, ...args] = process.argv.slice(2);
if (dash !== '--' || !cmd) {
  console.error('usage: node time_cmd.mjs N W -- COMMAND [ARGS...]');
  process.exit(2);
}
const run = () => {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) {
    console.error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    process.exit(1);
  }
  return ms;
};
for (let i = 0; i < Number(wArg); i++) run();
const times = [];
const busy0 = machineBusyMs();
const self0 = processCpuMs('self');
for (let i = 0; i < Number(nArg); i++) times.push(run());
const self1 = processCpuMs('self');
const busy1 = machineBusyMs();
times.sort((a, b) => a - b);
console.log(JSON.stringify({
  median_ms: +times[Math.floor(times.length / 2)].toFixed(3),
  p90_ms: +times[Math.floor(times.length * 0.9)].toFixed(3),
  n: times.length,
  busy_ms: +((busy1 - busy0) / times.length).toFixed(1),
  client_ms: +((self1.children - self0.children) / times.length).toFixed(1),
  driver_ms: +((self1.own - self0.own) / times.length).toFixed(1),
}));
