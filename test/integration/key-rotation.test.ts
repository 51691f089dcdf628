import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decodeProtectedHeader, type JWK } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createVerifier, type Verifier } from '../../packages/verify/src/index.js';
import { loadConfig } from '../../src/config/index.js';
import { ManualClock } from '../../src/infra/clock.js';
import { loadKeyRing, type LoadedKeys } from '../../src/infra/key-store.js';
import { generateKeyPairPem } from '../../src/infra/keys.js';
import { createSecretBox } from '../../src/infra/secret-box.js';
import { loadConfiguredKeys } from '../../src/runtime.js';
import { TEST_ISSUER, bearer, createTestApp, json, signUp, type TestApp } from '../helpers/test-app.js';
import { runCli } from '../helpers/cli-process.js';

// Issue 5 "rotation": `tessera keys rotate` / `keys retire` (real CLI processes) against a
// KEYS_DIR shared with a listening server. A token signed before the rotation keeps verifying
// through the JWKS (our verifier library) and at /users/me; after `keys retire` it does not.
// The server's keys follow the injected clock; the CLI runs on the real one, so the new key
// activates 1 s (real time) after `rotate`.

const repo = path.resolve(import.meta.dirname, '../..');
let keysDir: string;
let dataDir: string;
let clock: ManualClock;
let keys: LoadedKeys;
let t: TestApp;
let base: string;
let verifier: Verifier;

async function cli(args: string[]): Promise<{ code: number | null; out: string }> {
  return runCli(args, { NODE_ENV: 'test', KEYS_DIR: keysDir, DATA_DIR: dataDir, JWT_ALGORITHM: 'ES256', ACCESS_TOKEN_EXPIRE_MINUTES: '15' });
}

const kidOf = (token: string) => decodeProtectedHeader(token).kid;
const jwksKids = async () => ((await (await fetch(`${base}/.well-known/jwks.json`)).json()) as { keys: JWK[] }).keys.map((k) => k.kid);
const me = (token: string) => t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(token) });

beforeAll(async () => {
  keysDir = mkdtempSync(path.join(tmpdir(), 'tessera-rotation-keys-'));
  dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-rotation-data-'));
  const first = await cli(['keys', 'rotate']);
  expect(first.code, first.out).toBe(0);
  expect(first.out).toContain('It is the only key: it signs at once.');

  clock = new ManualClock(new Date());
  keys = await loadKeyRing({ algorithm: 'ES256', privateKeyPem: null, publicKeyPem: null, keysDir, devKeysDir: null, clock });
  t = await createTestApp({ algorithm: 'ES256', keys: keys.ring, clock });
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  // Refetch on an unknown kid without the default 30 s cooldown (that is real time, not the test clock).
  verifier = createVerifier({
    issuer: TEST_ISSUER,
    audience: 'tessera-test',
    jwksUri: `${base}/.well-known/jwks.json`,
    algorithms: ['ES256'],
    now: () => clock.now(),
    jwksCooldownMs: 0,
  });
});
afterAll(async () => {
  await t?.close();
  rmSync(keysDir, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
});

it('rotate → both keys published, the new one signs after activation, old tokens keep working; retire → they stop', async () => {
  const oldKid = keys.ring.current.kid;
  const before = await signUp(t.app);
  const idle = await signUp(t.app); // keeps its refresh token unused until after the retirement
  const sealed = createSecretBox(keys.ring).seal('link-token-before-rotation');
  expect(kidOf(before.access)).toBe(oldKid);
  expect((await verifier.verify(before.access)).sub).toBe(before.userId);
  expect(await jwksKids()).toEqual([oldKid]);

  // keys rotate: a new key, published now, signing 1 s later (real time)
  const rotated = await cli(['keys', 'rotate', '--activate-in', '1s']);
  expect(rotated.code, rotated.out).toBe(0);
  const newKid = /created ES256 key (\S+)/.exec(rotated.out)?.[1];
  expect(newKid).toBeTruthy();
  expect(rotated.out).toMatch(/starts signing at \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z/);
  expect(rotated.out).toContain(`replacing ${oldKid}`);

  // The server picks the directory up (what KEYS_RELOAD_INTERVAL and SIGHUP do).
  expect((await keys.reload!()).changed).toBe(true);
  expect(await jwksKids()).toEqual([newKid, oldKid]);
  const pending = json(await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: before.email, password: before.password } }));
  expect(kidOf(pending.access_token as string)).toBe(oldKid); // published, not signing yet

  // After the activation time the new key signs.
  clock.advance(5 * 60_000);
  const after = json(await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: before.email, password: before.password } }));
  const newAccess = after.access_token as string;
  expect(kidOf(newAccess)).toBe(newKid);
  expect((await verifier.verify(newAccess)).sub).toBe(before.userId); // unknown kid → the verifier refetched the JWKS
  // The token signed before the rotation still verifies, remotely and at /users/me.
  expect((await verifier.verify(before.access)).sub).toBe(before.userId);
  expect((await me(before.access)).statusCode).toBe(200);
  expect((await me(newAccess)).statusCode).toBe(200);
  // A refresh token of the old key still refreshes (its private key is still in the directory); new tokens use the new key.
  const refreshed = await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: before.refresh } });
  expect(refreshed.statusCode, refreshed.body).toBe(200);
  expect(kidOf(json(refreshed).access_token as string)).toBe(newKid);
  expect(kidOf(json(refreshed).refresh_token as string)).toBe(newKid);
  // An email link sealed before the rotation still opens.
  expect(createSecretBox(keys.ring).open(sealed)).toBe('link-token-before-rotation');

  // The CLI runs on the real clock: wait (at most ~2 s) until it sees the new key signing.
  let list = await cli(['keys', 'list']);
  for (let i = 0; i < 20 && !new RegExp(`^${newKid}\\tES256\\t\\S+\\t\\S+\\tsigning`, 'm').test(list.out); i++) {
    await new Promise((r) => setTimeout(r, 200));
    list = await cli(['keys', 'list']);
  }
  expect(list.code, list.out).toBe(0);
  expect(list.out).toMatch(new RegExp(`^${newKid}\\tES256\\t\\S+\\t\\S+\\tsigning\\t-`, 'm'));
  expect(list.out).toMatch(new RegExp(`^${oldKid}\\tES256\\t\\S+\\t\\S+\\tprevious\\t\\d{4}-`, 'm'));

  // keys retire: never the signing key; not the old one while its access tokens may live, unless --force.
  const signing = await cli(['keys', 'retire', newKid!]);
  expect(signing.code).toBe(1);
  expect(signing.out).toContain('is the signing key');
  const early = await cli(['keys', 'retire', oldKid]);
  expect(early.code).toBe(1);
  expect(early.out).toMatch(/may be valid until \S+ \(ACCESS_TOKEN_EXPIRE_MINUTES=15/);
  expect(readdirSync(keysDir).some((f) => f.includes(oldKid))).toBe(true);
  const unknown = await cli(['keys', 'retire', 'no-such-kid']);
  expect(unknown.code).toBe(1);
  expect(unknown.out).toContain('no key no-such-kid');

  const retired = await cli(['keys', 'retire', oldKid, '--force']);
  expect(retired.code, retired.out).toBe(0);
  expect(retired.out).toContain(`retired ${oldKid}`);
  expect(retired.out).toContain('Refresh tokens it signed no longer work');
  expect(readdirSync(keysDir).some((f) => f.includes(oldKid))).toBe(false);

  expect((await keys.reload!()).changed).toBe(true);
  expect(await jwksKids()).toEqual([newKid]);
  // The old access token, still unexpired, no longer verifies: at a verifier with a fresh JWKS
  // (a verifier that cached the set keeps the old key until its cache ages out: jwksCacheMaxAgeMs)…
  const fresh = createVerifier({
    issuer: TEST_ISSUER,
    audience: 'tessera-test',
    jwksUri: `${base}/.well-known/jwks.json`,
    algorithms: ['ES256'],
    now: () => clock.now(),
  });
  await expect(fresh.verify(before.access)).rejects.toMatchObject({ code: 'invalid_token' });
  expect((await fresh.verify(newAccess)).sub).toBe(before.userId);
  // …and at /users/me at once.
  const refused = await me(before.access);
  expect(refused.statusCode).toBe(401);
  expect(json(refused).error).toBe('invalid_token');
  // The documented consequence: a refresh token of the retired key is refused (sign in again), a sealed link no longer opens.
  const stale = await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: idle.refresh } });
  expect(stale.statusCode).toBe(400);
  expect(json(stale).error).toBe('invalid_grant');
  expect(createSecretBox(keys.ring).open(sealed)).toBeNull();
  // Tokens of the new key are unaffected.
  expect((await me(newAccess)).statusCode).toBe(200);
  expect((await verifier.verify(newAccess)).sub).toBe(before.userId);
});

it('keys rotate with PRIVATE_KEY set explains how to rotate in a secret store', async () => {
  const child = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', path.join(repo, 'src/cli.ts'), 'keys', 'rotate'], {
      cwd: repo,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        NODE_ENV: 'test',
        DATA_DIR: dataDir,
        JWT_ALGORITHM: 'ES256',
        PRIVATE_KEY: keys.ring.current.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.on('exit', (code) => resolve({ code, out }));
  });
  expect(child.code).toBe(1);
  expect(child.out).toContain('PREVIOUS_PUBLIC_KEYS');
});

it('PRIVATE_KEY + PREVIOUS_PUBLIC_KEYS: old access tokens verify; old refresh tokens are refused (sign in again)', async () => {
  const oldPair = generateKeyPairPem('ES256');
  const newPair = generateKeyPairPem('ES256');
  const before = await loadKeyRing({ algorithm: 'ES256', privateKeyPem: oldPair.privateKey, publicKeyPem: null, devKeysDir: null });
  const oldApp = await createTestApp({ algorithm: 'ES256', keys: before.ring, db: t.db });
  const after = await loadKeyRing({
    algorithm: 'ES256',
    privateKeyPem: newPair.privateKey,
    publicKeyPem: null,
    previousPublicKeysPem: oldPair.publicKey,
    devKeysDir: null,
  });
  const newApp = await createTestApp({ algorithm: 'ES256', keys: after.ring, db: t.db });
  try {
    const u = await signUp(oldApp.app);
    // The deploy with the new PRIVATE_KEY publishes the old public key too.
    const published = (json(await newApp.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).keys as JWK[]).map((k) => k.kid);
    expect(published).toEqual([after.ring.current.kid, before.ring.current.kid]);
    expect((await newApp.app.inject({ method: 'GET', url: '/users/me', headers: bearer(u.access) })).statusCode).toBe(200);
    // The refresh token's secret came from the old private key, which this deploy does not have.
    const refresh = await newApp.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: u.refresh } });
    expect(refresh.statusCode).toBe(400);
    expect(json(refresh).error).toBe('invalid_grant');
    // Signing in again works, with the new key.
    const again = await newApp.app.inject({ method: 'POST', url: '/auth/login', payload: { email: u.email, password: u.password } });
    expect(kidOf(json(again).access_token as string)).toBe(after.ring.current.kid);
  } finally {
    await oldApp.close();
    await newApp.close();
  }
});

it('JWT_ALGORITHM changed over a development key (DATA_DIR/keys): a key of the new algorithm signs, the old one stays published', async () => {
  const devData = mkdtempSync(path.join(tmpdir(), 'tessera-alg-switch-'));
  const keysFor = (JWT_ALGORITHM: string) => loadConfiguredKeys(loadConfig({ NODE_ENV: 'development', DATA_DIR: devData, JWT_ALGORITHM }));
  const rsa = await keysFor('RS256');
  const before = await createTestApp({ algorithm: 'RS256', keys: rsa.ring, db: t.db });
  const es = await keysFor('ES256');
  const after = await createTestApp({ algorithm: 'ES256', keys: es.ring, db: t.db });
  try {
    const u = await signUp(before.app);
    expect(decodeProtectedHeader(u.access).alg).toBe('RS256');

    // The restart with JWT_ALGORITHM=ES256 signs ES256, never RS256.
    expect(es.generatedAt).toBe(path.join(devData, 'keys', 'private-ES256.pem'));
    const login = await after.app.inject({ method: 'POST', url: '/auth/login', payload: { email: u.email, password: u.password } });
    expect(login.statusCode, login.body).toBe(200);
    const header = decodeProtectedHeader(json(login).access_token as string);
    expect(header).toMatchObject({ alg: 'ES256', kid: es.ring.current.kid });
    const refreshed = await after.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: u.refresh } });
    expect(refreshed.statusCode, refreshed.body).toBe(200);
    expect(decodeProtectedHeader(json(refreshed).access_token as string).alg).toBe('ES256');

    // Both keys are published; the token signed before the switch still verifies.
    const jwks = json(await after.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).keys as JWK[];
    expect(jwks.map((k) => [k.kid, k.alg])).toEqual(
      expect.arrayContaining([
        [rsa.ring.current.kid, 'RS256'],
        [es.ring.current.kid, 'ES256'],
      ]),
    );
    expect(jwks).toHaveLength(2);
    expect((await after.app.inject({ method: 'GET', url: '/users/me', headers: bearer(u.access) })).statusCode).toBe(200);
  } finally {
    await before.close();
    await after.close();
    rmSync(devData, { recursive: true, force: true });
  }
});
