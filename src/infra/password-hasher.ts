import bcrypt from 'bcrypt';
import { Semaphore } from './semaphore.js';

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(password: string, hash: string): Promise<boolean>;
  /** Spends the time of one verification without a real hash (unknown users). */
  verifyDummy(password: string): Promise<void>;
  /** True when the hash was made with a lower cost than configured (or is not a bcrypt hash at all). */
  needsRehash(hash: string): boolean;
  /** Hashes waiting for a free slot. */
  readonly queueDepth: number;
}

const BCRYPT_RE = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;

/**
 * bcrypt on libuv's thread pool, at most `concurrency` at a time, so hashing
 * never takes every pool thread from token signing and verification (jose's
 * Web Crypto runs on the same pool).
 */
export function createBcryptHasher(rounds: number, concurrency: number): PasswordHasher {
  const gate = new Semaphore(concurrency);
  // A real hash at the configured cost, so an unknown email costs what a known one does.
  const dummy = bcrypt.hashSync('tessera-dummy-password', rounds);

  const verify = (password: string, hash: string): Promise<boolean> => {
    if (!BCRYPT_RE.test(hash)) return Promise.resolve(false);
    // $2y$ (PHP) and $2b$ are the same algorithm; the native binding only knows $2a$/$2b$.
    const normalised = hash.startsWith('$2y$') ? `$2b$${hash.slice(4)}` : hash;
    return gate.run(() => bcrypt.compare(password, normalised));
  };

  return {
    hash: (password) => gate.run(() => bcrypt.hash(password, rounds)),
    verify,
    verifyDummy: async (password) => {
      await verify(password, dummy);
    },
    needsRehash: (hash) => {
      const m = BCRYPT_RE.exec(hash);
      return !m || Number(m[1]) < rounds;
    },
    get queueDepth() {
      return gate.pending;
    },
  };
}
