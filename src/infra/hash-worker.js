// Runs inside a hashing thread (see password-hasher.ts). Plain JavaScript so the
// same file loads from src/ (tests) and dist/ (npm start) without a TypeScript loader.
import { setPriority } from 'node:os';
import bcrypt from 'bcrypt';
import { workerData } from 'piscina';

/**
 * Hashing runs at nice BCRYPT_NICE (default 0, the priority of everything else; see
 * password-hasher.ts): under a flood of session checks, sign-ins keep a fair share of the
 * CPU instead of starving. Nice is per thread on Linux; an unprivileged process may only
 * raise it, so a refusal leaves the thread at the process's own priority. No SCHED_IDLE:
 * it gave hashing nothing at all while any other thread of the machine was runnable
 * (3 logins/s next to a read flood, with timeouts).
 */
function setNice(nice) {
  if (!nice) return;
  try {
    setPriority(nice);
  } catch {
    // not allowed here: the process's own priority
  }
}

setNice(workerData.nice ?? 0);

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
  const t0 = performance.now();
  try {
    if (task.op === 'hash') return bcrypt.hashSync(task.password, workerData.rounds);
    return bcrypt.compareSync(task.password, task.op === 'dummy' ? dummy : task.hash);
  } finally {
    if (counters) {
      Atomics.sub(counters, 0, 1);
      // The last hash's wall time in µs (how long one takes on this machine under its current load).
      if (counters.length > 2) Atomics.store(counters, 2, Math.min(2 ** 31 - 1, Math.round((performance.now() - t0) * 1000)));
    }
  }
}
