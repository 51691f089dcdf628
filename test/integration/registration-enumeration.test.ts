import { and, eq } from 'drizzle-orm';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { users } from '../../src/features/accounts/tables.js';
import { emailTokens } from '../../src/features/email-tokens/tables.js';
import { outbox } from '../../src/features/mail/tables.js';
import { SmtpCatcher } from '../helpers/smtp.js';
import { PASSWORD, bearer, createTestApp, json, signUp, type TestApp } from '../helpers/test-app.js';

// REGISTRATION_ENUMERATION_PROTECTION (OWASP ASVS 5.0 V6.3 / V16 account enumeration): with it
// on, signing up with a registered email answers exactly like a new sign-up (201, same body
// shape, one bcrypt hash) and emails the existing owner instead, through the outbox and
// within the per-address caps. With it off (the default), a duplicate is a 409.

const OTHER_PASSWORD = 'an attacker passphrase 99';
let smtp: SmtpCatcher;
let on: TestApp;
let off: TestApp;
/** Protection on, request limits on (RATE_LIMIT_EMAIL_CHANGE_ACCOUNT=2/1h), over the same database. */
let limited: TestApp;
let n = 0;

beforeAll(async () => {
  smtp = await SmtpCatcher.start();
  const mail = { SMTP_SERVER: '127.0.0.1', SMTP_PORT: String(smtp.port), SMTP_TIMEOUT_MS: '5000', OUTBOX_POLL_INTERVAL_MS: '50', EMAIL_HOURLY_LIMIT: '3' };
  on = await createTestApp({ env: { ...mail, REGISTRATION_ENUMERATION_PROTECTION: 'true' } });
  off = await createTestApp({ env: mail, db: on.db });
  limited = await createTestApp({
    env: { ...mail, REGISTRATION_ENUMERATION_PROTECTION: 'true', RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_EMAIL_CHANGE_ACCOUNT: '2/1h' },
    db: on.db,
  });
});

afterAll(async () => {
  await limited?.close();
  await off?.close();
  await on?.close();
  await smtp?.close();
});

/** Two addresses of the same length (so even Content-Length cannot differ). */
function addresses() {
  const tag = `${process.pid}-${Date.now()}-${++n}`;
  return { existing: `enum-old-${tag}@example.com`, fresh: `enum-new-${tag}@example.com` };
}

const register = (app: FastifyInstance, email: string, password = PASSWORD, names: Record<string, string> = { first_name: 'Ada', last_name: 'Lovelace' }) =>
  app.inject({ method: 'POST', url: '/auth/register', payload: { email, password, ...names } });

async function hashes(app: FastifyInstance): Promise<number> {
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  return Number(/^tessera_password_hash_seconds_count\{op="hash"\} (\d+)/m.exec(text)?.[1] ?? 0);
}

const usersWithEmail = async (t: TestApp, email: string) => t.db.handle.db.select().from(users).where(eq(users.email, email));
const outboxRows = (t: TestApp, to: string, kind: string) =>
  t.db.handle.db
    .select()
    .from(outbox)
    .where(and(eq(outbox.recipient, to), eq(outbox.kind, kind)));

/** Headers that differ between any two responses (per request, per clock). */
const VARYING = new Set(['x-request-id', 'date']);
const stableHeaders = (res: LightMyRequestResponse) => Object.fromEntries(Object.entries(res.headers).filter(([k]) => !VARYING.has(k)));

describe('REGISTRATION_ENUMERATION_PROTECTION off (default)', () => {
  it('a duplicate sign-up is 409 email_already_registered, and the owner gets no mail about it', async () => {
    const { existing } = addresses();
    expect((await register(off.app, existing)).statusCode).toBe(201);
    const dup = await register(off.app, ` ${existing.toUpperCase()} `, OTHER_PASSWORD);
    expect(dup.statusCode).toBe(409);
    expect(json(dup).error).toBe('email_already_registered');
    expect(await outboxRows(off, existing, 'account_exists')).toEqual([]);
  });
});

describe('REGISTRATION_ENUMERATION_PROTECTION on', () => {
  it('a duplicate sign-up answers like a new one: 201, same headers, same body but for the random id and the email', async () => {
    const { existing, fresh } = addresses();
    expect((await register(on.app, existing)).statusCode).toBe(201);
    const dup = await register(on.app, existing, OTHER_PASSWORD);
    const neu = await register(on.app, fresh, OTHER_PASSWORD);
    expect(dup.statusCode).toBe(201);
    expect(neu.statusCode).toBe(201);
    expect(stableHeaders(dup)).toEqual(stableHeaders(neu));
    const [d, f] = [json(dup), json(neu)];
    expect(Object.keys(d)).toEqual(Object.keys(f));
    expect(d.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(d.id).not.toBe(f.id);
    expect(d.email).toBe(existing);
    expect(f.email).toBe(fresh);
    expect({ ...d, id: 'ID', email: 'EMAIL' }).toEqual({ ...f, id: 'ID', email: 'EMAIL' });
    expect(d).toMatchObject({ email_verified: false, first_name: 'Ada', last_name: 'Lovelace', has_password: true });
    // the id names nothing: one account for the address, the original one
    const rows = await usersWithEmail(on, existing);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.id).not.toBe(d.id);
  });

  it('spends one bcrypt hash, as a new sign-up does', async () => {
    const { existing, fresh } = addresses();
    expect((await register(on.app, existing)).statusCode).toBe(201);
    const h0 = await hashes(on.app);
    expect((await register(on.app, existing, OTHER_PASSWORD)).statusCode).toBe(201);
    const h1 = await hashes(on.app);
    expect((await register(on.app, fresh, OTHER_PASSWORD)).statusCode).toBe(201);
    const h2 = await hashes(on.app);
    expect(h1 - h0).toBe(1);
    expect(h2 - h1).toBe(1);
  });

  it('emails the existing owner ("someone tried to create an account"), not a confirmation, and changes nothing', async () => {
    const { existing } = addresses();
    expect((await register(on.app, existing)).statusCode).toBe(201);
    await smtp.waitFor(existing, /Confirm/);
    expect((await register(on.app, existing.toUpperCase(), OTHER_PASSWORD, { first_name: 'Mallory' })).statusCode).toBe(201);
    const notice = await smtp.waitFor(existing, /tried to create/);
    expect(notice.subject).toBe('Someone tried to create a Tessera account with your email address');
    expect(notice.text).toContain('Hello Ada,');
    expect(notice.text).toContain('sign in with your existing account');
    expect(notice.text).toContain('Forgot password');
    expect(notice.text).not.toMatch(/https?:\/\//);
    expect(notice.text).not.toContain('Mallory');
    expect(smtp.messagesTo(existing).map((m) => m.subject)).toHaveLength(2);
    // the account is untouched: the owner's password works, the newcomer's does not
    expect((await on.app.inject({ method: 'POST', url: '/auth/login', payload: { email: existing, password: PASSWORD } })).statusCode).toBe(200);
    expect(json(await on.app.inject({ method: 'POST', url: '/auth/login', payload: { email: existing, password: OTHER_PASSWORD } })).error).toBe(
      'invalid_grant',
    );
    expect((await usersWithEmail(on, existing))[0]?.firstName).toBe('Ada');
  });

  it('cannot be used to flood the owner: one notice per EMAIL_RESEND_INTERVAL, EMAIL_HOURLY_LIMIT per hour; every answer stays 201', async () => {
    const { existing } = addresses();
    expect((await register(on.app, existing)).statusCode).toBe(201);
    for (let i = 0; i < 5; i++) expect((await register(on.app, existing, OTHER_PASSWORD)).statusCode).toBe(201);
    expect(await outboxRows(on, existing, 'account_exists')).toHaveLength(1);
    for (let i = 0; i < 4; i++) {
      on.clock.advance(61_000);
      expect((await register(on.app, existing, OTHER_PASSWORD)).statusCode).toBe(201);
    }
    // EMAIL_HOURLY_LIMIT=3
    expect(await outboxRows(on, existing, 'account_exists')).toHaveLength(3);
  });

  it('two concurrent sign-ups of a new address: both 201, one account', async () => {
    const { fresh } = addresses();
    const [a, b] = await Promise.all([register(on.app, fresh), register(on.app, fresh, OTHER_PASSWORD)]);
    expect([a.statusCode, b.statusCode]).toEqual([201, 201]);
    expect(await usersWithEmail(on, fresh)).toHaveLength(1);
  });

  it('validation is unchanged: a bad email or password is still a 422', async () => {
    const { existing } = addresses();
    expect((await register(on.app, existing)).statusCode).toBe(201);
    expect(json(await register(on.app, existing, 'short')).error).toBe('password_too_short');
    expect(json(await register(on.app, existing, 'p'.repeat(73))).error).toBe('password_too_long');
    expect(json(await register(on.app, 'not-an-email', PASSWORD)).error).toBe('invalid_email');
  });
});

describe('POST /users/me/email and registered addresses', () => {
  const changeEmail = (app: FastifyInstance, access: string, newEmail: string, remoteAddress = '127.0.0.1') =>
    app.inject({ method: 'POST', url: '/users/me/email', payload: { new_email: newEmail, password: PASSWORD }, headers: bearer(access), remoteAddress });
  const linksTo = (t: TestApp, email: string) =>
    t.db.handle.db
      .select()
      .from(emailTokens)
      .where(and(eq(emailTokens.email, email), eq(emailTokens.purpose, 'change_email')));

  it('protection off: a taken address is 409 email_already_registered', async () => {
    const { existing } = addresses();
    await signUp(off.app, existing);
    const mover = await signUp(off.app, addresses().existing);
    const res = await changeEmail(off.app, mover.access, existing);
    expect([res.statusCode, json(res).error]).toEqual([409, 'email_already_registered']);
  });

  it('protection on: a taken address answers like a free one; no link is mailed, the owner is told instead', async () => {
    const { existing, fresh } = addresses();
    const owner = await signUp(on.app, existing);
    const mover = await signUp(on.app, addresses().existing);
    const taken = await changeEmail(on.app, mover.access, existing);
    const free = await changeEmail(on.app, mover.access, fresh);
    expect(taken.statusCode, taken.body).toBe(202);
    expect(free.statusCode, free.body).toBe(202);
    expect(taken.body).toBe(free.body);
    expect(stableHeaders(taken)).toEqual(stableHeaders(free));

    // The free address gets its link; the taken one none, and its owner a notice without a link.
    expect(await outboxRows(on, fresh, 'email_change_confirm')).toHaveLength(1);
    expect(await outboxRows(on, existing, 'email_change_confirm')).toEqual([]);
    expect(await linksTo(on, existing)).toEqual([]);
    expect(await outboxRows(on, existing, 'email_change_taken')).toHaveLength(1);
    const notice = await smtp.waitFor(existing, /tried to move another/);
    expect(notice.text).toContain('Hello there,');
    expect(notice.text).toContain('nothing changed');
    expect(notice.text).not.toMatch(/https?:\/\//);
    expect(notice.text).not.toContain(mover.email);
    // The mover's own mailbox sees the same as for a free address: the usual notice, each time.
    expect(await outboxRows(on, mover.email, 'email_change_notice')).toHaveLength(2);
    // Nothing moved.
    const me = json(await on.app.inject({ method: 'GET', url: '/users/me', headers: bearer(owner.access) }));
    expect(me.email).toBe(existing);
    expect((await usersWithEmail(on, existing))[0]?.id).toBe(owner.userId);
  });

  it("protection on: the owner's notice is capped per address like the other notices; every answer stays 202", async () => {
    const { existing } = addresses();
    await signUp(on.app, existing);
    const mover = await signUp(on.app, addresses().existing);
    for (let i = 0; i < 4; i++) expect((await changeEmail(on.app, mover.access, existing)).statusCode).toBe(202);
    expect(await outboxRows(on, existing, 'email_change_taken')).toHaveLength(1);
  });

  it('RATE_LIMIT_EMAIL_CHANGE_ACCOUNT counts per account, whatever the IP or the address asked for', async () => {
    const a = await signUp(limited.app, addresses().existing);
    const b = await signUp(limited.app, addresses().existing);
    const first = await changeEmail(limited.app, a.access, addresses().fresh, '10.9.0.1');
    expect(first.statusCode, first.body).toBe(202);
    expect((await changeEmail(limited.app, a.access, addresses().existing, '10.9.0.2')).statusCode).toBe(202);
    const third = await changeEmail(limited.app, a.access, addresses().fresh, '10.9.0.3');
    expect([third.statusCode, json(third).error]).toEqual([429, 'rate_limited']);
    expect(Number(third.headers['retry-after'])).toBeGreaterThan(0);
    // Another account is not affected, even from the same address.
    expect((await changeEmail(limited.app, b.access, addresses().fresh, '10.9.0.3')).statusCode).toBe(202);
    // Without a valid session the request is a 401 and counts against nobody.
    const anonymous = await limited.app.inject({ method: 'POST', url: '/users/me/email', payload: { new_email: addresses().fresh, password: PASSWORD } });
    expect(anonymous.statusCode).toBe(401);
    // An hour later (signed in again: access tokens live 15 minutes), the account may ask again.
    limited.clock.advance(3600_000 + 1000);
    const again = json(await limited.app.inject({ method: 'POST', url: '/auth/login', payload: { email: a.email, password: PASSWORD } }))
      .access_token as string;
    expect((await changeEmail(limited.app, again, addresses().fresh)).statusCode).toBe(202);
  });
});
