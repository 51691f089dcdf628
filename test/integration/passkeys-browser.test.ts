import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { eq } from 'drizzle-orm';
import { decodeJwt } from 'jose';
import { generate } from 'otplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { users } from '../../src/features/accounts/tables.js';
import { freePort } from '../helpers/free-port.js';
import { SmtpCatcher } from '../helpers/smtp.js';
import { assertIn, createIn, passkeyTab, registerIn, signInIn, type PasskeyTab } from '../helpers/passkey-page.js';
import { PASSWORD, bearer, createTestApp, signUp, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// Real WebAuthn ceremonies: Chromium with CDP virtual authenticators, on a test page served on
// Tessera's own origin (http://localhost:<port> is a secure context), against a listening server.
// Other servers over the same database, configured for another origin, RP ID or user
// verification, check the assertions the browser made for the first one.

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let t: TestApp;
let smtp: SmtpCatcher;
let browser: Browser;
let origin: string;
const contexts: BrowserContext[] = [];
const others: TestApp[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: install it or set CHROMIUM_PATH. This test must not be skipped.`);
  const port = await freePort();
  origin = `http://localhost:${port}`;
  smtp = await SmtpCatcher.start();
  t = await createTestApp({
    env: { PUBLIC_URL: origin, EMAIL_SIGN_IN_ENABLED: 'true', SMTP_SERVER: '127.0.0.1', SMTP_PORT: String(smtp.port), OUTBOX_POLL_INTERVAL_MS: '50' },
  });
  await t.app.listen({ host: '127.0.0.1', port });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
});

afterEach(async () => {
  for (const c of contexts.splice(0)) await c.close();
});

afterAll(async () => {
  await browser?.close();
  for (const o of others) await o.close();
  await t?.close();
  await smtp?.close();
});

async function tab(opts: Parameters<typeof passkeyTab>[2] = {}): Promise<PasskeyTab> {
  const context = await browser.newContext();
  contexts.push(context);
  return passkeyTab(context, origin, opts);
}

/** Another server over the same database (its own config), reached with app.inject. */
async function otherServer(env: Record<string, string>): Promise<TestApp> {
  const o = await createTestApp({ db: t.db, clock: t.clock, env: { PUBLIC_URL: origin, ...env } });
  others.push(o);
  return o;
}

interface Options {
  flow_id: string;
  options: Record<string, unknown> & { rpId?: string; userVerification?: string };
}

/** POST /auth/passkey/options on a server. */
const optionsFrom = async (server: TestApp, payload: Record<string, string>) =>
  (await server.app.inject({ method: 'POST', url: '/auth/passkey/options', payload })).json<Options>();

/** The types of the user's audit events, newest first. */
async function auditTypes(email: string): Promise<string[]> {
  const access = (await login(email)).access_token as string;
  const res = await t.app.inject({ method: 'GET', url: '/users/me/audit', headers: bearer(access) });
  return res.json<{ events: Array<{ type: string }> }>().events.map((e) => e.type);
}

const amrOf = (body: Record<string, unknown>) => decodeJwt(body.access_token as string).amr;

async function signedUpWithPasskey(authenticator: PasskeyTab, name = 'Laptop') {
  const user = await signUp(t.app, uniqueEmail('passkey'));
  const added = await registerIn(authenticator, user.access, name);
  expect(added.status, JSON.stringify(added.body)).toBe(201);
  return { ...user, passkeyId: added.body.id as string };
}

describe('passkeys in a real browser', () => {
  it('registers a passkey, signs out, and signs in username-less (amr hwk + user)', async () => {
    const a = await tab();
    const user = await signedUpWithPasskey(a);
    const list = await t.app.inject({ method: 'GET', url: '/users/me/passkeys', headers: bearer(user.access) });
    expect(list.json().passkeys).toMatchObject([{ id: user.passkeyId, name: 'Laptop', device_type: 'single_device' }]);

    const out = await t.app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(user.access) });
    expect(out.statusCode).toBe(204);
    const signedIn = await signInIn(a);
    expect(signedIn.status, JSON.stringify(signedIn.body)).toBe(200);
    expect(decodeJwt(signedIn.body.access_token as string).sub).toBe(user.userId);
    expect(amrOf(signedIn.body)).toEqual(['hwk', 'user']);
    // With the address as a hint (allowCredentials) it works too.
    const hinted = await signInIn(a, user.email);
    expect(hinted.status, JSON.stringify(hinted.body)).toBe(200);
  });

  it('a second authenticator (a synced passkey: amr swk) signs in to the same account, each as itself', async () => {
    const a = await tab();
    const b = await tab({ backupEligible: true });
    const user = await signedUpWithPasskey(a, 'Laptop');
    const second = await registerIn(b, user.access, 'Phone');
    expect(second.status, JSON.stringify(second.body)).toBe(201);
    expect(second.body.device_type).toBe('multi_device');
    const viaA = await signInIn(a);
    const viaB = await signInIn(b);
    expect([viaA.status, viaB.status]).toEqual([200, 200]);
    expect(amrOf(viaA.body)).toEqual(['hwk', 'user']);
    expect(amrOf(viaB.body)).toEqual(['swk', 'user']);
    // The same authenticator cannot register itself twice: the options exclude it.
    const again = await registerIn(b, user.access, 'Phone again');
    expect(again.status).toBe(0);
    expect(String(again.body.browser_error)).toMatch(/InvalidStateError/);
  });

  it('a removed credential no longer signs in', async () => {
    const a = await tab();
    const user = await signedUpWithPasskey(a);
    const del = await t.app.inject({ method: 'DELETE', url: `/users/me/passkeys/${user.passkeyId}`, headers: bearer(user.access) });
    expect(del.statusCode).toBe(204);
    const refused = await signInIn(a);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('passkey_invalid');
  });

  it('an assertion made for another origin or another RP ID is refused', async () => {
    const a = await tab();
    await signedUpWithPasskey(a);
    // A server that accepts only another origin: the browser's assertion names this page's origin.
    const elsewhere = await otherServer({ WEBAUTHN_ORIGINS: 'http://localhost:9', WEBAUTHN_RP_ID: 'localhost' });
    const opts = await optionsFrom(elsewhere, {});
    const made = await assertIn(a, opts.options);
    expect(made.error).toBeUndefined();
    const wrongOrigin = await elsewhere.app.inject({
      method: 'POST',
      url: '/auth/passkey/verify',
      payload: { flow_id: opts.flow_id, credential: made.credential },
    });
    expect(wrongOrigin.json().error).toBe('passkey_invalid');
    // The browser will not even make an assertion for an RP ID that is not this origin's.
    const otherRp = await otherServer({ WEBAUTHN_ORIGINS: `${origin},https://example.com`, WEBAUTHN_RP_ID: 'example.com' });
    const rpOpts = await optionsFrom(otherRp, {});
    expect(rpOpts.options.rpId).toBe('example.com');
    expect((await assertIn(a, rpOpts.options)).error).toMatch(/SecurityError/);
    // Signed for this RP ID (localhost) on that server's challenge: the RP ID hash does not match.
    const forged = await assertIn(a, { ...rpOpts.options, rpId: 'localhost' });
    expect(forged.error).toBeUndefined();
    const wrongRp = await otherRp.app.inject({
      method: 'POST',
      url: '/auth/passkey/verify',
      payload: { flow_id: rpOpts.flow_id, credential: forged.credential },
    });
    expect(wrongRp.json().error).toBe('passkey_invalid');
  });

  it('a replayed assertion and a reused challenge are refused', async () => {
    const a = await tab();
    await signedUpWithPasskey(a);
    const first = await signInIn(a);
    expect(first.status).toBe(200);
    const replay = await t.app.inject({ method: 'POST', url: '/auth/passkey/verify', payload: { flow_id: first.flowId, credential: first.credential } });
    expect(replay.statusCode).toBe(400);
    expect(replay.json().error).toBe('passkey_challenge_invalid');

    // Two assertions over one challenge: the first uses the flow up, the second finds nothing.
    const opts = await optionsFrom(t, {});
    const one = await assertIn(a, opts.options);
    const two = await assertIn(a, opts.options);
    const verify = (flow: string, credential: unknown) => t.app.inject({ method: 'POST', url: '/auth/passkey/verify', payload: { flow_id: flow, credential } });
    expect((await verify(opts.flow_id, one.credential)).statusCode).toBe(200);
    expect((await verify(opts.flow_id, two.credential)).json().error).toBe('passkey_challenge_invalid');
    // Under a fresh flow, an assertion of the old challenge does not verify.
    const fresh = await optionsFrom(t, {});
    expect((await verify(fresh.flow_id, two.credential)).json().error).toBe('passkey_invalid');
  });

  it('user verification: without it amr has no "user"; where it is required, it is refused', async () => {
    const noUv = await tab({ hasUserVerification: false, isUserVerified: false });
    const user = await signedUpWithPasskey(noUv, 'Key without PIN');
    // Chromium asks for user verification in a username-less sign-in: this key is used with the address hint.
    const signedIn = await signInIn(noUv, user.email);
    expect(signedIn.status, JSON.stringify(signedIn.body)).toBe(200);
    expect(amrOf(signedIn.body)).toEqual(['hwk']);

    const strict = await otherServer({ WEBAUTHN_USER_VERIFICATION: 'required' });
    const opts = await optionsFrom(strict, { email: user.email });
    expect(opts.options.userVerification).toBe('required');
    // The authenticator cannot verify anyone: asked as "discouraged", it signs without the UV flag.
    const made = await assertIn(noUv, { ...opts.options, userVerification: 'discouraged' });
    expect(made.error).toBeUndefined();
    const refused = await strict.app.inject({ method: 'POST', url: '/auth/passkey/verify', payload: { flow_id: opts.flow_id, credential: made.credential } });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error).toBe('passkey_user_verification_required');
    expect(await auditTypes(user.email)).toContain('passkey_sign_in_failed');

    // Registering it there is refused too (the session is the same: one database, one signing key).
    const fresh = await signUp(t.app, uniqueEmail('strict'));
    const creation = await strict.app.inject({ method: 'POST', url: '/users/me/passkeys/options', headers: bearer(fresh.access), payload: {} });
    const creationOptions = creation.json<{ authenticatorSelection: Record<string, string> }>();
    expect(creationOptions.authenticatorSelection.userVerification).toBe('required');
    const created = await createIn(noUv, {
      ...creationOptions,
      authenticatorSelection: { ...creationOptions.authenticatorSelection, userVerification: 'discouraged' },
    });
    expect(created.error).toBeUndefined();
    const stored = await strict.app.inject({
      method: 'POST',
      url: '/users/me/passkeys',
      headers: bearer(fresh.access),
      payload: { credential: created.credential },
    });
    expect([stored.statusCode, stored.json().error]).toEqual([400, 'passkey_user_verification_required']);
  });

  it('a copy of a credential whose counter is behind is refused and audited as a possible clone', async () => {
    const a = await tab();
    const user = await signedUpWithPasskey(a);
    expect((await signInIn(a)).status).toBe(200);
    expect((await signInIn(a)).status).toBe(200);
    const { credentials } = await a.cdp.send('WebAuthn.getCredentials', { authenticatorId: a.authenticatorId });
    expect(credentials[0]!.signCount).toBeGreaterThan(1);
    const clone = await tab();
    await clone.cdp.send('WebAuthn.addCredential', { authenticatorId: clone.authenticatorId, credential: { ...credentials[0]!, signCount: 0 } });
    const refused = await signInIn(clone);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('passkey_invalid');
    expect(await auditTypes(user.email)).toContain('passkey_clone_suspected');
    // The real authenticator still works.
    expect((await signInIn(a)).status).toBe(200);
  });
});

describe('a passkey and an authenticator app (TOTP)', () => {
  /** A password account with a passkey, then TOTP turned on. */
  async function withTotp(authenticator: PasskeyTab) {
    const user = await signedUpWithPasskey(authenticator);
    const start = await t.app.inject({ method: 'POST', url: '/users/me/mfa/totp', headers: bearer(user.access), payload: {} });
    const { secret } = start.json<{ secret: string }>();
    const code = await generate({ secret, epoch: Math.floor(t.clock.now().getTime() / 1000) });
    const on = await t.app.inject({ method: 'POST', url: '/users/me/mfa/totp/verify', headers: bearer(user.access), payload: { code } });
    expect(on.statusCode, on.body).toBe(200);
    return user;
  }

  it('after a password, mfa_required lists the passkey, and the passkey completes the sign-in', async () => {
    const a = await tab();
    const user = await withTotp(a);
    const pwd = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: PASSWORD } });
    expect(pwd.statusCode).toBe(403);
    const challenge = pwd.json<{ error: string; mfa_token: string; methods: string[] }>();
    expect(challenge.methods).toEqual(['totp', 'passkey']);
    const opts = await t.app.inject({ method: 'POST', url: '/auth/mfa/passkey/options', payload: { mfa_token: challenge.mfa_token } });
    expect(opts.statusCode, opts.body).toBe(200);
    const made = await assertIn(a, opts.json<{ options: unknown }>().options);
    expect(made.error).toBeUndefined();
    const done = await t.app.inject({
      method: 'POST',
      url: '/auth/mfa/passkey/verify',
      payload: { mfa_token: challenge.mfa_token, credential: made.credential },
    });
    expect(done.statusCode, done.body).toBe(200);
    expect(amrOf(done.json())).toEqual(['pwd', 'hwk', 'user']);
    // The mfa_token and the challenge were used once.
    const again = await t.app.inject({
      method: 'POST',
      url: '/auth/mfa/passkey/verify',
      payload: { mfa_token: challenge.mfa_token, credential: made.credential },
    });
    expect(again.json().error).toBe('mfa_token_invalid');
  });

  it('a passkey sign-in with user verification skips the TOTP step; without it, the TOTP step is asked', async () => {
    const a = await tab();
    await withTotp(a);
    const uv = await signInIn(a);
    expect(uv.status, JSON.stringify(uv.body)).toBe(200);
    expect(amrOf(uv.body)).toEqual(['hwk', 'user']);

    const noUv = await tab({ hasUserVerification: false, isUserVerified: false });
    const user = await withTotp(noUv);
    const signedIn = await signInIn(noUv, user.email);
    expect(signedIn.status).toBe(403);
    expect(signedIn.body.error).toBe('mfa_required');
  });
});

describe('managing passkeys', () => {
  it('announces a new passkey by email; rename and delete are audited', async () => {
    const a = await tab();
    const user = await signedUpWithPasskey(a, 'Laptop');
    const mail = await smtp.waitFor(user.email, /passkey was added/, 10_000);
    expect(mail.text).toContain('Laptop');
    const renamed = await t.app.inject({
      method: 'PATCH',
      url: `/users/me/passkeys/${user.passkeyId}`,
      headers: bearer(user.access),
      payload: { name: 'Work laptop' },
    });
    expect(renamed.statusCode).toBe(200);
    expect(renamed.json().name).toBe('Work laptop');
    expect((await t.app.inject({ method: 'DELETE', url: `/users/me/passkeys/${user.passkeyId}`, headers: bearer(user.access) })).statusCode).toBe(204);
    await smtp.waitFor(user.email, /passkey was removed/, 10_000);
    expect(await auditTypes(user.email)).toEqual(expect.arrayContaining(['passkey_added', 'passkey_renamed', 'passkey_removed']));
  });

  it('sign-in options with an address hint have the same shape whether or not the address has passkeys (or an account)', async () => {
    const a = await tab();
    const user = await signedUpWithPasskey(a);
    const known = await optionsFrom(t, { email: user.email });
    const nobody = uniqueEmail('nobody');
    const unknown = await optionsFrom(t, { email: nobody });
    // Asked again, an unknown address gets the same (look-alike) credential id, as a real one would.
    const allowed = (o: Options) => (o.options.allowCredentials as Array<{ id: string }>).map((c) => c.id);
    expect(allowed(await optionsFrom(t, { email: nobody }))).toEqual(allowed(unknown));
    const shape = (o: Options) => ({
      keys: Object.keys(o).sort(),
      options: Object.keys(o.options).sort(),
      allow: (o.options.allowCredentials as unknown[]).length,
    });
    expect(shape(unknown)).toEqual(shape(known));
    const { credentials } = await a.cdp.send('WebAuthn.getCredentials', { authenticatorId: a.authenticatorId });
    expect((known.options.allowCredentials as Array<{ id: string }>)[0]!.id).toBe(Buffer.from(credentials[0]!.credentialId, 'base64').toString('base64url'));
  });

  it("one user cannot list, rename or delete another's passkeys", async () => {
    const a = await tab();
    const owner = await signedUpWithPasskey(a);
    const other = await signUp(t.app, uniqueEmail('other'));
    const list = await t.app.inject({ method: 'GET', url: '/users/me/passkeys', headers: bearer(other.access) });
    expect(list.json().passkeys).toEqual([]);
    const rename = await t.app.inject({
      method: 'PATCH',
      url: `/users/me/passkeys/${owner.passkeyId}`,
      headers: bearer(other.access),
      payload: { name: 'mine now' },
    });
    expect([rename.statusCode, rename.json().error]).toEqual([404, 'passkey_not_found']);
    const del = await t.app.inject({ method: 'DELETE', url: `/users/me/passkeys/${owner.passkeyId}`, headers: bearer(other.access) });
    expect([del.statusCode, del.json().error]).toEqual([404, 'passkey_not_found']);
    const still = await t.app.inject({ method: 'GET', url: '/users/me/passkeys', headers: bearer(owner.access) });
    expect(still.json().passkeys).toMatchObject([{ id: owner.passkeyId, name: 'Laptop' }]);
    expect((await signInIn(a)).status).toBe(200);
  });

  it('the last way to sign in of an account without a password cannot be deleted, not even by two parallel deletions', async () => {
    // A passwordless account (as an emailed-code or third-party sign-up makes one): its password removed in the database,
    // so that this test does not depend on a mail's delivery (email-code.test.ts covers that path).
    const user = await signUp(t.app, uniqueEmail('nopassword'));
    await t.db.handle.db.update(users).set({ passwordHash: null }).where(eq(users.email, user.email));
    const access = user.access;
    const a = await tab();
    const b = await tab();
    const first = await registerIn(a, access, 'A');
    const second = await registerIn(b, access, 'B');
    expect([first.status, second.status]).toEqual([201, 201]);
    const del = (id: unknown) => t.app.inject({ method: 'DELETE', url: `/users/me/passkeys/${String(id)}`, headers: bearer(access) });
    const both = await Promise.all([del(first.body.id), del(second.body.id)]);
    expect(both.map((r) => r.statusCode).sort()).toEqual([204, 409]);
    expect(both.find((r) => r.statusCode === 409)!.json().error).toBe('last_sign_in_method');
    const left = await t.app.inject({ method: 'GET', url: '/users/me/passkeys', headers: bearer(access) });
    expect(left.json().passkeys).toHaveLength(1);
    const last = await del(left.json().passkeys[0].id);
    expect([last.statusCode, last.json().error]).toEqual([409, 'last_sign_in_method']);
  }, 60_000);
});

async function login(email: string) {
  const res = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } });
  expect(res.statusCode).toBe(200);
  return res.json() as Record<string, unknown>;
}
