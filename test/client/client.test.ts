import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { generate } from 'otplib';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import {
  TesseraError,
  TesseraNetworkError,
  createClient,
  decodeJwtPayload,
  localStorageAdapter,
  memoryStorage,
  type AuthEvent,
  type ClientOptions,
  type FetchLike,
  type MfaRequired,
  type SignInResult,
  type SignedIn,
} from '../../packages/client/src/index.js';
import { FakeGithub } from '../helpers/fake-github.js';
import { freePort } from '../helpers/free-port.js';
import { rejectionOf } from '../helpers/rejection.js';
import { PASSWORD, createTestApp, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// The SDK against a live Tessera on a loopback port. The SDK's clock is the server's manual clock
// (`now` option), so moving t.clock expires access tokens for both sides without sleeping.

const ROOT = path.resolve(import.meta.dirname, '../..');
const MINUTES_16 = 16 * 60_000;

let t: TestApp;
let baseUrl: string;

beforeAll(async () => {
  t = await createTestApp();
  const port = await freePort();
  await t.app.listen({ host: '127.0.0.1', port });
  baseUrl = `http://127.0.0.1:${port}`;
});
afterAll(async () => {
  await t?.close();
});

const serverNow = () => t.clock.now().getTime();
const client = (opts: Partial<ClientOptions> = {}) => createClient({ baseUrl, now: serverNow, ...opts });

/** A fetch that counts requests per "METHOD /path" and can be delayed or cut off. */
function instrumentedFetch(opts: { delayRefreshMs?: number } = {}) {
  const counts = new Map<string, number>();
  const state = { down: false };
  const f: FetchLike = async (input, init) => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    const key = `${init?.method ?? 'GET'} ${url.pathname}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    if (state.down) throw new TypeError('fetch failed');
    if (key === 'POST /auth/refresh' && opts.delayRefreshMs) await new Promise((r) => setTimeout(r, opts.delayRefreshMs));
    return fetch(input, init);
  };
  return { fetch: f, state, count: (key: string) => counts.get(key) ?? 0 };
}

async function newUser(prefix = 'sdk') {
  const email = uniqueEmail(prefix);
  const user = await client().register({ email, password: PASSWORD });
  return { email, id: user.id };
}

function signedIn(result: SignInResult): SignedIn {
  if (result.status !== 'signed_in') throw new Error(`expected signed_in, got ${result.status}`);
  return result;
}

const at = () => Math.floor(t.clock.now().getTime() / 1000);
const codeFor = (secret: string) => generate({ secret, epoch: at() });
/** Moves the manual clock to the next 30 s step (a fresh TOTP code). */
function nextStep() {
  const ms = t.clock.now().getTime();
  t.clock.advance(30_000 - (ms % 30_000) + 1000);
}

describe('the whole flow through the SDK', () => {
  it('register → signIn → getUser → updateProfile → listSessions → changePassword → signOut', async () => {
    const email = uniqueEmail('flow');
    const c = client();
    const events: AuthEvent[] = [];
    const unsubscribe = c.onAuthStateChange((e) => events.push(e));

    const registered = await c.register({ email, password: PASSWORD, firstName: 'Ada' });
    expect(registered).toMatchObject({ email, firstName: 'Ada', lastName: null, hasPassword: true });

    const result = signedIn(await c.signIn({ email, password: PASSWORD }));
    expect(result.session.userId).toBe(registered.id);
    expect(result.session.amr).toEqual(['pwd']);
    expect(events).toEqual(['signedIn']);

    expect(await c.getUser()).toMatchObject({ id: registered.id, email, firstName: 'Ada' });
    expect(await c.updateProfile({ lastName: 'Lovelace' })).toMatchObject({ firstName: 'Ada', lastName: 'Lovelace' });

    // A second device of the same user.
    const other = client();
    signedIn(await other.signIn({ email, password: PASSWORD }));
    const sessions = await c.listSessions();
    expect(sessions).toHaveLength(2);
    expect(sessions.filter((s) => s.current)).toHaveLength(1);

    // Changing the password ends the other session: its next call refreshes, gets invalid_grant and signs out.
    const otherEvents: AuthEvent[] = [];
    other.onAuthStateChange((e) => otherEvents.push(e));
    await c.changePassword({ currentPassword: PASSWORD, newPassword: 'a brand new passphrase' });
    await expect(other.getUser()).rejects.toMatchObject({ name: 'TesseraError', code: 'invalid_grant', status: 400 });
    expect(otherEvents).toEqual(['signedOut']);
    expect(await other.getSession()).toBeNull();
    expect((await c.listSessions()).map((s) => s.current)).toEqual([true]);

    await expect(c.signIn({ email, password: PASSWORD })).rejects.toMatchObject({ code: 'invalid_grant' });
    const { refreshToken } = (await c.getSession())!;
    await c.signOut();
    expect(events).toEqual(['signedIn', 'signedOut']);
    expect(await c.getSession()).toBeNull();
    await expect(c.getUser()).rejects.toMatchObject({ code: 'not_signed_in' });
    // The server ended the session: its refresh token is refused.
    const refused = await fetch(`${baseUrl}/auth/refresh`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refresh_token: refreshToken }),
    });
    expect(refused.status).toBe(400);

    unsubscribe();
    signedIn(await c.signIn({ email, password: 'a brand new passphrase' }));
    expect(events).toEqual(['signedIn', 'signedOut']);
  });

  it('MFA: enrol, sign-in answers mfa_required, verifyMfa with a TOTP code signs in with amr otp', async () => {
    const { email } = await newUser('mfa');
    const c = client();
    signedIn(await c.signIn({ email, password: PASSWORD }));
    const enrolment = await c.mfa.startEnrolment();
    expect(enrolment.otpauthUri).toMatch(/^otpauth:\/\//);
    expect(enrolment.qrCode).toMatch(/^data:image\/png;base64,/);
    const { recoveryCodes } = await c.mfa.activate(await codeFor(enrolment.secret));
    expect(recoveryCodes).toHaveLength(10);
    expect(await c.mfa.status()).toEqual({ totpEnabled: true, recoveryCodesRemaining: 10 });
    nextStep();

    const phone = client();
    const first = await phone.signIn({ email, password: PASSWORD });
    expect(first).toMatchObject({ status: 'mfa_required', expiresIn: 300 });
    expect(await phone.getSession()).toBeNull();
    if (first.status !== 'mfa_required') throw new Error('unreachable');
    expectTypeOf(first).toEqualTypeOf<MfaRequired>();

    await expect(phone.verifyMfa({ mfaToken: first.mfaToken, code: '000000' })).rejects.toMatchObject({ code: 'invalid_mfa_code', status: 400 });
    const done = await phone.verifyMfa({ mfaToken: first.mfaToken, code: await codeFor(enrolment.secret) });
    expect(done.session.amr).toEqual(['pwd', 'otp']);
    expect(decodeJwtPayload(done.session.accessToken)?.amr).toEqual(['pwd', 'otp']);

    // Actions that need a code-signed session: allowed on the phone, refused on the password-only session.
    expect((await phone.mfa.regenerateRecoveryCodes(PASSWORD)).recoveryCodes).toHaveLength(10);
    await expect(c.mfa.regenerateRecoveryCodes(PASSWORD)).rejects.toMatchObject({ code: 'insufficient_user_authentication', status: 403 });

    nextStep();
    await phone.mfa.disable({ password: PASSWORD, code: await codeFor(enrolment.secret) });
    expect((await client().signIn({ email, password: PASSWORD })).status).toBe('signed_in');
  });
});

describe('client.fetch and refresh', () => {
  it('50 concurrent calls with an expired access token cause exactly one POST /auth/refresh', async () => {
    const { email } = await newUser();
    const net = instrumentedFetch({ delayRefreshMs: 50 });
    const c = client({ fetch: net.fetch });
    const events: AuthEvent[] = [];
    c.onAuthStateChange((e) => events.push(e));
    const before = signedIn(await c.signIn({ email, password: PASSWORD })).session;

    t.clock.advance(MINUTES_16);
    const responses = await Promise.all(Array.from({ length: 50 }, () => c.fetch(`${baseUrl}/users/me`)));
    expect(responses.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect(net.count('POST /auth/refresh')).toBe(1);
    // Refreshed before sending: no call went out with the expired token.
    expect(net.count('GET /users/me')).toBe(50);
    expect(events).toEqual(['signedIn', 'tokenRefreshed']);
    const after = (await c.getSession())!;
    expect(after.refreshToken).not.toBe(before.refreshToken);
  });

  it('50 concurrent calls answered 401 (client clock unaware) refresh once and retry each once', async () => {
    const { email } = await newUser();
    const net = instrumentedFetch();
    const c = client({ fetch: net.fetch, now: () => Date.now() }); // the SDK's clock does not see the server's jump
    signedIn(await c.signIn({ email, password: PASSWORD }));

    t.clock.advance(MINUTES_16);
    const responses = await Promise.all(Array.from({ length: 50 }, () => c.fetch(`${baseUrl}/users/me`)));
    expect(responses.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect(net.count('POST /auth/refresh')).toBe(1);
    expect(net.count('GET /users/me')).toBe(100); // 50 × (401, then the retry)
  });

  it('two clients on one storage ("two tabs") do not log each other out', async () => {
    const { email } = await newUser('tabs');
    const shared = memoryStorage();
    const net = instrumentedFetch();
    const a = client({ storage: shared, fetch: net.fetch });
    const b = client({ storage: shared, fetch: net.fetch });
    const bEvents: AuthEvent[] = [];
    b.onAuthStateChange((e) => bEvents.push(e));
    signedIn(await a.signIn({ email, password: PASSWORD }));
    expect((await b.getUser()).email).toBe(email); // b picked the session up from storage

    // A refreshes; B then needs a refresh and adopts A's stored tokens instead of replaying its stale one.
    t.clock.advance(MINUTES_16);
    await a.getUser();
    expect(net.count('POST /auth/refresh')).toBe(1);
    await b.getUser();
    expect(net.count('POST /auth/refresh')).toBe(1);
    expect(bEvents).toEqual(['tokenRefreshed']);

    // And the other way round.
    t.clock.advance(MINUTES_16);
    await b.getUser();
    await a.getUser();
    expect(net.count('POST /auth/refresh')).toBe(2);

    // Both refreshing at the same instant with the same token: the server's grace window keeps both in.
    t.clock.advance(MINUTES_16);
    await Promise.all([a.refreshSession(), b.refreshSession()]);
    expect(net.count('POST /auth/refresh')).toBe(4);
    t.clock.advance(MINUTES_16);
    await a.getUser();
    await b.getUser();

    expect(bEvents).not.toContain('signedOut');
    expect(await shared.get('tessera.session')).not.toBeNull();
    const sessions = await a.listSessions();
    expect(sessions).toHaveLength(1); // the server session is alive (reuse detection would have revoked it)
  });

  it('after signOutEverywhere on one device, another device gets signedOut on its next refresh', async () => {
    const { email } = await newUser('everywhere');
    const laptop = client();
    const phone = client();
    signedIn(await laptop.signIn({ email, password: PASSWORD }));
    signedIn(await phone.signIn({ email, password: PASSWORD }));
    const phoneEvents: AuthEvent[] = [];
    phone.onAuthStateChange((e, session) => phoneEvents.push(e) && expect(session).toBeNull());

    await laptop.signOutEverywhere();
    expect(await laptop.getSession()).toBeNull();
    await expect(phone.refreshSession()).rejects.toSatisfy((err) => err instanceof TesseraError && err.code === 'invalid_grant');
    expect(phoneEvents).toEqual(['signedOut']);
    expect(await phone.getSession()).toBeNull();
  });

  it('a network failure during refresh keeps the session', async () => {
    const { email } = await newUser('offline');
    const storage = memoryStorage();
    const net = instrumentedFetch();
    const c = client({ fetch: net.fetch, storage });
    const events: AuthEvent[] = [];
    c.onAuthStateChange((e) => events.push(e));
    signedIn(await c.signIn({ email, password: PASSWORD }));
    const stored = await storage.get('tessera.session');

    t.clock.advance(MINUTES_16);
    net.state.down = true;
    await expect(c.getUser()).rejects.toBeInstanceOf(TesseraNetworkError);
    await expect(c.fetch(`${baseUrl}/users/me`)).rejects.toBeInstanceOf(TesseraNetworkError);
    expect(await storage.get('tessera.session')).toBe(stored);
    expect(events).toEqual(['signedIn']);

    // A client pointed at a closed port, over the same storage: connection refused, nothing cleared.
    const closed = client({ baseUrl: `http://127.0.0.1:${await freePort()}`, storage });
    const err = await rejectionOf(closed.refreshSession(), TesseraNetworkError);
    expect(err.cause).toBeDefined();
    expect(await storage.get('tessera.session')).toBe(stored);

    net.state.down = false;
    expect((await c.getUser()).email).toBe(email);
    expect(events).toEqual(['signedIn', 'tokenRefreshed']);
  });
});

describe('errors and the other calls', () => {
  it('surfaces both error shapes as TesseraError with code, status, description and details', async () => {
    const { email } = await newUser();
    const c = client();
    const dup = await rejectionOf(c.register({ email, password: PASSWORD }), TesseraError);
    expect(dup).toMatchObject({ code: 'email_already_registered', status: 409 });
    expect(dup.description).not.toBe('');

    await expect(c.register({ email: uniqueEmail(), password: 'password123' })).rejects.toMatchObject({
      code: 'password_too_common',
      status: 422,
      details: [expect.objectContaining({ field: 'password' })],
    });
    const wrong = await c.signIn({ email, password: 'not the password' }).catch((e: unknown) => e);
    expect(wrong).toMatchObject({ code: 'invalid_grant', status: 400 });
    expect((wrong as TesseraError).message).toBe((wrong as TesseraError).description);
    await expect(c.revokeSession('00000000-0000-4000-8000-000000000000')).rejects.toMatchObject({ code: 'not_signed_in', status: 0 });
  });

  it('email flows, session revocation and account deletion', async () => {
    const { email } = await newUser('email');
    const c = client();
    await c.forgotPassword(email);
    await c.forgotPassword(uniqueEmail('nobody'));
    await c.resendConfirmation(email);
    await expect(c.confirmEmail('garbage')).rejects.toMatchObject({ code: 'email_token_invalid', status: 400 });
    await expect(c.resetPassword({ token: 'garbage', password: 'another fine passphrase' })).rejects.toMatchObject({ status: 400 });

    signedIn(await c.signIn({ email, password: PASSWORD }));
    await c.changeEmail({ newEmail: uniqueEmail('new'), password: PASSWORD });
    await expect(c.changeEmail({ newEmail: uniqueEmail('new'), password: 'wrong password!' })).rejects.toMatchObject({ code: 'invalid_password', status: 403 });

    const phone = client();
    signedIn(await phone.signIn({ email, password: PASSWORD }));
    const phoneSession = (await c.listSessions()).find((s) => !s.current)!;
    await c.revokeSession(phoneSession.id);
    await expect(phone.getUser()).rejects.toMatchObject({ code: 'invalid_grant' });
    expect(await phone.getSession()).toBeNull();

    await c.deleteAccount(PASSWORD);
    expect(await c.getSession()).toBeNull();
    await expect(c.signIn({ email, password: PASSWORD })).rejects.toMatchObject({ code: 'invalid_grant' });
  });

  it('social sign-in helpers use the designed paths and PKCE S256 of their own (no provider is configured on this server)', async () => {
    const sent: Array<{ path: string; body: string }> = [];
    const f: FetchLike = async (input, init) => {
      sent.push({ path: new URL(input instanceof Request ? input.url : input).pathname, body: typeof init?.body === 'string' ? init.body : '' });
      return fetch(input, init);
    };
    const c = client({ baseUrl: `${baseUrl}/`, fetch: f });
    const start = await c.socialAuthorizeUrl('google', 'https://app.example.com/cb?x=1', { state: 's 1' });
    const url = new URL(start.url);
    expect(`${url.origin}${url.pathname}`).toBe(`${baseUrl}/auth/oauth/google/authorize`);
    expect(start.codeVerifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Object.fromEntries(url.searchParams)).toEqual({
      redirect_uri: 'https://app.example.com/cb?x=1',
      state: 's 1',
      code_challenge: createHash('sha256').update(start.codeVerifier).digest('base64url'),
      code_challenge_method: 'S256',
    });
    // A fresh verifier each time.
    expect((await c.socialAuthorizeUrl('google', 'https://app.example.com/cb')).codeVerifier).not.toBe(start.codeVerifier);

    // The exchange sends the stored verifier and redirect_uri (of the last start), once.
    await expect(c.exchangeSocialCode('abc')).rejects.toMatchObject({ code: 'invalid_grant', status: 400 });
    expect(Object.fromEntries(new URLSearchParams(sent.at(-1)!.body))).toMatchObject({
      grant_type: 'authorization_code',
      code: 'abc',
      redirect_uri: 'https://app.example.com/cb',
      code_verifier: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
    });
    const before = sent.length;
    await expect(c.exchangeSocialCode('abc')).rejects.toMatchObject({ code: 'pkce_verifier_missing', status: 0 });
    expect(sent.length).toBe(before);
    // Or the app's own (another storage on the finishing page).
    await expect(c.exchangeSocialCode('abc', { redirectUri: 'https://app.example.com/cb', codeVerifier: start.codeVerifier })).rejects.toMatchObject({
      code: 'invalid_grant',
    });
    expect(new URLSearchParams(sent.at(-1)!.body).get('code_verifier')).toBe(start.codeVerifier);

    await expect(c.signInWithProviderToken('apple', { idToken: 'x.y.z', nonce: 'n' })).rejects.toMatchObject({ code: 'provider_not_found', status: 404 });
    expect(sent.filter((r) => r.path === '/auth/token')).toHaveLength(2);
    expect(sent.filter((r) => r.path === '/auth/oauth/apple/token')).toHaveLength(1);
  });

  it('web social sign-in end to end (a GitHub stand-in): the SDK creates and sends PKCE by itself', async () => {
    const gh = await FakeGithub.start();
    const APP = 'https://app.example.com/auth/done';
    const s = await createTestApp({ env: { ...gh.env(), OAUTH_REDIRECT_ALLOWLIST: APP } });
    try {
      const port = await freePort();
      await s.app.listen({ host: '127.0.0.1', port });
      const base = `http://127.0.0.1:${port}`;
      const email = uniqueEmail('gh');
      gh.loginAs = gh.addUser({ name: 'Ada Lovelace', emails: [{ email, primary: true, verified: true }] }).id;

      const c = createClient({ baseUrl: base, now: () => s.clock.now().getTime() });
      const { url } = await c.socialAuthorizeUrl('github', APP, { state: 'st' });
      // The browser: Tessera → GitHub → Tessera's callback (PUBLIC_URL is http://tessera.test: same path here), with the binding cookie.
      const toProvider = await fetch(url, { redirect: 'manual' });
      expect(toProvider.status, await toProvider.clone().text()).toBe(302);
      const cookie = (toProvider.headers.getSetCookie()[0] ?? '').split(';')[0]!;
      const back = new URL((await fetch(toProvider.headers.get('location')!, { redirect: 'manual' })).headers.get('location')!);
      const landed = await fetch(`${base}${back.pathname}${back.search}`, { redirect: 'manual', headers: { cookie } });
      const land = new URL(landed.headers.get('location')!);
      expect(`${land.origin}${land.pathname}`).toBe(APP);
      expect(land.searchParams.get('state')).toBe('st');

      const result = await c.exchangeSocialCode(land.searchParams.get('code')!);
      expect(result.status).toBe('signed_in');
      expect(await c.getUser()).toMatchObject({ email, firstName: 'Ada', lastName: 'Lovelace' });
    } finally {
      await s.close();
      await gh.close();
    }
  });

  it('storage adapters and JWT decoding', async () => {
    const items = new Map<string, string>();
    const fake = {
      getItem: (k: string) => items.get(k) ?? null,
      setItem: (k: string, v: string) => void items.set(k, v),
      removeItem: (k: string) => void items.delete(k),
    };
    const g = globalThis as { localStorage?: unknown };
    g.localStorage = fake;
    try {
      const ls = localStorageAdapter();
      await ls.set('k', 'v');
      expect(items.get('k')).toBe('v');
      expect(await ls.get('k')).toBe('v');
      await ls.remove('k');
      expect(await ls.get('k')).toBeNull();
    } finally {
      delete g.localStorage;
    }
    await expect(localStorageAdapter().get('k')).rejects.toThrow(/localStorage is not available/);

    const payload = Buffer.from(JSON.stringify({ sub: 'é✓', exp: 42 })).toString('base64url');
    expect(decodeJwtPayload(`h.${payload}.s`)).toEqual({ sub: 'é✓', exp: 42 });
    expect(decodeJwtPayload('not a jwt')).toBeNull();
    expect(decodeJwtPayload('a.!!!.c')).toBeNull();
  });
});

describe('the package', () => {
  it('builds to ESM + .d.ts with tsc -p packages/client, without Node built-ins', async () => {
    const outDir = mkdtempSync(path.join(tmpdir(), 'tessera-client-build-'));
    try {
      const tsc = spawnSync(
        process.execPath,
        [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(ROOT, 'packages/client'), '--outDir', outDir],
        { encoding: 'utf8' },
      );
      expect(tsc.status, tsc.stdout + tsc.stderr).toBe(0);
      expect(existsSync(path.join(outDir, 'index.js'))).toBe(true);
      expect(existsSync(path.join(outDir, 'index.d.ts'))).toBe(true);
      for (const file of readdirSync(outDir).filter((f) => f.endsWith('.js'))) {
        const js = readFileSync(path.join(outDir, file), 'utf8').replace(/\/\*[\s\S]*?\*\//g, ''); // code, not comments
        expect(js, file).not.toMatch(/from ['"]node:|require\(|\bBuffer\b|\bprocess\./);
      }
      // The built module loads as ESM in Node and exports the API.
      const mod = (await import(pathToFileURL(path.join(outDir, 'index.js')).href)) as Record<string, unknown>;
      expect(Object.keys(mod).sort()).toEqual([
        'TesseraClient',
        'TesseraError',
        'TesseraNetworkError',
        'buildAuthorizationUrl',
        'checkCallback',
        'checkIdToken',
        'createClient',
        'decodeJwtPayload',
        'localStorageAdapter',
        'memoryStorage',
      ]);

      const pkg = JSON.parse(readFileSync(path.join(ROOT, 'packages/client/package.json'), 'utf8')) as Record<string, unknown>;
      expect(pkg).toMatchObject({
        name: '@tessera/client',
        type: 'module',
        sideEffects: false,
        files: ['dist', 'CHANGELOG.md'],
        exports: { '.': { types: './dist/index.d.ts', import: './dist/index.js' } },
      });
      expect(pkg.dependencies).toBeUndefined();
    } finally {
      rmSync(outDir, { recursive: true, force: true });
    }
  });

  it('the sign-in result is a discriminated union that must be narrowed', () => {
    expectTypeOf<SignInResult>().toEqualTypeOf<SignedIn | MfaRequired>();
    expectTypeOf<Extract<SignInResult, { status: 'mfa_required' }>>().toHaveProperty('mfaToken').toBeString();
    expectTypeOf<SignInResult>().not.toHaveProperty('mfaToken');

    // The fixture's @ts-expect-error lines must all be errors (tsc fails on an unused one).
    const dir = mkdtempSync(path.join(tmpdir(), 'tessera-client-types-'));
    try {
      const config = {
        compilerOptions: {
          strict: true,
          noEmit: true,
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          lib: ['ES2022', 'DOM'],
          types: [],
          skipLibCheck: true,
        },
        files: [path.join(ROOT, 'test/client/fixtures/narrowing.ts')],
      };
      writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(config));
      const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir], { encoding: 'utf8' });
      expect(tsc.status, tsc.stdout + tsc.stderr).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
