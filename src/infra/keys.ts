import { createPrivateKey, createPublicKey, generateKeyPairSync, hkdfSync, webcrypto, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { calculateJwkThumbprint, exportJWK, type JWK } from 'jose';
import type { JwtAlgorithm } from '../config.js';

export interface SigningKey {
  kid: string;
  alg: JwtAlgorithm;
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicJwk: JWK;
  /** HMAC secret for refresh tokens, derived from the private key (only Tessera reads them). */
  refreshSecret: Uint8Array;
  /** The same secret imported once for HS256 (jose would re-import a raw secret on every call). */
  refreshKey: webcrypto.CryptoKey;
  /** AES-256-GCM key for secrets Tessera keeps briefly at rest (email links waiting in the outbox). */
  sealSecret: Buffer;
}

export interface KeyRing {
  /** The key that signs new tokens. */
  current: SigningKey;
  /** Every key whose tokens may still be alive, newest first. */
  all: SigningKey[];
  byKid(kid: string): SigningKey | undefined;
  /** The public JWK Set (public members only). */
  jwks(): { keys: JWK[] };
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

export function createKeyRing(keys: SigningKey[]): KeyRing {
  const [current] = keys;
  if (!current) throw new KeyError('No signing key.');
  const map = new Map(keys.map((k) => [k.kid, k]));
  const set = { keys: keys.map((k) => k.publicJwk) };
  return { current, all: keys, byKid: (kid) => map.get(kid), jwks: () => set };
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

export interface KeySource {
  algorithm: JwtAlgorithm;
  privateKeyPem: string | null;
  publicKeyPem: string | null;
  /** Where a development key pair is generated once and reused; null = never generate. */
  devKeysDir: string | null;
}

export interface LoadedKeys {
  ring: KeyRing;
  /** Set when a development key pair was generated by this call. */
  generatedAt?: string;
}

/** Loads the configured key, or in development generates one once into `devKeysDir`. */
export async function loadKeyRing(src: KeySource): Promise<LoadedKeys> {
  if (src.privateKeyPem) {
    const key = await toSigningKey(src.privateKeyPem, src.algorithm, 'PRIVATE_KEY', src.publicKeyPem);
    return { ring: createKeyRing([key]) };
  }
  if (!src.devKeysDir) throw new KeyError('PRIVATE_KEY is not set.');
  const privatePath = path.join(src.devKeysDir, 'private.pem');
  let generatedAt: string | undefined;
  if (!existsSync(privatePath)) {
    try {
      writeKeyPair(src.devKeysDir, generateKeyPairPem(src.algorithm));
      generatedAt = privatePath;
    } catch (err) {
      // another process generated it first: use theirs
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  const key = await toSigningKey(readFileSync(privatePath, 'utf8'), src.algorithm, privatePath);
  return generatedAt ? { ring: createKeyRing([key]), generatedAt } : { ring: createKeyRing([key]) };
}
