import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { SignJWT, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { users } from '../../src/features/accounts/tables.js';
import { ProviderKey, authorize, exchangeCode, landing, s256, sendJson, startServer } from '../helpers/social.js';
import { bearer, createTestApp, json, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// Sign in with Apple, web flow: Apple answers with response_mode=form_post (a
// cross-site POST to the callback, with `user` holding the name on the first
// authorisation) and its token endpoint only takes a client secret that is an
// ES256 JWT signed with the developer's .p8 key. A local stand-in for Apple
// checks that JWT (kid, iss = team id, sub = Services ID, aud, iat/exp) and the
// PKCE verifier, and answers with an ID token signed by a key it serves as JWKS.
// PUBLIC_URL is https here: the binding cookie must then be SameSite=None; Secure
// for the browser to send it with Apple's cross-site POST.

const PUBLIC = 'https://tessera.test';
const APP = 'https://app.example/cb';
const TEAM = 'TEAM123456';
const KEY_ID = 'ABC123DEFG';
const SERVICES_ID = 'com.example.signin';

let t: TestApp;
let apple: Awaited<ReturnType<typeof startServer>>;
let appleBase: string;
const idTokenKey = new ProviderKey();
const p8 = generateKeyPairSync('ec', { namedCurve: 'P-256' });

interface Grant {
  clientId: string;
  redirectUri: string;
  challenge: string;
  nonce: string;
  claims: Record<string, unknown>;
}
const grants = new Map<string, Grant>();
/** Every client secret the token endpoint received, with its verdict. */
const secrets: Array<{ jwt: string; ok: boolean; why?: string }> = [];

async function checkClientSecret(jwt: string, clientId: string, publicKey: KeyObject): Promise<string | null> {
  try {
    const header = decodeProtectedHeader(jwt);
    if (header.alg !== 'ES256' || header.kid !== KEY_ID) return 'header';
    const { payload } = await jwtVerify(jwt, publicKey, {
      algorithms: ['ES256'],
      issuer: TEAM,
      subject: clientId,
      audience: appleBase,
      currentDate: t.clock.now(),
    });
    if (typeof payload.iat !== 'number' || typeof payload.exp !== 'number' || payload.exp - payload.iat > 15_777_000) return 'lifetime';
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

beforeAll(async () => {
  apple = await startServer(async (req, body, res) => {
    const url = new URL(req.url ?? '/', appleBase);
    if (url.pathname === '/auth/keys') return sendJson(res, 200, { keys: [await idTokenKey.jwk] });
    if (url.pathname === '/auth/token' && req.method === 'POST') {
      const form = Object.fromEntries(new URLSearchParams(body));
      const why = form.client_secret ? await checkClientSecret(form.client_secret, form.client_id ?? '', p8.publicKey) : 'missing';
      secrets.push({ jwt: form.client_secret ?? '', ok: why === null, ...(why ? { why } : {}) });
      if (why) return sendJson(res, 400, { error: 'invalid_client' });
      const grant = grants.get(form.code ?? '');
      grants.delete(form.code ?? '');
      if (!grant || grant.clientId !== form.client_id || grant.redirectUri !== form.redirect_uri || s256(form.code_verifier ?? '') !== grant.challenge) {
        return sendJson(res, 400, { error: 'invalid_grant' });
      }
      const idToken = await idTokenKey.idToken({ iss: appleBase, aud: grant.clientId, nonce: grant.nonce, ...grant.claims }, t.clock.now());
      return sendJson(res, 200, { access_token: 'apple-access', token_type: 'Bearer', expires_in: 3600, refresh_token: 'apple-refresh', id_token: idToken });
    }
    sendJson(res, 404, { error: 'not_found' });
  });
  appleBase = apple.base;
  t = await createTestApp({
    env: {
      PUBLIC_URL: PUBLIC,
      JWT_ISSUER: PUBLIC,
      REQUIRE_EMAIL_VERIFICATION: 'true',
      APPLE_CLIENT_ID: SERVICES_ID,
      APPLE_TEAM_ID: TEAM,
      APPLE_KEY_ID: KEY_ID,
      APPLE_PRIVATE_KEY: p8.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      APPLE_ISSUER: appleBase,
      APPLE_AUTHORIZATION_URL: `${appleBase}/auth/authorize`,
      APPLE_TOKEN_URL: `${appleBase}/auth/token`,
      APPLE_JWKS_URL: `${appleBase}/auth/keys`,
      OAUTH_REDIRECT_ALLOWLIST: APP,
    },
  });
});

afterAll(async () => {
  await t?.close();
  await apple?.close();
});

/** The user approves at "Apple": a code for what the authorization URL asked. */
function approve(location: URL, claims: Record<string, unknown>): string {
  const code = randomBytes(16).toString('hex');
  grants.set(code, {
    clientId: location.searchParams.get('client_id') ?? '',
    redirectUri: location.searchParams.get('redirect_uri') ?? '',
    challenge: location.searchParams.get('code_challenge') ?? '',
    nonce: location.searchParams.get('nonce') ?? '',
    claims,
  });
  return code;
}

/** Apple's form_post to the callback. */
function formPost(form: Record<string, string>, cookie: string | null) {
  return t.app.inject({
    method: 'POST',
    url: '/auth/oauth/apple/callback',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}) },
    payload: new URLSearchParams(form).toString(),
  });
}

describe('Sign in with Apple (web, form_post)', () => {
  it('asks for form_post and sets a SameSite=None; Secure binding cookie over https', async () => {
    const { location, res } = await authorize(t.app, 'apple', { redirect_uri: APP });
    expect(location.href.startsWith(`${appleBase}/auth/authorize?`)).toBe(true);
    expect(Object.fromEntries(location.searchParams)).toMatchObject({
      client_id: SERVICES_ID,
      response_type: 'code',
      response_mode: 'form_post',
      scope: 'name email',
      redirect_uri: `${PUBLIC}/auth/oauth/apple/callback`,
      code_challenge_method: 'S256',
    });
    expect(res.headers['set-cookie']).toMatch(/; HttpOnly; SameSite=None; Secure$/);
  });

  it('form_post callback → one-time code → tokens; keeps the first-login name; the client secret is the ES256 JWT Apple requires', async () => {
    const email = uniqueEmail('apple');
    const start = await authorize(t.app, 'apple', { redirect_uri: APP, state: 'xyz' });
    const code = approve(start.location, { sub: '001234.abcdef.1234', email, email_verified: 'true', is_private_email: 'false' });
    const user = JSON.stringify({ name: { firstName: 'Tim', lastName: 'Cook' }, email });
    const res = await formPost({ state: start.location.searchParams.get('state') ?? '', code, user }, start.cookie);
    expect(res.statusCode, res.body).toBe(303);
    expect(res.headers['cache-control']).toBe('no-store');
    const land = landing(res);
    expect(land.searchParams.get('state')).toBe('xyz');

    const tokens = await exchangeCode(t.app, { code: land.searchParams.get('code') ?? '', redirect_uri: APP });
    expect(tokens.statusCode, tokens.body).toBe(200);
    const me = json(await t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(json(tokens).access_token as string) }));
    expect(me).toMatchObject({ email, email_verified: true, first_name: 'Tim', last_name: 'Cook' });

    const last = secrets.at(-1);
    expect(last?.ok).toBe(true);
    expect(decodeProtectedHeader(last?.jwt ?? '')).toEqual({ alg: 'ES256', kid: KEY_ID });
    expect(decodeJwt(last?.jwt ?? '')).toMatchObject({ iss: TEAM, sub: SERVICES_ID, aud: appleBase });

    // Later sign-ins carry no `user`: the name stays.
    const again = await authorize(t.app, 'apple', { redirect_uri: APP });
    const code2 = approve(again.location, { sub: '001234.abcdef.1234', email, email_verified: 'true' });
    const land2 = landing(await formPost({ state: again.location.searchParams.get('state') ?? '', code: code2 }, again.cookie));
    const tokens2 = await exchangeCode(t.app, { code: land2.searchParams.get('code') ?? '', redirect_uri: APP });
    const me2 = json(await t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(json(tokens2).access_token as string) }));
    expect(me2).toMatchObject({ id: me.id, first_name: 'Tim', last_name: 'Cook' });
  });

  it('the stand-in really checks the client secret: one signed with another key is refused', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const now = Math.floor(t.clock.now().getTime() / 1000);
    const forged = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: KEY_ID })
      .setIssuer(TEAM)
      .setSubject(SERVICES_ID)
      .setAudience(appleBase)
      .setIssuedAt(now)
      .setExpirationTime(now + 600)
      .sign(other);
    const res = await fetch(`${appleBase}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: 'x', client_id: SERVICES_ID, client_secret: forged }).toString(),
    });
    expect(res.status).toBe(400);
    expect(secrets.at(-1)).toMatchObject({ ok: false });
  });

  it('signs a new client secret before the old one expires', async () => {
    const run = async () => {
      const start = await authorize(t.app, 'apple', { redirect_uri: APP });
      const code = approve(start.location, { sub: `sub-${randomBytes(4).toString('hex')}`, email: uniqueEmail('apple'), email_verified: true });
      const land = landing(await formPost({ state: start.location.searchParams.get('state') ?? '', code }, start.cookie));
      expect(land.searchParams.get('code')).toBeTruthy();
      return secrets.at(-1);
    };
    const a = await run();
    const b = await run();
    t.clock.advance(56 * 60_000);
    const c = await run();
    expect(a?.jwt).toBe(b?.jwt);
    expect(c?.jwt).not.toBe(a?.jwt);
    expect(c?.ok).toBe(true);
  });

  it('a form_post without the binding cookie (another browser) is refused; without state too', async () => {
    const start = await authorize(t.app, 'apple', { redirect_uri: APP });
    const code = approve(start.location, { sub: 'x', email: uniqueEmail(), email_verified: true });
    const res = await formPost({ state: start.location.searchParams.get('state') ?? '', code }, null);
    expect([res.statusCode, json(res).error]).toEqual([400, 'oauth_state_invalid']);
    const noState = await formPost({ code }, start.cookie);
    expect([noState.statusCode, json(noState).error]).toEqual([400, 'oauth_state_invalid']);
  });

  it('an unverified Apple email with REQUIRE_EMAIL_VERIFICATION: back to the app with email_not_verified, no code and no account', async () => {
    const start = await authorize(t.app, 'apple', { redirect_uri: APP });
    const email = uniqueEmail('apple');
    const code = approve(start.location, { sub: 'unverified-1', email, email_verified: 'false' });
    const land = landing(await formPost({ state: start.location.searchParams.get('state') ?? '', code }, start.cookie));
    expect(land.searchParams.get('error')).toBe('email_not_verified');
    expect(land.searchParams.get('code')).toBeNull();
    expect(await t.db.handle.db.select().from(users).where(eq(users.email, email))).toEqual([]);
  });

  it('an ID token that does not verify (wrong nonce) goes back to the app as server_error', async () => {
    const start = await authorize(t.app, 'apple', { redirect_uri: APP });
    const code = approve(start.location, { sub: 'n-1', email: uniqueEmail(), email_verified: true });
    const grant = grants.get(code);
    if (grant) grant.nonce = 'a different nonce';
    const land = landing(await formPost({ state: start.location.searchParams.get('state') ?? '', code }, start.cookie));
    expect(land.searchParams.get('error')).toBe('server_error');
    expect(land.searchParams.get('error_description')).toContain('nonce');
  });

  it('Apple unreachable: back to the app with temporarily_unavailable', async () => {
    const start = await authorize(t.app, 'apple', { redirect_uri: APP });
    await apple.close(); // the last test of this file: nothing after it needs Apple
    const land = landing(await formPost({ state: start.location.searchParams.get('state') ?? '', code: 'c' }, start.cookie));
    expect(land.searchParams.get('error')).toBe('temporarily_unavailable');
  });
});
