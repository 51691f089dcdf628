import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, bearer, createTestApp, json, signUp, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// The security events a user can see of their own account, written in the transaction
// of each event; no secret in them, and an unknown address only masked.

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t?.close();
});

type Event = { type: string; ip: string | null; user_agent: string | null; details: Record<string, unknown>; created_at: string };
const events = async (access: string, query = '') => (json(await t.app.inject({ method: 'GET', url: `/users/me/audit${query}`, headers: bearer(access) })).events as Event[]);

describe('GET /users/me/audit', () => {
  it('sign-in, failures, refresh-token reuse, logout, session revoke and password change, newest first, without secrets', async () => {
    const u = await signUp(t.app);
    t.clock.advance(1000);
    await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: u.email, password: 'not the password 1' }, headers: { 'user-agent': 'attacker/1.0' } });
    t.clock.advance(1000);
    const second = json(await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: u.email, password: PASSWORD } }));
    t.clock.advance(1000);
    // A refresh, then the spent token again after the grace window: reuse detected.
    await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: second.refresh_token as string } });
    t.clock.advance(60_000);
    await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: second.refresh_token as string } });
    t.clock.advance(1000);
    const third = json(await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: u.email, password: PASSWORD } }));
    t.clock.advance(1000);
    const sessions = (await t.app.inject({ method: 'GET', url: '/users/me/sessions', headers: bearer(u.access) })).json() as Array<{ id: string; current: boolean }>;
    const other = sessions.find((s) => !s.current);
    expect((await t.app.inject({ method: 'DELETE', url: `/users/me/sessions/${other?.id}`, headers: bearer(u.access) })).statusCode).toBe(204);
    t.clock.advance(1000);
    expect((await t.app.inject({ method: 'POST', url: '/users/me/password', headers: bearer(u.access), payload: { current_password: PASSWORD, new_password: 'a brand new passphrase 42' } })).statusCode).toBe(204);
    t.clock.advance(1000);
    expect((await t.app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(u.access) })).statusCode).toBe(204);

    const fresh = json(await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: u.email, password: 'a brand new passphrase 42' } })).access_token as string;
    const list = await events(fresh);
    expect(list.map((e) => e.type)).toEqual([
      'sign_in',
      'logout',
      'password_changed',
      'session_revoked',
      'sign_in',
      'refresh_token_reuse',
      'sign_in',
      'sign_in_failed',
      'sign_in',
    ]);
    expect(list.find((e) => e.type === 'sign_in_failed')).toMatchObject({ user_agent: 'attacker/1.0', details: { reason: 'wrong_password' } });
    expect(list.every((e) => e.ip === '127.0.0.1' || e.ip === null)).toBe(true);
    const text = JSON.stringify(list);
    for (const secret of [PASSWORD, 'not the password 1', 'a brand new passphrase 42', u.refresh, second.refresh_token, third.access_token]) expect(text).not.toContain(secret);

    // Paging: the next page starts before the last event seen.
    const page = await events(fresh, '?limit=3');
    expect(page).toHaveLength(3);
    const next = await events(fresh, `?limit=3&before=${encodeURIComponent(page[2]?.created_at ?? '')}`);
    expect(next[0]?.type).toBe(list[3]?.type);
    expect((await t.app.inject({ method: 'GET', url: '/users/me/audit?before=yesterday', headers: bearer(fresh) })).statusCode).toBe(422);
  });

  it('a failed sign-in for an unknown address is recorded masked, under no user', async () => {
    const email = uniqueEmail('nobody');
    await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } });
    const { auditEvents } = await import('../../src/features/audit/tables.js');
    const rows = (await t.db.handle.db.select().from(auditEvents)).filter((r) => r.type === 'sign_in_failed' && r.userId === null);
    const mine = rows.find((r) => r.details.email === `${email[0]}***@example.com` && r.details.reason === 'unknown_email');
    expect(mine).toBeDefined();
    expect(JSON.stringify(rows)).not.toContain(email);
  });
});
