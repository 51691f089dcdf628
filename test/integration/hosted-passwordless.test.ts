import { and, count, eq, isNull } from 'drizzle-orm';
import { decodeJwt } from 'jose';
import { generate } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { users } from '../../src/features/accounts/tables.js';
import { emailSignInCodes } from '../../src/features/email-sign-in/tables.js';
import { webauthnChallenges } from '../../src/features/passkeys/tables.js';
import { sessions } from '../../src/features/sessions/tables.js';
import { InjectBrowser, authorizeUrl, pkce } from '../helpers/inject-browser.js';
import { SmtpCatcher, linkIn, type ReceivedMail } from '../helpers/smtp.js';
import { SoftAuthenticator } from '../helpers/soft-authenticator.js';
import { TEST_ISSUER, bearer, createTestApp, signUp, uniqueEmail, type TestApp } from '../helpers/test-app.js';
import type { LightMyRequestResponse } from 'fastify';

// Passkeys and email codes on the hosted sign-in page, through HTTP (docs/openid-provider.md
// "Passkeys and email codes"): the happy paths to a code at the redirect URI, and what an attacker
// tries (CSRF, assertions moved to another request or browser, replays, reused challenges, GET/HEAD,
// address enumeration, code guessing, parallel submissions). A software authenticator makes the
// assertions; the real ceremony in Chromium is hosted-passwordless-browser.test.ts.

const CB = 'http://127.0.0.1/spa/cb';
let t: TestApp;
let smtp: SmtpCatcher;
let spa: string;

beforeAll(async () => {
  smtp = await SmtpCatcher.start();
  t = await createTestApp({
    env: {
      SMTP_SERVER: '127.0.0.1',
      SMTP_PORT: String(smtp.port),
      SMTP_TIMEOUT_MS: '5000',
      OUTBOX_POLL_INTERVAL_MS: '50',
      EMAIL_SIGN_IN_ENABLED: 'true',
    },
  });
  const { client } = await t.app.services.clients.create(null, {
    name: 'Own SPA',
    type: 'public',
    firstParty: true,
    redirectUris: [CB],
    scopes: ['openid', 'email'],
  });
  spa = client.clientId;
});

afterAll(async () => {
  await t?.close();
  await smtp?.close();
});

const db = () => t.db.handle.db;

async function liveSessions(userId: string): Promise<number> {
  const rows = await db()
    .select({ n: count() })
    .from(sessions)
    .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt)));
  return rows[0]?.n ?? 0;
}

/** Every session row of the user, ended or not (a sign-in adds rows; nothing here deletes them). */
async function sessionRows(userId: string): Promise<number> {
  return (await db().select({ n: count() }).from(sessions).where(eq(sessions.userId, userId)))[0]?.n ?? 0;
}

async function challengeRows(): Promise<number> {
  return (await db().select({ n: count() }).from(webauthnChallenges))[0]?.n ?? 0;
}

const field = (html: string, name: string) => {
  const v = new RegExp(`<input type="hidden" name="${name}" value="([^"]*)">`).exec(html)?.[1];
  if (v === undefined) throw new Error(`no ${name} on the page: ${html.slice(0, 400)}`);
  return v;
};

interface Started {
  browser: InjectBrowser;
  page: LightMyRequestResponse;
  csrf: string;
  request: string;
  verifier: string;
}

/** A relying party's authorization request in `browser`: the hosted sign-in page. */
async function start(browser = new InjectBrowser(t.app), extra: Record<string, string> = {}): Promise<Started> {
  const { verifier, challenge } = pkce();
  const { res, path } = await browser.open(
    authorizeUrl({
      client_id: spa,
      redirect_uri: CB,
      scope: 'openid email',
      state: 's-1',
      nonce: 'n-1',
      code_challenge: challenge,
      code_challenge_method: 'S256',
      ...extra,
    }),
  );
  expect(path, res.body).toMatch(/^\/auth\/ui\/sign-in\?request=/);
  return { browser, page: res, csrf: field(res.body, 'csrf'), request: field(res.body, 'request'), verifier };
}

const cookieOf = (b: InjectBrowser) => ({ cookie: [...b.cookies].map(([k, v]) => `${k}=${v}`).join('; ') });

/** The script's fetch(): the options of a hosted-page passkey flow. */
function passkeyOptions(s: Started, body: Record<string, string> = { csrf: s.csrf, request: s.request }, headers: Record<string, string> = {}) {
  return t.app.inject({
    method: 'POST',
    url: '/auth/ui/passkey/options',
    headers: { 'sec-fetch-site': 'same-origin', origin: TEST_ISSUER, ...cookieOf(s.browser), ...headers },
    payload: body,
  });
}

interface Options {
  flow_id: string;
  options: { challenge: string; rpId?: string };
}

/** The passkey form the script submits. */
const postAssertion = (s: Started, flow: string, credential: unknown, over: Record<string, string> = {}) =>
  s.browser.post('/auth/ui/passkey', { csrf: s.csrf, request: s.request, flow, credential: JSON.stringify(credential), ...over });

async function exchange(s: Started, location: URL) {
  const code = location.searchParams.get('code');
  expect(code, location.href).toBeTruthy();
  const res = await t.app.inject({
    method: 'POST',
    url: '/auth/token',
    payload: { grant_type: 'authorization_code', code, redirect_uri: CB, client_id: spa, code_verifier: s.verifier },
  });
  expect(res.statusCode, res.body).toBe(200);
  return res.json<{ access_token: string; id_token: string }>();
}

/** A user with a password and a passkey of `authenticator` (registered through the API). */
async function passkeyUser(authenticator = new SoftAuthenticator(TEST_ISSUER)) {
  const user = await signUp(t.app, uniqueEmail('hosted-passkey'));
  const options = await t.app.inject({ method: 'POST', url: '/users/me/passkeys/options', headers: bearer(user.access), payload: {} });
  expect(options.statusCode, options.body).toBe(200);
  const added = await t.app.inject({
    method: 'POST',
    url: '/users/me/passkeys',
    headers: bearer(user.access),
    payload: { credential: authenticator.create(options.json()), name: 'Soft key' },
  });
  expect(added.statusCode, added.body).toBe(201);
  return { ...user, authenticator };
}

/** Follows the answer of a form; the URL it left for (the redirect URI), or null. */
async function outcome(s: Started, res: LightMyRequestResponse) {
  return s.browser.follow(res);
}

describe('the sign-in page', () => {
  it('offers a passkey button (hidden until the script runs), autofill and "Email me a code", under a CSP without inline script', async () => {
    const s = await start();
    const html = s.page.body;
    expect(html).toContain('autocomplete="username webauthn"');
    expect(html).toMatch(/<form id="passkey-form" method="post" action="\/auth\/ui\/passkey" hidden>/);
    expect(html).toContain('<button type="button" id="passkey-button" class="secondary" disabled>Sign in with a passkey</button>');
    expect(html).toContain('<script src="/auth/ui/passkey.js" defer></script>');
    expect(html).toContain('formaction="/auth/ui/email-code" formnovalidate>Email me a code</button>');
    expect(html).not.toMatch(/<script>|<script [^s]|on(click|load)=/);
    const csp = String(s.page.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(csp).toContain("default-src 'none'");
  });

  it('serves the script as JavaScript from the same origin, cached', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/auth/ui/passkey.js' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(res.headers['cache-control']).toBe('public, max-age=86400');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.body).toContain("fetch('/auth/ui/passkey/options'");
    expect(res.body).toContain('window.PublicKeyCredential');
    expect(res.body).toContain("'conditional'");
  });
});

describe('sign in with a passkey on the hosted page', () => {
  it('ends at the redirect URI with a code: ID token amr hwk + user (acr mfa), one browser session, SSO afterwards', async () => {
    const user = await passkeyUser();
    const before = await liveSessions(user.userId);
    const s = await start();
    const options = await passkeyOptions(s);
    expect(options.statusCode, options.body).toBe(200);
    expect(options.headers['cache-control']).toBe('no-store');
    const o = options.json<Options>();
    const { external } = await outcome(s, await postAssertion(s, o.flow_id, user.authenticator.get(o.options)));
    expect(external?.origin + (external?.pathname ?? ''), String(external)).toBe(CB);
    const tokens = await exchange(s, external!);
    const id = decodeJwt(tokens.id_token);
    expect(id).toMatchObject({ sub: user.userId, amr: ['hwk', 'user'], acr: 'mfa', nonce: 'n-1' });
    // The browser session's row and the client's (code exchange) row.
    expect(await liveSessions(user.userId)).toBe(before + 2);
    // SSO: the next request of this browser needs no sign-in.
    const again = await s.browser.open(
      authorizeUrl({
        client_id: spa,
        redirect_uri: CB,
        scope: 'openid',
        state: 's-2',
        nonce: 'n-2',
        code_challenge: pkce().challenge,
        code_challenge_method: 'S256',
      }),
    );
    expect(again.external?.searchParams.get('code')).toBeTruthy();
  });

  it('a passkey with user verification satisfies acr_values=mfa without a TOTP step', async () => {
    const user = await passkeyUser();
    const s = await start(new InjectBrowser(t.app), { acr_values: 'mfa' });
    const o = (await passkeyOptions(s)).json<Options>();
    const { external } = await outcome(s, await postAssertion(s, o.flow_id, user.authenticator.get(o.options)));
    expect(external?.searchParams.get('code'), String(external)).toBeTruthy();
    expect(decodeJwt((await exchange(s, external!)).id_token)).toMatchObject({ acr: 'mfa', amr: ['hwk', 'user'] });
  });

  it('a passkey without user verification does not: acr_values=mfa of an account without TOTP ends in unmet_authentication_requirements', async () => {
    const user = await passkeyUser(new SoftAuthenticator(TEST_ISSUER, false));
    const s = await start(new InjectBrowser(t.app), { acr_values: 'mfa' });
    const o = (await passkeyOptions(s)).json<Options>();
    const { external } = await outcome(s, await postAssertion(s, o.flow_id, user.authenticator.get(o.options)));
    expect(external?.searchParams.get('error'), String(external)).toBe('unmet_authentication_requirements');
  });
});

describe('an account with an authenticator app', () => {
  it('after an emailed code, or a passkey without user verification, the MFA page comes next; its code finishes the sign-in', async () => {
    const user = await passkeyUser(new SoftAuthenticator(TEST_ISSUER, false));
    const enrol = await t.app.inject({ method: 'POST', url: '/users/me/mfa/totp', headers: bearer(user.access), payload: {} });
    const secret = enrol.json<{ secret: string }>().secret;
    const totp = () => generate({ secret, epoch: Math.floor(t.clock.now().getTime() / 1000) });
    const on = await t.app.inject({ method: 'POST', url: '/users/me/mfa/totp/verify', headers: bearer(user.access), payload: { code: await totp() } });
    expect(on.statusCode, on.body).toBe(200);

    // A passkey without user verification: one factor.
    t.clock.advance(30_000);
    const s = await start();
    const o = (await passkeyOptions(s)).json<Options>();
    const viaPasskey = await outcome(s, await postAssertion(s, o.flow_id, user.authenticator.get(o.options)));
    expect(viaPasskey.path).toMatch(/^\/auth\/ui\/mfa\?request=/);
    const done = await s.browser.submit(viaPasskey.res, { code: await totp() });
    expect(decodeJwt((await exchange(s, done.external!)).id_token)).toMatchObject({ sub: user.userId, amr: ['hwk', 'otp'], acr: 'mfa' });

    // An emailed code: the mailbox is one factor (of a confirmed address: the first sign-in by email of an
    // unconfirmed one takes the account from whoever registered it, see docs/passkeys.md).
    await db().update(users).set({ emailVerifiedAt: t.clock.now() }).where(eq(users.id, user.userId));
    t.clock.advance(30_000);
    const c = await start();
    const before = mailsTo(user.email);
    const page = await askCode(c, user.email);
    const { code } = await nextMail(user.email, before);
    const viaCode = await c.browser.submit(page, { code });
    expect(viaCode.path).toMatch(/^\/auth\/ui\/mfa\?request=/);
    const second = await c.browser.submit(viaCode.res, { code: await totp() });
    expect(decodeJwt((await exchange(c, second.external!)).id_token)).toMatchObject({ sub: user.userId, amr: ['mca', 'otp'], acr: 'mfa' });
  });
});

describe('passkey abuse', () => {
  it('the options and the form need this browser’s CSRF value, from this origin', async () => {
    const user = await passkeyUser();
    const s = await start();
    const rows = await challengeRows();
    for (const [body, headers] of [
      [{ request: s.request }, {}],
      [{ request: s.request, csrf: 'x'.repeat(43) }, {}],
      [{ request: s.request, csrf: s.csrf }, { 'sec-fetch-site': 'cross-site' }],
      [{ request: s.request, csrf: s.csrf }, { origin: 'https://evil.example' }],
    ] as Array<[Record<string, string>, Record<string, string>]>) {
      const res = await passkeyOptions(s, body, headers);
      expect([res.statusCode, res.json().error]).toEqual([403, 'csrf_token_invalid']);
    }
    expect(await challengeRows()).toBe(rows);

    const o = (await passkeyOptions(s)).json<Options>();
    const assertion = user.authenticator.get(o.options);
    const before = await liveSessions(user.userId);
    const missing = await postAssertion(s, o.flow_id, assertion, { csrf: '' });
    const wrong = await postAssertion(s, o.flow_id, assertion, { csrf: 'y'.repeat(43) });
    const crossSite = await s.browser.post(
      '/auth/ui/passkey',
      { csrf: s.csrf, request: s.request, flow: o.flow_id, credential: JSON.stringify(assertion) },
      { 'sec-fetch-site': 'cross-site' },
    );
    for (const res of [missing, wrong, crossSite]) expect([res.statusCode, res.body.includes('csrf_token_invalid')]).toEqual([403, true]);
    expect(await liveSessions(user.userId)).toBe(before);
    // None of them used the challenge up: the real form still signs in.
    const { external } = await outcome(s, await postAssertion(s, o.flow_id, assertion));
    expect(external?.searchParams.get('code')).toBeTruthy();
  });

  it('an assertion for another request of the same browser, or sent from another browser, is refused', async () => {
    const user = await passkeyUser();
    const browser = new InjectBrowser(t.app);
    const a = await start(browser);
    const b = await start(browser);
    const o = (await passkeyOptions(a)).json<Options>();
    const assertion = user.authenticator.get(o.options);
    const before = await liveSessions(user.userId);

    // Request B of the same browser: the flow was bound to request A.
    const moved = await outcome(b, await postAssertion(b, o.flow_id, assertion));
    expect(moved.external).toBeNull();
    expect(moved.res.statusCode).toBe(400);
    expect(moved.res.body).toContain('This passkey request has expired or was already used');

    // Another browser (its own CSRF cookie and request) with A's flow and assertion.
    const other = await start();
    const stolen = await outcome(other, await postAssertion(other, o.flow_id, assertion));
    expect(stolen.external).toBeNull();
    expect(stolen.res.body).toContain('This passkey request has expired or was already used');
    // Another browser naming A's request: not pending in that browser.
    const named = await outcome(other, await postAssertion(other, o.flow_id, assertion, { request: a.request }));
    expect(named.external).toBeNull();
    expect(named.res.body).toContain('authorization_request_expired');
    // Another browser asking options for A's request: refused too.
    const theirOptions = await passkeyOptions(other, { csrf: other.csrf, request: a.request });
    expect([theirOptions.statusCode, theirOptions.json().error]).toEqual([400, 'authorization_request_expired']);
    expect(await liveSessions(user.userId)).toBe(before);

    // Still A's to finish, in A's browser.
    const done = await outcome(a, await postAssertion(a, o.flow_id, assertion));
    expect(done.external?.searchParams.get('code')).toBeTruthy();
  });

  it('a replayed assertion and a reused options challenge are refused', async () => {
    const user = await passkeyUser();
    const browser = new InjectBrowser(t.app);
    const a = await start(browser);
    const o = (await passkeyOptions(a)).json<Options>();
    const first = user.authenticator.get(o.options);
    const second = user.authenticator.get(o.options); // the same challenge, signed again (a higher counter)
    expect((await outcome(a, await postAssertion(a, o.flow_id, first))).external?.searchParams.get('code')).toBeTruthy();
    const before = await liveSessions(user.userId);

    // The same request again in the same browser: a new request, the old flow and assertion.
    const b = await start(browser, { prompt: 'login' });
    const replay = await outcome(b, await postAssertion(b, o.flow_id, first));
    expect(replay.external).toBeNull();
    expect(replay.res.body).toContain('This passkey request has expired or was already used');
    const reused = await outcome(b, await postAssertion(b, o.flow_id, second));
    expect(reused.res.body).toContain('This passkey request has expired or was already used');
    // B's own options, with the assertion of A's challenge: the challenge does not match.
    const ob = (await passkeyOptions(b)).json<Options>();
    const wrongChallenge = await outcome(b, await postAssertion(b, ob.flow_id, second));
    expect(wrongChallenge.res.body).toContain('The passkey could not be verified.');
    expect(await liveSessions(user.userId)).toBe(before);
  });

  it('a malformed credential is a form error, not a 500', async () => {
    const s = await start();
    const o = (await passkeyOptions(s)).json<Options>();
    for (const credential of ['not json', '{}', 'null', '[]', JSON.stringify({ id: 'x', response: 'x' })]) {
      const res = await s.browser.post('/auth/ui/passkey', { csrf: s.csrf, request: s.request, flow: o.flow_id, credential });
      expect(res.statusCode, res.body).toBe(400);
      expect(res.body).toMatch(/did not complete|could not be verified/);
    }
  });
});

/** The newest sign-in mail to the address, after `before` of them. */
async function nextMail(email: string, before: number): Promise<{ code: string; link: string; mail: ReceivedMail }> {
  const signInMails = () => smtp.messagesTo(email).filter((m) => /sign-in code/.test(m.subject));
  await smtp.until(() => signInMails().length > before, 10_000, `a sign-in mail to ${email}`);
  const mail = signInMails().at(-1)!;
  const code = /sign-in code: (\d{6})/.exec(mail.subject)?.[1] ?? '';
  return { code, link: linkIn(mail), mail };
}

const mailsTo = (email: string) => smtp.messagesTo(email).filter((m) => /sign-in code/.test(m.subject)).length;

async function askCode(s: Started, email: string) {
  return s.browser.post('/auth/ui/email-code', { csrf: s.csrf, request: s.request, email, password: '' });
}

const codeRow = async (email: string) => (await db().select().from(emailSignInCodes).where(eq(emailSignInCodes.email, email)))[0];

describe('email me a code on the hosted page', () => {
  it('mails a code; the code form signs in and the flow goes on to the redirect URI (amr mca)', async () => {
    const user = await signUp(t.app, uniqueEmail('hosted-code'));
    const s = await start();
    const before = mailsTo(user.email);
    const page = await askCode(s, user.email);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('action="/auth/ui/email-code/verify"');
    const { code } = await nextMail(user.email, before);
    const sessionsBefore = await sessionRows(user.userId);
    const { external } = await s.browser.submit(page, { code });
    expect(external?.searchParams.get('code'), String(external)).toBeTruthy();
    expect(decodeJwt((await exchange(s, external!)).id_token)).toMatchObject({ sub: user.userId, amr: ['mca'], acr: 'pwd' });
    expect(await sessionRows(user.userId)).toBe(sessionsBefore + 2);
  });

  it('the same page and status for an address without an account (and a code row either way)', async () => {
    const known = await signUp(t.app, uniqueEmail('known'));
    const unknown = uniqueEmail('unknown');
    const s = await start();
    const a = await askCode(s, known.email);
    const b = await askCode(s, unknown);
    const normal = (res: LightMyRequestResponse, email: string) => res.body.replaceAll(email, 'EMAIL');
    expect([a.statusCode, b.statusCode]).toEqual([200, 200]);
    expect(normal(a, known.email)).toBe(normal(b, unknown));
    expect(Object.keys(a.headers).sort()).toEqual(Object.keys(b.headers).sort());
    expect(await codeRow(known.email)).toBeTruthy();
    expect(await codeRow(unknown)).toBeTruthy();
    // A malformed address is the sign-in page again (the same for everyone).
    const bad = await s.browser.follow(await askCode(s, 'not-an-address'));
    expect(bad.res.statusCode).toBe(400);
    expect(bad.res.body).toContain('Enter a valid email address');
  });

  it('wrong codes count like the API’s: after EMAIL_SIGN_IN_MAX_ATTEMPTS even the right code is refused', async () => {
    const user = await signUp(t.app, uniqueEmail('wrong-code'));
    const s = await start();
    const before = mailsTo(user.email);
    const page = await askCode(s, user.email);
    const { code } = await nextMail(user.email, before);
    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
    const max = 5;
    for (let i = 1; i <= max; i++) {
      const res = await s.browser.post('/auth/ui/email-code/verify', { csrf: s.csrf, request: s.request, email: user.email, code: wrong });
      expect(res.statusCode).toBe(400);
      expect(res.body).toContain('The code is wrong, expired or already used');
      expect(res.body).toContain('action="/auth/ui/email-code/verify"');
      expect((await codeRow(user.email))?.attempts).toBe(i);
    }
    const right = await s.browser.submit(page, { code });
    expect(right.external).toBeNull();
    expect(right.res.body).toContain('The code is wrong, expired or already used');
  });

  it('parallel submissions of the right code: one sign-in, one code at the redirect URI', async () => {
    const user = await signUp(t.app, uniqueEmail('parallel-code'));
    const browser = new InjectBrowser(t.app);
    const s = await start(browser);
    const before = mailsTo(user.email);
    await askCode(s, user.email);
    const { code } = await nextMail(user.email, before);
    const sessionsBefore = await sessionRows(user.userId);
    const answers = await Promise.all(
      Array.from({ length: 6 }, () =>
        t.app.inject({
          method: 'POST',
          url: '/auth/ui/email-code/verify',
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin', ...cookieOf(browser) },
          payload: new URLSearchParams({ csrf: s.csrf, request: s.request, email: user.email, code }).toString(),
        }),
      ),
    );
    const signedIn = answers.filter((r) => r.statusCode === 303);
    expect(signedIn).toHaveLength(1);
    expect(answers.filter((r) => r.statusCode === 400)).toHaveLength(5);
    // The browser session's row only (the code is not exchanged here).
    expect(await sessionRows(user.userId)).toBe(sessionsBefore + 1);
  });

  it('missing or wrong CSRF values: nothing mailed, nothing checked, no sign-in', async () => {
    const user = await signUp(t.app, uniqueEmail('csrf-code'));
    const s = await start();
    const before = mailsTo(user.email);
    for (const csrf of ['', 'z'.repeat(43)]) {
      const ask = await s.browser.post('/auth/ui/email-code', { csrf, request: s.request, email: user.email });
      expect(ask.statusCode).toBe(403);
    }
    const crossSite = await s.browser.post('/auth/ui/email-code', { csrf: s.csrf, request: s.request, email: user.email }, { 'sec-fetch-site': 'cross-site' });
    expect(crossSite.statusCode).toBe(403);
    expect(await codeRow(user.email)).toBeUndefined();

    await askCode(s, user.email);
    const { code } = await nextMail(user.email, before);
    const sessionsBefore = await liveSessions(user.userId);
    for (const csrf of ['', 'z'.repeat(43)]) {
      const verify = await s.browser.post('/auth/ui/email-code/verify', { csrf, request: s.request, email: user.email, code });
      expect(verify.statusCode).toBe(403);
    }
    expect((await codeRow(user.email))?.attempts).toBe(0);
    expect(await liveSessions(user.userId)).toBe(sessionsBefore);
  });
});

describe('the emailed link of a code asked for on the hosted page', () => {
  it('in the same browser, while the request is pending: its page POSTs, and the flow goes on to the redirect URI', async () => {
    const user = await signUp(t.app, uniqueEmail('hosted-link'));
    const s = await start();
    const before = mailsTo(user.email);
    await askCode(s, user.email);
    const { link } = await nextMail(user.email, before);
    const url = new URL(link);
    expect(url.pathname).toBe('/auth/ui/email-link');
    expect(url.searchParams.get('request')).toBe(s.request);
    // GET and HEAD only show the page.
    expect((await s.browser.get(url.pathname + url.search, 'HEAD')).statusCode).toBe(200);
    const page = await s.browser.get(url.pathname + url.search);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('action="/auth/ui/email-link"');
    expect((await codeRow(user.email))?.usedAt).toBeNull();
    // A POST without the CSRF value does nothing.
    const forged = await s.browser.post('/auth/ui/email-link', { request: s.request, token: url.searchParams.get('token') ?? '' });
    expect(forged.statusCode).toBe(403);
    expect((await codeRow(user.email))?.usedAt).toBeNull();
    const { external } = await s.browser.submit(page);
    expect(external?.searchParams.get('code'), String(external)).toBeTruthy();
    expect(decodeJwt((await exchange(s, external!)).id_token)).toMatchObject({ sub: user.userId, amr: ['mca'] });
  });

  it('in another browser (or once the request ended): today’s link page, which answers tokens', async () => {
    const user = await signUp(t.app, uniqueEmail('other-browser-link'));
    const s = await start();
    const before = mailsTo(user.email);
    await askCode(s, user.email);
    const { link } = await nextMail(user.email, before);
    const url = new URL(link);
    const elsewhere = new InjectBrowser(t.app);
    const res = await elsewhere.get(url.pathname + url.search);
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(`/auth/email-code/link?token=${url.searchParams.get('token')}`);
    const page = await elsewhere.get(String(res.headers.location));
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('action="link"');
    // The other browser's POST to the hosted endpoint, with A's request: not pending there, the link not used.
    await elsewhere.get('/auth/ui/passkey.js');
    const foreign = await elsewhere.post('/auth/ui/email-link', { csrf: s.csrf, request: s.request, token: url.searchParams.get('token') ?? '' });
    expect(foreign.statusCode).toBe(403);
    expect((await codeRow(user.email))?.usedAt).toBeNull();
  });
});

describe('GET and HEAD change nothing', () => {
  it('the new POST routes refuse GET and HEAD (405); no challenge, code or session is made', async () => {
    const s = await start();
    const rows = await challengeRows();
    for (const path of ['/auth/ui/passkey/options', '/auth/ui/passkey', '/auth/ui/email-code', '/auth/ui/email-code/verify']) {
      for (const method of ['GET', 'HEAD'] as const) {
        const res = await s.browser.get(`${path}?request=${encodeURIComponent(s.request)}&csrf=${s.csrf}&email=x%40example.com`, method);
        expect(res.statusCode, `${method} ${path}`).toBe(405);
      }
    }
    expect(await challengeRows()).toBe(rows);
    expect(await codeRow('x@example.com')).toBeUndefined();
  });
});
