import { readFileSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { childPids } from './server.js';

/** Clock ticks per second of /proc (USER_HZ); 100 on every mainstream Linux. */
const HZ = 100;

interface Snapshot {
  at: number;
  machine: number;
  server: number;
  bench: number;
  postgres: number;
}

/** Share of the machine's CPU (all cores = 100 %) each group used between two snapshots. */
export interface CpuShares {
  server: number;
  bench: number;
  postgres: number;
  /** Everything else: other work on the machine, which skews the measurement. */
  other: number;
}

function machineBusyTicks(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!;
}

/** utime + stime, or 0 when the process is gone. */
function processTicks(pid: number | string): { comm: string; ticks: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const fields = stat.slice(close + 2).split(' ');
    return { comm: stat.slice(stat.indexOf('(') + 1, close), ticks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return { comm: '', ticks: 0 };
  }
}

function postgresTicks(): number {
  let sum = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const p = processTicks(pid);
    if (p.comm === 'postgres') sum += p.ticks;
  }
  return sum;
}

/**
 * Where the CPU went during a phase, from /proc: the server (primary and
 * workers), this benchmark process, every `postgres` process, and the rest of
 * the machine. The client, PostgreSQL and the server share the cores, so
 * "other" above a few percent means the numbers of that phase are not clean.
 */
export function cpuAccounting(serverPid: number): { snapshot(): Snapshot; shares(from: Snapshot, to: Snapshot): CpuShares } {
  return {
    snapshot: () => {
      const u = process.cpuUsage();
      return {
        at: performance.now(),
        machine: machineBusyTicks(),
        server: [serverPid, ...childPids(serverPid)].reduce((s, pid) => s + processTicks(pid).ticks, 0),
        bench: ((u.user + u.system) / 1e6) * HZ,
        postgres: postgresTicks(),
      };
    },
    shares: (from, to) => {
      const capacity = ((to.at - from.at) / 1000) * HZ * availableParallelism();
      const pct = (ticks: number) => Math.max(0, (100 * ticks) / capacity);
      const server = to.server - from.server;
      const bench = to.bench - from.bench;
      const postgres = to.postgres - from.postgres;
      return { server: pct(server), bench: pct(bench), postgres: pct(postgres), other: pct(to.machine - from.machine - server - bench - postgres) };
    },
  };
}
