import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { decodeJwt } from 'jose';
import type { LightMyRequestResponse } from 'fastify';
import { users } from '../../src/features/accounts/tables.js';
import { sessions } from '../../src/features/sessions/tables.js';
import { bearer, createTestApp, json, signUp, type TestApp } from '../helpers/test-app.js';

/**
 * Refresh rotation (README "Tokens"): a compare-and-swap of the session generation;
 * replaying an older token revokes the session, except the immediately
 * previous one inside the grace window (default 10 s).
 */

interface Tokens {
  access_token: string;
  refresh_token: string;
}

const gen = (refreshToken: string) => decodeJwt(refreshToken).gen as number;
const sid = (token: string) => decodeJwt(token).sid as string;

async function sessionRow(t: TestApp, id: string) {
  const rows = await t.db.handle.db.select().from(sessions).where(eq(sessions.id, id));
  expect(rows).toHaveLength(1);
  return rows[0]!;
}

function refreshWith(t: TestApp, refreshToken: string, url: '/auth/refresh' | '/auth/token' = '/auth/refresh') {
  const payload = url === '/auth/token' ? { grant_type: 'refresh_token', refresh_token: refreshToken } : { refresh_token: refreshToken };
  return t.app.inject({ method: 'POST', url, payload });
}

function tokensOf(res: LightMyRequestResponse): Tokens {
  expect(res.statusCode, res.body).toBe(200);
  expect(res.headers['cache-control']).toBe('no-store');
  return res.json() as Tokens;
}

function expectInvalidGrant(res: LightMyRequestResponse) {
  expect(res.statusCode).toBe(400);
  expect(json(res).error).toBe('invalid_grant');
  expect(typeof json(res).error_description).toBe('string');
  expect(res.headers['cache-control']).toBe('no-store');
}

async function meStatus(t: TestApp, access: string) {
  return (await t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(access) })).statusCode;
}

describe('refresh token rotation (default 10 s grace)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('(a) gen N → N+1; the previous token inside the grace window gets the current generation and revokes nothing', async () => {
    const u = await signUp(t.app);
    const session = sid(u.refresh);
    const g1 = gen(u.refresh);
    expect((await sessionRow(t, session)).generation).toBe(g1);

    const second = tokensOf(await refreshWith(t, u.refresh, '/auth/token'));
    expect(gen(second.refresh_token)).toBe(g1 + 1);
    expect(sid(second.refresh_token)).toBe(session);
    expect((await sessionRow(t, session)).generation).toBe(g1 + 1);

    t.clock.advance(9_000);
    const retry = tokensOf(await refreshWith(t, u.refresh));
    expect(gen(retry.refresh_token)).toBe(g1 + 1);
    expect(sid(retry.access_token)).toBe(session);
    expect(await meStatus(t, retry.access_token)).toBe(200);
    // the retry did not advance or revoke the session
    const row = await sessionRow(t, session);
    expect(row.generation).toBe(g1 + 1);
    expect(row.revokedAt).toBeNull();

    // the newest token still rotates normally
    const third = tokensOf(await refreshWith(t, second.refresh_token));
    expect(gen(third.refresh_token)).toBe(g1 + 2);
    expect(await meStatus(t, second.access_token)).toBe(200);
    expect(await meStatus(t, third.access_token)).toBe(200);
  });

  it('(a) the grace window is counted from the rotation, not from sign-in', async () => {
    const u = await signUp(t.app);
    t.clock.advance(60_000);
    const second = tokensOf(await refreshWith(t, u.refresh));
    t.clock.advance(9_500);
    const retry = tokensOf(await refreshWith(t, u.refresh));
    expect(gen(retry.refresh_token)).toBe(gen(second.refresh_token));
    expect((await sessionRow(t, sid(u.refresh))).revokedAt).toBeNull();
  });

  it('(b) the previous token after the grace window revokes the whole session', async () => {
    const u = await signUp(t.app);
    const session = sid(u.refresh);
    const second = tokensOf(await refreshWith(t, u.refresh));
    expect(await meStatus(t, second.access_token)).toBe(200);

    t.clock.advance(11_000);
    const replay = await refreshWith(t, u.refresh);
    expectInvalidGrant(replay);

    const row = await sessionRow(t, session);
    expect(row.revokedAt).not.toBeNull();
    expect(row.revokedReason).toBe('refresh_token_reuse');

    // even the newest refresh token is dead now, and so is every access token of the session
    expectInvalidGrant(await refreshWith(t, second.refresh_token));
    expectInvalidGrant(await refreshWith(t, second.refresh_token, '/auth/token'));
    for (const access of [second.access_token, u.access]) {
      const me = await t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(access) });
      expect(me.statusCode).toBe(401);
      expect(json(me).error).toBe('session_revoked');
    }
    // the user can still sign in again: only that session ended
    const login = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: u.email, password: u.password } });
    expect(login.statusCode).toBe(200);
  });

  it('(c) a token two generations old revokes the session even inside the grace window', async () => {
    const u = await signUp(t.app);
    const session = sid(u.refresh);
    const second = tokensOf(await refreshWith(t, u.refresh));
    const third = tokensOf(await refreshWith(t, second.refresh_token));
    expect(gen(third.refresh_token)).toBe(gen(u.refresh) + 2);

    t.clock.advance(1_000);
    expectInvalidGrant(await refreshWith(t, u.refresh));
    expect((await sessionRow(t, session)).revokedAt).not.toBeNull();
    expectInvalidGrant(await refreshWith(t, third.refresh_token));
    expect(await meStatus(t, third.access_token)).toBe(401);
  });

  it('(d) 20 concurrent refreshes of one token all succeed and advance the generation exactly once', async () => {
    const u = await signUp(t.app);
    const session = sid(u.refresh);
    const before = await sessionRow(t, session);
    expect(before.generation).toBe(gen(u.refresh));

    const results = await Promise.all(Array.from({ length: 20 }, () => refreshWith(t, u.refresh)));
    const statuses = results.map((r) => r.statusCode);
    expect(statuses).toEqual(Array<number>(20).fill(200));
    const tokens = results.map(tokensOf);
    const gens = new Set(tokens.map((x) => gen(x.refresh_token)));
    expect([...gens]).toEqual([before.generation + 1]);
    expect(new Set(tokens.map((x) => sid(x.refresh_token)))).toEqual(new Set([session]));

    const after = await sessionRow(t, session);
    expect(after.generation).toBe(before.generation + 1);
    expect(after.revokedAt).toBeNull();
    for (const x of tokens.slice(0, 3)) expect(await meStatus(t, x.access_token)).toBe(200);

    // one of the returned tokens rotates normally afterwards
    const next = tokensOf(await refreshWith(t, tokens[7]!.refresh_token));
    expect(gen(next.refresh_token)).toBe(before.generation + 2);
    const last = await sessionRow(t, session);
    expect(last.generation).toBe(before.generation + 2);
    expect(last.revokedAt).toBeNull();
  });

  it('(e) a disabled user cannot refresh and their access token is refused', async () => {
    const u = await signUp(t.app);
    expect(await meStatus(t, u.access)).toBe(200);
    const disabled = await t.db.handle.db.update(users).set({ disabledAt: t.clock.now() }).where(eq(users.id, u.userId)).returning({ id: users.id });
    expect(disabled).toHaveLength(1);

    expectInvalidGrant(await refreshWith(t, u.refresh));
    expectInvalidGrant(await refreshWith(t, u.refresh, '/auth/token'));
    const me = await t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(u.access) });
    expect(me.statusCode).toBe(401);
    expect(me.headers['www-authenticate']).toMatch(/^Bearer/);
    // refusing did not advance the generation
    expect((await sessionRow(t, sid(u.refresh))).generation).toBe(gen(u.refresh));
    // nor can they sign in again
    const login = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: u.email, password: u.password } });
    expect(login.statusCode).toBe(400);
  });

  it('(f) malformed token requests: missing refresh_token, unknown grant type; errors are not cached', async () => {
    const missing = await t.app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token' } });
    expect(missing.statusCode).toBe(400);
    expect(json(missing).error).toBe('invalid_request');
    expect(missing.headers['cache-control']).toBe('no-store');

    const empty = await t.app.inject({
      method: 'POST',
      url: '/auth/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'grant_type=refresh_token&refresh_token=',
    });
    expect(empty.statusCode).toBe(400);
    expect(json(empty).error).toBe('invalid_request');
    expect(empty.headers['cache-control']).toBe('no-store');

    for (const grant_type of ['client_credentials', 'implicit', 'urn:ietf:params:oauth:grant-type:jwt-bearer', 'REFRESH_TOKEN']) {
      const res = await t.app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type, refresh_token: 'x' } });
      expect(res.statusCode).toBe(400);
      expect(json(res).error).toBe('unsupported_grant_type');
      expect(res.headers['cache-control']).toBe('no-store');
    }

    const noGrant = await t.app.inject({ method: 'POST', url: '/auth/token', payload: { refresh_token: 'x' } });
    expect(noGrant.statusCode).toBe(400);
    expect(json(noGrant).error).toBe('invalid_request');
    expect(noGrant.headers['cache-control']).toBe('no-store');

    const garbage = await refreshWith(t, 'not.a.token', '/auth/token');
    expectInvalidGrant(garbage);
    const garbageJson = await refreshWith(t, 'not-a-jwt');
    expectInvalidGrant(garbageJson);
  });
});

describe('refresh token rotation with REFRESH_REUSE_GRACE_SECONDS=0', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ env: { REFRESH_REUSE_GRACE_SECONDS: '0' } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('(g) the previous token immediately revokes the session', async () => {
    expect(t.config.jwt.refreshReuseGraceSeconds).toBe(0);
    const u = await signUp(t.app);
    const second = tokensOf(await refreshWith(t, u.refresh));

    // same instant as the rotation: no grace at all
    expectInvalidGrant(await refreshWith(t, u.refresh));
    const row = await sessionRow(t, sid(u.refresh));
    expect(row.revokedAt).not.toBeNull();
    expect(row.revokedReason).toBe('refresh_token_reuse');
    expectInvalidGrant(await refreshWith(t, second.refresh_token));
    expect(await meStatus(t, second.access_token)).toBe(401);
  });

  it('(g) rotation itself still works', async () => {
    const u = await signUp(t.app);
    const second = tokensOf(await refreshWith(t, u.refresh));
    t.clock.advance(1);
    const third = tokensOf(await refreshWith(t, second.refresh_token));
    expect(gen(third.refresh_token)).toBe(gen(u.refresh) + 2);
  });
});
