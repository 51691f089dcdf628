import { createServer, type RequestListener, type Server } from 'node:http';
import { eq } from 'drizzle-orm';
import { decodeJwt } from 'jose';
import { generate } from 'otplib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { auditEvents } from '../../src/features/audit/tables.js';
import { oauthCodes, oauthStates } from '../../src/features/social/tables.js';
import { newOpaqueToken } from '../../src/infra/opaque-token.js';
import { freePort } from '../helpers/free-port.js';
import { APP_PKCE, APP_VERIFIER, Browser, authorize, callbackGet, exchangeCode, landing, s256, sha256Hex } from '../helpers/social.js';
import { TEST_ISSUER, bearer, createTestApp, json, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// The web flow against a real OpenID provider (oidc-provider, started here on a
// loopback port), configured in Tessera both as "google" and as the generic
// provider "corp". The provider's login and consent pages are driven over HTTP
// by a cookie-keeping client; its redirect back to Tessera's callback is
// replayed through app.inject (PUBLIC_URL = http://tessera.test is the callback
// registered at the provider).

const APP = 'https://app.example/cb';
const NATIVE = 'com.example.app:/oauth';

let t: TestApp;
let server: Server;
let issuer: string;
/** The provider's users, by subject. */
const accounts = new Map<string, Record<string, unknown>>();

beforeAll(async () => {
  const port = await freePort();
  issuer = `http://127.0.0.1:${port}`;
  // oidc-provider v9 ships no types: the little used here.
  const specifier = 'oidc-provider';
  const { default: Provider } = (await import(specifier)) as { default: new (issuer: string, config: object) => { callback(): RequestListener } };
  const op = new Provider(issuer, {
    clients: [
      { client_id: 'tessera-google', client_secret: 'google-secret', redirect_uris: [`${TEST_ISSUER}/auth/oauth/google/callback`] },
      { client_id: 'tessera-corp', client_secret: 'corp-secret', redirect_uris: [`${TEST_ISSUER}/auth/oauth/corp/callback`] },
    ],
    pkce: { required: () => true },
    findAccount: (_ctx: unknown, sub: string) => {
      const claims = accounts.get(sub);
      return claims ? { accountId: sub, claims: () => ({ sub, ...claims }) } : undefined;
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['given_name', 'family_name', 'name'] },
    cookies: { keys: ['a test cookie key'] },
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
    features: { devInteractions: { enabled: true } },
  });
  server = createServer(op.callback());
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  t = await createTestApp({
    env: {
      GOOGLE_ISSUER: issuer,
      GOOGLE_CLIENT_ID: 'tessera-google',
      GOOGLE_CLIENT_SECRET: 'google-secret',
      OIDC_PROVIDERS: 'corp,down',
      // A provider that cannot be reached (nothing listens on the discard port).
      OIDC_DOWN_ISSUER: 'http://127.0.0.1:9',
      OIDC_DOWN_CLIENT_ID: 'tessera-down',
      OIDC_CORP_ISSUER: issuer,
      OIDC_CORP_CLIENT_ID: 'tessera-corp',
      OIDC_CORP_CLIENT_SECRET: 'corp-secret',
      OIDC_CORP_DISPLAY_NAME: 'Corp SSO',
      OAUTH_REDIRECT_ALLOWLIST: `${APP},https://app.example:8443/other,${NATIVE}`,
    },
  });
});

afterAll(async () => {
  await t?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
});

// The provider signs with the real time; Tessera checks ID tokens with its (manual) clock.
beforeEach(() => t.clock.set(new Date()));

let n = 0;
function providerUser(claims: Record<string, unknown> = {}): { sub: string; email: string } {
  const sub = `op-user-${++n}`;
  const email = uniqueEmail('op');
  accounts.set(sub, { email, email_verified: true, given_name: 'Grace', family_name: 'Hopper', ...claims });
  return { sub, email: (claims.email as string | undefined) ?? email };
}

/** authorize → provider login + consent → Tessera's callback; returns the app's landing URL. */
async function webSignIn(provider: string, sub: string, query: Record<string, string> = {}) {
  const start = await authorize(t.app, provider, { redirect_uri: APP, state: 'app-state', ...query });
  const callbackUrl = await new Browser().untilRedirectTo(start.location.href, TEST_ISSUER, sub);
  const res = await callbackGet(t.app, callbackUrl, start.cookie);
  return { start, callbackUrl, res, land: landing(res) };
}

async function signInTokens(provider: string, sub: string) {
  const { land } = await webSignIn(provider, sub);
  const tokens = await exchangeCode(t.app, { code: land.searchParams.get('code') ?? '', redirect_uri: APP });
  expect(tokens.statusCode, tokens.body).toBe(200);
  return json(tokens) as { access_token: string; refresh_token: string };
}

describe('providers and the authorization redirect', () => {
  it('lists the enabled providers', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/auth/providers' });
    expect(json(res)).toEqual({
      providers: [
        { id: 'google', name: 'Google', web: true, native: 'id_token' },
        { id: 'corp', name: 'Corp SSO', web: true, native: 'id_token' },
        { id: 'down', name: 'down', web: true, native: 'id_token' },
      ],
    });
  });

  it('redirects to the provider with code + PKCE S256 + state + nonce, and binds the attempt to the browser', async () => {
    const { location, res } = await authorize(t.app, 'google', { redirect_uri: APP });
    expect(`${location.origin}${location.pathname}`).toBe(`${issuer}/auth`);
    const q = Object.fromEntries(location.searchParams);
    expect(q).toMatchObject({
      client_id: 'tessera-google',
      response_type: 'code',
      redirect_uri: `${TEST_ISSUER}/auth/oauth/google/callback`,
      scope: 'openid email profile',
      code_challenge_method: 'S256',
    });
    expect(q.state).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.nonce).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.code_challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.response_mode).toBeUndefined();
    expect(res.headers['set-cookie']).toMatch(/^tessera_oauth=[A-Za-z0-9_-]{43}; Path=\/auth\/oauth\/; Max-Age=600; HttpOnly; SameSite=Lax$/);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
  });

  it('refuses a redirect_uri that is not exactly on the allow-list, as JSON (never a redirect)', async () => {
    const bad = [
      'https://app.example:444/cb', // other port
      'https://app.example/cb/more', // path suffix
      'https://app.example/cb/', // trailing slash
      'https://app.example/cbx',
      'https://app.example@evil.example/cb', // userinfo
      'https://evil.example@app.example/cb',
      'http://app.example/cb', // scheme change
      'https://app.example/cb#x', // fragment
      'https://app.example/cb?next=/x', // query that is not on the list
      'https://app.example.evil.example/cb',
      'https://app.example\\@evil.example/cb',
      '//app.example/cb',
      '/cb',
      'com.example.app:/oauth/x',
      'not a url',
    ];
    for (const redirect_uri of bad) {
      const res = await t.app.inject({ method: 'GET', url: `/auth/oauth/google/authorize?${new URLSearchParams({ redirect_uri }).toString()}` });
      expect(res.statusCode, redirect_uri).toBe(400);
      expect(json(res).error, redirect_uri).toBe('redirect_uri_not_allowed');
      expect(res.headers.location).toBeUndefined();
    }
    const missing = await t.app.inject({ method: 'GET', url: '/auth/oauth/google/authorize' });
    expect([missing.statusCode, json(missing).error]).toEqual([422, 'validation_failed']);
    // Host names are case-insensitive (URL parsing lower-cases them); a custom scheme for an app works.
    for (const ok of ['https://APP.example/cb', 'https://app.example:443/cb', NATIVE, 'https://app.example:8443/other']) {
      const res = await t.app.inject({
        method: 'GET',
        url: `/auth/oauth/google/authorize?${new URLSearchParams({ redirect_uri: ok, ...APP_PKCE }).toString()}`,
      });
      expect(res.statusCode, ok).toBe(302);
    }
  });

  it('answers 404 provider_not_found for a provider that is not configured', async () => {
    for (const [method, url] of [
      ['GET', `/auth/oauth/github/authorize?redirect_uri=${encodeURIComponent(APP)}`],
      ['GET', '/auth/oauth/nope/callback?state=x&code=y'],
      ['POST', '/auth/oauth/apple/token'],
    ] as const) {
      const res = await t.app.inject({ method, url, ...(method === 'POST' ? { payload: { id_token: 'x' } } : {}) });
      expect([res.statusCode, json(res).error], url).toEqual([404, 'provider_not_found']);
    }
  });

  it('a provider that cannot be reached: back to the app with temporarily_unavailable (web), 503 provider_unavailable (native)', async () => {
    const res = await t.app.inject({
      method: 'GET',
      url: `/auth/oauth/down/authorize?${new URLSearchParams({ redirect_uri: APP, state: 'st', ...APP_PKCE }).toString()}`,
    });
    expect(res.statusCode).toBe(302);
    expect(Object.fromEntries(landing(res).searchParams)).toMatchObject({ error: 'temporarily_unavailable', state: 'st' });
    const native = await t.app.inject({ method: 'POST', url: '/auth/oauth/down/token', payload: { id_token: 'a.b.c' } });
    expect([native.statusCode, json(native).error]).toEqual([503, 'provider_unavailable']);
    expect(native.headers['retry-after']).toBe('5');
  });
});

describe('PKCE is required (every client of the web flow is public)', () => {
  const authorizeUrl = (query: Record<string, string>) =>
    `/auth/oauth/google/authorize?${new URLSearchParams({ redirect_uri: APP, state: 'st', ...query }).toString()}`;
  const stateRows = async () => (await t.db.handle.db.select({ id: oauthStates.id }).from(oauthStates)).length;

  it('no code_challenge: 400 pkce_required as JSON, before anything is stored or the provider is asked', async () => {
    const rows = await stateRows();
    const res = await t.app.inject({ method: 'GET', url: authorizeUrl({}) });
    expect([res.statusCode, json(res).error]).toEqual([400, 'pkce_required']);
    expect(res.headers.location).toBeUndefined();
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(await stateRows()).toBe(rows);
  });

  it('refuses `plain` and a malformed challenge (422, nothing stored)', async () => {
    const rows = await stateRows();
    const plain = await t.app.inject({ method: 'GET', url: authorizeUrl({ code_challenge: s256('x'.repeat(43)), code_challenge_method: 'plain' }) });
    expect([plain.statusCode, json(plain).error]).toEqual([422, 'validation_failed']);
    // RFC 7636: no method means plain.
    const noMethod = await t.app.inject({ method: 'GET', url: authorizeUrl({ code_challenge: s256('x'.repeat(43)) }) });
    expect([noMethod.statusCode, json(noMethod).error]).toEqual([422, 'validation_failed']);
    const short = await t.app.inject({ method: 'GET', url: authorizeUrl({ code_challenge: 'short', code_challenge_method: 'S256' }) });
    expect([short.statusCode, json(short).error]).toEqual([422, 'validation_failed']);
    for (const res of [plain, noMethod, short]) expect(res.headers.location).toBeUndefined();
    expect(await stateRows()).toBe(rows);
  });

  it('the code needs the right code_verifier: none or a wrong one is invalid_grant (and burns the code)', async () => {
    const u = providerUser();
    const first = await webSignIn('google', u.sub);
    const code = first.land.searchParams.get('code') ?? '';
    const missing = await exchangeCode(t.app, { code, redirect_uri: APP, code_verifier: undefined });
    expect([missing.statusCode, json(missing).error]).toEqual([400, 'invalid_grant']);
    expect(json(missing).error_description).toContain('code_verifier');
    // Burnt: the right verifier after a wrong attempt does not redeem it.
    expect(json(await exchangeCode(t.app, { code, redirect_uri: APP })).error).toBe('invalid_grant');

    const second = await webSignIn('google', u.sub);
    const wrong = await exchangeCode(t.app, { code: second.land.searchParams.get('code') ?? '', redirect_uri: APP, code_verifier: 'w'.repeat(50) });
    expect([wrong.statusCode, json(wrong).error]).toEqual([400, 'invalid_grant']);

    const verifier = 'v'.repeat(20) + 'E'.repeat(30);
    const third = await webSignIn('google', u.sub, { code_challenge: s256(verifier), code_challenge_method: 'S256' });
    const other = await exchangeCode(t.app, { code: third.land.searchParams.get('code') ?? '', redirect_uri: APP }); // APP_VERIFIER: another app's
    expect([other.statusCode, json(other).error]).toEqual([400, 'invalid_grant']);
    const fourth = await webSignIn('google', u.sub, { code_challenge: s256(verifier), code_challenge_method: 'S256' });
    const ok = await exchangeCode(t.app, { code: fourth.land.searchParams.get('code') ?? '', redirect_uri: APP, code_verifier: verifier });
    expect(ok.statusCode, ok.body).toBe(200);
  });

  it('a code without a challenge (issued before PKCE was required) is redeemable by nobody', async () => {
    const u = providerUser();
    const { land } = await webSignIn('google', u.sub);
    const [issued] = await t.db.handle.db
      .select()
      .from(oauthCodes)
      .where(eq(oauthCodes.codeHash, sha256Hex(land.searchParams.get('code') ?? '')));
    const code = newOpaqueToken();
    const now = t.clock.now();
    await t.db.handle.db
      .insert(oauthCodes)
      .values({ ...issued!, id: undefined, codeHash: sha256Hex(code), codeChallenge: null, createdAt: now, expiresAt: new Date(now.getTime() + 60_000) });
    for (const code_verifier of [undefined, APP_VERIFIER]) {
      const res = await exchangeCode(t.app, { code, redirect_uri: APP, code_verifier });
      expect([res.statusCode, json(res).error]).toEqual([400, 'invalid_grant']);
    }
  });
});

describe('the full web flow', () => {
  it('as "google": authorize → provider login → callback → one-time code → tokens → /users/me', async () => {
    const u = providerUser();
    const { res, land } = await webSignIn('google', u.sub);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(`${land.origin}${land.pathname}`).toBe(APP);
    expect(land.searchParams.get('state')).toBe('app-state');
    const code = land.searchParams.get('code') ?? '';
    expect(code).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // Only the one-time code travels in the URL.
    expect([...land.searchParams.keys()].sort()).toEqual(['code', 'state']);

    const tokens = await exchangeCode(t.app, { code, redirect_uri: APP });
    expect(tokens.statusCode, tokens.body).toBe(200);
    expect(tokens.headers['cache-control']).toBe('no-store');
    const body = json(tokens) as { access_token: string; refresh_token: string; token_type: string };
    expect(body.token_type).toBe('Bearer');
    expect(decodeJwt(body.access_token)).toMatchObject({ amr: ['fed'], email: u.email, email_verified: true, roles: ['user'] });

    const me = json(await t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(body.access_token) }));
    expect(me).toMatchObject({ email: u.email, email_verified: true, first_name: 'Grace', last_name: 'Hopper', has_password: false });
    const ids = json(await t.app.inject({ method: 'GET', url: '/users/me/identities', headers: bearer(body.access_token) }));
    expect(ids.identities).toEqual([
      { provider: 'google', email: u.email, email_verified: true, created_at: expect.any(String), last_sign_in_at: expect.any(String) },
    ]);

    const events = await t.db.handle.db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.userId, me.id as string));
    expect(events.map((e) => [e.type, e.details])).toEqual(
      expect.arrayContaining([
        ['identity_linked', { method: 'google', via: 'new_account' }],
        ['sign_in', { method: 'google' }],
      ]),
    );

    // A second sign-in with the same provider account is the same user.
    const again = await signInTokens('google', u.sub);
    expect(decodeJwt(again.access_token).sub).toBe(me.id);
  });

  it('as the generic provider "corp" (OIDC_PROVIDERS)', async () => {
    const u = providerUser();
    const tokens = await signInTokens('corp', u.sub);
    const me = json(await t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(tokens.access_token) }));
    expect(me).toMatchObject({ email: u.email, email_verified: true, first_name: 'Grace' });
    const ids = json(await t.app.inject({ method: 'GET', url: '/users/me/identities', headers: bearer(tokens.access_token) }));
    expect((ids.identities as Array<{ provider: string }>).map((i) => i.provider)).toEqual(['corp']);
  });
});

describe('the one-time code', () => {
  it('works once: a reused code is invalid_grant and ends the session its first use opened', async () => {
    const u = providerUser();
    const { land } = await webSignIn('google', u.sub);
    const code = land.searchParams.get('code') ?? '';
    const first = await exchangeCode(t.app, { code, redirect_uri: APP });
    expect(first.statusCode).toBe(200);
    const access = json(first).access_token as string;
    expect((await t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(access) })).statusCode).toBe(200);

    const reused = await exchangeCode(t.app, { code, redirect_uri: APP });
    expect([reused.statusCode, json(reused).error]).toEqual([400, 'invalid_grant']);
    const after = await t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(access) });
    expect([after.statusCode, json(after).error]).toEqual([401, 'session_revoked']);
  });

  it('expires after 60 seconds', async () => {
    const u = providerUser();
    const { land } = await webSignIn('google', u.sub);
    t.clock.advance(61_000);
    const res = await exchangeCode(t.app, { code: land.searchParams.get('code') ?? '', redirect_uri: APP });
    expect([res.statusCode, json(res).error]).toEqual([400, 'invalid_grant']);
  });

  it('needs the redirect_uri of the authorization request', async () => {
    const u = providerUser();
    const { land } = await webSignIn('google', u.sub);
    const res = await exchangeCode(t.app, { code: land.searchParams.get('code') ?? '', redirect_uri: 'https://app.example:8443/other' });
    expect([res.statusCode, json(res).error]).toEqual([400, 'invalid_grant']);
    const none = await exchangeCode(t.app, { code: 'whatever' });
    expect([none.statusCode, json(none).error]).toEqual([400, 'invalid_request']);
    const unknown = await exchangeCode(t.app, { code: 'not-a-code', redirect_uri: APP });
    expect([unknown.statusCode, json(unknown).error]).toEqual([400, 'invalid_grant']);
  });
});

describe('callback rejections', () => {
  it('missing state: 400, nothing exchanged', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/auth/oauth/google/callback?code=abc' });
    expect([res.statusCode, json(res).error]).toEqual([400, 'oauth_state_invalid']);
    expect(res.headers.location).toBeUndefined();
  });

  it('mismatched state: 400 (an unknown state, or one of another provider)', async () => {
    const start = await authorize(t.app, 'google', { redirect_uri: APP });
    const unknown = await callbackGet(t.app, `${TEST_ISSUER}/auth/oauth/google/callback?state=forged-state-value&code=abc`, start.cookie);
    expect([unknown.statusCode, json(unknown).error]).toEqual([400, 'oauth_state_invalid']);
    const state = start.location.searchParams.get('state') ?? '';
    const otherProvider = await callbackGet(t.app, `${TEST_ISSUER}/auth/oauth/corp/callback?state=${state}&code=abc`, start.cookie);
    expect([otherProvider.statusCode, json(otherProvider).error]).toEqual([400, 'oauth_state_invalid']);
  });

  it('a state completed in another browser (no or another binding cookie) is refused, and does not burn the attempt', async () => {
    const u = providerUser();
    const start = await authorize(t.app, 'google', { redirect_uri: APP });
    const callbackUrl = await new Browser().untilRedirectTo(start.location.href, TEST_ISSUER, u.sub);
    const noCookie = await callbackGet(t.app, callbackUrl, null);
    expect([noCookie.statusCode, json(noCookie).error]).toEqual([400, 'oauth_state_invalid']);
    const other = await authorize(t.app, 'google', { redirect_uri: APP });
    const otherCookie = await callbackGet(t.app, callbackUrl, other.cookie);
    expect([otherCookie.statusCode, json(otherCookie).error]).toEqual([400, 'oauth_state_invalid']);
    const right = landing(await callbackGet(t.app, callbackUrl, start.cookie));
    expect(right.searchParams.get('code')).toBeTruthy();
  });

  it('a HEAD of the callback URL (a link scanner) neither answers as the callback nor uses up the attempt', async () => {
    const u = providerUser();
    const start = await authorize(t.app, 'google', { redirect_uri: APP });
    const callbackUrl = new URL(await new Browser().untilRedirectTo(start.location.href, TEST_ISSUER, u.sub));
    const head = await t.app.inject({ method: 'HEAD', url: `${callbackUrl.pathname}${callbackUrl.search}`, headers: { cookie: start.cookie } });
    // The callback has no HEAD route: 405 with Allow (it was a 404 before 405s existed).
    expect([head.statusCode, head.headers.allow]).toEqual([405, 'GET, POST']);
    expect(head.headers.location).toBeUndefined();
    const right = landing(await callbackGet(t.app, callbackUrl.href, start.cookie));
    expect(right.searchParams.get('code')).toBeTruthy();
  });

  it('a replayed callback goes back to the app with an error, not a second code', async () => {
    const u = providerUser();
    const { start, callbackUrl } = await webSignIn('google', u.sub);
    const replay = landing(await callbackGet(t.app, callbackUrl, start.cookie));
    expect(replay.searchParams.get('error')).toBe('invalid_request');
    expect(replay.searchParams.get('code')).toBeNull();
  });

  it('an expired attempt (10 minutes) is refused', async () => {
    const u = providerUser();
    const start = await authorize(t.app, 'google', { redirect_uri: APP });
    const callbackUrl = await new Browser().untilRedirectTo(start.location.href, TEST_ISSUER, u.sub);
    t.clock.advance(10 * 60_000 + 1000);
    const res = landing(await callbackGet(t.app, callbackUrl, start.cookie));
    expect(res.searchParams.get('error')).toBe('invalid_request');
  });

  it('a wrong PKCE verifier: the provider refuses the code exchange', async () => {
    const u = providerUser();
    const start = await authorize(t.app, 'google', { redirect_uri: APP });
    const callbackUrl = await new Browser().untilRedirectTo(start.location.href, TEST_ISSUER, u.sub);
    // Tessera would send another verifier than the one whose challenge the provider saw.
    const id = sha256Hex(start.location.searchParams.get('state') ?? '');
    await t.db.handle.db
      .update(oauthStates)
      .set({ codeVerifier: 'x'.repeat(43) })
      .where(eq(oauthStates.id, id));
    const land = landing(await callbackGet(t.app, callbackUrl, start.cookie));
    expect(land.searchParams.get('error')).toBe('server_error');
    expect(land.searchParams.get('error_description')).toContain('refused the authorization code (invalid_grant)');
    expect(land.searchParams.get('code')).toBeNull();
  });

  it('RFC 9207: the callback must name this provider as its issuer (mix-up defence)', async () => {
    const u = providerUser();
    for (const iss of ['https://evil.example', null]) {
      const start = await authorize(t.app, 'google', { redirect_uri: APP });
      const callbackUrl = new URL(await new Browser().untilRedirectTo(start.location.href, TEST_ISSUER, u.sub));
      // oidc-provider sends `iss` and announces it in its discovery document.
      expect(callbackUrl.searchParams.get('iss')).toBe(issuer);
      if (iss === null) callbackUrl.searchParams.delete('iss');
      else callbackUrl.searchParams.set('iss', iss);
      const land = landing(await callbackGet(t.app, callbackUrl.href, start.cookie));
      expect(land.searchParams.get('code')).toBeNull();
      expect(land.searchParams.get('error_description')).toContain('RFC 9207');
    }
  });

  it('the user refusing at the provider (error=access_denied) goes back to the app as access_denied', async () => {
    const start = await authorize(t.app, 'google', { redirect_uri: APP, state: 's1' });
    const state = start.location.searchParams.get('state') ?? '';
    const land = landing(await callbackGet(t.app, `${TEST_ISSUER}/auth/oauth/google/callback?state=${state}&error=access_denied`, start.cookie));
    expect(Object.fromEntries(land.searchParams)).toMatchObject({ error: 'access_denied', state: 's1' });
  });
});

describe('second factor', () => {
  it('a user with MFA gets mfa_required (not tokens) at the exchange; the code completes it with amr fed+otp', async () => {
    const u = providerUser();
    const first = await signInTokens('google', u.sub);
    const start = await t.app.inject({ method: 'POST', url: '/users/me/mfa/totp', payload: {}, headers: bearer(first.access_token) });
    expect(start.statusCode, start.body).toBe(200);
    const secret = json(start).secret as string;
    const epoch = () => Math.floor(t.clock.now().getTime() / 1000);
    const verify = await t.app.inject({
      method: 'POST',
      url: '/users/me/mfa/totp/verify',
      payload: { code: await generate({ secret, epoch: epoch() }) },
      headers: bearer(first.access_token),
    });
    expect(verify.statusCode, verify.body).toBe(200);

    const { land } = await webSignIn('google', u.sub);
    const res = await exchangeCode(t.app, { code: land.searchParams.get('code') ?? '', redirect_uri: APP });
    expect(res.statusCode).toBe(403);
    const body = json(res);
    expect(body).toMatchObject({ error: 'mfa_required', mfa_token: expect.any(String) });
    expect(body.access_token).toBeUndefined();

    t.clock.advance(31_000);
    const done = await t.app.inject({
      method: 'POST',
      url: '/auth/mfa/verify',
      payload: { mfa_token: body.mfa_token, code: await generate({ secret, epoch: epoch() }) },
    });
    expect(done.statusCode, done.body).toBe(200);
    expect(decodeJwt(json(done).access_token as string).amr).toEqual(['fed', 'otp']);
  });
});
