import { createPrivateKey, createPublicKey, generateKeyPairSync, hkdfSync, webcrypto, type KeyObject } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { calculateJwkThumbprint, exportJWK, type JWK } from 'jose';
import type { JwtAlgorithm } from '../config/index.js';
import { systemClock } from './clock.js';

/** A published key: enough to verify access tokens signed with it. */
export interface VerificationKey {
  kid: string;
  alg: JwtAlgorithm;
  publicKey: KeyObject;
  publicJwk: JWK;
}

export interface SigningKey extends VerificationKey {
  privateKey: KeyObject;
  /** HMAC secret for refresh tokens, derived from the private key (only Tessera reads them). */
  refreshSecret: Uint8Array;
  /** The same secret imported once for HS256 (jose would re-import a raw secret on every call). */
  refreshKey: webcrypto.CryptoKey;
  /** AES-256-GCM key for secrets Tessera keeps briefly at rest (email links waiting in the outbox). */
  sealSecret: Buffer;
}

const isSigningKey = (k: VerificationKey): k is SigningKey => 'privateKey' in k;

export interface KeyRing {
  /** The key that signs new tokens (it may change with time: a pending key becomes the signing key at its activation time). */
  readonly current: SigningKey;
  /** Every published key (pending, signing, previous), newest first. */
  readonly all: readonly VerificationKey[];
  /** A published key: verifies access tokens. */
  byKid(kid: string): VerificationKey | undefined;
  /** A key whose private part is known: its refresh tokens and sealed secrets still open. */
  privateByKid(kid: string): SigningKey | undefined;
  /** The algorithms of the published keys (what access tokens may be signed with). */
  algorithms(): JwtAlgorithm[];
  /** The public JWK Set (public members only). */
  jwks(): { keys: JWK[] };
}

/** A key of a ring with the time it starts signing (null: from the start, or never for a public-only key). */
export interface ScheduledKey {
  key: VerificationKey;
  activatesAt: Date | null;
}

export class KeyError extends Error {
  override name = 'KeyError';
}

function describe(key: KeyObject): string {
  const d = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec') return `an EC ${d?.namedCurve ?? ''} key`;
  if (key.asymmetricKeyType === 'rsa') return `an RSA-${d?.modulusLength ?? '?'} key`;
  return `an ${key.asymmetricKeyType ?? 'unknown'} key`;
}

/** Throws unless the key can sign with `alg` (RS256: RSA ≥ 2048; ES256: P-256; EdDSA: Ed25519). */
export function assertKeyMatches(key: KeyObject, alg: JwtAlgorithm, source: string): void {
  const d = key.asymmetricKeyDetails;
  const ok =
    (alg === 'RS256' && key.asymmetricKeyType === 'rsa' && (d?.modulusLength ?? 0) >= 2048) ||
    (alg === 'ES256' && key.asymmetricKeyType === 'ec' && d?.namedCurve === 'prime256v1') ||
    (alg === 'EdDSA' && key.asymmetricKeyType === 'ed25519');
  if (!ok) {
    const want = { RS256: 'an RSA key of at least 2048 bits', ES256: 'an EC P-256 key', EdDSA: 'an Ed25519 key' }[alg];
    throw new KeyError(`${source} is ${describe(key)}, but JWT_ALGORITHM=${alg} needs ${want}.`);
  }
}

/** The algorithm a key signs with: RS256 (RSA ≥ 2048), ES256 (EC P-256), EdDSA (Ed25519); null for any other key. */
export function algorithmOf(key: KeyObject): JwtAlgorithm | null {
  for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
    try {
      assertKeyMatches(key, alg, 'key');
      return alg;
    } catch {
      // not this one
    }
  }
  return null;
}

/** Whether a PEM text holds a private key block (any form: PKCS#8, RSA, EC, encrypted). */
export const isPrivateKeyPem = (pem: string): boolean => /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem);

/** A public-only key (PREVIOUS_PUBLIC_KEYS, a public PEM in KEYS_DIR): verifies access tokens, signs nothing. */
export async function toVerificationKey(publicPem: string, source: string): Promise<VerificationKey> {
  if (isPrivateKeyPem(publicPem)) throw new KeyError(`${source} holds a private key where a public key is expected.`);
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey(publicPem);
  } catch {
    throw new KeyError(`${source} is not a readable PEM public key.`);
  }
  const alg = algorithmOf(publicKey);
  if (!alg) throw new KeyError(`${source} is ${describe(publicKey)}; a signing key is RSA (at least 2048 bits), EC P-256 or Ed25519.`);
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  return { kid, alg, publicKey, publicJwk: { ...jwk, kid, alg, use: 'sig' } };
}

/** The PEM blocks of a string holding several concatenated ones (PREVIOUS_PUBLIC_KEYS). */
export function splitPemBlocks(text: string): string[] {
  return [...text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g)].map((m) => `${m[0]}\n`);
}

export async function toSigningKey(privatePem: string, alg: JwtAlgorithm, source: string, publicPem?: string | null): Promise<SigningKey> {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(privatePem);
  } catch {
    throw new KeyError(`${source} is not a readable PEM private key.`);
  }
  assertKeyMatches(privateKey, alg, source);
  const publicKey = createPublicKey(privateKey);
  if (publicPem) {
    let given: KeyObject;
    try {
      given = createPublicKey(publicPem);
    } catch {
      throw new KeyError('PUBLIC_KEY is not a readable PEM public key.');
    }
    const der = (k: KeyObject) => k.export({ type: 'spki', format: 'der' });
    if (!der(given).equals(der(publicKey))) throw new KeyError('PUBLIC_KEY does not belong to PRIVATE_KEY.');
  }
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
  const refreshSecret = new Uint8Array(hkdfSync('sha256', pkcs8, Buffer.alloc(0), 'tessera/refresh-token/v1', 32));
  const refreshKey = await webcrypto.subtle.importKey('raw', refreshSecret, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
  const sealSecret = Buffer.from(hkdfSync('sha256', pkcs8, Buffer.alloc(0), 'tessera/sealed-secret/v1', 32));
  return { kid, alg, privateKey, publicKey, publicJwk: { ...jwk, kid, alg, use: 'sig' }, refreshSecret, refreshKey, sealSecret };
}

/** A ring whose first key signs (with its own algorithm) and every key is published (PRIVATE_KEY + PREVIOUS_PUBLIC_KEYS, tests). */
export function createKeyRing(keys: VerificationKey[]): KeyRing {
  const first = keys.find(isSigningKey);
  if (!first) throw new KeyError('No signing key: every key is public only.');
  return createScheduledRing(
    keys.map((key) => ({ key, activatesAt: null })),
    systemClock,
    first.alg,
  );
}

/**
 * A ring of keys with activation times (KEYS_DIR). Newest activation first; the
 * signing key is the newest private key of `algorithm` (JWT_ALGORITHM) whose
 * activation time has come, so a published pending key starts signing by
 * itself, on the clock. Keys of another algorithm never sign; every key is
 * published until it is removed (tokens it signed keep verifying).
 */
export function createScheduledRing(entries: ScheduledKey[], clock: { now(): Date }, algorithm: JwtAlgorithm): KeyRing {
  const at = (e: ScheduledKey) => e.activatesAt?.getTime() ?? Number.NEGATIVE_INFINITY;
  // Stable sort: keys without activation times keep their given order.
  const sorted = entries
    .map((e, i) => ({ e, i }))
    .sort((a, b) => at(b.e) - at(a.e) || a.i - b.i)
    .map(({ e }) => e);
  const signers = sorted.filter((e) => isSigningKey(e.key) && e.key.alg === algorithm);
  // None active yet (only pending keys): the one activating first signs.
  const fallback = signers.at(-1);
  if (!fallback) throw new KeyError(`No signing key for JWT_ALGORITHM=${algorithm}: every key is public only or of another algorithm.`);
  const seen = new Set<string>();
  for (const { key } of sorted) {
    if (seen.has(key.kid)) throw new KeyError(`The key ${key.kid} is given twice.`);
    seen.add(key.kid);
  }
  const all = sorted.map((e) => e.key);
  const map = new Map(all.map((k) => [k.kid, k]));
  const set = { keys: all.map((k) => k.publicJwk) };
  const algs = [...new Set(all.map((k) => k.alg))];
  return {
    get current() {
      const now = clock.now().getTime();
      return (signers.find((e) => at(e) <= now) ?? fallback).key as SigningKey;
    },
    all,
    byKid: (kid) => map.get(kid),
    privateByKid: (kid) => {
      const k = map.get(kid);
      return k && isSigningKey(k) ? k : undefined;
    },
    algorithms: () => algs,
    jwks: () => set,
  };
}

/** A ring whose keys can be swapped for freshly loaded ones while every user keeps its reference. */
export interface SwappableKeyRing extends KeyRing {
  swap(next: KeyRing): void;
}

export function createSwappableRing(initial: KeyRing): SwappableKeyRing {
  let ring = initial;
  return {
    get current() {
      return ring.current;
    },
    get all() {
      return ring.all;
    },
    byKid: (kid) => ring.byKid(kid),
    privateByKid: (kid) => ring.privateByKid(kid),
    algorithms: () => ring.algorithms(),
    jwks: () => ring.jwks(),
    swap(next) {
      ring = next;
    },
  };
}

/** A new PEM key pair for `alg`. */
export function generateKeyPairPem(alg: JwtAlgorithm): { privateKey: string; publicKey: string } {
  const pair =
    alg === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : alg === 'ES256'
        ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
        : generateKeyPairSync('ed25519');
  return {
    privateKey: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** Writes a PEM pair into `dir` (private key readable by the owner only). */
export function writeKeyPair(dir: string, pair: { privateKey: string; publicKey: string }): { privatePath: string; publicPath: string } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const privatePath = path.join(dir, 'private.pem');
  const publicPath = path.join(dir, 'public.pem');
  writeFileSync(privatePath, pair.privateKey, { mode: 0o600, flag: 'wx' });
  chmodSync(privatePath, 0o600);
  writeFileSync(publicPath, pair.publicKey, { flag: 'w' });
  return { privatePath, publicPath };
}
