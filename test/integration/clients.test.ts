import { randomUUID } from 'node:crypto';
import { count, eq, isNull, and } from 'drizzle-orm';
import { generate } from 'otplib';
import { SignJWT, decodeJwt, exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { auditEvents } from '../../src/features/audit/tables.js';
import { oauthClientSecrets, oauthClients } from '../../src/features/clients/tables.js';
import { sessions } from '../../src/features/sessions/tables.js';
import { PASSWORD, TEST_ISSUER, bearer, createTestApp, json, signUp, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// The OAuth client registry (docs/clients.md) and client authentication at POST /auth/token,
// through HTTP, as an attacker would try it.

let t: TestApp;
let adminToken: string;
let adminEmail: string;
let user: { email: string; userId: string };

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const TOKEN_ENDPOINT = `${TEST_ISSUER}/auth/token`;

const basic = (id: string, secret: string) => ({
  authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`,
});
const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

function token(fields: Record<string, string>, headers: Record<string, string> = {}) {
  return t.app.inject({ method: 'POST', url: '/auth/token', headers: { ...FORM, ...headers }, payload: form(fields) });
}

const passwordGrant = () => ({ grant_type: 'password', username: user.email, password: PASSWORD });

interface Created {
  client: { client_id: string; [k: string]: unknown };
  client_secret: string | null;
}

async function register(body: Record<string, unknown>, as = adminToken): Promise<Created> {
  const res = await t.app.inject({ method: 'POST', url: '/admin/clients', headers: bearer(as), payload: body });
  expect(res.statusCode, res.body).toBe(201);
  return res.json() as Created;
}

/** A first-party confidential client with the password and refresh grants (what a company's own backend would be). */
const firstParty = (extra: Record<string, unknown> = {}) =>
  register({ name: 'Backend', type: 'confidential', first_party: true, grant_types: ['password', 'refresh_token'], ...extra });

const expectInvalidClient = (res: LightMyRequestResponse) => {
  expect(res.statusCode, res.body).toBe(401);
  expect(res.json()).toEqual({ error: 'invalid_client', error_description: 'Client authentication failed.' });
  expect(res.headers['www-authenticate']).toMatch(/^Basic realm="tessera"/);
  expect(res.headers['cache-control']).toContain('no-store');
};

async function auditCount(type: string): Promise<number> {
  const rows = await t.db.handle.db.select({ n: count() }).from(auditEvents).where(eq(auditEvents.type, type));
  return rows[0]?.n ?? 0;
}

beforeAll(async () => {
  t = await createTestApp();
  adminEmail = uniqueEmail('root');
  await t.app.services.admin.createUser(null, { email: adminEmail, password: PASSWORD, emailVerified: true, roles: ['admin', 'user'], sendInvite: false });
  const u = await signUp(t.app);
  user = { email: u.email, userId: u.userId };
});
// The clock moves in some tests: a fresh administrator token for each.
beforeEach(async () => {
  const res = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: adminEmail, password: PASSWORD } });
  adminToken = json(res).access_token as string;
});
afterAll(async () => {
  await t?.close();
});

describe('the registry (admin API)', () => {
  it('registers a confidential client: its secret once (no-store), then never again; audited', async () => {
    const before = await auditCount('client_created');
    const res = await t.app.inject({
      method: 'POST',
      url: '/admin/clients',
      headers: bearer(adminToken),
      payload: {
        name: 'Web app',
        type: 'confidential',
        redirect_uris: ['https://app.example.com/cb', 'http://127.0.0.1/cb'],
        post_logout_redirect_uris: ['https://app.example.com/'],
        scopes: ['openid', 'email', 'orders:read'],
      },
    });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.headers['cache-control']).toContain('no-store');
    const body = res.json() as Created;
    expect(body.client_secret).toMatch(/^tcs_[A-Za-z0-9_-]{43}$/);
    expect(body.client).toMatchObject({
      type: 'confidential',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token'],
      first_party: false,
    });
    expect(body.client.client_id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const shown = await t.app.inject({ method: 'GET', url: `/admin/clients/${body.client.client_id}`, headers: bearer(adminToken) });
    expect(shown.statusCode).toBe(200);
    expect(shown.body).not.toContain(body.client_secret);
    expect((shown.json() as { secrets: unknown[] }).secrets).toEqual([{ created_at: expect.any(String), expires_at: null }]);
    // Stored hashed only.
    const stored = await t.db.handle.db.select().from(oauthClientSecrets).where(eq(oauthClientSecrets.clientId, body.client.client_id));
    expect(stored).toHaveLength(1);
    expect(stored[0]?.secretHash).not.toContain(body.client_secret);
    expect(await auditCount('client_created')).toBe(before + 1);
    const list = await t.app.inject({ method: 'GET', url: '/admin/clients', headers: bearer(adminToken) });
    expect((list.json() as { clients: Array<{ client_id: string }> }).clients.map((c) => c.client_id)).toContain(body.client.client_id);
  });

  it('a public client has no secret; patch changes only what is given; delete removes it (audited)', async () => {
    const { client, client_secret } = await register({ name: 'SPA', type: 'public', redirect_uris: ['https://spa.example.com/cb'] });
    expect(client_secret).toBeNull();
    expect(client.token_endpoint_auth_method).toBe('none');
    const patched = await t.app.inject({
      method: 'PATCH',
      url: `/admin/clients/${client.client_id}`,
      headers: bearer(adminToken),
      payload: { name: 'SPA 2', access_token_seconds: 300 },
    });
    expect(patched.statusCode, patched.body).toBe(200);
    expect((patched.json() as Created).client).toMatchObject({ name: 'SPA 2', access_token_seconds: 300, redirect_uris: ['https://spa.example.com/cb'] });
    const rotate = await t.app.inject({ method: 'POST', url: `/admin/clients/${client.client_id}/rotate-secret`, headers: bearer(adminToken), payload: {} });
    expect(rotate.statusCode).toBe(409);
    expect(json(rotate).error).toBe('client_has_no_secret');
    const before = await auditCount('client_deleted');
    expect((await t.app.inject({ method: 'DELETE', url: `/admin/clients/${client.client_id}`, headers: bearer(adminToken) })).statusCode).toBe(204);
    expect(await auditCount('client_deleted')).toBe(before + 1);
    const gone = await t.app.inject({ method: 'GET', url: `/admin/clients/${client.client_id}`, headers: bearer(adminToken) });
    expect(gone.statusCode).toBe(404);
    expect(json(gone).error).toBe('client_not_found');
  });

  it.each([
    [{ name: 'x', type: 'confidential', redirect_uris: ['https://app.example.com/cb#x'] }, /fragment/],
    [{ name: 'x', type: 'confidential', redirect_uris: ['https://*.example.com/cb'] }, /wildcard/],
    [{ name: 'x', type: 'confidential', redirect_uris: ['http://localhost:3000/cb'] }, /localhost/],
    [{ name: 'x', type: 'confidential', redirect_uris: ['javascript:alert(1)'] }, /scheme/],
    [{ name: 'x', type: 'confidential', grant_types: ['password'] }, /first-party/],
    [{ name: 'x', type: 'confidential', grant_types: ['client_credentials'] }, /not supported/],
    [{ name: 'x', type: 'confidential', grant_types: ['authorization_code'] }, /redirect_uris/],
    [{ name: 'x', type: 'public', token_endpoint_auth_method: 'client_secret_basic', grant_types: ['refresh_token'] }, /public client/],
    [{ name: 'x', type: 'confidential', token_endpoint_auth_method: 'private_key_jwt', grant_types: ['refresh_token'] }, /jwks/],
    [{ name: 'x', type: 'confidential', grant_types: ['refresh_token'], jwks_uri: 'http://keys.example.com/jwks' }, /https/],
    [{ name: 'x', type: 'confidential', grant_types: ['refresh_token'], scopes: ['bad"scope'] }, /scope/],
  ])('refuses an invalid registration (%j)', async (body, why) => {
    const res = await t.app.inject({ method: 'POST', url: '/admin/clients', headers: bearer(adminToken), payload: body });
    expect(res.statusCode, res.body).toBe(422);
    expect(json(res).error).toBe('validation_failed');
    expect(json(res).message).toMatch(why);
  });

  it('refuses a private key in jwks', async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const res = await t.app.inject({
      method: 'POST',
      url: '/admin/clients',
      headers: bearer(adminToken),
      payload: {
        name: 'x',
        type: 'confidential',
        token_endpoint_auth_method: 'private_key_jwt',
        grant_types: ['refresh_token'],
        jwks: { keys: [await exportJWK(privateKey)] },
      },
    });
    expect(res.statusCode).toBe(422);
    expect(json(res).message).toMatch(/private/);
  });

  it('needs clients:manage held now: a plain user and a users-admin are refused; a role with it is enough', async () => {
    const plain = await signUp(t.app);
    for (const [method, url] of [
      ['GET', '/admin/clients'],
      ['POST', '/admin/clients'],
      ['DELETE', '/admin/clients/abc'],
    ] as const) {
      const res = await t.app.inject({
        method,
        url,
        headers: bearer(plain.access),
        ...(method === 'POST' ? { payload: { name: 'x', type: 'public', grant_types: ['refresh_token'] } } : {}),
      });
      expect(res.statusCode, `${method} ${url}`).toBe(403);
    }
    // A user administrator (users:*, roles:*) cannot put clients:manage into a role (issue 14's grant rules)...
    const role = await t.app.inject({
      method: 'POST',
      url: '/admin/roles',
      headers: bearer(adminToken),
      payload: { name: 'useradmin', permissions: ['users:read', 'users:write', 'roles:read', 'roles:write'] },
    });
    expect(role.statusCode, role.body).toBe(201);
    const ua = await signUp(t.app);
    await t.app.services.admin.addRole(null, ua.userId, 'useradmin');
    const sneaky = await t.app.inject({
      method: 'POST',
      url: '/admin/roles',
      headers: bearer(ua.access),
      payload: { name: 'clientadmin', permissions: ['clients:manage'] },
    });
    expect(sneaky.statusCode).toBe(403);
    expect((await t.app.inject({ method: 'GET', url: '/admin/clients', headers: bearer(ua.access) })).statusCode).toBe(403);
    // ...an administrator can, and the permission then works at once.
    const ok = await t.app.inject({
      method: 'POST',
      url: '/admin/roles',
      headers: bearer(adminToken),
      payload: { name: 'clientadmin', permissions: ['clients:manage'] },
    });
    expect(ok.statusCode, ok.body).toBe(201);
    await t.app.services.admin.addRole(null, ua.userId, 'clientadmin');
    expect((await t.app.inject({ method: 'GET', url: '/admin/clients', headers: bearer(ua.access) })).statusCode).toBe(200);
  });

  it('GET and HEAD change nothing', async () => {
    const { client } = await firstParty();
    const snapshot = async () => ({
      clients: await t.db.handle.db.select().from(oauthClients),
      secrets: await t.db.handle.db.select().from(oauthClientSecrets),
      audit: (await t.db.handle.db.select({ n: count() }).from(auditEvents))[0]?.n,
    });
    const before = await snapshot();
    for (const method of ['GET', 'HEAD'] as const) {
      for (const url of ['/admin/clients', `/admin/clients/${client.client_id}`, `/admin/clients/${client.client_id}/rotate-secret`, '/auth/token']) {
        const res = await t.app.inject({ method, url, headers: bearer(adminToken) });
        expect(res.statusCode, `${method} ${url}`).toBeLessThan(500);
      }
    }
    expect(await snapshot()).toEqual(before);
  });
});

describe('client authentication at POST /auth/token', () => {
  it("client_secret_basic and client_secret_post: tokens carry client_id (RFC 9068) and today's claims", async () => {
    const { client, client_secret } = await firstParty({ access_token_seconds: 120 });
    const id = client.client_id;
    const viaBasic = await token(passwordGrant(), basic(id, client_secret as string));
    expect(viaBasic.statusCode, viaBasic.body).toBe(200);
    expect(json(viaBasic).expires_in).toBe(120);
    const claims = decodeJwt(json(viaBasic).access_token as string);
    expect(claims).toMatchObject({ client_id: id, sub: user.userId, email: user.email, roles: ['user'], amr: ['pwd'] });
    expect(claims.exp! - claims.iat!).toBe(120);
    const viaPost = await token({ ...passwordGrant(), client_id: id, client_secret: client_secret as string });
    expect(viaPost.statusCode, viaPost.body).toBe(200);
    // JSON bodies too.
    const viaJson = await t.app.inject({ method: 'POST', url: '/auth/token', payload: { ...passwordGrant(), client_id: id, client_secret } });
    expect(viaJson.statusCode).toBe(200);
  });

  it('no client at all keeps working exactly as before (the implicit first-party client)', async () => {
    const res = await token(passwordGrant());
    expect(res.statusCode).toBe(200);
    expect(decodeJwt(json(res).access_token as string).client_id).toBeUndefined();
    // An empty client_id (some tools send one), or Swagger UI's Basic of an empty id and secret, is no client either.
    expect((await token({ ...passwordGrant(), client_id: '' })).statusCode).toBe(200);
    expect((await token(passwordGrant(), { authorization: `Basic ${Buffer.from(':').toString('base64')}` })).statusCode).toBe(200);
    expectInvalidClient(await token(passwordGrant(), { authorization: `Basic ${Buffer.from(':secret').toString('base64')}` }));
    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: json(res).refresh_token as string });
    expect(refreshed.statusCode).toBe(200);
  });

  it('wrong secret, unknown client, the secret of A with the id of B, malformed Basic: one identical 401', async () => {
    const a = await firstParty();
    const b = await firstParty();
    expectInvalidClient(await token(passwordGrant(), basic(a.client.client_id, 'tcs_wrong')));
    expectInvalidClient(await token(passwordGrant(), basic('no-such-client', a.client_secret as string)));
    expectInvalidClient(await token(passwordGrant(), basic(b.client.client_id, a.client_secret as string)));
    expectInvalidClient(await token({ ...passwordGrant(), client_id: b.client.client_id, client_secret: a.client_secret as string }));
    expectInvalidClient(await token(passwordGrant(), { authorization: 'Basic !!!' }));
    expectInvalidClient(await token(passwordGrant(), { authorization: `Basic ${Buffer.from('no-colon').toString('base64')}` }));
    // A confidential client cannot authenticate with its id alone.
    expectInvalidClient(await token({ ...passwordGrant(), client_id: a.client.client_id }));
  });

  it('unknown client and wrong secret take similar time (a dummy is compared when the client is unknown)', async () => {
    const a = await firstParty();
    const time = async (headers: Record<string, string>) => {
      const start = process.hrtime.bigint();
      const res = await token({ grant_type: 'refresh_token', refresh_token: 'x' }, headers);
      expect(res.statusCode).toBe(401);
      return Number(process.hrtime.bigint() - start) / 1e6;
    };
    const unknown: number[] = [];
    const wrong: number[] = [];
    for (let i = 0; i < 30; i++) {
      unknown.push(await time(basic(`unknown-${i}`, 'tcs_guess')));
      wrong.push(await time(basic(a.client.client_id, 'tcs_guess')));
    }
    const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)] as number;
    const [mu, mw] = [median(unknown), median(wrong)];
    // Same queries either way; a loaded test machine only gets a loose bound.
    expect(Math.max(mu, mw) / Math.min(mu, mw), `median unknown ${mu.toFixed(2)} ms, wrong secret ${mw.toFixed(2)} ms`).toBeLessThan(3);
  });

  it('a public client: its id alone works; presenting any secret (Basic or post) is invalid_client', async () => {
    const { client } = await register({ name: 'Native', type: 'public', first_party: true, grant_types: ['password', 'refresh_token'] });
    const id = client.client_id;
    const ok = await token({ ...passwordGrant(), client_id: id });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(decodeJwt(json(ok).access_token as string).client_id).toBe(id);
    expectInvalidClient(await token(passwordGrant(), basic(id, 'anything')));
    expectInvalidClient(await token(passwordGrant(), basic(id, '')));
    expectInvalidClient(await token({ ...passwordGrant(), client_id: id, client_secret: 'anything' }));
    expectInvalidClient(await token({ ...passwordGrant(), client_id: 'unknown-public' }));
  });

  it('more than one method in one request is invalid_request', async () => {
    const { client, client_secret } = await firstParty();
    const id = client.client_id;
    const both = await token({ ...passwordGrant(), client_id: id, client_secret: client_secret as string }, basic(id, client_secret as string));
    expect(both.statusCode).toBe(400);
    expect(json(both).error).toBe('invalid_request');
    const withAssertion = await token({
      ...passwordGrant(),
      client_id: id,
      client_secret: client_secret as string,
      client_assertion_type: JWT_BEARER,
      client_assertion: 'a.b.c',
    });
    expect(json(withAssertion).error).toBe('invalid_request');
    const otherId = await token({ ...passwordGrant(), client_id: 'someone-else' }, basic(id, client_secret as string));
    expect(json(otherId).error).toBe('invalid_request');
  });

  it('grants: a client uses only its own; the password grant only when first-party', async () => {
    const noPassword = await register({ name: 'No pwd', type: 'confidential', first_party: true, grant_types: ['refresh_token'] });
    const res = await token(passwordGrant(), basic(noPassword.client.client_id, noPassword.client_secret as string));
    expect(res.statusCode).toBe(400);
    expect(json(res).error).toBe('unauthorized_client');
    const code = await token(
      { grant_type: 'authorization_code', code: 'x', redirect_uri: 'https://a.example/cb' },
      basic(noPassword.client.client_id, noPassword.client_secret as string),
    );
    expect(json(code).error).toBe('unauthorized_client');
    // A client that stops being first-party loses the password grant (the registration refuses the combination).
    const fp = await firstParty();
    const demote = await t.app.inject({
      method: 'PATCH',
      url: `/admin/clients/${fp.client.client_id}`,
      headers: bearer(adminToken),
      payload: { first_party: false },
    });
    expect(demote.statusCode).toBe(422);
  });

  it('a refresh token is bound to its client: client B, or no client, gets invalid_grant and the session lives on', async () => {
    const a = await firstParty();
    const b = await firstParty();
    const issued = await token(passwordGrant(), basic(a.client.client_id, a.client_secret as string));
    const refresh = json(issued).refresh_token as string;
    const asB = await token({ grant_type: 'refresh_token', refresh_token: refresh }, basic(b.client.client_id, b.client_secret as string));
    expect(asB.statusCode).toBe(400);
    expect(json(asB)).toMatchObject({ error: 'invalid_grant', error_description: 'The refresh token was not issued to this client.' });
    const asNobody = await token({ grant_type: 'refresh_token', refresh_token: refresh });
    expect(json(asNobody).error).toBe('invalid_grant');
    const asNobodyJson = await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refresh } });
    expect(json(asNobodyJson).error).toBe('invalid_grant');
    // Nothing was advanced or revoked: A refreshes with the same token.
    const asA = await token({ grant_type: 'refresh_token', refresh_token: refresh }, basic(a.client.client_id, a.client_secret as string));
    expect(asA.statusCode, asA.body).toBe(200);
    expect(decodeJwt(json(asA).access_token as string).client_id).toBe(a.client.client_id);
    // And a token of the implicit client is refused to a registered one.
    const implicit = await token(passwordGrant());
    const stolen = await token(
      { grant_type: 'refresh_token', refresh_token: json(implicit).refresh_token as string },
      basic(b.client.client_id, b.client_secret as string),
    );
    expect(json(stolen).error).toBe('invalid_grant');
  });

  it("the MFA step of a client's password grant opens a session bound to that client", async () => {
    const a = await firstParty({ access_token_seconds: 90 });
    const u = await signUp(t.app);
    const start = await t.app.inject({ method: 'POST', url: '/users/me/mfa/totp', headers: bearer(u.access), payload: {} });
    const secret = json(start).secret as string;
    const code = () => generate({ secret, epoch: Math.floor(t.clock.now().getTime() / 1000) });
    expect(
      (await t.app.inject({ method: 'POST', url: '/users/me/mfa/totp/verify', headers: bearer(u.access), payload: { code: await code() } })).statusCode,
    ).toBe(200);
    t.clock.advance(31_000);
    const challenge = await token({ grant_type: 'password', username: u.email, password: PASSWORD }, basic(a.client.client_id, a.client_secret as string));
    expect(json(challenge).error).toBe('mfa_required');
    const done = await t.app.inject({ method: 'POST', url: '/auth/mfa/verify', payload: { mfa_token: json(challenge).mfa_token, code: await code() } });
    expect(done.statusCode, done.body).toBe(200);
    expect(json(done).expires_in).toBe(90);
    expect(decodeJwt(json(done).access_token as string)).toMatchObject({ client_id: a.client.client_id, amr: ['pwd', 'otp'] });
    expect(json(await token({ grant_type: 'refresh_token', refresh_token: json(done).refresh_token as string })).error).toBe('invalid_grant');
    expect(
      (await token({ grant_type: 'refresh_token', refresh_token: json(done).refresh_token as string }, basic(a.client.client_id, a.client_secret as string)))
        .statusCode,
    ).toBe(200);
  });

  it('deleting a client ends its sessions', async () => {
    const a = await firstParty();
    const issued = await token(passwordGrant(), basic(a.client.client_id, a.client_secret as string));
    await t.app.inject({ method: 'DELETE', url: `/admin/clients/${a.client.client_id}`, headers: bearer(adminToken) });
    const me = await t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(json(issued).access_token as string) });
    expect(me.statusCode).toBe(401);
    const live = await t.db.handle.db
      .select()
      .from(sessions)
      .where(and(eq(sessions.clientId, a.client.client_id), isNull(sessions.revokedAt)));
    expect(live).toEqual([]);
  });
});

describe('secret rotation', () => {
  it('the rotated secret works during the overlap and not after it (injected clock); audited', async () => {
    const a = await firstParty();
    const id = a.client.client_id;
    const old = a.client_secret as string;
    const before = await auditCount('client_secret_rotated');
    const res = await t.app.inject({
      method: 'POST',
      url: `/admin/clients/${id}/rotate-secret`,
      headers: bearer(adminToken),
      payload: { overlap_seconds: 86400 },
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['cache-control']).toContain('no-store');
    const fresh = json(res).client_secret as string;
    expect(json(res).previous_secret_valid_until).toBe(new Date(t.clock.now().getTime() + 86400_000).toISOString());
    expect(await auditCount('client_secret_rotated')).toBe(before + 1);
    expect((await token(passwordGrant(), basic(id, old))).statusCode).toBe(200);
    expect((await token(passwordGrant(), basic(id, fresh))).statusCode).toBe(200);
    t.clock.advance(86400_000 + 1000);
    expectInvalidClient(await token(passwordGrant(), basic(id, old)));
    adminToken = json(await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: adminEmail, password: PASSWORD } })).access_token as string;
    expect((await token(passwordGrant(), basic(id, fresh))).statusCode).toBe(200);
    // Without an overlap the previous secret stops at once.
    const again = await t.app.inject({ method: 'POST', url: `/admin/clients/${id}/rotate-secret`, headers: bearer(adminToken), payload: {} });
    expect(again.statusCode, again.body).toBe(200);
    expect(json(again).previous_secret_valid_until).toBeNull();
    expectInvalidClient(await token(passwordGrant(), basic(id, fresh)));
    expect((await token(passwordGrant(), basic(id, json(again).client_secret as string))).statusCode).toBe(200);
  });

  it('parallel rotations: exactly one new secret survives as current', async () => {
    const a = await firstParty();
    const id = a.client.client_id;
    const results = await Promise.all(
      Array.from({ length: 6 }, () =>
        t.app.inject({ method: 'POST', url: `/admin/clients/${id}/rotate-secret`, headers: bearer(adminToken), payload: { overlap_seconds: 0 } }),
      ),
    );
    for (const r of results) expect(r.statusCode, r.body).toBe(200);
    const current = await t.db.handle.db
      .select()
      .from(oauthClientSecrets)
      .where(and(eq(oauthClientSecrets.clientId, id), isNull(oauthClientSecrets.expiresAt)));
    expect(current).toHaveLength(1);
    const working: string[] = [];
    for (const r of results) {
      const secret = json(r).client_secret as string;
      if ((await token({ grant_type: 'refresh_token', refresh_token: 'x' }, basic(id, secret))).statusCode !== 401) working.push(secret);
    }
    expect(working).toHaveLength(1);
    expectInvalidClient(await token(passwordGrant(), basic(id, a.client_secret as string)));
  });
});

describe('private_key_jwt (RFC 7523)', () => {
  let clientId: string;
  let key: CryptoKey;
  let otherKey: CryptoKey;

  beforeAll(async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    key = pair.privateKey;
    otherKey = (await generateKeyPair('ES256')).privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', use: 'sig' };
    const created = await firstParty({ token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] } });
    expect(created.client_secret).toBeNull();
    clientId = created.client.client_id;
  });

  const assertion = (o: { aud?: string; exp?: number; jti?: string; iss?: string; sign?: CryptoKey; kid?: string } = {}) => {
    const now = Math.floor(t.clock.now().getTime() / 1000);
    return new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: o.kid ?? 'k1' })
      .setIssuer(o.iss ?? clientId)
      .setSubject(clientId)
      .setAudience(o.aud ?? TOKEN_ENDPOINT)
      .setIssuedAt(now)
      .setExpirationTime(o.exp ?? now + 60)
      .setJti(o.jti ?? randomUUID())
      .sign(o.sign ?? key);
  };
  const withAssertion = (jwt: string, extra: Record<string, string> = {}) =>
    token({ ...passwordGrant(), client_assertion_type: JWT_BEARER, client_assertion: jwt, ...extra });

  it('a fresh assertion for the token endpoint or the issuer authenticates; its jti only once', async () => {
    const jwt = await assertion();
    const ok = await withAssertion(jwt, { client_id: clientId });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(decodeJwt(json(ok).access_token as string).client_id).toBe(clientId);
    expectInvalidClient(await withAssertion(jwt));
    expect((await withAssertion(await assertion({ aud: TEST_ISSUER }))).statusCode).toBe(200);
  });

  it('refuses a wrong audience, an expired or too long-lived assertion, another key, another issuer, a mismatched client_id', async () => {
    const now = Math.floor(t.clock.now().getTime() / 1000);
    expectInvalidClient(await withAssertion(await assertion({ aud: 'https://elsewhere.example/token' })));
    expectInvalidClient(await withAssertion(await assertion({ exp: now - 120 })));
    expectInvalidClient(await withAssertion(await assertion({ exp: now + 3600 })));
    expectInvalidClient(await withAssertion(await assertion({ sign: otherKey })));
    expectInvalidClient(await withAssertion(await assertion({ sign: otherKey, kid: 'unknown' })));
    expectInvalidClient(await withAssertion(await assertion({ iss: 'someone-else' })));
    expectInvalidClient(await withAssertion('not.a.jwt'));
    const mismatched = await withAssertion(await assertion(), { client_id: 'someone-else' });
    expectInvalidClient(mismatched);
    const wrongType = await token({ ...passwordGrant(), client_assertion_type: 'urn:other', client_assertion: await assertion() });
    expect(json(wrongType).error).toBe('invalid_request');
  });

  it('a secret does not authenticate a private_key_jwt client', async () => {
    expectInvalidClient(await token(passwordGrant(), basic(clientId, 'tcs_anything')));
  });

  it('a replay within the same moment after a clock move is still refused (the jti is kept until exp)', async () => {
    const jwt = await assertion();
    expect((await withAssertion(jwt)).statusCode).toBe(200);
    t.clock.advance(30_000);
    expectInvalidClient(await withAssertion(jwt));
  });
});

describe('PASSWORD_GRANT_ENABLED=false', () => {
  it('refuses the password grant and /auth/login with unsupported_grant_type; refresh still works', async () => {
    const off = await createTestApp({ env: { PASSWORD_GRANT_ENABLED: 'false' }, db: t.db });
    try {
      const grant = await off.app.inject({ method: 'POST', url: '/auth/token', headers: FORM, payload: form(passwordGrant()) });
      expect(grant.statusCode).toBe(400);
      expect(json(grant).error).toBe('unsupported_grant_type');
      const login = await off.app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: PASSWORD } });
      expect(json(login).error).toBe('unsupported_grant_type');
      const issued = await token(passwordGrant());
      const refreshed = await off.app.inject({
        method: 'POST',
        url: '/auth/token',
        headers: FORM,
        payload: form({ grant_type: 'refresh_token', refresh_token: json(issued).refresh_token as string }),
      });
      expect(refreshed.statusCode, refreshed.body).toBe(200);
    } finally {
      await off.close();
    }
  });
});
