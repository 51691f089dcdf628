import { and, count, eq, isNull } from 'drizzle-orm';
import { createLocalJWKSet, jwtVerify, decodeJwt } from 'jose';
import { generate } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEvents } from '../../src/features/audit/tables.js';
import { atHash } from '../../src/features/sessions/token-signer.js';
import { sessions } from '../../src/features/sessions/tables.js';
import { InjectBrowser, authorizeUrl, pkce } from '../helpers/inject-browser.js';
import { PASSWORD, TEST_ISSUER, bearer, createTestApp, signUp, type TestApp } from '../helpers/test-app.js';

// The OpenID Provider's authorization code flow through HTTP (docs/openid-provider.md): the
// hosted pages, codes, ID tokens, SSO, prompt/max_age/acr, logout, and what an attacker tries.

let t: TestApp;
let user: { email: string; userId: string; access: string };
let web: { id: string; secret: string };
let spa: { id: string };
let other: { id: string; secret: string };

const WEB_CB = 'https://rp.example/cb';
const SPA_CB = 'http://127.0.0.1/spa/cb';
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` });

function token(fields: Record<string, string>, headers: Record<string, string> = {}) {
  return t.app.inject({ method: 'POST', url: '/auth/token', headers: { ...FORM, ...headers }, payload: new URLSearchParams(fields).toString() });
}

async function auditCount(type: string): Promise<number> {
  const rows = await t.db.handle.db.select({ n: count() }).from(auditEvents).where(eq(auditEvents.type, type));
  return rows[0]?.n ?? 0;
}

async function liveSessions(userId: string): Promise<number> {
  const rows = await t.db.handle.db
    .select({ n: count() })
    .from(sessions)
    .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt)));
  return rows[0]?.n ?? 0;
}

async function createClient(input: Record<string, unknown>) {
  const { client, secret } = await t.app.services.clients.create(null, input as never);
  return { id: client.clientId, secret: secret ?? '' };
}

/** Signs in through the hosted page (and consents if asked): the redirect to the client. */
async function signIn(b: InjectBrowser, params: Record<string, string>, opts: { consent?: boolean; email?: string } = {}) {
  let { res, external } = await b.open(authorizeUrl(params));
  if (!external && res.body.includes('action="/auth/ui/sign-in"'))
    ({ res, external } = await b.submit(res, { email: opts.email ?? user.email, password: PASSWORD }));
  if (!external && res.body.includes('action="/auth/ui/consent"') && opts.consent !== false) ({ res, external } = await b.submit(res, { decision: 'allow' }));
  return { res, external };
}

const webParams = (extra: Record<string, string> = {}) => ({
  client_id: web.id,
  redirect_uri: WEB_CB,
  scope: 'openid email profile',
  state: 'st-1',
  nonce: 'n-1',
  ...extra,
});

async function webCode(b = new InjectBrowser(t.app), extra: Record<string, string> = {}) {
  const { external } = await signIn(b, webParams(extra));
  if (!external?.searchParams.get('code')) throw new Error(`no code: ${external?.href}`);
  return { code: external.searchParams.get('code') as string, url: external, browser: b };
}

const exchangeWeb = (code: string, extra: Record<string, string> = {}) =>
  token({ grant_type: 'authorization_code', code, redirect_uri: WEB_CB, ...extra }, basic(web.id, web.secret));

beforeAll(async () => {
  t = await createTestApp();
  const u = await signUp(t.app);
  user = { email: u.email, userId: u.userId, access: u.access };
  await t.app.inject({ method: 'PATCH', url: '/users/me', headers: bearer(u.access), payload: { first_name: 'Ada', last_name: 'Lovelace' } });
  web = await createClient({
    name: 'Partner Web',
    type: 'confidential',
    redirectUris: [WEB_CB],
    postLogoutRedirectUris: ['https://rp.example/bye'],
    scopes: ['openid', 'profile', 'email'],
  });
  spa = await createClient({ name: 'Own SPA', type: 'public', firstParty: true, redirectUris: [SPA_CB], scopes: ['openid', 'email'] });
  other = await createClient({ name: 'Other', type: 'confidential', redirectUris: ['https://other.example/cb'], scopes: ['openid'] });
});
afterAll(async () => {
  await t?.close();
});

describe('authorization code flow', () => {
  it('signs in on the hosted page, asks consent, returns code + state + iss; the code gives tokens and a valid ID token', async () => {
    const { code, url } = await webCode();
    expect(url.origin + url.pathname).toBe(WEB_CB);
    expect(url.searchParams.get('state')).toBe('st-1');
    expect(url.searchParams.get('iss')).toBe(TEST_ISSUER);
    const res = await exchangeWeb(code);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as Record<string, string>;
    expect(body.scope).toBe('openid email profile');
    expect(body.refresh_token).toBeUndefined(); // third party without offline_access
    const jwks = createLocalJWKSet(t.app.services.infra.keys.jwks() as never);
    const { payload, protectedHeader } = await jwtVerify(body.id_token as string, jwks, { issuer: TEST_ISSUER, audience: web.id, currentDate: t.clock.now() });
    expect(protectedHeader.typ).toBe('JWT');
    expect(payload).toMatchObject({
      sub: user.userId,
      azp: web.id,
      nonce: 'n-1',
      acr: 'pwd',
      amr: ['pwd'],
      email: user.email,
      name: 'Ada Lovelace',
      given_name: 'Ada',
    });
    expect(payload.at_hash).toBe(atHash(body.access_token as string, 'RS256'));
    const access = decodeJwt(body.access_token as string);
    expect(access).toMatchObject({ client_id: web.id, scope: 'openid email profile', sid: payload.sid });
    // The access token works on the API.
    const me = await t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(body.access_token as string) });
    expect(me.statusCode).toBe(200);
  });

  it('offline_access gives a third-party client a refresh token; introspected by that client, it names the scopes of its session', async () => {
    const { code } = await webCode(new InjectBrowser(t.app), { scope: 'openid email offline_access' });
    const res = await exchangeWeb(code);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as Record<string, string>;
    expect(body.refresh_token).toBeTruthy();
    const intro = await t.app.inject({
      method: 'POST',
      url: '/auth/introspect',
      headers: { ...FORM, ...basic(web.id, web.secret) },
      payload: new URLSearchParams({ token: body.refresh_token as string }).toString(),
    });
    expect(intro.json()).toMatchObject({ active: true, token_type: 'refresh_token', client_id: web.id, scope: 'openid email offline_access' });
  });

  it('a public SPA with PKCE, first-party: no consent, a refresh token that keeps the scope and works for it only', async () => {
    const b = new InjectBrowser(t.app);
    const p = pkce();
    const redirect = 'http://127.0.0.1:43123/spa/cb';
    const { res, external } = await signIn(
      b,
      { client_id: spa.id, redirect_uri: redirect, scope: 'openid email', code_challenge: p.challenge, code_challenge_method: 'S256' },
      { consent: false },
    );
    expect(res.body).not.toContain('/auth/ui/consent');
    const code = external?.searchParams.get('code') as string;
    const ex = await token({ grant_type: 'authorization_code', code, redirect_uri: redirect, client_id: spa.id, code_verifier: p.verifier });
    expect(ex.statusCode, ex.body).toBe(200);
    const body = ex.json() as Record<string, string>;
    expect(body.refresh_token).toBeTruthy();
    const r = await token({ grant_type: 'refresh_token', refresh_token: body.refresh_token as string, client_id: spa.id });
    expect(r.statusCode, r.body).toBe(200);
    expect(decodeJwt((r.json() as Record<string, string>).access_token as string).scope).toBe('openid email');
    // Client B cannot use client A's refresh token.
    const stolen = await token(
      { grant_type: 'refresh_token', refresh_token: (r.json() as Record<string, string>).refresh_token as string },
      basic(web.id, web.secret),
    );
    expect(stolen.statusCode).toBe(400);
    expect(stolen.json()).toMatchObject({ error: 'invalid_grant' });
  });
});

describe('the authorization request: what is shown as a page, what goes back to the client', () => {
  it('an unregistered redirect_uri, a missing one, or an unknown client: an error page, no redirect', async () => {
    const b = new InjectBrowser(t.app);
    for (const [params, code] of [
      [{ client_id: web.id, redirect_uri: 'https://evil.example/cb', scope: 'openid' }, 'redirect_uri_not_registered'],
      [{ client_id: web.id, redirect_uri: 'https://rp.example/cb/../evil', scope: 'openid' }, 'redirect_uri_not_registered'],
      [{ client_id: web.id, scope: 'openid' }, 'redirect_uri_not_registered'],
      [{ client_id: 'nope', redirect_uri: WEB_CB, scope: 'openid' }, 'unknown_client'],
      [{ redirect_uri: WEB_CB }, 'unknown_client'],
    ] as const) {
      const res = await b.get(authorizeUrl(params));
      expect(res.statusCode, JSON.stringify(params)).toBe(400);
      expect(res.headers.location).toBeUndefined();
      expect(res.body).toContain(code);
      expect(res.headers['content-security-policy']).toContain("default-src 'none'");
    }
  });

  it('after the client and redirect_uri are valid, errors go back with error, state and iss', async () => {
    const b = new InjectBrowser(t.app);
    const cases: Array<[Record<string, string>, string]> = [
      [{ response_type: 'token' }, 'unsupported_response_type'],
      [{ scope: 'openid admin' }, 'invalid_scope'],
      [{ scope: 'openid  bad\\scope' }, 'invalid_scope'],
      [{ prompt: 'none login' }, 'invalid_request'],
      [{ prompt: 'none' }, 'login_required'],
      [{ max_age: 'soon' }, 'invalid_request'],
      [{ code_challenge: pkce().challenge, code_challenge_method: 'plain' }, 'invalid_request'],
      [{ code_challenge: pkce().challenge }, 'invalid_request'],
      [{ request: 'eyJ' }, 'request_not_supported'],
    ];
    for (const [extra, error] of cases) {
      const res = await b.get(authorizeUrl(webParams(extra)));
      expect(res.statusCode, JSON.stringify(extra)).toBe(303);
      const url = new URL(String(res.headers.location));
      expect(url.origin + url.pathname).toBe(WEB_CB);
      expect(url.searchParams.get('error'), JSON.stringify(extra)).toBe(error);
      expect(url.searchParams.get('state')).toBe('st-1');
      expect(url.searchParams.get('iss')).toBe(TEST_ISSUER);
    }
  });

  it('a client without the authorization_code grant: unauthorized_client at its redirect URI', async () => {
    const refreshOnly = await createClient({
      name: 'No code',
      type: 'confidential',
      grantTypes: ['refresh_token'],
      redirectUris: [WEB_CB],
      scopes: ['openid'],
    });
    const res = await new InjectBrowser(t.app).get(authorizeUrl({ client_id: refreshOnly.id, redirect_uri: WEB_CB, scope: 'openid', state: 'x' }));
    const url = new URL(String(res.headers.location));
    expect(url.searchParams.get('error')).toBe('unauthorized_client');
    expect(url.searchParams.get('iss')).toBe(TEST_ISSUER);
  });

  it('a public client must send PKCE S256 (missing or plain: invalid_request)', async () => {
    const b = new InjectBrowser(t.app);
    const base = { client_id: spa.id, redirect_uri: SPA_CB, scope: 'openid', state: 's' };
    for (const extra of [
      {} as Record<string, string>,
      { code_challenge: pkce().challenge, code_challenge_method: 'plain' },
      { code_challenge: 'short', code_challenge_method: 'S256' },
    ]) {
      const res = await b.get(authorizeUrl({ ...base, ...extra }));
      expect(new URL(String(res.headers.location)).searchParams.get('error')).toBe('invalid_request');
    }
  });

  it('a repeated parameter is refused', async () => {
    const b = new InjectBrowser(t.app);
    const res = await b.get(`${authorizeUrl(webParams())}&scope=openid`);
    expect(new URL(String(res.headers.location)).searchParams.get('error')).toBe('invalid_request');
    const twoClients = await b.get(`${authorizeUrl(webParams())}&client_id=${other.id}`);
    expect(twoClients.statusCode).toBe(400);
    expect(twoClients.headers.location).toBeUndefined();
  });
});

describe('codes at the token endpoint', () => {
  it('PKCE missing or wrong, another redirect_uri: invalid_grant', async () => {
    const p = pkce();
    for (const [fields, why] of [
      [{ code_verifier: pkce().verifier }, 'does not match'],
      [{}, 'Missing code_verifier'],
      [{ redirect_uri: 'https://rp.example/other' }, 'redirect_uri'],
    ] as const) {
      const { code } = await webCode(undefined, { code_challenge: p.challenge, code_challenge_method: 'S256' });
      const res = await exchangeWeb(code, fields);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ error: 'invalid_grant' });
      expect((res.json() as { error_description: string }).error_description).toContain(why);
      // A failed check uses the code up: the right verifier afterwards does not help.
      expect((await exchangeWeb(code, { code_verifier: p.verifier })).statusCode).toBe(400);
    }
  });

  it('the code of another client, a wrong secret, a public client with client_secret_basic', async () => {
    const { code } = await webCode();
    const stolen = await token({ grant_type: 'authorization_code', code, redirect_uri: WEB_CB }, basic(other.id, other.secret));
    expect(stolen.statusCode).toBe(400);
    expect(stolen.json()).toMatchObject({ error: 'invalid_grant' });
    const wrongSecret = await token({ grant_type: 'authorization_code', code, redirect_uri: WEB_CB }, basic(web.id, `${web.secret}x`));
    expect(wrongSecret.statusCode).toBe(401);
    expect(wrongSecret.json()).toMatchObject({ error: 'invalid_client' });
    const publicBasic = await token({ grant_type: 'authorization_code', code, redirect_uri: WEB_CB }, basic(spa.id, 'anything'));
    expect(publicBasic.statusCode).toBe(401);
    // None of that used the code: its own client still gets its tokens.
    expect((await exchangeWeb(code)).statusCode).toBe(200);
  });

  it('an expired code (60 s) is refused', async () => {
    const { code } = await webCode();
    t.clock.advance(61_000);
    const res = await exchangeWeb(code);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('a reused code ends the session it opened, and is audited', async () => {
    const { code } = await webCode();
    const first = await exchangeWeb(code);
    expect(first.statusCode).toBe(200);
    const access = (first.json() as { access_token: string }).access_token;
    expect((await t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(access) })).statusCode).toBe(200);
    const before = await liveSessions(user.userId);
    const audited = await auditCount('authorization_code_reuse');
    const again = await exchangeWeb(code);
    expect(again.statusCode).toBe(400);
    expect(again.json()).toMatchObject({ error: 'invalid_grant' });
    expect(await liveSessions(user.userId)).toBe(before - 1);
    expect(await auditCount('authorization_code_reuse')).toBe(audited + 1);
    expect((await t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(access) })).statusCode).toBe(401);
  });

  it('10 parallel redemptions of one code: exactly one 200', async () => {
    const { code } = await webCode();
    const results = await Promise.all(Array.from({ length: 10 }, () => exchangeWeb(code)));
    expect(results.filter((r) => r.statusCode === 200)).toHaveLength(1);
    expect(results.filter((r) => r.statusCode === 400)).toHaveLength(9);
  });
});

/** A new user with TOTP on (enrolled through the API); the secret to compute codes. */
async function mfaUser() {
  const u = await signUp(t.app);
  const start = await t.app.inject({ method: 'POST', url: '/users/me/mfa/totp', headers: bearer(u.access), payload: {} });
  const secret = (start.json() as { secret: string }).secret;
  const at = () => Math.floor(t.clock.now().getTime() / 1000);
  const verify = await t.app.inject({
    method: 'POST',
    url: '/users/me/mfa/totp/verify',
    headers: bearer(u.access),
    payload: { code: await generate({ secret, epoch: at() }) },
  });
  expect(verify.statusCode, verify.body).toBe(200);
  // The next code must be of a later time step (no replay).
  return { ...u, code: async () => (t.clock.advance(30_000), generate({ secret, epoch: at() })) };
}

describe('single sign-on, consent, prompt, max_age and acr_values', () => {
  it('consent is asked once for a third-party client, never for a first-party one; a second client signs in without the password', async () => {
    await t.app.inject({ method: 'DELETE', url: `/users/me/consents/${web.id}`, headers: bearer(user.access) });
    const b = new InjectBrowser(t.app);
    const granted = await auditCount('consent_granted');
    const first = await signIn(b, webParams());
    expect(first.external?.searchParams.get('code')).toBeTruthy();
    expect(await auditCount('consent_granted')).toBe(granted + 1);
    // Again: the browser session and the remembered consent, no page at all.
    const again = await b.get(authorizeUrl(webParams()));
    expect(again.statusCode).toBe(303);
    expect(new URL(String(again.headers.location)).searchParams.get('code')).toBeTruthy();
    // A first-party SPA: straight back with a code.
    const p = pkce();
    const spaRes = await b.get(
      authorizeUrl({ client_id: spa.id, redirect_uri: SPA_CB, scope: 'openid', code_challenge: p.challenge, code_challenge_method: 'S256' }),
    );
    expect(new URL(String(spaRes.headers.location)).searchParams.get('code')).toBeTruthy();
    // prompt=consent asks again; more scopes than consented ask again.
    const prompted = await b.open(authorizeUrl(webParams({ prompt: 'consent' })));
    expect(prompted.res.body).toContain('action="/auth/ui/consent"');
  });

  it('a withdrawn consent is asked again (GET and DELETE /users/me/consents)', async () => {
    const b = new InjectBrowser(t.app);
    const { code } = await webCode(b);
    const access = ((await exchangeWeb(code)).json() as { access_token: string }).access_token;
    const list = await t.app.inject({ method: 'GET', url: '/users/me/consents', headers: bearer(user.access) });
    expect(list.json()).toEqual(expect.arrayContaining([expect.objectContaining({ client_id: web.id, client_name: 'Partner Web' })]));
    const del = await t.app.inject({ method: 'DELETE', url: `/users/me/consents/${web.id}`, headers: bearer(user.access) });
    expect(del.statusCode).toBe(204);
    // The application's session ended with the consent.
    expect((await t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(access) })).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'DELETE', url: `/users/me/consents/${web.id}`, headers: bearer(user.access) })).statusCode).toBe(404);
    expect((await b.open(authorizeUrl(webParams()))).res.body).toContain('action="/auth/ui/consent"');
    const none = await b.get(authorizeUrl(webParams({ prompt: 'none' })));
    expect(new URL(String(none.headers.location)).searchParams.get('error')).toBe('consent_required');
  });

  it('prompt=none: login_required without a session, a code with one; prompt=login asks the password again', async () => {
    const fresh = new InjectBrowser(t.app);
    const res = await fresh.get(authorizeUrl(webParams({ prompt: 'none' })));
    const url = new URL(String(res.headers.location));
    expect(url.searchParams.get('error')).toBe('login_required');
    expect(url.searchParams.get('state')).toBe('st-1');
    expect(url.searchParams.get('iss')).toBe(TEST_ISSUER);
    const b = new InjectBrowser(t.app);
    await signIn(b, webParams());
    const silent = await b.get(authorizeUrl(webParams({ prompt: 'none' })));
    expect(new URL(String(silent.headers.location)).searchParams.get('code')).toBeTruthy();
    const login = await b.open(authorizeUrl(webParams({ prompt: 'login' })));
    expect(login.res.body).toContain('action="/auth/ui/sign-in"');
    const done = await b.submit(login.res, { email: user.email, password: PASSWORD });
    expect(done.external?.searchParams.get('code')).toBeTruthy();
  });

  it('max_age: an older sign-in asks the password again (prompt=none: login_required); auth_time says when', async () => {
    const b = new InjectBrowser(t.app);
    await signIn(b, webParams());
    const signedInAt = Math.floor(t.clock.now().getTime() / 1000);
    t.clock.advance(120_000);
    const old = await b.get(authorizeUrl(webParams({ prompt: 'none', max_age: '60' })));
    expect(new URL(String(old.headers.location)).searchParams.get('error')).toBe('login_required');
    const ok = await b.get(authorizeUrl(webParams({ prompt: 'none', max_age: '600' })));
    const code = new URL(String(ok.headers.location)).searchParams.get('code') as string;
    const idToken = (await exchangeWeb(code)).json() as { id_token: string };
    expect(decodeJwt(idToken.id_token).auth_time).toBe(signedInAt);
    const again = await b.open(authorizeUrl(webParams({ max_age: '60' })));
    expect(again.res.body).toContain('action="/auth/ui/sign-in"');
  });

  it('prompt=select_account shows the account, and "use another account" asks for a sign-in', async () => {
    const b = new InjectBrowser(t.app);
    await signIn(b, webParams());
    const page = await b.open(authorizeUrl(webParams({ prompt: 'select_account' })));
    expect(page.res.body).toContain(user.email);
    const cont = await b.submit(page.res, { choice: 'continue' });
    expect(cont.external?.searchParams.get('code')).toBeTruthy();
    const page2 = await b.open(authorizeUrl(webParams({ prompt: 'select_account' })));
    const another = await b.submit(page2.res, { choice: 'another' });
    expect(another.res.body).toContain('action="/auth/ui/sign-in"');
  });

  it('a user with TOTP: password then code; acr=mfa in the ID token', async () => {
    const u = await mfaUser();
    const b = new InjectBrowser(t.app);
    const start = await b.open(authorizeUrl(webParams()));
    const mfa = await b.submit(start.res, { email: u.email, password: PASSWORD });
    expect(mfa.res.body).toContain('action="/auth/ui/mfa"');
    const wrong = await b.submit(mfa.res, { code: '000000' });
    expect(wrong.res.statusCode).toBe(400);
    expect(wrong.res.body).toContain('role="alert"');
    let done = await b.submit(wrong.res, { code: await u.code() });
    if (!done.external) done = await b.submit(done.res, { decision: 'allow' });
    const code = done.external?.searchParams.get('code') as string;
    const body = (await exchangeWeb(code)).json() as { id_token: string };
    expect(decodeJwt(body.id_token)).toMatchObject({ acr: 'mfa', amr: ['pwd', 'otp'], sub: u.userId });
  });

  it('acr_values=mfa steps up a password-only browser session; without a second factor: unmet_authentication_requirements', async () => {
    const u = await mfaUser();
    // A browser session with a password only: the user turned TOTP on after signing in here.
    const plain = await signUp(t.app);
    const b = new InjectBrowser(t.app);
    await signIn(b, webParams(), { email: plain.email });
    const unmet = await b.get(authorizeUrl(webParams({ acr_values: 'mfa' })));
    expect(new URL(String(unmet.headers.location)).searchParams.get('error')).toBe('unmet_authentication_requirements');
    const none = await b.get(authorizeUrl(webParams({ acr_values: 'mfa', prompt: 'none' })));
    expect(new URL(String(none.headers.location)).searchParams.get('error')).toBe('interaction_required');

    const b2 = new InjectBrowser(t.app);
    // Sign in as the TOTP user with password + code, then drop the otp by signing in with a password-only session... instead:
    // step-up is shown by a user whose browser session has only "pwd": sign in before enabling TOTP.
    const late = await signUp(t.app);
    await signIn(b2, webParams(), { email: late.email });
    const start = await t.app.inject({ method: 'POST', url: '/users/me/mfa/totp', headers: bearer(late.access), payload: {} });
    const secret = (start.json() as { secret: string }).secret;
    const at = () => Math.floor(t.clock.now().getTime() / 1000);
    await t.app.inject({
      method: 'POST',
      url: '/users/me/mfa/totp/verify',
      headers: bearer(late.access),
      payload: { code: await generate({ secret, epoch: at() }) },
    });
    const step = await b2.open(authorizeUrl(webParams({ acr_values: 'mfa' })));
    expect(step.res.body).toContain('action="/auth/ui/mfa"');
    t.clock.advance(30_000);
    const done = await b2.submit(step.res, { code: await generate({ secret, epoch: at() }) });
    const code = done.external?.searchParams.get('code') as string;
    const body = (await exchangeWeb(code)).json() as { id_token: string };
    expect(decodeJwt(body.id_token)).toMatchObject({ acr: 'mfa', sub: late.userId });
    expect(u.userId).toBeTruthy();
  });
});

describe('forms and pages an attacker pokes at', () => {
  it('every form refuses a missing or wrong CSRF value, and a cross-site POST; nothing changes', async () => {
    const b = new InjectBrowser(t.app);
    const start = await b.open(authorizeUrl(webParams()));
    const handle = /name="request" value="([^"]+)"/.exec(start.res.body)?.[1] as string;
    const csrfValue = /name="csrf" value="([^"]+)"/.exec(start.res.body)?.[1] as string;
    // The value with its last character changed (always changed: one in 64 values already ends in A).
    const wrongCsrf = `${csrfValue.slice(0, -1)}${csrfValue.endsWith('A') ? 'B' : 'A'}`;
    const failedBefore = await auditCount('sign_in_failed');
    for (const path of ['/auth/ui/sign-in', '/auth/ui/sign-up', '/auth/ui/mfa', '/auth/ui/consent', '/auth/ui/select-account']) {
      const fields = { request: handle, email: user.email, password: PASSWORD, code: '123456', decision: 'allow', choice: 'continue' };
      expect((await b.post(path, fields)).statusCode, path).toBe(403);
      expect((await b.post(path, { ...fields, csrf: wrongCsrf })).statusCode, path).toBe(403);
      expect((await b.post(path, { ...fields, csrf: csrfValue }, { 'sec-fetch-site': 'cross-site' })).statusCode, path).toBe(403);
      expect((await b.post(path, { ...fields, csrf: csrfValue }, { origin: 'https://evil.example' })).statusCode, path).toBe(403);
    }
    expect(b.cookies.has('tessera_session')).toBe(false);
    expect(await auditCount('sign_in_failed')).toBe(failedBefore);
    const endSession = await b.post('/auth/end-session', { confirm: 'yes' });
    expect(endSession.statusCode).toBe(403);
  });

  it('a request handle is bound to its browser; a finished request cannot be replayed', async () => {
    const b = new InjectBrowser(t.app);
    const start = await b.open(authorizeUrl(webParams()));
    const path = start.path as string;
    const thief = new InjectBrowser(t.app);
    const stolen = await thief.get(path);
    expect(stolen.statusCode).toBe(400);
    expect(stolen.body).toContain('authorization_request_expired');
    const done = await b.submit(start.res, { email: user.email, password: PASSWORD });
    expect(done.external?.searchParams.get('code') ?? done.res.body).toBeTruthy();
    // The same request again: ended.
    const replay = await b.get(path);
    expect(replay.statusCode).toBe(400);
  });

  it('GET and HEAD of every page change nothing', async () => {
    const b = new InjectBrowser(t.app);
    const start = await b.open(authorizeUrl(webParams()));
    const handle = /name="request" value="([^"]+)"/.exec(start.res.body)?.[1] as string;
    const before = await liveSessions(user.userId);
    const events = await t.db.handle.db.select({ n: count() }).from(auditEvents);
    for (const page of ['sign-in', 'sign-up', 'mfa', 'consent', 'select-account']) {
      for (const method of ['GET', 'HEAD'] as const) expect((await b.get(`/auth/ui/${page}?request=${handle}`, method)).statusCode).toBeLessThan(500);
    }
    for (const method of ['GET', 'HEAD'] as const) await b.get(`/auth/end-session?client_id=${web.id}`, method);
    expect(await liveSessions(user.userId)).toBe(before);
    expect(await t.db.handle.db.select({ n: count() }).from(auditEvents)).toEqual(events);
    // HEAD of the authorization endpoint does not start (or finish) anything.
    expect((await b.get(authorizeUrl(webParams()), 'HEAD')).statusCode).toBeGreaterThanOrEqual(400);
  });

  it('return paths cannot be turned into open redirects', async () => {
    const b = new InjectBrowser(t.app);
    for (const uri of [
      'https://rp.example/cb?next=https://evil.example',
      'https://rp.example.evil.example/cb',
      'https://rp.example/cb#x',
      '//evil.example/cb',
      'javascript:alert(1)',
    ]) {
      const res = await b.get(authorizeUrl(webParams({ redirect_uri: uri })));
      expect(res.statusCode, uri).toBe(400);
      expect(res.headers.location).toBeUndefined();
    }
    const logout = await b.get(`/auth/end-session?client_id=${web.id}&post_logout_redirect_uri=${encodeURIComponent('https://evil.example/')}`);
    expect(logout.statusCode).toBe(400);
    expect(logout.body).toContain('logout_request_invalid');
    const noClient = await b.get(`/auth/end-session?post_logout_redirect_uri=${encodeURIComponent('https://rp.example/bye')}`);
    expect(noClient.statusCode).toBe(400);
  });
});

describe('RP-initiated logout', () => {
  it('a GET shows a confirmation; its POST ends the browser session and the client sessions, then redirects with state', async () => {
    const b = new InjectBrowser(t.app);
    const { code } = await webCode(b);
    const tokens = (await exchangeWeb(code)).json() as { access_token: string; id_token: string };
    const p = pkce();
    const spaCode = new URL(
      String(
        (await b.get(authorizeUrl({ client_id: spa.id, redirect_uri: SPA_CB, scope: 'openid', code_challenge: p.challenge, code_challenge_method: 'S256' })))
          .headers.location,
      ),
    ).searchParams.get('code') as string;
    const spaTokens = (
      await token({ grant_type: 'authorization_code', code: spaCode, redirect_uri: SPA_CB, client_id: spa.id, code_verifier: p.verifier })
    ).json() as {
      access_token: string;
    };
    // An expired ID token is still a valid hint.
    t.clock.advance(3600_000);
    const confirm = await b.get(
      `/auth/end-session?id_token_hint=${tokens.id_token}&post_logout_redirect_uri=${encodeURIComponent('https://rp.example/bye')}&state=bye-1`,
    );
    expect(confirm.statusCode).toBe(200);
    expect(confirm.body).toContain('action="/auth/end-session"');
    // The GET signed no one out.
    expect((await b.get(authorizeUrl(webParams({ prompt: 'none' })))).headers.location).toContain('code=');
    const ended = await auditCount('end_session');
    const out = await b.submit(confirm, { confirm: 'yes' });
    expect(out.external?.href).toBe('https://rp.example/bye?state=bye-1');
    expect(await auditCount('end_session')).toBe(ended + 1);
    expect(b.cookies.has('tessera_session')).toBe(false);
    // Both client sessions ended with the browser session (the tokens themselves expired an hour ago: the rows tell).
    for (const access of [tokens.access_token, spaTokens.access_token]) {
      const sid = String(decodeJwt(access).sid);
      const [row] = await t.db.handle.db.select().from(sessions).where(eq(sessions.id, sid));
      expect(row?.revokedReason, sid).toBe('end_session');
    }
    const after = await b.get(authorizeUrl(webParams({ prompt: 'none' })));
    expect(new URL(String(after.headers.location)).searchParams.get('error')).toBe('login_required');
  });

  it('a forged id_token_hint is refused', async () => {
    const b = new InjectBrowser(t.app);
    const forged = `${Buffer.from('{"alg":"RS256","typ":"JWT","kid":"x"}').toString('base64url')}.${Buffer.from('{"aud":"x","iat":1}').toString('base64url')}.AAAA`;
    const res = await b.get(`/auth/end-session?id_token_hint=${forged}`);
    expect(res.statusCode).toBe(400);
  });
});

describe('sign-up on the hosted pages', () => {
  it('creates the account with the registration rules, then signs in and continues to the client', async () => {
    const b = new InjectBrowser(t.app);
    const start = await b.open(
      authorizeUrl({ client_id: spa.id, redirect_uri: SPA_CB, scope: 'openid email', code_challenge: pkce().challenge, code_challenge_method: 'S256' }),
    );
    const handle = /name="request" value="([^"]+)"/.exec(start.res.body)?.[1] as string;
    expect(start.res.body).toContain('Create an account');
    const form = await b.get(`/auth/ui/sign-up?request=${handle}`);
    expect(form.statusCode).toBe(200);
    const weak = await b.submit(form, { email: `new.${Date.now()}@example.com`, password: 'short' });
    expect(weak.res.statusCode).toBe(400);
    expect(weak.res.body).toContain('role="alert"');
    const taken = await b.submit(form, { email: user.email, password: 'another long passphrase' });
    expect(taken.res.body).toContain('already exists');
    const done = await b.submit(form, { email: `new.${Date.now()}@example.com`, password: 'a brand new passphrase', first_name: 'Grace' });
    expect(done.external?.searchParams.get('code')).toBeTruthy();
  });

  it('with REQUIRE_EMAIL_VERIFICATION the user is asked to confirm first', async () => {
    const strict = await createTestApp({ env: { REQUIRE_EMAIL_VERIFICATION: 'true' } });
    try {
      const c = await strict.app.services.clients.create(null, { name: 'RP', type: 'confidential', redirectUris: [WEB_CB], scopes: ['openid'] });
      const b = new InjectBrowser(strict.app);
      const start = await b.open(authorizeUrl({ client_id: c.client.clientId, redirect_uri: WEB_CB, scope: 'openid' }));
      const handle = /name="request" value="([^"]+)"/.exec(start.res.body)?.[1] as string;
      const form = await b.get(`/auth/ui/sign-up?request=${handle}`);
      const done = await b.submit(form, { email: `strict.${Date.now()}@example.com`, password: 'a brand new passphrase' });
      expect(done.external).toBeNull();
      expect(done.res.body).toContain('Confirm your email address');
      expect(b.cookies.has('tessera_session')).toBe(false);
    } finally {
      await strict.close();
    }
  });
});

describe('the hosted sign-in keeps the sign-in rules', () => {
  it('per-account rate limit and audited failures apply to POST /auth/ui/sign-in; an unknown email gets the same answer as a wrong password', async () => {
    const limited = await createTestApp({ env: { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_SIGN_IN_ACCOUNT: '3/5m' }, db: undefined });
    try {
      const u = await signUp(limited.app);
      const c = await limited.app.services.clients.create(null, { name: 'RP', type: 'confidential', redirectUris: [WEB_CB], scopes: ['openid'] });
      const b = new InjectBrowser(limited.app);
      const start = await b.open(authorizeUrl({ client_id: c.client.clientId, redirect_uri: WEB_CB, scope: 'openid', state: 's' }));
      const wrong = await b.submit(start.res, { email: u.email, password: 'not the password' });
      expect(wrong.res.statusCode).toBe(400);
      expect(wrong.res.body).toContain('role="alert"');
      const unknown = await b.submit(start.res, { email: `nobody.${u.email}`, password: 'not the password' });
      expect(unknown.res.body.replace(/value="[^"]*"/g, '')).toBe(wrong.res.body.replace(/value="[^"]*"/g, ''));
      // signUp's own sign-in counted once: this is the third attempt of the address, the next one the fourth.
      expect((await b.submit(start.res, { email: u.email, password: 'still wrong' })).res.statusCode).toBe(400);
      const limitedRes = await b.submit(start.res, { email: u.email, password: PASSWORD });
      expect(limitedRes.res.statusCode).toBe(429);
      // A page for the browser, not JSON: with the way back to this sign-in.
      expect(limitedRes.res.headers['content-type']).toMatch(/^text\/html/);
      expect(limitedRes.res.body).toContain('<h1>Too many attempts</h1>');
      expect(limitedRes.res.body).toContain('/auth/ui/sign-in?request=');
      const failed = await limited.db.handle.db
        .select({ n: count() })
        .from(auditEvents)
        .where(and(eq(auditEvents.type, 'sign_in_failed'), eq(auditEvents.userId, u.userId)));
      expect(failed[0]?.n).toBe(2);
    } finally {
      await limited.close();
    }
  });
});
