import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/infra/clock.js';
import { freePort } from '../helpers/free-port.js';
import { InjectBrowser } from '../helpers/inject-browser.js';
import { PASSWORD, createTestApp, json, signUp, type TestApp } from '../helpers/test-app.js';

// Pushed authorization requests (RFC 9126) against a live server: openid-client discovers
// /auth/par, pushes the request (client authentication as at the token endpoint), sends the
// browser with only client_id and request_uri, and exchanges the code. The request_uri works
// once, for 60 seconds, for the client that pushed it.

/** The real time (openid-client checks iat and exp), plus an offset the tests move forward. */
class ShiftedClock extends ManualClock {
  offsetMs = 0;
  override now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
}

const REDIRECT = 'http://127.0.0.1/par/cb';
const clock = new ShiftedClock();
let t: TestApp;
let base: string;
let user: { email: string; userId: string };
let web: { id: string; secret: string };
let spa: { id: string };
let webConfig: oidc.Configuration;

beforeAll(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  t = await createTestApp({ env: { PUBLIC_URL: base }, clock });
  await t.app.listen({ host: '127.0.0.1', port });
  const u = await signUp(t.app);
  user = { email: u.email, userId: u.userId };
  const clients = t.app.services.clients;
  const w = await clients.create(null, { name: 'PAR web', type: 'confidential', firstParty: true, redirectUris: [REDIRECT], scopes: ['openid', 'email'] });
  web = { id: w.client.clientId, secret: w.secret as string };
  const s = await clients.create(null, { name: 'PAR SPA', type: 'public', firstParty: true, redirectUris: [REDIRECT], scopes: ['openid', 'email'] });
  spa = { id: s.client.clientId };
  webConfig = await oidc.discovery(new URL(base), web.id, undefined, oidc.ClientSecretBasic(web.secret), { execute: [oidc.allowInsecureRequests] });
});

afterAll(async () => {
  await t?.close();
});

/** Pushes with openid-client: the browser URL it builds (client_id and request_uri only), and what the code exchange checks. */
async function pushed(config = webConfig, extra: Record<string, string> = {}) {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = await oidc.buildAuthorizationUrlWithPAR(config, {
    redirect_uri: REDIRECT,
    scope: 'openid email',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  });
  return { url, verifier, state, nonce, path: url.pathname + url.search };
}

/** Opens the authorization URL in a fresh browser and signs in on the hosted page; where it comes back to. */
async function signIn(path: string): Promise<URL> {
  const b = new InjectBrowser(t.app);
  const opened = await b.open(path);
  expect(opened.res.statusCode, opened.res.body.slice(0, 400)).toBe(200);
  const done = await b.submit(opened.res, { email: user.email, password: PASSWORD });
  if (!done.external) throw new Error(`not back at the client: ${done.res.body.slice(0, 400)}`);
  return done.external;
}

const push = (form: Record<string, string>, headers: Record<string, string> = {}) =>
  t.app.inject({
    method: 'POST',
    url: '/auth/par',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    payload: new URLSearchParams(form).toString(),
  });
const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` });
const requestUriIn = (body: string) => /urn:ietf:params:oauth:request_uri:[A-Za-z0-9_-]+/.exec(body)?.[0];

describe('pushed authorization requests (RFC 9126)', () => {
  it('openid-client pushes, the browser carries only client_id and request_uri, and the code is exchanged', async () => {
    expect(webConfig.serverMetadata().pushed_authorization_request_endpoint).toBe(`${base}/auth/par`);
    const p = await pushed();
    expect([...p.url.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
    expect(p.url.searchParams.get('request_uri')).toMatch(/^urn:ietf:params:oauth:request_uri:[A-Za-z0-9_-]{43}$/);
    const back = await signIn(p.path);
    const tokens = await oidc.authorizationCodeGrant(webConfig, back, {
      pkceCodeVerifier: p.verifier,
      expectedState: p.state,
      expectedNonce: p.nonce,
      idTokenExpected: true,
    });
    expect(tokens.claims()).toMatchObject({ sub: user.userId, aud: web.id, email: user.email, nonce: p.nonce });
  });

  it('a public client pushes with its client_id alone (PKCE still required)', async () => {
    const spaConfig = await oidc.discovery(new URL(base), spa.id, undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const p = await pushed(spaConfig);
    const tokens = await oidc.authorizationCodeGrant(spaConfig, await signIn(p.path), {
      pkceCodeVerifier: p.verifier,
      expectedState: p.state,
      expectedNonce: p.nonce,
    });
    expect(tokens.claims()?.aud).toBe(spa.id);
    const noPkce = await push({ client_id: spa.id, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid' });
    expect(noPkce.statusCode).toBe(400);
    expect(json(noPkce)).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('PKCE') });
  });

  it('answers 201 {request_uri, expires_in: 60}, never cached', async () => {
    const res = await push({ response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', state: 's' }, basic(web.id, web.secret));
    expect(res.statusCode, res.body).toBe(201);
    expect(json(res)).toStrictEqual({ request_uri: expect.stringMatching(/^urn:ietf:params:oauth:request_uri:/), expires_in: 60 });
    expect(res.headers['cache-control']).toContain('no-store');
  });

  it('a request_uri works once: the same URL again is an error page, not a redirect', async () => {
    const p = await pushed();
    await signIn(p.path);
    const again = await new InjectBrowser(t.app).get(p.path);
    expect(again.statusCode).toBe(400);
    expect(again.headers['content-type']).toMatch(/^text\/html/);
    expect(again.body).toContain('<code>invalid_request_uri</code>');
  });

  it('parallel uses of one request_uri: exactly one gets the sign-in page', async () => {
    const p = await pushed();
    const answers = await Promise.all(Array.from({ length: 6 }, () => new InjectBrowser(t.app).get(p.path)));
    const statuses = answers.map((a) => a.statusCode).sort();
    expect(statuses).toEqual([303, 400, 400, 400, 400, 400]);
  });

  it('another client cannot use it (and its attempt does not use it up); only the pushed parameters count', async () => {
    const p = await pushed();
    const uri = p.url.searchParams.get('request_uri') as string;
    const stolen = await new InjectBrowser(t.app).get(`/auth/authorize?${new URLSearchParams({ client_id: spa.id, request_uri: uri }).toString()}`);
    expect(stolen.statusCode).toBe(400);
    expect(stolen.body).toContain('<code>invalid_request_uri</code>');
    const noClient = await new InjectBrowser(t.app).get(`/auth/authorize?${new URLSearchParams({ request_uri: uri }).toString()}`);
    expect(noClient.statusCode).toBe(400);
    // Parameters added in the browser do not replace the pushed ones (the redirect URI above all).
    const tampered = `${p.path}&redirect_uri=${encodeURIComponent('https://evil.example/cb')}&scope=openid&state=forged`;
    const back = await signIn(tampered);
    expect(back.origin + back.pathname).toBe(REDIRECT);
    expect(back.searchParams.get('state')).toBe(p.state);
  });

  it('expires after 60 seconds', async () => {
    const p = await pushed();
    clock.offsetMs += 61_000;
    try {
      const late = await new InjectBrowser(t.app).get(p.path);
      expect(late.statusCode).toBe(400);
      expect(late.body).toContain('<code>invalid_request_uri</code>');
    } finally {
      clock.offsetMs -= 61_000;
    }
  });

  it('refuses bad pushes in the token endpoint’s error format', async () => {
    const form = { response_type: 'code', redirect_uri: REDIRECT, scope: 'openid' };
    const wrongSecret = await push(form, basic(web.id, 'not-the-secret'));
    expect(wrongSecret.statusCode).toBe(401);
    expect(json(wrongSecret).error).toBe('invalid_client');
    expect(wrongSecret.headers['www-authenticate']).toMatch(/^Basic/);
    const noClient = await push(form);
    expect(noClient.statusCode).toBe(401);
    expect(json(noClient).error).toBe('invalid_client');
    const unregistered = await push({ ...form, redirect_uri: 'https://evil.example/cb' }, basic(web.id, web.secret));
    expect(unregistered.statusCode).toBe(400);
    expect(json(unregistered).error).toBe('invalid_request');
    const nested = await push({ ...form, request_uri: 'urn:ietf:params:oauth:request_uri:abc' }, basic(web.id, web.secret));
    expect(json(nested)).toMatchObject({ error: 'invalid_request', error_description: 'request_uri cannot be pushed.' });
    const otherClient = await push({ ...form, client_id: spa.id }, basic(web.id, web.secret));
    expect(otherClient.statusCode).toBe(400);
    const scope = await push({ ...form, scope: 'openid admin' }, basic(web.id, web.secret));
    expect(json(scope).error).toBe('invalid_scope');
    // Nothing of these was stored: no request_uri in any answer.
    for (const res of [wrongSecret, noClient, unregistered, nested, otherClient, scope]) expect(requestUriIn(res.body)).toBeUndefined();
  });
});
