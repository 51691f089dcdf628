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

/**
 * A hash was refused at once: `maxQueue` hashes already wait for a thread, or the wait
 * would exceed `maxWaitMs`. The HTTP layer answers 503 `service_unavailable` with
 * `Retry-After: retryAfterSeconds`.
 */
export class HasherBusyError extends Error {
  override name = 'HasherBusyError';
  constructor(readonly retryAfterSeconds = 2) {
    super('too many password hashes are waiting for a hashing thread');
  }
}

export interface BcryptHasherOptions {
  /** Hashes allowed to wait for a thread (BCRYPT_MAX_QUEUE). */
  maxQueue?: number;
  /**
   * BCRYPT_MAX_WAIT_MS: a hash whose estimated wait for a thread (queued hashes ahead ÷
   * threads + ½, × the last hash's duration) exceeds this is refused at once, so a sign-in gets a
   * 503 with Retry-After instead of running into a client's timeout.
   */
  maxWaitMs?: number;
  /** BCRYPT_NICE: the hashing threads' nice value (0: the same priority as the rest). */
  nice?: number;
}

export const isHasherBusy = (err: unknown): err is HasherBusyError => err instanceof HasherBusyError;

export interface BcryptHasher extends PasswordHasher {
  /** Hashes running on a thread right now. */
  readonly active: number;
  /** The most hashes that ever ran at once (never above `concurrency`). */
  readonly peakActive: number;
  /** The wait a hash submitted now is estimated to have before a thread takes it. */
  readonly estimatedWaitMs: number;
}

const BCRYPT_RE = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;

/**
 * bcrypt on `concurrency` dedicated threads (docs/hardening.md, "Password hashing under load"): hashing never occupies
 * libuv's pool, which jose's Web Crypto needs for every signature. The threads run
 * at nice `nice` (BCRYPT_NICE, default 0): when session checks and sign-ins both
 * saturate the CPU, the scheduler shares it between them (docs/operations.md,
 * "Hashing under overload"; docs/hardening.md "Password hashing under load") instead
 * of starving one.
 *
 * At most `concurrency` hashes run at once (one per thread); the others wait in a
 * queue of at most `maxQueue`, and only while their estimated wait stays within
 * `maxWaitMs`; beyond either a hash is refused with HasherBusyError at once: a
 * flood queues up to a bound, then sheds load (503 + Retry-After) instead of
 * holding every request (and its body) in memory until clients time out.
 */
export function createBcryptHasher(rounds: number, concurrency: number, opts: BcryptHasherOptions = {}): BcryptHasher {
  const maxQueue = opts.maxQueue ?? Number.POSITIVE_INFINITY;
  const maxWaitMs = opts.maxWaitMs ?? Number.POSITIVE_INFINITY;
  // [hashing now, most ever hashing at once, the last hash's µs], updated by the threads themselves (hash-worker.js).
  const counters = new Int32Array(new SharedArrayBuffer(12));
  /** Hashes handed to the pool and not finished (running, held by a thread, or queued). */
  let inFlight = 0;
  const pool = new Piscina({
    filename: new URL('./hash-worker.js', import.meta.url).href,
    minThreads: concurrency,
    maxThreads: concurrency,
    // Each thread holds its next task already, so it never idles waiting for the event loop to hand one over.
    concurrentTasksPerWorker: 2,
    idleTimeout: Number.POSITIVE_INFINITY,
    // The cost of every hash, and of the dummy hash each thread makes when it starts (hash-worker.js).
    workerData: { rounds, counters, nice: opts.nice ?? 0 },
  });

  /**
   * How long a hash submitted now would wait for a thread: none while one is free; else
   * the queued hashes ahead of it, `concurrency` at a time, plus half a hash (the running ones).
   */
  const estimatedWaitMs = () => (inFlight < concurrency ? 0 : ((inFlight - concurrency) / concurrency + 0.5) * (Atomics.load(counters, 2) / 1000));

  const run = (task: { op: 'hash' | 'verify' | 'dummy'; password: string; hash?: string }): Promise<unknown> => {
    if (pool.queueSize >= maxQueue) return Promise.reject(new HasherBusyError());
    if (Number.isFinite(maxWaitMs)) {
      const wait = estimatedWaitMs();
      if (wait > maxWaitMs) return Promise.reject(new HasherBusyError(Math.min(60, Math.max(1, Math.ceil(wait / 1000)))));
    }
    inFlight++;
    return pool.run(task).finally(() => inFlight--);
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
    get estimatedWaitMs() {
      return estimatedWaitMs();
    },
    close: () => pool.destroy(),
  };
}
