// Runs inside a hashing thread (see password-hasher.ts). Plain JavaScript so the
// same file loads from src/ (tests) and dist/ (npm start) without a TypeScript loader.
import { spawnSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import bcrypt from 'bcrypt';
import { workerData } from 'piscina';

/**
 * Hashing yields the CPU to everything else: token signing, session checks, and
 * the database when it shares the machine. On Linux, nice is per thread, but it
 * only ranks threads of one scheduling group (a login session's autogroup), so
 * a PostgreSQL backend in another group could still wait hundreds of ms behind
 * a hash; SCHED_IDLE (via util-linux `chrt`) yields across groups too. Either
 * step may be refused: hashing then runs at normal priority.
 */
function yieldCpu() {
  try {
    setPriority(19);
  } catch {
    // not allowed to lower the priority: hash at the normal one (as without chrt)
    return;
  }
  try {
    const tid = readlinkSync('/proc/thread-self').split('/').pop();
    if (tid) spawnSync('chrt', ['--idle', '-p', '0', tid], { stdio: 'ignore', timeout: 2000 });
  } catch {
    // not Linux, or no chrt: nice 19 alone
  }
}

yieldCpu();

// A real hash at the configured cost: verifying an unknown user's password against it
// costs what a real verification does. Made here, once per thread, off the event loop.
const dummy = bcrypt.hashSync('tessera-dummy-password', workerData.rounds);

/** [hashing now, most ever at once], shared with password-hasher.ts (absent when loaded another way). */
const counters = workerData.counters ? new Int32Array(workerData.counters.buffer ?? workerData.counters) : null;

function started() {
  if (!counters) return;
  const now = Atomics.add(counters, 0, 1) + 1;
  let peak = Atomics.load(counters, 1);
  while (now > peak) {
    const seen = Atomics.compareExchange(counters, 1, peak, now);
    if (seen === peak) break;
    peak = seen;
  }
}

/** @param {{ op: 'hash' | 'verify' | 'dummy', password: string, hash?: string }} task */
export default function run(task) {
  started();
  try {
    if (task.op === 'hash') return bcrypt.hashSync(task.password, workerData.rounds);
    return bcrypt.compareSync(task.password, task.op === 'dummy' ? dummy : task.hash);
  } finally {
    if (counters) Atomics.sub(counters, 0, 1);
  }
}
