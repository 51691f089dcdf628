import { eq } from 'drizzle-orm';
import { decodeJwt } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { users } from '../../src/features/accounts/tables.js';
import { FakeFacebook } from '../helpers/fake-facebook.js';
import { FakeGithub } from '../helpers/fake-github.js';
import { s256 } from '../helpers/fake-http.js';
import { authorize, callbackGet, exchangeCode, landing } from '../helpers/social.js';
import { TEST_ISSUER, bearer, createTestApp, json, signUp, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// GitHub and Facebook through HTTP, against local servers that answer like
// github.com / api.github.com and facebook.com / graph.facebook.com
// (test/helpers/fake-github.ts, fake-facebook.ts): the native {access_token}
// sign-in, the web flow (authorize → provider → callback → one-time code →
// POST /auth/token), and the account rules that are specific to them: an
// unverified GitHub address never links, a Facebook identity never links by
// email, a token issued to another app never signs anyone in.

const APP = 'https://app.example/auth/done';
const TIMEOUT_MS = 500;

let t: TestApp;
let gh: FakeGithub;
let fb: FakeFacebook;

beforeAll(async () => {
  gh = await FakeGithub.start();
  gh.addApp('other-github-app', 'other-github-secret');
  fb = await FakeFacebook.start();
  fb.addApp('9999999999', 'other-facebook-secret');
  t = await createTestApp({
    env: { ...gh.env(), ...fb.env(), OAUTH_REDIRECT_ALLOWLIST: APP, OAUTH_HTTP_TIMEOUT_MS: String(TIMEOUT_MS) },
  });
});

afterAll(async () => {
  await t?.close();
  await gh?.close();
  await fb?.close();
});

afterEach(() => {
  gh.http.clearOverrides();
  fb.http.clearOverrides();
});

const native = (provider: string, body: Record<string, unknown>) => t.app.inject({ method: 'POST', url: `/auth/oauth/${provider}/token`, payload: body });

async function signedIn(res: { statusCode: number; body: string; headers: Record<string, unknown> }) {
  expect(res.statusCode, res.body).toBe(200);
  expect(res.headers['cache-control']).toBe('no-store');
  const body = JSON.parse(res.body) as { access_token: string; refresh_token: string; token_type: string };
  expect(body.token_type).toBe('Bearer');
  const me = json(await t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(body.access_token) }));
  const identities = json(await t.app.inject({ method: 'GET', url: '/users/me/identities', headers: bearer(body.access_token) })).identities as Array<{
    provider: string;
    email: string | null;
    email_verified: boolean;
  }>;
  return { ...body, me, identities, claims: decodeJwt(body.access_token) };
}

function expectError(res: { statusCode: number; body: string }, status: number, error: string) {
  expect([res.statusCode, (JSON.parse(res.body) as { error: string }).error], res.body).toEqual([status, error]);
}

/** A password account whose address is confirmed (set directly: the email flows have their own suite). */
async function verifiedPasswordUser(email = uniqueEmail('pw')) {
  const u = await signUp(t.app, email);
  await t.db.handle.db.update(users).set({ emailVerifiedAt: t.clock.now() }).where(eq(users.id, u.userId));
  return u;
}

const accountsWith = async (email: string) => (await t.db.handle.db.select().from(users).where(eq(users.email, email))).length;

/** authorize → the provider's page (signed in as its `loginAs`) → Tessera's callback → the app's landing URL. */
async function webSignIn(provider: 'github' | 'facebook', query: Record<string, string> = {}) {
  const start = await authorize(t.app, provider, { redirect_uri: APP, state: 'app-state', ...query });
  const atProvider = await fetch(start.location, { redirect: 'manual' });
  expect(atProvider.status).toBe(302);
  const back = new URL(atProvider.headers.get('location') as string);
  // What the browser requests: the fragment (Facebook's `#_=_`) stays in the browser.
  back.hash = '';
  expect(`${back.origin}${back.pathname}`).toBe(`${TEST_ISSUER}/auth/oauth/${provider}/callback`);
  const res = await callbackGet(t.app, back.href, start.cookie);
  return { start, res, land: landing(res) };
}

async function webTokens(provider: 'github' | 'facebook') {
  const { land } = await webSignIn(provider);
  expect([...land.searchParams.keys()].sort(), land.href).toEqual(['code', 'state']);
  return signedIn(await exchangeCode(t.app, { code: land.searchParams.get('code') ?? '', redirect_uri: APP }));
}

describe('providers', () => {
  it('GET /auth/providers lists GitHub and Facebook, both taking an access_token natively', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/auth/providers' });
    expect(json(res)).toEqual({
      providers: [
        { id: 'github', name: 'GitHub', web: true, native: 'access_token' },
        { id: 'facebook', name: 'Facebook', web: true, native: 'access_token' },
      ],
    });
  });
});

describe('GitHub', () => {
  it('native: a token of our OAuth app signs in (numeric id as identity, verified primary email, name split)', async () => {
    const email = uniqueEmail('gh');
    const user = gh.addUser({ name: 'Margaret Heafield Hamilton', emails: [{ email, primary: true, verified: true }] });
    const s = await signedIn(await native('github', { access_token: gh.issueToken(user.id) }));
    expect(s.claims.amr).toEqual(['fed']);
    expect(s.me).toMatchObject({ email, email_verified: true, first_name: 'Margaret', last_name: 'Heafield Hamilton', has_password: false });
    expect(s.identities).toEqual([expect.objectContaining({ provider: 'github', email, email_verified: true })]);
    // The token check went to GitHub with our client credentials.
    expect(gh.http.to('/api/v3/applications/gh-client-id/token').length).toBeGreaterThan(0);

    // Another token of the same GitHub user: the same account, even after the user renamed their login.
    gh.users.get(user.id)!.login = 'renamed';
    const again = await signedIn(await native('github', { access_token: gh.issueToken(user.id) }));
    expect(again.me.id).toBe(s.me.id);
  });

  it('web flow: authorize → GitHub (PKCE S256, state) → callback → one-time code → POST /auth/token → /users/me', async () => {
    const email = uniqueEmail('ghweb');
    const user = gh.addUser({ name: 'Linus', emails: [{ email, primary: true, verified: true }] });
    gh.loginAs = user.id;
    gh.http.requests.length = 0;

    const { start, land } = await webSignIn('github');
    const q = start.location.searchParams;
    expect(`${start.location.origin}${start.location.pathname}`).toBe(`${gh.base}/login/oauth/authorize`);
    expect(q.get('client_id')).toBe('gh-client-id');
    expect(q.get('redirect_uri')).toBe(`${TEST_ISSUER}/auth/oauth/github/callback`);
    expect(q.get('code_challenge_method')).toBe('S256');
    expect(q.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(land.searchParams.get('state')).toBe('app-state');

    // Tessera sent GitHub the PKCE verifier of the challenge it had sent (the fake checks it too).
    const [tokenReq] = gh.http.to('/login/oauth/access_token');
    const form = new URLSearchParams(tokenReq!.body);
    expect(s256(form.get('code_verifier') ?? '')).toBe(q.get('code_challenge'));
    expect(form.get('client_secret')).toBe('gh-client-secret');

    const s = await signedIn(await exchangeCode(t.app, { code: land.searchParams.get('code') ?? '', redirect_uri: APP }));
    expect(s.me).toMatchObject({ email, email_verified: true, first_name: 'Linus', last_name: null });
    expect(s.claims.amr).toEqual(['fed']);
    expect(s.identities.map((i) => i.provider)).toEqual(['github']);

    // The one-time code works once.
    const replay = await exchangeCode(t.app, { code: land.searchParams.get('code') ?? '', redirect_uri: APP });
    expectError(replay, 400, 'invalid_grant');
  });

  it('web flow: GitHub refusing the code (HTTP 200 {error}) goes back to the app with an error, no code', async () => {
    gh.loginAs = gh.addUser({ emails: [{ email: uniqueEmail('ghbad'), primary: true, verified: true }] }).id;
    const start = await authorize(t.app, 'github', { redirect_uri: APP, state: 's' });
    const res = await callbackGet(
      t.app,
      `${TEST_ISSUER}/auth/oauth/github/callback?code=not-a-code&state=${start.location.searchParams.get('state')}`,
      start.cookie,
    );
    const land = landing(res);
    expect(`${land.origin}${land.pathname}`).toBe(APP);
    expect(land.searchParams.get('error')).toBe('server_error');
    expect(land.searchParams.get('code')).toBeNull();
  });

  it('a verified GitHub address links to the verified password account with that address', async () => {
    const pw = await verifiedPasswordUser();
    const user = gh.addUser({ emails: [{ email: pw.email, primary: true, verified: true }] });
    const s = await signedIn(await native('github', { access_token: gh.issueToken(user.id) }));
    expect(s.me.id).toBe(pw.userId);
    expect(s.me.has_password).toBe(true);
    expect(s.identities.map((i) => i.provider)).toEqual(['github']);
  });

  it('an UNVERIFIED GitHub address does not link to an existing verified account with that address (native and web)', async () => {
    const pw = await verifiedPasswordUser();
    const user = gh.addUser({ emails: [{ email: pw.email.toUpperCase(), primary: true, verified: false }] });
    expectError(await native('github', { access_token: gh.issueToken(user.id) }), 409, 'identity_not_linked');

    gh.loginAs = user.id;
    const { land } = await webSignIn('github');
    expect(land.searchParams.get('error')).toBe('identity_not_linked');
    expect(land.searchParams.get('code')).toBeNull();

    // The password account was not connected, and no second account was made.
    const ids = json(await t.app.inject({ method: 'GET', url: '/users/me/identities', headers: bearer(pw.access) }));
    expect(ids.identities).toEqual([]);
    expect(await accountsWith(pw.email)).toBe(1);
  });

  it('an unverified GitHub address with no account behind it: a new account whose address is NOT verified', async () => {
    const email = uniqueEmail('ghunv');
    const user = gh.addUser({ emails: [{ email, primary: true, verified: false }] });
    const s = await signedIn(await native('github', { access_token: gh.issueToken(user.id) }));
    expect(s.me).toMatchObject({ email, email_verified: false });
    expect(s.identities).toEqual([expect.objectContaining({ provider: 'github', email_verified: false })]);
  });

  it('a token another GitHub app obtained does not sign in (token substitution)', async () => {
    const email = uniqueEmail('ghfor');
    const user = gh.addUser({ emails: [{ email, primary: true, verified: true }] });
    const res = await native('github', { access_token: gh.issueToken(user.id, 'other-github-app') });
    expectError(res, 400, 'invalid_grant');
    expect(res.body).not.toContain('gho_');
    expect(await accountsWith(email)).toBe(0);
  });

  it('no GitHub address at all → 422 provider_email_missing; a missing access_token → 400 invalid_request', async () => {
    const user = gh.addUser({ email: null, emails: [] });
    expectError(await native('github', { access_token: gh.issueToken(user.id) }), 422, 'provider_email_missing');
    expectError(await native('github', {}), 400, 'invalid_request');
    expectError(await native('github', { id_token: 'eyJ.x.y' }), 400, 'invalid_request');
  });

  it('GitHub failing (500) or not answering → 503 provider_unavailable with Retry-After', async () => {
    const token = gh.issueToken(gh.addUser({ emails: [{ email: uniqueEmail('gh5'), primary: true, verified: true }] }).id);
    gh.http.override('/api/v3/user', { status: 500, body: { message: 'Server Error' } });
    const failed = await native('github', { access_token: token });
    expectError(failed, 503, 'provider_unavailable');
    expect(failed.headers['retry-after']).toBeDefined();

    gh.http.override('/api/v3/user', 'hang');
    const started = Date.now();
    expectError(await native('github', { access_token: token }), 503, 'provider_unavailable');
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 3000);
  });
});

describe('Facebook', () => {
  it('native: a valid user token of our app signs in; a new account starts with the Graph (confirmed) address verified', async () => {
    const email = uniqueEmail('fb');
    const user = fb.addUser({ first_name: 'Sheryl', last_name: 'Example', email });
    const s = await signedIn(await native('facebook', { access_token: fb.issueToken(user.id) }));
    expect(s.claims.amr).toEqual(['fed']);
    expect(s.me).toMatchObject({ email, email_verified: true, first_name: 'Sheryl', last_name: 'Example', has_password: false });
    expect(s.identities).toEqual([expect.objectContaining({ provider: 'facebook', email })]);
    // debug_token was asked with the app token; /me carried the appsecret_proof of this token.
    const me = fb.http.to('/v21.0/me').at(-1)!;
    expect(me.url.searchParams.get('appsecret_proof')).toBe(fb.proof(me.url.searchParams.get('access_token')!));

    const again = await signedIn(await native('facebook', { access_token: fb.issueToken(user.id) }));
    expect(again.me.id).toBe(s.me.id);
  });

  it('web flow: authorize → Facebook dialog → callback → one-time code → tokens', async () => {
    const email = uniqueEmail('fbweb');
    fb.loginAs = fb.addUser({ first_name: 'Web', last_name: 'User', email }).id;
    const s = await webTokens('facebook');
    expect(s.me).toMatchObject({ email, first_name: 'Web', last_name: 'User' });
    expect(s.identities.map((i) => i.provider)).toEqual(['facebook']);
  });

  it('a token issued to another Facebook app is rejected, and nothing is created', async () => {
    const email = uniqueEmail('fbfor');
    const user = fb.addUser({ email });
    const foreign = fb.issueToken(user.id, { appId: '9999999999' });
    const res = await native('facebook', { access_token: foreign });
    expectError(res, 400, 'invalid_grant');
    expect((JSON.parse(res.body) as { error_description: string }).error_description).toContain('another application');
    expect(res.body).not.toContain(foreign);
    // Refused at debug_token: the profile was never read with it.
    expect(fb.http.to('/v21.0/me').some((r) => r.url.searchParams.get('access_token') === foreign)).toBe(false);
    expect(await accountsWith(email)).toBe(0);
  });

  it('an expired or revoked token (debug_token is_valid: false) is rejected', async () => {
    const email = uniqueEmail('fbexp');
    const user = fb.addUser({ email });
    expectError(await native('facebook', { access_token: fb.issueToken(user.id, { valid: false }) }), 400, 'invalid_grant');
    expect(await accountsWith(email)).toBe(0);
  });

  it('a Facebook identity never links by email, even to a verified account with the same address', async () => {
    const pw = await verifiedPasswordUser();
    const user = fb.addUser({ email: pw.email });
    expectError(await native('facebook', { access_token: fb.issueToken(user.id) }), 409, 'identity_not_linked');

    fb.loginAs = user.id;
    const { land } = await webSignIn('facebook');
    expect(land.searchParams.get('error')).toBe('identity_not_linked');

    const ids = json(await t.app.inject({ method: 'GET', url: '/users/me/identities', headers: bearer(pw.access) }));
    expect(ids.identities).toEqual([]);
    expect(await accountsWith(pw.email)).toBe(1);
  });

  it('the account owner connects Facebook explicitly while signed in; then Facebook signs in that account', async () => {
    const pw = await verifiedPasswordUser();
    const user = fb.addUser({ email: pw.email });
    const foreign = await t.app.inject({
      method: 'POST',
      url: '/users/me/identities/facebook',
      headers: bearer(pw.access),
      payload: { access_token: fb.issueToken(user.id, { appId: '9999999999' }) },
    });
    expectError(foreign, 400, 'provider_token_invalid');

    const linked = await t.app.inject({
      method: 'POST',
      url: '/users/me/identities/facebook',
      headers: bearer(pw.access),
      payload: { access_token: fb.issueToken(user.id) },
    });
    expect(linked.statusCode, linked.body).toBe(201);
    const s = await signedIn(await native('facebook', { access_token: fb.issueToken(user.id) }));
    expect(s.me.id).toBe(pw.userId);
  });

  it('no address shared (phone-only account, or email permission declined) → 422 provider_email_missing', async () => {
    const user = fb.addUser();
    expectError(await native('facebook', { access_token: fb.issueToken(user.id) }), 422, 'provider_email_missing');
  });

  it('Graph not answering → 503 provider_unavailable', async () => {
    const token = fb.issueToken(fb.addUser({ email: uniqueEmail('fb5') }).id);
    fb.http.override('/v21.0/debug_token', 'hang');
    expectError(await native('facebook', { access_token: token }), 503, 'provider_unavailable');
  });
});
