import { Piscina } from 'piscina';

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(password: string, hash: string): Promise<boolean>;
  /** Spends the time of one verification without a real hash (unknown users). */
  verifyDummy(password: string): Promise<void>;
  /** True when the hash was made with a lower cost than configured (or is not a bcrypt hash at all). */
  needsRehash(hash: string): boolean;
  /** Hashes waiting for a free hashing thread. */
  readonly queueDepth: number;
  close(): Promise<void>;
}

/** A hash was refused because `maxQueue` hashes already wait for a thread (the HTTP layer answers 503). */
export class HasherBusyError extends Error {
  override name = 'HasherBusyError';
  constructor() {
    super('too many password hashes are waiting for a hashing thread');
  }
}

export const isHasherBusy = (err: unknown): err is HasherBusyError => err instanceof HasherBusyError;

export interface BcryptHasher extends PasswordHasher {
  /** Hashes running on a thread right now. */
  readonly active: number;
  /** The most hashes that ever ran at once (never above `concurrency`). */
  readonly peakActive: number;
}

const BCRYPT_RE = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;

/**
 * bcrypt on `concurrency` dedicated threads running at the lowest CPU priority
 * (docs/hardening.md "Password hashing under load",
 * docs/benchmarks.md "Why it is fast"): hashing never occupies libuv's pool, which jose's Web Crypto
 * needs for every signature, and never delays the event loop when the cores are busy.
 *
 * At most `concurrency` hashes run at once (one per thread); the others wait in a
 * queue of at most `maxQueue`, beyond which a hash is refused with HasherBusyError
 * at once: a flood queues up to a bound, then sheds load instead of holding
 * every request (and its body) in memory.
 */
export function createBcryptHasher(rounds: number, concurrency: number, maxQueue = Number.POSITIVE_INFINITY): BcryptHasher {
  // [hashing now, most ever hashing at once], updated by the threads themselves (hash-worker.js).
  const counters = new Int32Array(new SharedArrayBuffer(8));
  const pool = new Piscina({
    filename: new URL('./hash-worker.js', import.meta.url).href,
    minThreads: concurrency,
    maxThreads: concurrency,
    // Each thread holds its next task already, so it never idles waiting for the event loop to hand one over.
    concurrentTasksPerWorker: 2,
    idleTimeout: Number.POSITIVE_INFINITY,
    // The cost of every hash, and of the dummy hash each thread makes when it starts (hash-worker.js).
    workerData: { rounds, counters },
  });

  const run = (task: { op: 'hash' | 'verify' | 'dummy'; password: string; hash?: string }): Promise<unknown> => {
    if (pool.queueSize >= maxQueue) return Promise.reject(new HasherBusyError());
    return pool.run(task);
  };

  const verify = async (password: string, hash: string): Promise<boolean> => {
    if (!BCRYPT_RE.test(hash)) return false;
    // $2y$ (PHP) and $2b$ are the same algorithm; the native binding only knows $2a$/$2b$.
    const normalised = hash.startsWith('$2y$') ? `$2b$${hash.slice(4)}` : hash;
    return (await run({ op: 'verify', password, hash: normalised })) as boolean;
  };

  return {
    hash: async (password) => (await run({ op: 'hash', password })) as string,
    verify,
    verifyDummy: async (password) => {
      await run({ op: 'dummy', password });
    },
    needsRehash: (hash) => {
      const m = BCRYPT_RE.exec(hash);
      return !m || Number(m[1]) < rounds;
    },
    get queueDepth() {
      return pool.queueSize;
    },
    get active() {
      return Atomics.load(counters, 0);
    },
    get peakActive() {
      return Atomics.load(counters, 1);
    },
    close: () => pool.destroy(),
  };
}
