import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Client secrets. Each is 256 random bits, shown once and stored as its SHA-256.
 * Not bcrypt: bcrypt slows the guessing of low-entropy passwords, and a random
 * 256-bit secret cannot be guessed however fast the hash is; a slow hash would
 * only make every token request (and every unknown-client probe) cost a bcrypt
 * round on the hashing threads the password sign-ins need.
 */

/** Secrets start with this (secret scanners and people can recognise a leaked one). */
export const SECRET_PREFIX = 'tcs_';

/** A new client id: base64url of 16 random bytes (URL-safe, nothing to encode in HTTP Basic). */
export const newClientId = () => randomBytes(16).toString('base64url');

/** A new secret: 32 random bytes. */
export const newSecret = () => SECRET_PREFIX + randomBytes(32).toString('base64url');

export const hashSecret = (secret: string) => createHash('sha256').update(secret, 'utf8').digest('hex');

/** Compared in constant time (both sides are SHA-256 hex: same length). */
export function hashesEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Hashed and compared against when the client is unknown: the same work as a known one (no timing oracle). */
export const DUMMY_HASH = hashSecret('tessera-no-such-client');
