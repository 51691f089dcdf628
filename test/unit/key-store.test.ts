import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JwtAlgorithm } from '../../src/config/index.js';
import { ManualClock } from '../../src/infra/clock.js';
import { createKeyFile, fileStamp, keyStatuses, loadKeyRing, readKeyDir } from '../../src/infra/key-store.js';
import { KeyError, generateKeyPairPem, toSigningKey } from '../../src/infra/keys.js';
import { createSecretBox } from '../../src/infra/secret-box.js';
import { createTokenVerifier } from '../../src/features/sessions/token-verifier.js';
import { watchKeys } from '../../src/runtime.js';
import { rejectionOf } from '../helpers/rejection.js';

// KEYS_DIR: how a directory of PEM keys becomes the ring (docs/key-rotation.md).

const ALGS: JwtAlgorithm[] = ['RS256', 'ES256', 'EdDSA'];
const pairs = Object.fromEntries(ALGS.map((alg) => [alg, generateKeyPairPem(alg)])) as Record<JwtAlgorithm, { privateKey: string; publicKey: string }>;
const kidOf = async (pem: string, alg: JwtAlgorithm) => (await toSigningKey(pem, alg, 'x')).kid;
/** More ES256 keys (the algorithm the rings of this file are loaded with): a, b, c. */
const es = [pairs.ES256, generateKeyPairPem('ES256'), generateKeyPairPem('ES256')] as const;

let root: string;
let n = 0;
const freshDir = () => {
  const d = path.join(root, `d${++n}`);
  mkdirSync(d, { recursive: true });
  return d;
};
beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'tessera-keydir-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

const T0 = new Date('2026-01-15T12:00:00Z');
const at = (minutes: number) => new Date(T0.getTime() + minutes * 60_000);
const put = (dir: string, name: string, pem: string) => writeFileSync(path.join(dir, name), pem, { mode: 0o600 });

const keyError = (fn: () => Promise<unknown>) => rejectionOf(fn(), KeyError);

const load = (dir: string, clock: { now(): Date }, dev = false) =>
  loadKeyRing({ algorithm: 'ES256', privateKeyPem: null, publicKeyPem: null, keysDir: dir, devKeysDir: dev ? dir : null, clock });

describe('reading a keys directory', () => {
  it('orders keys by the time in their names, newest first; the newest whose time has come signs; all are published', async () => {
    const dir = freshDir();
    put(dir, `${fileStamp(at(0))}-a.pem`, es[0].privateKey);
    put(dir, `${fileStamp(at(10))}-b.pem`, es[1].privateKey);
    put(dir, `${fileStamp(at(20))}-c.pem`, es[2].privateKey);
    const [a, b, c] = await Promise.all(es.map((p) => kidOf(p.privateKey, 'ES256')));
    const clock = new ManualClock(at(5));
    const { ring } = await load(dir, clock);

    expect(ring.all.map((k) => k.kid)).toEqual([c, b, a]);
    expect(ring.jwks().keys.map((k) => k.kid)).toEqual([c, b, a]);
    expect(ring.algorithms()).toEqual(['ES256']);

    expect(ring.current.kid).toBe(a); // b and c are pending: published, not signing
    clock.set(at(10));
    expect(ring.current.kid).toBe(b); // on the clock, no reload needed
    clock.set(at(25));
    expect(ring.current.kid).toBe(c);
    expect(ring.privateByKid(a!)?.kid).toBe(a); // older keys keep their private part (refresh tokens, sealed links)
  });

  it('keys of another algorithm than JWT_ALGORITHM are published (their tokens verify) but never sign, however new', async () => {
    const dir = freshDir();
    put(dir, `${fileStamp(at(0))}-a.pem`, es[0].privateKey);
    put(dir, `${fileStamp(at(10))}-rsa.pem`, pairs.RS256.privateKey);
    put(dir, `${fileStamp(at(20))}-ed.pem`, pairs.EdDSA.privateKey);
    const a = await kidOf(es[0].privateKey, 'ES256');
    const clock = new ManualClock(at(30));
    const { ring } = await load(dir, clock);
    expect(ring.all.map((k) => k.alg)).toEqual(['EdDSA', 'RS256', 'ES256']);
    expect(ring.algorithms().sort()).toEqual(['ES256', 'EdDSA', 'RS256']);
    expect([ring.current.kid, ring.current.alg]).toEqual([a, 'ES256']);
    const rsa = await kidOf(pairs.RS256.privateKey, 'RS256');
    expect(ring.privateByKid(rsa)?.alg).toBe('RS256'); // its refresh tokens and sealed links still open
    const files = await readKeyDir(dir);
    const life = { accessTokenSeconds: 15 * 60, refreshTokenSeconds: 30 * 86400 };
    expect(keyStatuses(files, at(30), life, 'ES256').map((k) => [k.key.alg, k.state])).toEqual([
      ['EdDSA', 'previous'],
      ['RS256', 'previous'],
      ['ES256', 'signing'],
    ]);
    // The same directory under JWT_ALGORITHM=EdDSA: the Ed25519 key signs.
    expect((await loadKeyRing({ algorithm: 'EdDSA', privateKeyPem: null, publicKeyPem: null, keysDir: dir, devKeysDir: null, clock })).ring.current.alg).toBe(
      'EdDSA',
    );
  });

  it('a KEYS_DIR without a key of JWT_ALGORITHM stops with a clear message (never signs with another algorithm)', async () => {
    const dir = freshDir();
    put(dir, `${fileStamp(at(0))}-rsa.pem`, pairs.RS256.privateKey);
    const err = await keyError(() => load(dir, new ManualClock(at(1))));
    expect(err.message).toContain(`${dir} holds no ES256 key, and JWT_ALGORITHM=ES256 (its keys are RS256)`);
    expect(err.message).toContain('JWT_ALGORITHM=ES256 tessera keys rotate');
    // Outside production too: only an empty KEYS_DIR gets a generated key.
    await keyError(() => load(dir, new ManualClock(at(1)), true));
    expect(readdirSync(dir)).toHaveLength(1);
  });

  it('the states and when each key is safe to retire', async () => {
    const dir = freshDir();
    put(dir, `${fileStamp(at(0))}-a.pem`, es[0].privateKey);
    put(dir, `${fileStamp(at(10))}-b.pem`, es[1].privateKey);
    put(dir, `${fileStamp(at(20))}-c.pem`, es[2].privateKey);
    const files = await readKeyDir(dir);
    const life = { accessTokenSeconds: 15 * 60, refreshTokenSeconds: 30 * 86400 };
    const s = keyStatuses(files, at(12), life, 'ES256');
    expect(s.map((k) => k.state)).toEqual(['pending', 'signing', 'previous']);
    const previous = s[2]!;
    expect(previous.stoppedSigningAt).toEqual(at(10));
    // 15 minutes of access tokens after it stopped, plus a minute for clock differences.
    expect(previous.safeToRetireAt).toEqual(at(26));
    expect(previous.refreshTokensUntil).toEqual(new Date(at(10).getTime() + 30 * 86400_000));
    expect(s[0]!.safeToRetireAt).toBeNull();
    expect(s[1]!.safeToRetireAt).toBeNull();
    // Later: b stopped at c's activation.
    const later = keyStatuses(files, at(30), life, 'ES256');
    expect(later.map((k) => k.state)).toEqual(['signing', 'previous', 'previous']);
    expect(later[1]!.stoppedSigningAt).toEqual(at(20));
  });

  it('only pending keys: the one activating first signs', async () => {
    const dir = freshDir();
    put(dir, `${fileStamp(at(60))}-later.pem`, es[0].privateKey);
    put(dir, `${fileStamp(at(30))}-sooner.pem`, es[1].privateKey);
    const { ring } = await load(dir, new ManualClock(at(0)));
    expect(ring.current.kid).toBe(await kidOf(es[1].privateKey, 'ES256'));
  });

  it('a file without a time in its name signs from its modification time', async () => {
    const dir = freshDir();
    put(dir, 'private.pem', es[0].privateKey);
    utimesSync(path.join(dir, 'private.pem'), at(0), at(0));
    put(dir, `${fileStamp(at(10))}-next.pem`, es[1].privateKey);
    const clock = new ManualClock(at(5));
    const { ring } = await load(dir, clock);
    expect(ring.current.kid).toBe(await kidOf(es[0].privateKey, 'ES256'));
    clock.set(at(11));
    expect(ring.current.kid).toBe(await kidOf(es[1].privateKey, 'ES256'));
  });

  it('the public half of a key in the directory is skipped; a public key of its own is published, never signs', async () => {
    const dir = freshDir();
    put(dir, 'private.pem', pairs.ES256.privateKey);
    put(dir, 'public.pem', pairs.ES256.publicKey);
    const older = generateKeyPairPem('RS256');
    put(dir, '20250101T000000Z-old.pem', older.publicKey);
    const { ring } = await load(dir, new ManualClock(at(0)));
    const oldKid = await kidOf(older.privateKey, 'RS256');
    expect(ring.all).toHaveLength(2);
    expect(ring.current.alg).toBe('ES256');
    expect(ring.byKid(oldKid)?.alg).toBe('RS256');
    expect(ring.privateByKid(oldKid)).toBeUndefined();
    const files = await readKeyDir(dir);
    expect(files.find((f) => f.key.kid === ring.current.kid)?.files.sort()).toEqual(['private.pem', 'public.pem']);
    expect(files.find((f) => f.key.kid === oldKid)?.publicOnly).toBe(true);
  });

  it('ignores other files, dot files (Kubernetes ..data) and temporary files; follows symlinks', async () => {
    const dir = freshDir();
    const data = path.join(dir, '..2026_01_15');
    mkdirSync(data);
    writeFileSync(path.join(data, 'k.pem'), pairs.ES256.privateKey);
    symlinkSync(path.join('..2026_01_15', 'k.pem'), path.join(dir, 'k.pem'));
    put(dir, '.k2.pem.123.tmp', 'half a file');
    put(dir, '.hidden.pem', 'garbage');
    put(dir, 'mfa.key', 'not a pem');
    put(dir, 'README', 'notes');
    const { ring } = await load(dir, new ManualClock(at(0)));
    expect(ring.all.map((k) => k.kid)).toEqual([await kidOf(pairs.ES256.privateKey, 'ES256')]);
  });

  it('bad files: one KeyError naming every file at fault, without echoing key material', async () => {
    const dir = freshDir();
    put(dir, 'good.pem', pairs.ES256.privateKey);
    put(dir, 'garbage.pem', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
    put(dir, 'rsa1024.pem', generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    put(dir, 'p384.pem', generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    put(dir, 'empty.pem', '');
    const err = await keyError(() => load(dir, new ManualClock(at(0))));
    for (const name of ['garbage.pem', 'rsa1024.pem', 'p384.pem', 'empty.pem']) expect(err.message).toContain(path.join(dir, name));
    expect(err.message).not.toContain(path.join(dir, 'good.pem'));
    expect(err.message).toContain('not a usable signing key');
    expect(err.message).not.toMatch(/MII|AAAA/);
  });

  it('the same key twice (a copied file) is a KeyError naming both files', async () => {
    const dir = freshDir();
    put(dir, '20260101T000000Z-a.pem', pairs.EdDSA.privateKey);
    put(dir, 'copy.pem', pairs.EdDSA.privateKey);
    const err = await keyError(() => load(dir, new ManualClock(at(0))));
    expect(err.message).toContain('hold the same key');
    expect(err.message).toContain('copy.pem');
    expect(err.message).toContain('20260101T000000Z-a.pem');
  });

  it('a missing or key-less directory is a KeyError outside development; in development a first key is generated', async () => {
    expect((await keyError(() => load(path.join(root, 'nope'), new ManualClock(at(0))))).message).toContain('does not exist');
    const empty = freshDir();
    put(empty, 'only.pem', pairs.ES256.publicKey);
    expect((await keyError(() => load(empty, new ManualClock(at(0))))).message).toContain('holds no private key');

    const dev = path.join(root, 'dev-keys');
    const loaded = await load(dev, new ManualClock(at(0)), true);
    expect(loaded.generatedAt).toMatch(/20260115T120000Z-[\w-]{43}\.pem$/);
    expect(statSync(loaded.generatedAt!).mode & 0o777).toBe(0o600);
    expect(loaded.ring.current.alg).toBe('ES256');
    const again = await load(dev, new ManualClock(at(1)), true);
    expect(again.generatedAt).toBeUndefined();
    expect(again.ring.current.kid).toBe(loaded.ring.current.kid);
  });
});

describe('reloading', () => {
  it('picks up a new key, keeps the old keys when a file is broken, and drops a removed key', async () => {
    const dir = freshDir();
    const clock = new ManualClock(at(0));
    await createKeyFile(dir, 'ES256', at(0));
    const loaded = await load(dir, clock);
    const { ring } = loaded;
    const first = ring.current.kid;
    const sealed = createSecretBox(ring).seal('link-token');
    expect((await loaded.reload!()).changed).toBe(false); // nothing changed: not even re-read

    const next = await createKeyFile(dir, 'ES256', at(10));
    expect((await loaded.reload!()).changed).toBe(true);
    expect(ring.all.map((k) => k.kid)).toEqual([next.kid, first]); // the same object, new keys
    expect(ring.current.kid).toBe(first);
    clock.set(at(10));
    expect(ring.current.kid).toBe(next.kid);
    expect(createSecretBox(ring).open(sealed)).toBe('link-token');

    put(dir, 'broken.pem', '-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n');
    await expect(loaded.reload!()).rejects.toThrow(/broken\.pem/);
    expect(ring.all.map((k) => k.kid)).toEqual([next.kid, first]);
    rmSync(path.join(dir, 'broken.pem'));

    rmSync(
      path.join(
        dir,
        readdirSync(dir).find((f) => f.includes(first))!,
      ),
    );
    expect((await loaded.reload!()).changed).toBe(true);
    expect(ring.byKid(first)).toBeUndefined();
    expect(createSecretBox(ring).open(sealed)).toBeNull();
  });

  it('watchKeys reloads on SIGHUP and logs a broken directory once, keeping the keys', async () => {
    const dir = freshDir();
    await createKeyFile(dir, 'ES256', at(0));
    const loaded = await load(dir, new ManualClock(at(0)));
    const logs: { level: string; msg: string; obj: Record<string, unknown> }[] = [];
    const log = {
      info: (obj: object, msg: string) => logs.push({ level: 'info', msg, obj: obj as Record<string, unknown> }),
      error: (obj: object, msg: string) => logs.push({ level: 'error', msg, obj: obj as Record<string, unknown> }),
    };
    const stop = watchKeys(loaded, 0, log);
    const settle = () => new Promise((r) => setTimeout(r, 50));
    try {
      const next = await createKeyFile(dir, 'ES256', at(10));
      process.emit('SIGHUP', 'SIGHUP');
      await settle();
      expect(logs).toEqual([expect.objectContaining({ level: 'info', msg: 'signing keys reloaded' })]);
      expect(loaded.ring.byKid(next.kid)).toBeDefined();

      put(dir, 'bad.pem', 'garbage');
      process.emit('SIGHUP', 'SIGHUP');
      await settle();
      process.emit('SIGHUP', 'SIGHUP');
      await settle();
      const errors = logs.filter((l) => l.level === 'error');
      expect(errors).toHaveLength(1);
      expect(String(errors[0]!.obj.problem)).toContain('bad.pem');
      expect(loaded.ring.all).toHaveLength(2);
    } finally {
      stop();
    }
    expect(process.listenerCount('SIGHUP')).toBe(0);
  });
});

describe('PRIVATE_KEY + PREVIOUS_PUBLIC_KEYS', () => {
  const issuer = 'http://tessera.test';
  const sign = (key: KeyObject, alg: JwtAlgorithm, kid: string, typ = 'at+jwt') =>
    new SignJWT({ sid: '7d9f0c1e-8c1b-4d35-9a43-4b2f3f4a5b6c', email: 'a@example.com' })
      .setProtectedHeader({ alg, kid, typ })
      .setIssuer(issuer)
      .setAudience('tessera')
      .setSubject('0b9e3e2a-6f3c-4f7e-9a43-4b2f3f4a5b6c')
      .setIssuedAt(Math.floor(T0.getTime() / 1000))
      .setExpirationTime(Math.floor(T0.getTime() / 1000) + 900)
      .setJti('j')
      .sign(key);

  it('publishes the previous public keys (several concatenated, duplicates and the current one once); they verify access tokens only', async () => {
    const old = pairs.RS256;
    const older = generateKeyPairPem('EdDSA');
    const { ring } = await loadKeyRing({
      algorithm: 'ES256',
      privateKeyPem: pairs.ES256.privateKey,
      publicKeyPem: null,
      previousPublicKeysPem: `${old.publicKey}${pairs.ES256.publicKey}\n${older.publicKey}${old.publicKey}`,
      devKeysDir: null,
    });
    const oldKid = await kidOf(old.privateKey, 'RS256');
    expect(ring.all.map((k) => k.alg)).toEqual(['ES256', 'RS256', 'EdDSA']);
    expect(ring.current.alg).toBe('ES256');
    expect(ring.privateByKid(oldKid)).toBeUndefined();

    const oldKey = await toSigningKey(old.privateKey, 'RS256', 'old');
    const verifier = createTokenVerifier(ring, new ManualClock(T0), { issuer, audience: 'tessera' });
    // An access token of the previous key still verifies (RS256 next to the current ES256)…
    expect((await verifier.verifyAccess(await sign(oldKey.privateKey, 'RS256', oldKid)))?.email).toBe('a@example.com');
    // …but only with its own algorithm.
    const forged = await new SignJWT({ sid: 'x' })
      .setProtectedHeader({ alg: 'ES256', kid: oldKid, typ: 'at+jwt' })
      .sign((await toSigningKey(pairs.ES256.privateKey, 'ES256', 'x')).privateKey);
    expect(await verifier.verifyAccess(forged)).toBeNull();
    // A refresh token of the previous key cannot be checked: its secret came from the private key, which is gone.
    const refresh = await new SignJWT({ sid: '7d9f0c1e-8c1b-4d35-9a43-4b2f3f4a5b6c', gen: 1 })
      .setProtectedHeader({ alg: 'HS256', kid: oldKid, typ: 'rt+jwt' })
      .setIssuer(issuer)
      .setAudience(issuer)
      .setSubject('0b9e3e2a-6f3c-4f7e-9a43-4b2f3f4a5b6c')
      .setIssuedAt(Math.floor(T0.getTime() / 1000))
      .setExpirationTime(Math.floor(T0.getTime() / 1000) + 3600)
      .sign(oldKey.refreshSecret);
    expect(await verifier.verifyRefresh(refresh)).toBeNull();
    const withPrivate = createTokenVerifier(
      (await loadKeyRing({ algorithm: 'RS256', privateKeyPem: old.privateKey, publicKeyPem: null, devKeysDir: null })).ring,
      new ManualClock(T0),
      { issuer, audience: 'tessera' },
    );
    expect(await withPrivate.verifyRefresh(refresh)).toMatchObject({ gen: 1 });
  });

  it('a private key, garbage or an unusable key in PREVIOUS_PUBLIC_KEYS is a KeyError that does not echo it', async () => {
    const base = { algorithm: 'ES256' as const, privateKeyPem: pairs.ES256.privateKey, publicKeyPem: null, devKeysDir: null };
    const priv = await keyError(() => loadKeyRing({ ...base, previousPublicKeysPem: pairs.RS256.privateKey }));
    expect(priv.message).toBe('PREVIOUS_PUBLIC_KEYS (key 1) holds a private key where a public key is expected.');
    const garbage = await keyError(() => loadKeyRing({ ...base, previousPublicKeysPem: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----' }));
    expect(garbage.message).toBe('PREVIOUS_PUBLIC_KEYS (key 1) is not a readable PEM public key.');
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect((await keyError(() => loadKeyRing({ ...base, previousPublicKeysPem: `${pairs.RS256.publicKey}${p384}` }))).message).toContain(
      '(key 2) is an EC secp384r1 key',
    );
    expect((await keyError(() => loadKeyRing({ ...base, previousPublicKeysPem: 'no pem here' }))).message).toContain('no PEM block');
  });
});
