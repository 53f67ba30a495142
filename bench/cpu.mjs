// CPU accounting for the benchmark drivers, from /proc (Linux), in milliseconds.
//
// The hosts of bench/run.sh are sshd processes on this same machine, so a fan-out's time is
// bounded by their CPU too. The drivers measure three things over their timed runs: what the
// whole machine used (busy_ms), what the client under test used (client_ms), and their own
// share (driver_ms). What the hosts used is then about busy - client - driver (plus whatever
// else the machine ran meanwhile), and that divided by the cores is the least time any client
// can take here.
import { readFileSync } from 'node:fs';

const TICK_MS = 10;  // USER_HZ is 100 on every Linux this runs on

// Everything but idle and iowait, summed over all cores.
export function machineBusyMs() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith('cpu '));
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return (user + nice + system + irq + softirq + steal) * TICK_MS;
}

// A process's own CPU and that of the children it has waited for (which counts theirs in turn).
export function processCpuMs(pid) {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ').map(Number);  // fields[0] is field 3, the state
  return { own: (fields[11] + fields[12]) * TICK_MS, children: (fields[13] + fields[14]) * TICK_MS };
}
