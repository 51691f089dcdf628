import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmtpCatcher, tokenIn } from '../helpers/smtp.js';
import { PASSWORD, bearer, createTestApp, json, signUp, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// The security events a user can see of their own account, written in the transaction
// of each event; no secret in them, and an unknown address only masked.

let t: TestApp;
let smtp: SmtpCatcher;
beforeAll(async () => {
  smtp = await SmtpCatcher.start();
  t = await createTestApp({ env: { SMTP_SERVER: '127.0.0.1', SMTP_PORT: String(smtp.port), SMTP_TIMEOUT_MS: '5000', OUTBOX_POLL_INTERVAL_MS: '50' } });
});
afterAll(async () => {
  await t?.close();
  await smtp?.close();
});

type Event = { type: string; ip: string | null; user_agent: string | null; details: Record<string, unknown>; created_at: string };
const events = async (access: string, query = '') =>
  json(await t.app.inject({ method: 'GET', url: `/users/me/audit${query}`, headers: bearer(access) })).events as Event[];

describe('GET /users/me/audit', () => {
  it('sign-in, failures, refresh-token reuse, logout, session revoke and password change, newest first, without secrets', async () => {
    const u = await signUp(t.app);
    t.clock.advance(1000);
    await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { email: u.email, password: 'not the password 1' },
      headers: { 'user-agent': 'attacker/1.0' },
    });
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
    const sessions = (await t.app.inject({ method: 'GET', url: '/users/me/sessions', headers: bearer(u.access) })).json() as Array<{
      id: string;
      current: boolean;
    }>;
    const other = sessions.find((s) => !s.current);
    expect((await t.app.inject({ method: 'DELETE', url: `/users/me/sessions/${other?.id}`, headers: bearer(u.access) })).statusCode).toBe(204);
    t.clock.advance(1000);
    expect(
      (
        await t.app.inject({
          method: 'POST',
          url: '/users/me/password',
          headers: bearer(u.access),
          payload: { current_password: PASSWORD, new_password: 'a brand new passphrase 42' },
        })
      ).statusCode,
    ).toBe(204);
    t.clock.advance(1000);
    expect((await t.app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(u.access) })).statusCode).toBe(204);

    const fresh = json(await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: u.email, password: 'a brand new passphrase 42' } }))
      .access_token as string;
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
    for (const secret of [PASSWORD, 'not the password 1', 'a brand new passphrase 42', u.refresh, second.refresh_token, third.access_token])
      expect(text).not.toContain(secret);

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

  it('password reset, email change (requested, confirmed) and sign-out everywhere, without the emailed tokens or addresses in clear', async () => {
    const u = await signUp(t.app);
    const post = (url: string, payload: object, access?: string) =>
      t.app.inject({ method: 'POST', url, payload, ...(access ? { headers: bearer(access) } : {}) });
    t.clock.advance(1000);
    expect((await post('/auth/password/forgot', { email: u.email })).statusCode).toBe(202);
    const resetToken = tokenIn(await smtp.waitFor(u.email, /reset/i));
    const newPassword = 'another long passphrase 7';
    expect((await post('/auth/password/reset', { token: resetToken, password: newPassword })).statusCode).toBe(204);
    t.clock.advance(1000);
    const access = json(await post('/auth/login', { email: u.email, password: newPassword })).access_token as string;
    t.clock.advance(1000);
    const newEmail = uniqueEmail('moved');
    expect((await post('/users/me/email', { new_email: newEmail, password: newPassword }, access)).statusCode).toBe(202);
    const changeToken = tokenIn(await smtp.waitFor(newEmail, /Confirm your new email/));
    t.clock.advance(1000);
    expect((await post('/auth/confirm-email', { token: changeToken })).statusCode).toBe(200);
    t.clock.advance(1000);
    expect((await post('/auth/logout/all', {}, access)).statusCode).toBe(204);

    const fresh = json(await post('/auth/login', { email: newEmail, password: newPassword })).access_token as string;
    const list = await events(fresh);
    expect(list.map((e) => e.type)).toEqual(['sign_in', 'logout_all', 'email_changed', 'email_change_requested', 'sign_in', 'password_reset', 'sign_in']);
    const text = JSON.stringify(list);
    for (const secret of [PASSWORD, newPassword, resetToken, changeToken, access, newEmail]) expect(text).not.toContain(secret);
  });
});
