import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SignJWT, calculateJwkThumbprint, exportJWK, importJWK, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JwtAlgorithm } from '../../src/config/index.js';
import { loadKeyRing } from '../../src/infra/key-store.js';
import { KeyError, createKeyRing, generateKeyPairPem, toSigningKey } from '../../src/infra/keys.js';
import type { AccessClaims } from '../../src/features/sessions/claims.js';
import { createTokenSigner } from '../../src/features/sessions/token-signer.js';
import { ManualClock } from '../../src/infra/clock.js';
import { rejectionOf } from '../helpers/rejection.js';

const pkcs8 = (k: KeyObject) => k.export({ type: 'pkcs8', format: 'pem' }).toString();
const spki = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }).toString();

const keyError = (fn: () => Promise<unknown>) => rejectionOf(fn(), KeyError);

const ALGS: JwtAlgorithm[] = ['RS256', 'ES256', 'EdDSA'];
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

// RSA generation is slow: one pair per algorithm for the whole file.
const pairs = Object.fromEntries(ALGS.map((alg) => [alg, generateKeyPairPem(alg)])) as Record<JwtAlgorithm, { privateKey: string; publicKey: string }>;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'tessera-keys-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('toSigningKey', () => {
  const expected = {
    RS256: { type: 'rsa', kty: 'RSA', crv: undefined },
    ES256: { type: 'ec', kty: 'EC', crv: 'P-256' },
    EdDSA: { type: 'ed25519', kty: 'OKP', crv: 'Ed25519' },
  } as const;

  it.each(ALGS)('%s: kid is the RFC 7638 thumbprint and the JWK is public only', async (alg) => {
    const key = await toSigningKey(pairs[alg].privateKey, alg, 'PRIVATE_KEY', pairs[alg].publicKey);
    expect(key.alg).toBe(alg);
    expect(key.privateKey.type).toBe('private');
    expect(key.publicKey.type).toBe('public');
    expect(key.privateKey.asymmetricKeyType).toBe(expected[alg].type);

    const jwk = await exportJWK(key.publicKey);
    expect(key.kid).toBe(await calculateJwkThumbprint(jwk, 'sha256'));
    // Computed from the published JWK as a verifier would, it is the same.
    expect(await calculateJwkThumbprint(key.publicJwk, 'sha256')).toBe(key.kid);

    expect(key.publicJwk).toMatchObject({ kty: expected[alg].kty, kid: key.kid, alg, use: 'sig' });
    expect(key.publicJwk.crv).toBe(expected[alg].crv);
    for (const member of PRIVATE_JWK_MEMBERS) expect(key.publicJwk).not.toHaveProperty(member);

    // A token signed with the private key verifies with the published JWK alone.
    const token = await new SignJWT({ sub: 'u1' }).setProtectedHeader({ alg, kid: key.kid }).sign(key.privateKey);
    const { payload } = await jwtVerify(token, await importJWK(key.publicJwk, alg), { algorithms: [alg] });
    expect(payload.sub).toBe('u1');
  });

  it('different keys get different kids', async () => {
    const a = await toSigningKey(pairs.ES256.privateKey, 'ES256', 'a');
    const b = await toSigningKey(generateKeyPairPem('ES256').privateKey, 'ES256', 'b');
    expect(a.kid).not.toBe(b.kid);
  });

  const mismatches = ALGS.flatMap((keyAlg) => ALGS.filter((want) => want !== keyAlg).map((want) => [keyAlg, want] as const));
  it.each(mismatches)('a %s key with JWT_ALGORITHM=%s is a KeyError', async (keyAlg, want) => {
    const err = await keyError(() => toSigningKey(pairs[keyAlg].privateKey, want, 'PRIVATE_KEY'));
    const described = { RS256: 'an RSA-2048 key', ES256: 'an EC prime256v1 key', EdDSA: 'an ed25519 key' }[keyAlg];
    const needed = { RS256: 'an RSA key of at least 2048 bits', ES256: 'an EC P-256 key', EdDSA: 'an Ed25519 key' }[want];
    expect(err.message).toBe(`PRIVATE_KEY is ${described}, but JWT_ALGORITHM=${want} needs ${needed}.`);
  });

  it('refuses RSA keys shorter than 2048 bits', async () => {
    const rsa1024 = pkcs8(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey);
    const err = await keyError(() => toSigningKey(rsa1024, 'RS256', 'PRIVATE_KEY'));
    expect(err.message).toContain('RSA-1024');
    expect(err.message).toContain('at least 2048 bits');
  });

  it('refuses EC keys on another curve and Ed448 keys', async () => {
    const p384 = pkcs8(generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey);
    expect((await keyError(() => toSigningKey(p384, 'ES256', 'PRIVATE_KEY'))).message).toContain('secp384r1');
    const ed448 = pkcs8(generateKeyPairSync('ed448').privateKey);
    expect((await keyError(() => toSigningKey(ed448, 'EdDSA', 'PRIVATE_KEY'))).message).toContain('ed448');
  });

  it('a string that is not a PEM private key is a KeyError that does not echo it', async () => {
    for (const bad of ['not a key', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', pairs.ES256.publicKey]) {
      const err = await keyError(() => toSigningKey(bad, 'ES256', 'PRIVATE_KEY'));
      expect(err.message).toBe('PRIVATE_KEY is not a readable PEM private key.');
    }
  });

  it('a PUBLIC_KEY that does not belong to PRIVATE_KEY is a KeyError', async () => {
    const other = generateKeyPairPem('ES256');
    const err = await keyError(() => toSigningKey(pairs.ES256.privateKey, 'ES256', 'PRIVATE_KEY', other.publicKey));
    expect(err.message).toBe('PUBLIC_KEY does not belong to PRIVATE_KEY.');
    const unreadable = await keyError(() => toSigningKey(pairs.ES256.privateKey, 'ES256', 'PRIVATE_KEY', 'garbage'));
    expect(unreadable.message).toBe('PUBLIC_KEY is not a readable PEM public key.');
    // The matching PUBLIC_KEY is accepted.
    const ok = await toSigningKey(pairs.ES256.privateKey, 'ES256', 'PRIVATE_KEY', pairs.ES256.publicKey);
    expect(ok.kid).toBeTruthy();
  });

  it('the refresh secret is stable for one key and differs between keys', async () => {
    const a1 = await toSigningKey(pairs.EdDSA.privateKey, 'EdDSA', 'a');
    const a2 = await toSigningKey(pairs.EdDSA.privateKey, 'EdDSA', 'a again');
    const b = await toSigningKey(generateKeyPairPem('EdDSA').privateKey, 'EdDSA', 'b');
    expect(a1.refreshSecret).toHaveLength(32);
    expect(Buffer.from(a1.refreshSecret).equals(Buffer.from(a2.refreshSecret))).toBe(true);
    expect(Buffer.from(a1.refreshSecret).equals(Buffer.from(b.refreshSecret))).toBe(false);
    // The secret is not the key material itself.
    const der = a1.privateKey.export({ type: 'pkcs8', format: 'der' });
    expect(der.includes(Buffer.from(a1.refreshSecret))).toBe(false);
  });
});

describe('createKeyRing', () => {
  it('the first key signs; every key is findable by kid and published', async () => {
    const a = await toSigningKey(pairs.ES256.privateKey, 'ES256', 'a');
    const b = await toSigningKey(pairs.EdDSA.privateKey, 'EdDSA', 'b');
    const ring = createKeyRing([a, b]);
    expect(ring.current).toBe(a);
    expect(ring.byKid(b.kid)).toBe(b);
    expect(ring.byKid('nope')).toBeUndefined();
    expect(ring.jwks().keys.map((k) => k.kid)).toEqual([a.kid, b.kid]);
    expect(() => createKeyRing([])).toThrow(KeyError);
  });
});

describe('loadKeyRing', () => {
  it('uses the configured private key', async () => {
    const { ring, generatedAt } = await loadKeyRing({ algorithm: 'ES256', privateKeyPem: pairs.ES256.privateKey, publicKeyPem: null, devKeysDir: dir });
    expect(generatedAt).toBeUndefined();
    expect(ring.current.kid).toBe((await toSigningKey(pairs.ES256.privateKey, 'ES256', 'x')).kid);
  });

  it('checks the configured key against the algorithm and PUBLIC_KEY', async () => {
    await keyError(() => loadKeyRing({ algorithm: 'RS256', privateKeyPem: pairs.ES256.privateKey, publicKeyPem: null, devKeysDir: null }));
    await keyError(() =>
      loadKeyRing({ algorithm: 'ES256', privateKeyPem: pairs.ES256.privateKey, publicKeyPem: generateKeyPairPem('ES256').publicKey, devKeysDir: null }),
    );
  });

  it('in development, generates a key pair once (private.pem mode 0600) and reuses it', async () => {
    const keysDir = path.join(dir, 'dev', 'keys');
    const first = await loadKeyRing({ algorithm: 'EdDSA', privateKeyPem: null, publicKeyPem: null, devKeysDir: keysDir });
    const privatePath = path.join(keysDir, 'private.pem');
    expect(first.generatedAt).toBe(privatePath);
    expect(statSync(privatePath).mode & 0o777).toBe(0o600);
    const publicPem = readFileSync(path.join(keysDir, 'public.pem'), 'utf8');
    expect(spki(first.ring.current.publicKey)).toBe(publicPem);
    const privatePem = readFileSync(privatePath, 'utf8');

    const second = await loadKeyRing({ algorithm: 'EdDSA', privateKeyPem: null, publicKeyPem: null, devKeysDir: keysDir });
    expect(second.generatedAt).toBeUndefined();
    expect(second.ring.current.kid).toBe(first.ring.current.kid);
    expect(readFileSync(privatePath, 'utf8')).toBe(privatePem);
  });

  it('after a change of JWT_ALGORITHM, a key of the new algorithm is generated and signs; the old key stays published', async () => {
    // Never sign with another algorithm than JWT_ALGORITHM (docs/key-rotation.md).
    const keysDir = path.join(dir, 'switch', 'keys');
    const first = await loadKeyRing({ algorithm: 'ES256', privateKeyPem: null, publicKeyPem: null, devKeysDir: keysDir });
    const privatePem = readFileSync(path.join(keysDir, 'private.pem'), 'utf8');
    const again = await loadKeyRing({ algorithm: 'EdDSA', privateKeyPem: null, publicKeyPem: null, devKeysDir: keysDir });
    expect(again.generatedAt).toBe(path.join(keysDir, 'private-EdDSA.pem'));
    expect(statSync(again.generatedAt!).mode & 0o777).toBe(0o600);
    expect(again.ring.current.alg).toBe('EdDSA');
    expect(again.ring.all.map((k) => k.kid).sort()).toEqual([again.ring.current.kid, first.ring.current.kid].sort());
    expect(again.ring.privateByKid(first.ring.current.kid)?.alg).toBe('ES256');
    expect(readFileSync(path.join(keysDir, 'private.pem'), 'utf8')).toBe(privatePem);
    // Back to ES256: its key signs again, nothing new is generated.
    const back = await loadKeyRing({ algorithm: 'ES256', privateKeyPem: null, publicKeyPem: null, devKeysDir: keysDir });
    expect(back.generatedAt).toBeUndefined();
    expect(back.ring.current.kid).toBe(first.ring.current.kid);
    expect(back.ring.all).toHaveLength(2);
  });

  it('without a key and without a development directory is a KeyError', async () => {
    const err = await keyError(() => loadKeyRing({ algorithm: 'RS256', privateKeyPem: null, publicKeyPem: null, devKeysDir: null }));
    expect(err.message).toContain('PRIVATE_KEY');
  });
});

it('the token signer refuses to sign with a key of another algorithm than JWT_ALGORITHM', async () => {
  const ring = createKeyRing([await toSigningKey(pairs.RS256.privateKey, 'RS256', 'PRIVATE_KEY')]);
  const claims: AccessClaims = { sub: 'u', sid: 's', email: 'a@example.com', email_verified: true, roles: [], permissions: [], amr: ['pwd'] };
  const opts = { issuer: 'http://tessera.test', audience: 'tessera', accessTokenSeconds: 900 };
  await expect(createTokenSigner(ring, new ManualClock(new Date()), { ...opts, algorithm: 'ES256' }).signAccess(claims)).rejects.toThrow(
    'refusing to sign with RS256',
  );
  const { token } = await createTokenSigner(ring, new ManualClock(new Date()), { ...opts, algorithm: 'RS256' }).signAccess(claims);
  expect(token.split('.')).toHaveLength(3);
});
