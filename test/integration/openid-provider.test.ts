import { and, count, eq, isNull } from 'drizzle-orm';
import { createLocalJWKSet, jwtVerify, decodeJwt } from 'jose';
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
