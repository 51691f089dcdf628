import type { LightMyRequestResponse } from 'fastify';
import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/infra/clock.js';
import { freePort } from '../helpers/free-port.js';
import { PASSWORD, bearer, createTestApp, json, signUp, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// The OpenID Provider's token-side endpoints (docs/openid-provider.md) against real relying-party
// libraries over a real socket: openid-client (discovery, userinfo, revocation) and oauth4webapi
// (strict RFC 8414 / OIDC discovery, RFC 9068 access-token validation).

let t: TestApp;
let issuer: URL;
let webApp: { id: string; secret: string };
let otherApp: { id: string; secret: string };
let spa: { id: string };

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

async function register(input: Parameters<TestApp['app']['services']['clients']['create']>[1]) {
  const { client: c, secret } = await t.app.services.clients.create(null, input);
  return { id: c.clientId, secret: secret ?? '' };
}

/** A user signed in through the password grant of a registered first-party client (tokens carry client_id). */
async function clientSignIn(c: { id: string; secret: string }, firstName?: string) {
  const email = uniqueEmail('op');
  await t.app.inject({
    method: 'POST',
    url: '/auth/register',
    payload: { email, password: PASSWORD, ...(firstName ? { first_name: firstName, last_name: 'Lovelace' } : {}) },
  });
  const res = await t.app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: { authorization: basic(c.id, c.secret), 'content-type': 'application/x-www-form-urlencoded' },
    payload: form({ grant_type: 'password', username: email, password: PASSWORD }),
  });
  expect(res.statusCode, res.body).toBe(200);
  const body = json(res) as { access_token: string; refresh_token: string };
  const me = json(await t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(body.access_token) }));
  return { email, userId: me.id as string, access: body.access_token, refresh: body.refresh_token };
}

const revoke = (fields: Record<string, string>, authorization?: string): Promise<LightMyRequestResponse> =>
  t.app.inject({
    method: 'POST',
    url: '/auth/revoke',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(authorization ? { authorization } : {}) },
    payload: form(fields),
  });

const userinfo = (token: string) => t.app.inject({ method: 'GET', url: '/auth/userinfo', headers: bearer(token) });

beforeAll(async () => {
  const port = await freePort();
  issuer = new URL(`http://127.0.0.1:${port}`);
  // Real relying-party libraries check `iat`/`exp` against the real time: the app's clock starts now.
  t = await createTestApp({ env: { PUBLIC_URL: issuer.origin }, clock: new ManualClock(new Date()) });
  await t.app.listen({ port, host: '127.0.0.1' });
  const firstParty = { type: 'confidential' as const, firstParty: true, grantTypes: ['password', 'refresh_token'], scopes: ['openid', 'profile', 'email'] };
  webApp = await register({ name: 'Web app', ...firstParty });
  otherApp = await register({ name: 'Other app', ...firstParty });
  spa = { id: (await register({ name: 'SPA', type: 'public', redirectUris: ['https://spa.example.com/cb'] })).id };
});
afterAll(async () => {
  await t?.close();
});

describe('discovery', () => {
  it('validates with oauth4webapi, strictly, under both well-known names; the issuer is exact', async () => {
    for (const algorithm of ['oidc', 'oauth2'] as const) {
      const res = await oauth.discoveryRequest(issuer, { algorithm, [oauth.allowInsecureRequests]: true });
      const as = await oauth.processDiscoveryResponse(issuer, res);
      expect(as.issuer).toBe(issuer.href.replace(/\/$/, ''));
      expect(as.response_types_supported).toEqual(['code']);
    }
  });

  it('the two documents are the same, and list exactly what works', async () => {
    const oidc = json(await t.app.inject({ method: 'GET', url: '/.well-known/openid-configuration' }));
    const rfc8414 = json(await t.app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' }));
    expect(rfc8414).toStrictEqual(oidc);
    const base = issuer.origin;
    expect(oidc).toMatchObject({
      authorization_endpoint: `${base}/auth/authorize`,
      token_endpoint: `${base}/auth/token`,
      userinfo_endpoint: `${base}/auth/userinfo`,
      revocation_endpoint: `${base}/auth/revoke`,
      introspection_endpoint: `${base}/auth/introspect`,
      end_session_endpoint: `${base}/auth/end-session`,
      pushed_authorization_request_endpoint: `${base}/auth/par`,
      require_pushed_authorization_requests: false,
      jwks_uri: `${base}/.well-known/jwks.json`,
      response_types_supported: ['code'],
      grant_types_supported: ['authorization_code', 'refresh_token', 'password'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      code_challenge_methods_supported: ['S256'],
      authorization_response_iss_parameter_supported: true,
      backchannel_logout_supported: true,
      backchannel_logout_session_supported: true,
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      request_uri_parameter_supported: false,
    });
    expect(oidc).not.toHaveProperty('userinfo_signing_alg_values_supported');
    expect(JSON.stringify(oidc)).not.toMatch(/"token"|implicit|id_token token/);
    // Every endpoint it names answers (the op-flow part adds /auth/authorize and /auth/end-session in the same release).
    for (const key of [
      'token_endpoint',
      'userinfo_endpoint',
      'revocation_endpoint',
      'introspection_endpoint',
      'pushed_authorization_request_endpoint',
      'jwks_uri',
    ]) {
      const url = new URL(oidc[key] as string);
      const res = await t.app.inject({ method: key === 'jwks_uri' || key === 'userinfo_endpoint' ? 'GET' : 'POST', url: url.pathname });
      expect(res.statusCode, `${key}: ${res.body}`).not.toBe(404);
    }
  });

  it('PASSWORD_GRANT_ENABLED=false takes the password grant out of the document', async () => {
    const off = await createTestApp({ env: { PASSWORD_GRANT_ENABLED: 'false' }, db: t.db });
    try {
      expect(json(await off.app.inject({ method: 'GET', url: '/.well-known/openid-configuration' })).grant_types_supported).toEqual([
        'authorization_code',
        'refresh_token',
      ]);
    } finally {
      await off.app.close();
    }
  });

  it('EMAIL_SIGN_IN_ENABLED=true adds the email-code grant (which then works at the token endpoint)', async () => {
    const on = await createTestApp({ env: { EMAIL_SIGN_IN_ENABLED: 'true' }, db: t.db });
    try {
      const grants = json(await on.app.inject({ method: 'GET', url: '/.well-known/openid-configuration' })).grant_types_supported as string[];
      expect(grants).toContain('urn:tessera:params:oauth:grant-type:email-code');
      const res = await on.app.inject({
        method: 'POST',
        url: '/auth/token',
        payload: { grant_type: 'urn:tessera:params:oauth:grant-type:email-code', email: 'nobody@example.com', code: '000000' },
      });
      expect(json(res).error).not.toBe('unsupported_grant_type');
    } finally {
      await on.app.close();
    }
  });
});

describe('openid-client against the live server', () => {
  const configure = (c: { id: string; secret: string }) =>
    client.discovery(issuer, c.id, undefined, client.ClientSecretBasic(c.secret), { execute: [client.allowInsecureRequests] });

  it('discovery → password grant → fetchUserInfo → tokenRevocation; the session is over', async () => {
    const config = await configure(webApp);
    expect(config.serverMetadata().issuer).toBe(issuer.origin);
    const email = uniqueEmail('rp');
    await t.app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD, first_name: 'Ada', last_name: 'Lovelace' } });
    const tokens = await client.genericGrantRequest(config, 'password', { username: email, password: PASSWORD });
    const me = json(await t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(tokens.access_token) }));

    const info = await client.fetchUserInfo(config, tokens.access_token, me.id as string);
    expect(info).toMatchObject({ sub: me.id, email, email_verified: false, name: 'Ada Lovelace', given_name: 'Ada', family_name: 'Lovelace' });
    expect(typeof info.updated_at).toBe('number');

    await client.tokenRevocation(config, tokens.refresh_token!, { token_type_hint: 'refresh_token' });
    await expect(client.fetchUserInfo(config, tokens.access_token, me.id as string)).rejects.toMatchObject({ status: 401 });
    await expect(client.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('revoking the access token ends its session too', async () => {
    const config = await configure(webApp);
    const u = await clientSignIn(webApp);
    await client.tokenRevocation(config, u.access, { token_type_hint: 'access_token' });
    expect((await userinfo(u.access)).statusCode).toBe(401);
    const refreshed = await t.app.inject({
      method: 'POST',
      url: '/auth/token',
      headers: { authorization: basic(webApp.id, webApp.secret), 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ grant_type: 'refresh_token', refresh_token: u.refresh }),
    });
    expect(json(refreshed).error).toBe('invalid_grant');
  });

  it("oauth4webapi's validateJwtAccessToken (RFC 9068) accepts the client's access token", async () => {
    const u = await clientSignIn(webApp);
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { [oauth.allowInsecureRequests]: true }));
    const request = new Request('https://api.example.com/orders', { headers: { authorization: `Bearer ${u.access}` } });
    const claims = await oauth.validateJwtAccessToken(as, request, 'tessera-test', { [oauth.allowInsecureRequests]: true });
    expect(claims).toMatchObject({ iss: issuer.origin, sub: u.userId, client_id: webApp.id, aud: 'tessera-test' });
  });
});

describe('userinfo', () => {
  it('GET and POST (header, or access_token in a form body); no-store; claims by scope', async () => {
    const u = await clientSignIn(webApp, 'Grace');
    const get = await userinfo(u.access);
    expect(get.statusCode, get.body).toBe(200);
    expect(get.headers['cache-control']).toBe('no-store');
    expect(json(get)).toStrictEqual({
      sub: u.userId,
      email: u.email,
      email_verified: false,
      name: 'Grace Lovelace',
      given_name: 'Grace',
      family_name: 'Lovelace',
      updated_at: expect.any(Number),
    });
    const post = await t.app.inject({
      method: 'POST',
      url: '/auth/userinfo',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ access_token: u.access }),
    });
    expect(post.statusCode, post.body).toBe(200);
    expect(json(post)).toStrictEqual(json(get));
    const postHeader = await t.app.inject({ method: 'POST', url: '/auth/userinfo', headers: bearer(u.access) });
    expect(postHeader.statusCode, postHeader.body).toBe(200);
  });

  it('CORS as the rest of the API: a browser app of CORS_ORIGINS may call it with its Bearer token', async () => {
    const cors = await createTestApp({ env: { CORS_ORIGINS: 'https://spa.example.com' }, db: t.db });
    try {
      const origin = 'https://spa.example.com';
      const preflight = await cors.app.inject({
        method: 'OPTIONS',
        url: '/auth/userinfo',
        headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
      });
      expect(preflight.statusCode).toBe(204);
      expect(preflight.headers['access-control-allow-origin']).toBe(origin);
      expect(String(preflight.headers['access-control-allow-headers']).toLowerCase()).toContain('authorization');
      const denied = await cors.app.inject({ method: 'GET', url: '/auth/userinfo', headers: { origin: 'https://evil.example' } });
      expect(denied.headers['access-control-allow-origin']).toBeUndefined();
      const answer = await cors.app.inject({ method: 'GET', url: '/auth/userinfo', headers: { origin } });
      expect(answer.headers['access-control-allow-origin']).toBe(origin);
      expect(String(answer.headers['access-control-expose-headers'])).toContain('WWW-Authenticate');
    } finally {
      await cors.app.close();
    }
  });

  it('a user without a name gets no name claims (not empty strings)', async () => {
    const u = await signUp(t.app);
    const body = json(await userinfo(u.access));
    expect(body).toStrictEqual({ sub: u.userId, email: u.email, email_verified: false, updated_at: expect.any(Number) });
  });

  it('the token in both the header and the body is invalid_request; JSON bodies are not read', async () => {
    const u = await clientSignIn(webApp);
    const both = await t.app.inject({
      method: 'POST',
      url: '/auth/userinfo',
      headers: { ...bearer(u.access), 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ access_token: u.access }),
    });
    expect(both.statusCode).toBe(400);
    expect(both.headers['www-authenticate']).toBe('Bearer error="invalid_request"');
    const asJson = await t.app.inject({ method: 'POST', url: '/auth/userinfo', payload: { access_token: u.access } });
    expect(asJson.statusCode).toBe(400);
  });

  it('RFC 6750 §3: no token → 401 Bearer; a bad or revoked token → invalid_token at once', async () => {
    const none = await t.app.inject({ method: 'GET', url: '/auth/userinfo' });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    const bad = await userinfo('not.a.token');
    expect(bad.statusCode).toBe(401);
    expect(bad.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    const u = await clientSignIn(webApp);
    await t.app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(u.access) });
    const revoked = await userinfo(u.access);
    expect(revoked.statusCode).toBe(401);
    expect(revoked.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
  });

  it('a token whose scope lacks openid → 403 insufficient_scope; scopes pick the claims', async () => {
    const u = await clientSignIn(webApp);
    const sign = (scope: string) =>
      t.app.services.signer.signAccess({
        sub: u.userId,
        sid: JSON.parse(Buffer.from(u.access.split('.')[1]!, 'base64url').toString()).sid as string,
        email: u.email,
        email_verified: false,
        roles: [],
        permissions: [],
        amr: ['pwd'],
        client_id: webApp.id,
        scope,
      });
    const noOpenid = await userinfo((await sign('profile email')).token);
    expect(noOpenid.statusCode).toBe(403);
    expect(json(noOpenid).error).toBe('insufficient_scope');
    expect(noOpenid.headers['www-authenticate']).toBe('Bearer error="insufficient_scope", scope="openid"');
    expect(json(await userinfo((await sign('openid')).token))).toStrictEqual({ sub: u.userId });
    expect(json(await userinfo((await sign('openid email')).token))).toStrictEqual({ sub: u.userId, email: u.email, email_verified: false });
    const profileOnly = json(await userinfo((await sign('openid profile')).token));
    expect(profileOnly).not.toHaveProperty('email');
    expect(profileOnly).toHaveProperty('updated_at');
  });
});

describe('revocation (RFC 7009)', () => {
  it('the implicit first-party client revokes its own refresh token; audited', async () => {
    const u = await signUp(t.app);
    const res = await revoke({ token: u.refresh });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.body).toBe('');
    expect(res.headers['cache-control']).toBe('no-store');
    expect((await userinfo(u.access)).statusCode).toBe(401);
    const audit = json(await t.app.inject({ method: 'GET', url: '/users/me/audit', headers: bearer((await signIn(u.email)).access_token) }));
    const entry = (audit.events as Array<{ type: string; details: Record<string, unknown> }>).find((e) => e.type === 'token_revoked');
    expect(entry?.details).toMatchObject({ token_type: 'refresh_token' });
    expect(entry?.details).not.toHaveProperty('client');
  });

  it('invalid, unknown, expired or already revoked tokens → 200 and nothing else', async () => {
    const u = await signUp(t.app);
    for (const token of ['garbage', 'a.b.c', u.refresh.slice(0, -2) + 'xx']) expect((await revoke({ token })).statusCode).toBe(200);
    expect((await userinfo(u.access)).statusCode).toBe(200);
    expect((await revoke({ token: u.refresh })).statusCode).toBe(200);
    expect((await revoke({ token: u.refresh })).statusCode).toBe(200);
  });

  it("a client cannot revoke another client's token (400 unauthorized_client), and the session lives on", async () => {
    const u = await clientSignIn(webApp);
    for (const token of [u.refresh, u.access]) {
      const res = await revoke({ token }, basic(otherApp.id, otherApp.secret));
      expect(res.statusCode, res.body).toBe(400);
      expect(json(res).error).toBe('unauthorized_client');
      // The implicit first-party client (no credentials) may not either.
      expect(json(await revoke({ token })).error).toBe('unauthorized_client');
      // Nor a public client naming itself.
      expect(json(await revoke({ token, client_id: spa.id })).error).toBe('unauthorized_client');
    }
    expect((await userinfo(u.access)).statusCode).toBe(200);
    // ... and a registered client may not revoke the implicit client's tokens.
    const own = await signUp(t.app);
    expect(json(await revoke({ token: own.refresh }, basic(webApp.id, webApp.secret))).error).toBe('unauthorized_client');
    expect((await userinfo(own.access)).statusCode).toBe(200);
  });

  it('wrong client credentials → 401 invalid_client with a Basic challenge; a missing token → invalid_request', async () => {
    const u = await clientSignIn(webApp);
    const res = await revoke({ token: u.refresh }, basic(webApp.id, 'tcs_wrong'));
    expect(res.statusCode).toBe(401);
    expect(json(res).error).toBe('invalid_client');
    expect(res.headers['www-authenticate']).toBe('Basic realm="tessera", charset="UTF-8"');
    expect((await userinfo(u.access)).statusCode).toBe(200);
    const missing = await revoke({}, basic(webApp.id, webApp.secret));
    expect(missing.statusCode).toBe(400);
    expect(json(missing).error).toBe('invalid_request');
  });

  it('another kind of JWT Tessera signed (not an access or refresh token) → unsupported_token_type', async () => {
    const { SignJWT } = await import('jose');
    const key = t.app.services.infra.keys.current;
    const idToken = await new SignJWT({ sub: 'x' })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
      .setIssuer(issuer.origin)
      .setAudience(webApp.id)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(key.privateKey);
    const res = await revoke({ token: idToken }, basic(webApp.id, webApp.secret));
    expect(res.statusCode).toBe(400);
    expect(json(res).error).toBe('unsupported_token_type');
  });

  it('GET does not revoke (405), and parallel revocations of one token end the session once (one audit entry)', async () => {
    const u = await signUp(t.app);
    expect((await t.app.inject({ method: 'GET', url: `/auth/revoke?token=${u.refresh}` })).statusCode).toBe(405);
    expect((await userinfo(u.access)).statusCode).toBe(200);
    const results = await Promise.all(Array.from({ length: 5 }, () => revoke({ token: u.refresh })));
    expect(results.map((r) => r.statusCode)).toEqual([200, 200, 200, 200, 200]);
    const fresh = await signIn(u.email);
    const audit = json(await t.app.inject({ method: 'GET', url: '/users/me/audit', headers: bearer(fresh.access_token) }));
    expect((audit.events as Array<{ type: string }>).filter((e) => e.type === 'token_revoked')).toHaveLength(1);
  });
});

async function signIn(email: string) {
  const res = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } });
  return json(res) as { access_token: string };
}

describe('introspection by registered clients (RFC 7662)', () => {
  const introspect = (fields: Record<string, string>, authorization?: string) =>
    t.app.inject({
      method: 'POST',
      url: '/auth/introspect',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(authorization ? { authorization } : {}) },
      payload: form(fields),
    });

  it('a confidential client introspects its own tokens, with client_id and scope', async () => {
    const u = await clientSignIn(webApp);
    const access = await introspect({ token: u.access }, basic(webApp.id, webApp.secret));
    expect(access.statusCode, access.body).toBe(200);
    expect(json(access)).toMatchObject({ active: true, token_type: 'access_token', sub: u.userId, client_id: webApp.id, scope: 'openid profile email' });
    const refresh = await introspect({ token: u.refresh, token_type_hint: 'refresh_token', client_id: webApp.id, client_secret: webApp.secret });
    expect(json(refresh)).toMatchObject({ active: true, token_type: 'refresh_token', sub: u.userId, client_id: webApp.id, scope: 'openid profile email' });
  });

  it("another client's tokens, and the implicit client's, are {active: false} to it", async () => {
    const u = await clientSignIn(otherApp);
    const own = await signUp(t.app);
    for (const token of [u.access, u.refresh, own.access, own.refresh]) {
      const res = await introspect({ token }, basic(webApp.id, webApp.secret));
      expect(res.statusCode).toBe(200);
      expect(res.json()).toStrictEqual({ active: false });
    }
  });

  it('a public client (client_id alone), a wrong secret or no client at all → 401 invalid_client', async () => {
    const u = await clientSignIn(webApp);
    for (const [fields, auth] of [
      [{ token: u.access, client_id: spa.id }, undefined],
      [{ token: u.access }, basic(webApp.id, 'tcs_wrong')],
      [{ token: u.access }, undefined],
      [{ token: u.access }, bearer(u.access).authorization],
    ] as Array<[Record<string, string>, string | undefined]>) {
      const res = await introspect(fields, auth);
      expect(res.statusCode, res.body).toBe(401);
      expect(json(res).error).toBe('invalid_client');
      expect(res.headers['www-authenticate']).toBe('Basic realm="tessera"');
    }
  });

  it('openid-client tokenIntrospection works for the client', async () => {
    const config = await client.discovery(issuer, webApp.id, undefined, client.ClientSecretBasic(webApp.secret), { execute: [client.allowInsecureRequests] });
    const u = await clientSignIn(webApp);
    expect(await client.tokenIntrospection(config, u.access)).toMatchObject({ active: true, client_id: webApp.id, sub: u.userId });
  });
});
