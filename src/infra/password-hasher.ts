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

const BCRYPT_RE = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;

/**
 * bcrypt on `concurrency` dedicated threads running at the lowest CPU priority
 * (DESIGN §9): hashing never occupies libuv's pool, which jose's Web Crypto
 * needs for every signature, and never delays the event loop when the cores are busy.
 */
export function createBcryptHasher(rounds: number, concurrency: number): PasswordHasher {
  const pool = new Piscina({
    filename: new URL('./hash-worker.js', import.meta.url).href,
    minThreads: concurrency,
    maxThreads: concurrency,
    // Each thread holds its next task already, so it never idles waiting for the event loop to hand one over.
    concurrentTasksPerWorker: 2,
    idleTimeout: Number.POSITIVE_INFINITY,
    // The cost of every hash, and of the dummy hash each thread makes when it starts (hash-worker.js).
    workerData: { rounds },
  });

  const verify = async (password: string, hash: string): Promise<boolean> => {
    if (!BCRYPT_RE.test(hash)) return false;
    // $2y$ (PHP) and $2b$ are the same algorithm; the native binding only knows $2a$/$2b$.
    const normalised = hash.startsWith('$2y$') ? `$2b$${hash.slice(4)}` : hash;
    return (await pool.run({ op: 'verify', password, hash: normalised })) as boolean;
  };

  return {
    hash: async (password) => (await pool.run({ op: 'hash', password })) as string,
    verify,
    verifyDummy: async (password) => {
      await pool.run({ op: 'dummy', password });
    },
    needsRehash: (hash) => {
      const m = BCRYPT_RE.exec(hash);
      return !m || Number(m[1]) < rounds;
    },
    get queueDepth() {
      return pool.queueSize;
    },
    close: () => pool.destroy(),
  };
}
