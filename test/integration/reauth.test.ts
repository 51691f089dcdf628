import { and, eq } from 'drizzle-orm';
import type { LightMyRequestResponse } from 'fastify';
import { generate } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEvents } from '../../src/features/audit/tables.js';
import { PASSWORD, bearer, createTestApp, json, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// The current password on signed-in endpoints (password and email change, account
// deletion, MFA enrolment, MFA off, new recovery codes) is counted exactly like a
// sign-in: the same per-address (or known-client) counter and delays, 429
// sign_in_throttled during a delay even for the right password, and every wrong
// one is a reauth_failed audit event. One access token cannot guess without limit.

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({ env: { BRUTE_FORCE_ENABLED: 'true' } });
});
afterAll(async () => {
  await t?.close();
});

let nextIp = 0;
const freshIp = () => `10.88.${Math.floor(++nextIp / 250)}.${nextIp % 250}`;

/** A user signed in from `home` (which becomes a known client of the address). */
async function signedIn(home = freshIp()) {
  const email = uniqueEmail('reauth');
  const reg = await t.app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD }, remoteAddress: home });
  expect(reg.statusCode).toBe(201);
  const tokens = json(await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD }, remoteAddress: home }));
  return { email, home, userId: json(reg).id as string, access: tokens.access_token as string };
}

/** The same user with TOTP on, and an access token signed in with a code (amr otp). */
async function withMfa(user: Awaited<ReturnType<typeof signedIn>>) {
  const code = () => generate({ secret, epoch: Math.floor(t.clock.now().getTime() / 1000) });
  const start = await t.app.inject({ method: 'POST', url: '/users/me/mfa/totp', payload: {}, headers: bearer(user.access), remoteAddress: user.home });
  const secret = json(start).secret as string;
  expect(
    (
      await t.app.inject({
        method: 'POST',
        url: '/users/me/mfa/totp/verify',
        payload: { code: await code() },
        headers: bearer(user.access),
        remoteAddress: user.home,
      })
    ).statusCode,
  ).toBe(200);
  t.clock.advance(30_000);
  const challenge = json(
    await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: PASSWORD }, remoteAddress: user.home }),
  );
  const done = await t.app.inject({
    method: 'POST',
    url: '/auth/mfa/verify',
    payload: { mfa_token: challenge.mfa_token, code: await code() },
    remoteAddress: user.home,
  });
  expect(done.statusCode, done.body).toBe(200);
  return { ...user, access: json(done).access_token as string, code };
}

const reauthFailures = async (userId: string) =>
  (
    await t.db.handle.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.userId, userId), eq(auditEvents.type, 'reauth_failed')))
  ).map((e) => ({ ip: e.ip, details: e.details }));

function expectThrottled(res: LightMyRequestResponse): number {
  expect(res.statusCode, res.body).toBe(429);
  expect(json(res).error).toBe('sign_in_throttled');
  expect(String(res.headers['retry-after'])).toMatch(/^[1-9]\d*$/);
  return Number(res.headers['retry-after']);
}

describe('re-authentication on signed-in endpoints', () => {
  it('10 wrong current passwords from one access token: 5 are checked, then 429 (the right one too) until the delay ends; each is audited', async () => {
    const user = await signedIn();
    // A stolen access token, used from elsewhere.
    const thief = freshIp();
    const change = (current: string) =>
      t.app.inject({
        method: 'POST',
        url: '/users/me/password',
        payload: { current_password: current, new_password: 'a brand new passphrase 9' },
        headers: bearer(user.access),
        remoteAddress: thief,
      });
    const answers: string[] = [];
    for (let i = 1; i <= 10; i++) {
      const res = await change(`guess number ${i}`);
      answers.push(`${res.statusCode} ${String(json(res).error)}`);
    }
    expect(answers).toEqual([...Array(5).fill('403 invalid_password'), ...Array(5).fill('429 sign_in_throttled')]);
    const wait = expectThrottled(await change(PASSWORD));

    // The same counter as sign-in: any stranger's sign-in to the address is delayed too; the owner at home is not.
    expectThrottled(await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: PASSWORD }, remoteAddress: freshIp() }));
    expect(
      (await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: PASSWORD }, remoteAddress: user.home })).statusCode,
    ).toBe(200);

    const audited = await reauthFailures(user.userId);
    expect(audited).toHaveLength(5);
    expect(audited.every((e) => e.ip === thief && JSON.stringify(e.details) === JSON.stringify({ action: 'password_change' }))).toBe(true);
    const throttled = await t.db.handle.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.userId, user.userId), eq(auditEvents.type, 'sign_in_throttled')));
    expect(throttled.map((e) => e.details)).toEqual([{ scope: 'account', failures: 5, delay_seconds: 1 }]);

    t.clock.advance(wait * 1000);
    expect((await change(PASSWORD)).statusCode).toBe(204);
  });

  const endpoints: Array<{
    action: string;
    mfa: boolean;
    call: (access: string, password: string, ip: string, code: () => Promise<string>) => Promise<LightMyRequestResponse>;
  }> = [
    {
      action: 'email_change',
      mfa: false,
      call: (access, password, ip) =>
        t.app.inject({
          method: 'POST',
          url: '/users/me/email',
          payload: { new_email: uniqueEmail('new'), password },
          headers: bearer(access),
          remoteAddress: ip,
        }),
    },
    {
      action: 'account_delete',
      mfa: false,
      call: (access, password, ip) => t.app.inject({ method: 'DELETE', url: '/users/me', payload: { password }, headers: bearer(access), remoteAddress: ip }),
    },
    {
      action: 'mfa_enrol',
      mfa: false,
      call: (access, password, ip) =>
        t.app.inject({ method: 'POST', url: '/users/me/mfa/totp', payload: { password }, headers: bearer(access), remoteAddress: ip }),
    },
    {
      action: 'mfa_disable',
      mfa: true,
      call: async (access, password, ip, code) =>
        t.app.inject({ method: 'DELETE', url: '/users/me/mfa/totp', payload: { password, code: await code() }, headers: bearer(access), remoteAddress: ip }),
    },
    {
      action: 'mfa_recovery_codes',
      mfa: true,
      call: (access, password, ip) =>
        t.app.inject({ method: 'POST', url: '/users/me/mfa/recovery-codes', payload: { password }, headers: bearer(access), remoteAddress: ip }),
    },
  ];
  for (const e of endpoints) {
    it(`${e.action}: wrong passwords share the sign-in delays and are audited`, async () => {
      const plain = await signedIn();
      const user = e.mfa ? await withMfa(plain) : { ...plain, code: async () => '000000' };
      const ip = freshIp();
      const statuses: number[] = [];
      for (let i = 1; i <= 6; i++) statuses.push((await e.call(user.access, `wrong guess ${i}`, ip, user.code)).statusCode);
      expect(statuses).toEqual([403, 403, 403, 403, 403, 429]);
      expectThrottled(await e.call(user.access, PASSWORD, ip, user.code));
      expect(await reauthFailures(user.userId)).toEqual(Array(5).fill({ ip, details: { action: e.action } }));
      // After the delay (and in a fresh TOTP step: the sign-in used this one), the right password works.
      t.clock.advance(30_000);
      expect((await e.call(user.access, PASSWORD, ip, user.code)).statusCode).toBeLessThan(300);
    });
  }
});
