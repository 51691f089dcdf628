import type { LightMyRequestResponse } from 'fastify';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testKeys } from '../helpers/keys.js';
import { PASSWORD, TEST_ISSUER, bearer, createTestApp, json, signUp, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// POST /auth/introspect (RFC 7662): for resource servers that need a logout, a revoked
// session or a disabled user to count at once, while the JWT itself is still unexpired.

const ORDERS_SECRET = 'orders-secret-0123456789-abcdefghijklmnop';
// Characters that must be form-urlencoded inside HTTP Basic (RFC 6749 §2.3.1).
const BILLING_SECRET = 'b:l+l/i%n g=0123456789abcdefghijklmnop';

let t: TestApp;
let admin: { access: string };

beforeAll(async () => {
  t = await createTestApp({ env: { INTROSPECTION_CLIENTS: `orders:${ORDERS_SECRET},billing:${BILLING_SECRET}` } });
  const email = uniqueEmail('introspect-admin');
  await t.app.services.admin.createUser(null, { email, password: PASSWORD, emailVerified: true, roles: ['admin', 'user'], sendInvite: false });
  const login = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } });
  admin = { access: json(login).access_token as string };
});
afterAll(async () => {
  await t?.close();
});

const formEncode = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${formEncode(id)}:${formEncode(secret)}`).toString('base64')}`;
const ORDERS = basic('orders', ORDERS_SECRET);

function introspect(fields: Record<string, string>, authorization: string | null = ORDERS): Promise<LightMyRequestResponse> {
  return t.app.inject({
    method: 'POST',
    url: '/auth/introspect',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(authorization ? { authorization } : {}) },
    payload: new URLSearchParams(fields).toString(),
  });
}

/** `{active: false}` and nothing else (RFC 7662 §2.2: no reason), never cached. */
function expectInactive(res: LightMyRequestResponse) {
  expect(res.statusCode, res.body).toBe(200);
  expect(res.json()).toStrictEqual({ active: false });
  expect(res.headers['cache-control']).toBe('no-store');
}

function expectInvalidClient(res: LightMyRequestResponse) {
  expect(res.statusCode, res.body).toBe(401);
  expect(json(res).error).toBe('invalid_client');
  expect(res.headers['www-authenticate']).toBe('Basic realm="tessera"');
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.body).not.toContain('active');
}

describe('active tokens', () => {
  it('an access token: active with its claims, Cache-Control: no-store', async () => {
    const u = await signUp(t.app);
    const res = await introspect({ token: u.access });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const body = json(res);
    expect(body).toMatchObject({
      active: true,
      token_type: 'access_token',
      sub: u.userId,
      iss: TEST_ISSUER,
      aud: 'tessera-test',
      email: u.email,
      email_verified: false,
      roles: ['user'],
      permissions: [],
      amr: ['pwd'],
    });
    expect(typeof body.sid).toBe('string');
    expect(typeof body.jti).toBe('string');
    expect(body.exp).toBe((body.iat as number) + 15 * 60);
  });

  it('a refresh token: active while it is the current one of a live session; spent after a refresh', async () => {
    const u = await signUp(t.app);
    const res = await introspect({ token: u.refresh, token_type_hint: 'refresh_token' });
    expect(json(res)).toMatchObject({ active: true, token_type: 'refresh_token', sub: u.userId, iss: TEST_ISSUER });
    expect(json(res)).not.toHaveProperty('email');
    // Without the hint (or with a wrong or unknown one) it is found too.
    expect(json(await introspect({ token: u.refresh })).token_type).toBe('refresh_token');
    expect(json(await introspect({ token: u.refresh, token_type_hint: 'access_token' })).active).toBe(true);
    expect(json(await introspect({ token: u.access, token_type_hint: 'refresh_token' })).token_type).toBe('access_token');
    expect(json(await introspect({ token: u.access, token_type_hint: 'nonsense' })).active).toBe(true);

    const refreshed = await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: u.refresh } });
    expect(refreshed.statusCode).toBe(200);
    expectInactive(await introspect({ token: u.refresh }));
    expect(json(await introspect({ token: json(refreshed).refresh_token as string })).active).toBe(true);
  });
});

describe('inactive at once, while the JWT is unexpired', () => {
  it('after logout', async () => {
    const u = await signUp(t.app);
    expect((await t.app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(u.access) })).statusCode).toBe(204);
    expectInactive(await introspect({ token: u.access }));
    expectInactive(await introspect({ token: u.refresh }));
  });

  it('after the session is revoked from another device', async () => {
    const u = await signUp(t.app);
    const other = json(await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: u.email, password: u.password } }));
    const sessions = json(await t.app.inject({ method: 'GET', url: '/users/me/sessions', headers: bearer(other.access_token as string) })) as unknown as {
      id: string;
      current: boolean;
    }[];
    const first = sessions.find((s) => !s.current);
    expect(first).toBeDefined();
    expect((await t.app.inject({ method: 'DELETE', url: `/users/me/sessions/${first!.id}`, headers: bearer(other.access_token as string) })).statusCode).toBe(
      204,
    );
    expectInactive(await introspect({ token: u.access }));
    expect(json(await introspect({ token: other.access_token as string })).active).toBe(true);
  });

  it('after an admin disables the user', async () => {
    const u = await signUp(t.app);
    expect(json(await introspect({ token: u.access })).active).toBe(true);
    const res = await t.app.inject({ method: 'POST', url: `/admin/users/${u.userId}/disable`, headers: bearer(admin.access) });
    expect(res.statusCode, res.body).toBe(204);
    expectInactive(await introspect({ token: u.access }));
    expectInactive(await introspect({ token: u.refresh }));
  });

  it('after a password change (other sessions end)', async () => {
    const u = await signUp(t.app);
    const laptop = json(await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: u.email, password: u.password } }));
    const changed = await t.app.inject({
      method: 'POST',
      url: '/users/me/password',
      headers: bearer(laptop.access_token as string),
      payload: { current_password: u.password, new_password: 'a brand new passphrase 42' },
    });
    expect(changed.statusCode, changed.body).toBe(204);
    expectInactive(await introspect({ token: u.access }));
    expect(json(await introspect({ token: laptop.access_token as string })).active).toBe(true);
  });

  it('an expired token', async () => {
    const u = await signUp(t.app);
    t.clock.advance(15 * 60_000 + 1000);
    try {
      expectInactive(await introspect({ token: u.access }));
    } finally {
      t.clock.advance(-(15 * 60_000 + 1000));
    }
    expect(json(await introspect({ token: u.access })).active).toBe(true);
  });

  it('garbage, a forged token and other Tessera tokens', async () => {
    for (const token of ['garbage', 'a.b.c', 'x'.repeat(8000), `${'eyJhbGciOiJub25lIn0'}.e30.`]) expectInactive(await introspect({ token }));
    const { ring } = await testKeys();
    const claims = { sid: '7d9f0c1e-8c1b-4d35-9a43-4b2f3f4a5b6c', email: 'x@example.com' };
    const now = Math.floor(t.clock.now().getTime() / 1000);
    // Correctly signed, but for a session that does not exist.
    const ghost = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: ring.current.kid, typ: 'at+jwt' })
      .setIssuer(TEST_ISSUER)
      .setAudience('tessera-test')
      .setSubject('0b9e3e2a-6f3c-4f7e-9a43-4b2f3f4a5b6c')
      .setIssuedAt(now)
      .setExpirationTime(now + 600)
      .setJti('j')
      .sign(ring.current.privateKey);
    expectInactive(await introspect({ token: ghost }));
  });
});

describe('client authentication', () => {
  it('HTTP Basic (with form-urlencoded id and secret) and client_secret_post both work; JSON bodies too', async () => {
    const u = await signUp(t.app);
    expect(json(await introspect({ token: u.access }, basic('billing', BILLING_SECRET))).active).toBe(true);
    expect(json(await introspect({ token: u.access, client_id: 'orders', client_secret: ORDERS_SECRET }, null)).active).toBe(true);
    const asJson = await t.app.inject({ method: 'POST', url: '/auth/introspect', headers: { authorization: ORDERS }, payload: { token: u.access } });
    expect(json(asJson).active).toBe(true);
  });

  it('no, wrong or malformed credentials → 401 invalid_client with WWW-Authenticate: Basic, before looking at the token', async () => {
    const u = await signUp(t.app);
    expectInvalidClient(await introspect({ token: u.access }, null));
    expectInvalidClient(await introspect({ token: u.access }, basic('orders', `${ORDERS_SECRET}x`)));
    expectInvalidClient(await introspect({ token: u.access }, basic('orders', BILLING_SECRET))); // another client's secret
    expectInvalidClient(await introspect({ token: u.access }, basic('nobody', ORDERS_SECRET)));
    expectInvalidClient(await introspect({ token: u.access }, `Basic ${Buffer.from(`orders:${BILLING_SECRET}`).toString('base64')}`)); // not form-encoded
    expectInvalidClient(await introspect({ token: u.access }, 'Basic !!!'));
    expectInvalidClient(await introspect({ token: u.access }, `Basic ${Buffer.from('no-colon').toString('base64')}`));
    expectInvalidClient(await introspect({ token: u.access }, `Basic ${Buffer.from('orders:%E0%A4%A').toString('base64')}`));
    expectInvalidClient(await introspect({ token: u.access }, bearer(u.access).authorization));
    expectInvalidClient(await introspect({ token: u.access, client_id: 'orders', client_secret: 'wrong' }, null));
    expectInvalidClient(await introspect({ token: u.access, client_id: 'orders' }, null));
    expectInvalidClient(await introspect({}, null)); // unauthenticated callers learn nothing, not even "token missing"
  });

  it('malformed requests → 400 invalid_request (OAuth2 shape), never a 500', async () => {
    const missing = await introspect({});
    expect(missing.statusCode).toBe(400);
    expect(json(missing)).toEqual({ error: 'invalid_request', error_description: 'Missing parameter: token.' });
    const both = await introspect({ token: 'x', client_id: 'orders', client_secret: ORDERS_SECRET });
    expect(both.statusCode).toBe(400);
    expect(json(both).error).toBe('invalid_request');
    const wrongType = await t.app.inject({ method: 'POST', url: '/auth/introspect', headers: { authorization: ORDERS }, payload: { token: 42 } });
    expect(wrongType.statusCode).toBe(400);
    expect(json(wrongType).error).toBe('invalid_request');
    const tooLong = await introspect({ token: 'x'.repeat(9000) });
    expect(tooLong.statusCode).toBe(400);
    const badJson = await t.app.inject({
      method: 'POST',
      url: '/auth/introspect',
      headers: { authorization: ORDERS, 'content-type': 'application/json' },
      payload: '{"token":',
    });
    expect(badJson.statusCode).toBe(400);
    const text = await t.app.inject({
      method: 'POST',
      url: '/auth/introspect',
      headers: { authorization: ORDERS, 'content-type': 'text/plain' },
      payload: 'token=x',
    });
    expect(text.statusCode).toBe(415);
  });

  it('the OpenAPI document describes the endpoint and its client authentication', async () => {
    const doc = json(await t.app.inject({ method: 'GET', url: '/docs/json' })) as {
      paths: Record<string, Record<string, { security?: unknown }>>;
      components: { securitySchemes: Record<string, unknown> };
    };
    expect(doc.paths['/auth/introspect']?.post?.security).toEqual([{ introspectionClient: [] }]);
    expect(doc.components.securitySchemes.introspectionClient).toEqual({ type: 'http', scheme: 'basic' });
  });

  it('the discovery document names the endpoint', async () => {
    const doc = json(await t.app.inject({ method: 'GET', url: '/.well-known/openid-configuration' }));
    expect(doc.introspection_endpoint).toBe(`${TEST_ISSUER}/auth/introspect`);
    expect(doc.introspection_endpoint_auth_methods_supported).toEqual(['client_secret_basic', 'client_secret_post', 'private_key_jwt']);
  });
});

describe('without INTROSPECTION_CLIENTS', () => {
  it('the endpoint is there for registered clients only: a resource-server id is an unknown client (401)', async () => {
    const plain = await createTestApp({ db: t.db });
    try {
      const res = await plain.app.inject({ method: 'POST', url: '/auth/introspect', headers: { authorization: ORDERS }, payload: { token: 'x' } });
      expectInvalidClient(res);
      expect(json(await plain.app.inject({ method: 'GET', url: '/.well-known/openid-configuration' })).introspection_endpoint).toBe(
        `${TEST_ISSUER}/auth/introspect`,
      );
    } finally {
      await plain.app.close();
    }
  });
});
