import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { users } from '../../src/features/accounts/tables.js';
import { emailTokens } from '../../src/features/email-tokens/tables.js';
import * as outboxRepo from '../../src/features/mail/outbox-repo.js';
import { outbox } from '../../src/features/mail/tables.js';
import { SmtpCatcher, linkIn, tokenIn, type ReceivedMail } from '../helpers/smtp.js';
import { PASSWORD, TEST_ISSUER, bearer, createTestApp, json, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// Every email flow through HTTP, with the server sending the outbox itself (no Redis)
// to a real SMTP server. The clock is manual: link expiry, send caps and retry backoff
// move only when a test advances it.

const NEW_PASSWORD = 'a brand new passphrase 42';

let smtp: SmtpCatcher;
let t: TestApp;

function smtpEnv(extra: Record<string, string> = {}) {
  return {
    SMTP_SERVER: '127.0.0.1',
    SMTP_PORT: String(smtp.port),
    SMTP_TIMEOUT_MS: '5000',
    REQUIRE_EMAIL_VERIFICATION: 'true',
    OUTBOX_POLL_INTERVAL_MS: '50',
    EMAIL_RETRY_DELAY_MS: '1000',
    EMAIL_MAX_ATTEMPTS: '3',
    EMAIL_HOURLY_LIMIT: '3',
    ...extra,
  };
}

beforeAll(async () => {
  smtp = await SmtpCatcher.start();
  t = await createTestApp({ env: smtpEnv() });
});

afterAll(async () => {
  await t?.close();
  await smtp?.close();
});

const post = (app: FastifyInstance, url: string, payload: object, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url, payload, headers });
const login = (app: FastifyInstance, email: string, password: string) => post(app, '/auth/login', { email, password });
/** What the button of a page posts: a form-encoded body. */
const formPost = (app: FastifyInstance, url: string, form: Record<string, string>) =>
  app.inject({ method: 'POST', url, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams(form).toString() });

async function register(app: FastifyInstance, email = uniqueEmail('mail'), firstName = 'Ada') {
  const res = await post(app, '/auth/register', { email, password: PASSWORD, first_name: firstName });
  expect(res.statusCode, res.body).toBe(201);
  return { email, id: json(res).id as string };
}

/** Registers, confirms through the emailed token, signs in. */
async function confirmedUser(app: FastifyInstance = t.app, catcher = smtp) {
  const { email, id } = await register(app);
  const mail = await catcher.waitFor(email, /Confirm your email/);
  const res = await post(app, '/auth/confirm-email', { token: tokenIn(mail) });
  expect(res.statusCode, res.body).toBe(200);
  const tokens = await login(app, email, PASSWORD);
  expect(tokens.statusCode, tokens.body).toBe(200);
  return { email, id, access: json(tokens).access_token as string, refresh: json(tokens).refresh_token as string };
}

const rowsTo = (ta: TestApp, to: string) => ta.db.handle.db.select().from(outbox).where(eq(outbox.recipient, to));

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(await t.db.handle.db.select().from(outbox).where(eq(outbox.status, 'pending')))}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function expectLinkError(res: { statusCode: number; body: string; headers: Record<string, unknown> }, code: string) {
  expect(res.statusCode, res.body).toBe(400);
  if (String(res.headers['content-type']).startsWith('text/html')) expect(res.body).toContain(code);
  else expect(JSON.parse(res.body)).toMatchObject({ error: code });
}

describe('registration and confirmation', () => {
  it('queues a confirmation email; the emailed token confirms; only then can the user sign in', async () => {
    const { email, id } = await register(t.app);
    const mail = await smtp.waitFor(email, /Confirm your email address for Tessera/);
    expect(mail.from).toContain('no-reply@tessera.test');
    expect(mail.text).toContain('Hello Ada');
    expect(mail.text).toContain('expires in 24 hours');
    expect(linkIn(mail).startsWith(`${TEST_ISSUER}/auth/confirm-email?token=`)).toBe(true);
    expect(mail.html).toContain(linkIn(mail).replace(/&/g, '&amp;'));
    expect(mail.messageId).toMatch(/^<[0-9a-f-]{36}@tessera\.test>$/);

    const denied = await login(t.app, email, PASSWORD);
    expect(denied.statusCode).toBe(403);
    expect(json(denied).error).toBe('email_not_verified');
    // The wrong password learns nothing about the state of the address.
    const wrong = await login(t.app, email, 'not the password at all');
    expect(wrong.statusCode).toBe(400);
    expect(json(wrong).error).toBe('invalid_grant');

    const confirmed = await post(t.app, '/auth/confirm-email', { token: tokenIn(mail) });
    expect(confirmed.statusCode, confirmed.body).toBe(200);
    expect(json(confirmed)).toMatchObject({ id, email, email_verified: true });
    const ok = await login(t.app, email, PASSWORD);
    expect(ok.statusCode, ok.body).toBe(200);

    expectLinkError(await post(t.app, '/auth/confirm-email', { token: tokenIn(mail) }), 'email_token_used');
  });

  it('stores the link token only as a hash, and erases its encrypted copy once sent', async () => {
    const { email } = await register(t.app);
    const mail = await smtp.waitFor(email, /Confirm/);
    const token = tokenIn(mail);
    await until(async () => (await rowsTo(t, email))[0]?.status === 'sent', 'the row to be marked sent');
    const [row] = await rowsTo(t, email);
    expect(row).toMatchObject({ kind: 'confirm_email', status: 'sent', sealedSecret: null, attempts: 1, lastError: null, messageId: mail.messageId });
    const everything = JSON.stringify([await t.db.handle.db.select().from(outbox), await t.db.handle.db.select().from(emailTokens)]);
    expect(everything).not.toContain(token);
  });

  it("GET and HEAD of the link change nothing (link scanners, previews): the page's button (a form POST) confirms", async () => {
    const { email } = await register(t.app);
    const link = linkIn(await smtp.waitFor(email, /Confirm/));
    const url = link.slice(TEST_ISSUER.length);
    const token = new URL(link).searchParams.get('token') ?? '';
    for (let i = 0; i < 5; i++) {
      const head = await t.app.inject({ method: 'HEAD', url });
      expect(head.statusCode).toBe(200);
      const page = await t.app.inject({ method: 'GET', url });
      expect(page.statusCode).toBe(200);
      expect(page.headers['content-type']).toMatch(/^text\/html/);
      expect(page.headers['cache-control']).toBe('no-store');
      expect(page.headers['referrer-policy']).toBe('no-referrer');
      expect(page.body).toContain('Confirm your email address');
      expect(page.body).toContain('<form method="post" action="confirm-email">');
      expect(page.body).toContain(`<input type="hidden" name="token" value="${token}">`);
      expect(page.body).not.toContain('<script');
    }
    const [row] = await t.db.handle.db.select().from(users).where(eq(users.email, email));
    expect(row?.emailVerifiedAt).toBeNull();
    expect(json(await login(t.app, email, PASSWORD)).error).toBe('email_not_verified');

    const done = await formPost(t.app, '/auth/confirm-email', { token });
    expect(done.statusCode, done.body).toBe(200);
    expect(done.headers['content-type']).toMatch(/^text\/html/);
    expect(done.headers['cache-control']).toBe('no-store');
    expect(done.body).toContain('Email address confirmed');
    expect((await login(t.app, email, PASSWORD)).statusCode).toBe(200);

    expectLinkError(await t.app.inject({ method: 'GET', url }), 'email_token_used');
    expectLinkError(await formPost(t.app, '/auth/confirm-email', { token }), 'email_token_used');
    expectLinkError(await t.app.inject({ method: 'GET', url: '/auth/confirm-email?token=garbage' }), 'email_token_invalid');
    expectLinkError(await t.app.inject({ method: 'GET', url: '/auth/confirm-email' }), 'email_token_invalid');
    expectLinkError(await t.app.inject({ method: 'GET', url: '/auth/confirm-email?token=a&token=b' }), 'email_token_invalid');
  });

  it('a confirmation link expires after EMAIL_CONFIRM_TTL (24 h)', async () => {
    const { email } = await register(t.app);
    const token = tokenIn(await smtp.waitFor(email, /Confirm/));
    t.clock.advance(24 * 3600 * 1000 + 1000);
    expectLinkError(await post(t.app, '/auth/confirm-email', { token }), 'email_token_expired');
  });

  it('resend: always 202 with one body; mails only unconfirmed accounts, at most once a minute and EMAIL_HOURLY_LIMIT an hour', async () => {
    const { email } = await register(t.app);
    await smtp.waitFor(email, /Confirm/);
    const verified = await confirmedUser();
    const unknown = uniqueEmail('nobody');
    const answers = await Promise.all([email, verified.email, unknown].map((e) => post(t.app, '/auth/confirm-email/resend', { email: e })));
    for (const a of answers) {
      expect(a.statusCode).toBe(202);
      expect(a.body).toBe(answers[0]?.body);
    }
    // Within a minute of the registration mail: silently dropped.
    expect((await rowsTo(t, email)).length).toBe(1);
    expect((await rowsTo(t, unknown)).length).toBe(0);
    expect((await rowsTo(t, verified.email)).length).toBe(1);

    t.clock.advance(61_000);
    expect((await post(t.app, '/auth/confirm-email/resend', { email: `  ${email.toUpperCase()} ` })).statusCode).toBe(202);
    await smtp.until(() => smtp.messagesTo(email).length === 2, 10_000, 'the resent mail');
    t.clock.advance(61_000);
    await post(t.app, '/auth/confirm-email/resend', { email });
    await smtp.until(() => smtp.messagesTo(email).length === 3, 10_000, 'the second resent mail');
    // Three in the last hour (EMAIL_HOURLY_LIMIT=3): the fourth is dropped, an hour later it goes.
    t.clock.advance(61_000);
    expect((await post(t.app, '/auth/confirm-email/resend', { email })).statusCode).toBe(202);
    expect((await rowsTo(t, email)).length).toBe(3);
    t.clock.advance(3600_000);
    await post(t.app, '/auth/confirm-email/resend', { email });
    await smtp.until(() => smtp.messagesTo(email).length === 4, 10_000, 'the mail after the hourly cap');

    // Every confirmation link sent is good (mails can arrive out of order); the first one works.
    const first = smtp.messagesTo(email)[0] as ReceivedMail;
    expect((await post(t.app, '/auth/confirm-email', { token: tokenIn(first) })).statusCode).toBe(200);
  });

  it('mail goes to the stored form: a fullwidth, Unicode-domain spelling is stored and delivered as one punycode address', async () => {
    const local = `deliver.${process.pid}.${Date.now()}`;
    const stored = `${local}@xn--bcher-kva.example`;
    const res = await post(t.app, '/auth/register', { email: `${local.toUpperCase()}@\uff22\u00dccher\uff0eexample`, password: PASSWORD });
    expect(res.statusCode, res.body).toBe(201);
    expect(json(res).email).toBe(stored);
    // mailparser and smtp-server show the domain in Unicode; the raw header carries what nodemailer was given.
    const delivered = () => smtp.received.filter((m) => m.rcptTo.some((r) => r.startsWith(`${local}@`)));
    await smtp.until(() => delivered().length === 1, 10_000, 'the confirmation');
    expect(delivered()[0]?.rcptTo).toEqual([`${local}@bücher.example`]);
    expect(delivered()[0]?.raw).toContain(`\r\nTo: ${stored}\r\n`);
    expect((await rowsTo(t, stored)).map((r) => r.recipient)).toEqual([stored]);
    // Another spelling of the same mailbox asks for a new link: it goes to the same, stored address.
    expect((await post(t.app, '/auth/confirm-email/resend', { email: `${local}@bücher.example` })).statusCode).toBe(202);
    t.clock.advance(61_000);
    expect((await post(t.app, '/auth/confirm-email/resend', { email: `${local}@bücher.example` })).statusCode).toBe(202);
    await smtp.until(() => delivered().length === 2, 10_000, 'the resent confirmation');
    expect(delivered().map((m) => /\r\nTo: (.*)\r\n/.exec(m.raw)?.[1])).toEqual([stored, stored]);
  });

  it('a malformed address is a 422, not a 202', async () => {
    const res = await post(t.app, '/auth/confirm-email/resend', { email: 'not an address' });
    expect(res.statusCode).toBe(422);
    expect(json(res).error).toBe('invalid_email');
  });
});

describe('password reset', () => {
  it('forgot: same status and body for known and unknown addresses; mail only to the known one', async () => {
    const user = await confirmedUser();
    const unknown = uniqueEmail('unknown');
    const a = await post(t.app, '/auth/password/forgot', { email: unknown });
    const b = await post(t.app, '/auth/password/forgot', { email: user.email });
    expect(a.statusCode).toBe(202);
    expect(b.statusCode).toBe(202);
    expect(a.body).toBe(b.body);
    expect(Object.keys(a.headers).sort()).toEqual(Object.keys(b.headers).sort());
    await smtp.waitFor(user.email, /Reset your Tessera password/);
    expect(smtp.messagesTo(unknown)).toEqual([]);
    expect(await rowsTo(t, unknown)).toEqual([]);
  });

  it('a forged Host or X-Forwarded-Host does not change the link', async () => {
    const user = await confirmedUser();
    const res = await post(
      t.app,
      '/auth/password/forgot',
      { email: user.email },
      { host: 'evil.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' },
    );
    expect(res.statusCode).toBe(202);
    const mail = await smtp.waitFor(user.email, /Reset/);
    expect(linkIn(mail).startsWith(`${TEST_ISSUER}/auth/password/reset?token=`)).toBe(true);
    expect(mail.text + mail.html).not.toContain('evil.example');
  });

  it('reset sets the password, ends every session, sends a notice, and works once', async () => {
    const user = await confirmedUser();
    await post(t.app, '/auth/password/forgot', { email: user.email });
    const token = tokenIn(await smtp.waitFor(user.email, /Reset/));

    const form = await t.app.inject({ method: 'GET', url: `/auth/password/reset?token=${token}` });
    expect(form.statusCode).toBe(200);
    expect(form.body).toContain('autocomplete="new-password"');
    expect(form.body).toContain(user.email);

    const weak = await post(t.app, '/auth/password/reset', { token, password: 'password' });
    expect(weak.statusCode).toBe(422);
    expect(json(weak).error).toBe('password_too_common');

    const done = await post(t.app, '/auth/password/reset', { token, password: NEW_PASSWORD });
    expect(done.statusCode, done.body).toBe(204);
    expect((await login(t.app, user.email, NEW_PASSWORD)).statusCode).toBe(200);
    expect(json(await login(t.app, user.email, PASSWORD)).error).toBe('invalid_grant');
    const refresh = await post(t.app, '/auth/refresh', { refresh_token: user.refresh });
    expect(refresh.statusCode).toBe(400);
    const me = await t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(user.access) });
    expect(me.statusCode).toBe(401);
    const notice = await smtp.waitFor(user.email, /password was changed/);
    expect(notice.text).toContain('every signed-in device was signed out');

    expectLinkError(await post(t.app, '/auth/password/reset', { token, password: 'yet another passphrase 7' }), 'email_token_used');
    expectLinkError(await t.app.inject({ method: 'GET', url: `/auth/password/reset?token=${token}` }), 'email_token_used');
  });

  it('a newer reset link replaces the older one; links expire after PASSWORD_RESET_TTL (30 min)', async () => {
    const user = await confirmedUser();
    await post(t.app, '/auth/password/forgot', { email: user.email });
    await smtp.until(() => smtp.messagesTo(user.email).filter((m) => /Reset/.test(m.subject)).length === 1, 10_000, 'the first reset mail');
    t.clock.advance(61_000);
    await post(t.app, '/auth/password/forgot', { email: user.email });
    await smtp.until(() => smtp.messagesTo(user.email).filter((m) => /Reset/.test(m.subject)).length === 2, 10_000, 'the second reset mail');
    const [older, newer] = smtp.messagesTo(user.email).filter((m) => /Reset/.test(m.subject)) as [ReceivedMail, ReceivedMail];
    expectLinkError(await post(t.app, '/auth/password/reset', { token: tokenIn(older), password: NEW_PASSWORD }), 'email_token_used');
    t.clock.advance(30 * 60_000 + 1000);
    expectLinkError(await post(t.app, '/auth/password/reset', { token: tokenIn(newer), password: NEW_PASSWORD }), 'email_token_expired');
    expect((await login(t.app, user.email, PASSWORD)).statusCode).toBe(200);
  });

  it('a token of one purpose is refused by the other; garbage is refused everywhere', async () => {
    const { email } = await register(t.app);
    const confirmToken = tokenIn(await smtp.waitFor(email, /Confirm/));
    expectLinkError(await post(t.app, '/auth/password/reset', { token: confirmToken, password: NEW_PASSWORD }), 'email_token_invalid');
    expectLinkError(await t.app.inject({ method: 'GET', url: `/auth/password/reset?token=${confirmToken}` }), 'email_token_invalid');
    const user = await confirmedUser();
    await post(t.app, '/auth/password/forgot', { email: user.email });
    const resetToken = tokenIn(await smtp.waitFor(user.email, /Reset/));
    expectLinkError(await post(t.app, '/auth/confirm-email', { token: resetToken }), 'email_token_invalid');
    for (const garbage of ['x', 'A'.repeat(43), '../../etc/passwd', resetToken.slice(0, -1)]) {
      expectLinkError(await post(t.app, '/auth/password/reset', { token: garbage, password: NEW_PASSWORD }), 'email_token_invalid');
    }
    expect((await post(t.app, '/auth/password/reset', { token: 'x'.repeat(201), password: NEW_PASSWORD })).statusCode).toBe(422);
    // The reset token is still good after all that.
    expect((await post(t.app, '/auth/password/reset', { token: resetToken, password: NEW_PASSWORD })).statusCode).toBe(204);
  });

  it('a reset through the emailed link also confirms an unconfirmed address', async () => {
    const { email } = await register(t.app);
    await smtp.waitFor(email, /Confirm/);
    await post(t.app, '/auth/password/forgot', { email });
    const token = tokenIn(await smtp.waitFor(email, /Reset/));
    expect((await post(t.app, '/auth/password/reset', { token, password: NEW_PASSWORD })).statusCode).toBe(204);
    expect((await login(t.app, email, NEW_PASSWORD)).statusCode).toBe(200);
  });
});

describe('email change', () => {
  it('confirms the new address before switching, and tells the old one', async () => {
    const user = await confirmedUser();
    const newEmail = uniqueEmail('moved');
    const auth = bearer(user.access);
    const change = (body: object) => post(t.app, '/users/me/email', body, auth);

    expect(json(await change({ new_email: newEmail, password: 'wrong password here' })).error).toBe('invalid_password');
    expect(json(await change({ new_email: user.email, password: PASSWORD })).error).toBe('email_unchanged');
    expect(json(await change({ new_email: 'nope', password: PASSWORD })).error).toBe('invalid_email');
    const other = await confirmedUser();
    const taken = await change({ new_email: other.email, password: PASSWORD });
    expect(taken.statusCode).toBe(409);

    const ok = await change({ new_email: ` ${newEmail.toUpperCase()} `, password: PASSWORD });
    expect(ok.statusCode, ok.body).toBe(202);
    const notice = await smtp.waitFor(user.email, /about to change/);
    expect(notice.text).toContain(newEmail);
    const confirm = await smtp.waitFor(newEmail, /Confirm your new email/);
    expect(linkIn(confirm).startsWith(`${TEST_ISSUER}/auth/confirm-email?token=`)).toBe(true);

    // Nothing changes until the new address is confirmed.
    expect(json(await t.app.inject({ method: 'GET', url: '/users/me', headers: auth })).email).toBe(user.email);
    // Opening the link shows what it is for; only its button (the form POST) switches the address.
    const page = await t.app.inject({ method: 'GET', url: linkIn(confirm).slice(TEST_ISSUER.length) });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Confirm your new email address');
    expect(page.body).toContain(newEmail);
    expect((await t.app.inject({ method: 'HEAD', url: linkIn(confirm).slice(TEST_ISSUER.length) })).statusCode).toBe(200);
    expect(json(await t.app.inject({ method: 'GET', url: '/users/me', headers: auth })).email).toBe(user.email);
    expect((await formPost(t.app, '/auth/confirm-email', { token: tokenIn(confirm) })).statusCode).toBe(200);
    expect(json(await t.app.inject({ method: 'GET', url: '/users/me', headers: auth }))).toMatchObject({ email: newEmail, email_verified: true });
    expect((await login(t.app, newEmail, PASSWORD)).statusCode).toBe(200);
    expect((await login(t.app, user.email, PASSWORD)).statusCode).toBe(400);
  });

  it('a newer change request replaces the older link; a taken address at confirmation is a 409 and the link stays unused', async () => {
    const user = await confirmedUser();
    const auth = bearer(user.access);
    const first = uniqueEmail('first');
    const second = uniqueEmail('second');
    expect((await post(t.app, '/users/me/email', { new_email: first, password: PASSWORD }, auth)).statusCode).toBe(202);
    const firstToken = tokenIn(await smtp.waitFor(first, /Confirm your new/));
    expect((await post(t.app, '/users/me/email', { new_email: second, password: PASSWORD }, auth)).statusCode).toBe(202);
    const secondToken = tokenIn(await smtp.waitFor(second, /Confirm your new/));
    expectLinkError(await post(t.app, '/auth/confirm-email', { token: firstToken }), 'email_token_used');

    // Someone registers the second address before the link is opened.
    await register(t.app, second);
    const clash = await post(t.app, '/auth/confirm-email', { token: secondToken });
    expect(clash.statusCode).toBe(409);
    expect(json(clash).error).toBe('email_already_registered');
    expect(json(await t.app.inject({ method: 'GET', url: '/users/me', headers: auth })).email).toBe(user.email);
  });
});

describe('emailed links end with the password', () => {
  /** Someone with the password (a thief) asks to move the account to their own address; returns their link's token. */
  async function thiefAsksForEmailChange(user: { email: string }) {
    const thief = json(await login(t.app, user.email, PASSWORD)).access_token as string;
    const theirs = uniqueEmail('thief');
    expect((await post(t.app, '/users/me/email', { new_email: theirs, password: PASSWORD }, bearer(thief))).statusCode).toBe(202);
    return { theirs, token: tokenIn(await smtp.waitFor(theirs, /Confirm your new/)) };
  }

  it("the owner's password reset voids a pending email change asked for with the stolen password", async () => {
    const user = await confirmedUser();
    const { token } = await thiefAsksForEmailChange(user);
    await smtp.waitFor(user.email, /about to change/);
    // The owner follows the notice: "reset your password now".
    await post(t.app, '/auth/password/forgot', { email: user.email });
    const reset = tokenIn(await smtp.waitFor(user.email, /Reset/));
    expect((await post(t.app, '/auth/password/reset', { token: reset, password: NEW_PASSWORD })).statusCode).toBe(204);

    expectLinkError(await post(t.app, '/auth/confirm-email', { token }), 'email_token_used');
    const owner = json(await login(t.app, user.email, NEW_PASSWORD)).access_token as string;
    expect(json(await t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(owner) })).email).toBe(user.email);
  });

  it('a password change voids a reset link and an email-change link mailed before it', async () => {
    const user = await confirmedUser();
    const { token: change } = await thiefAsksForEmailChange(user);
    await post(t.app, '/auth/password/forgot', { email: user.email });
    const reset = tokenIn(await smtp.waitFor(user.email, /Reset/));
    const changed = await post(t.app, '/users/me/password', { current_password: PASSWORD, new_password: NEW_PASSWORD }, bearer(user.access));
    expect(changed.statusCode, changed.body).toBe(204);

    expectLinkError(await post(t.app, '/auth/password/reset', { token: reset, password: 'the thief chose this one 1' }), 'email_token_used');
    expectLinkError(await post(t.app, '/auth/confirm-email', { token: change }), 'email_token_used');
    expect((await login(t.app, user.email, NEW_PASSWORD)).statusCode).toBe(200);
  });

  it('"sign out everywhere" voids every emailed link of the account', async () => {
    const user = await confirmedUser();
    const { token: change } = await thiefAsksForEmailChange(user);
    await post(t.app, '/auth/password/forgot', { email: user.email });
    const reset = tokenIn(await smtp.waitFor(user.email, /Reset/));
    expect((await post(t.app, '/auth/logout/all', {}, bearer(user.access))).statusCode).toBe(204);

    expectLinkError(await post(t.app, '/auth/confirm-email', { token: change }), 'email_token_used');
    expectLinkError(await post(t.app, '/auth/password/reset', { token: reset, password: NEW_PASSWORD }), 'email_token_used');
    expect((await login(t.app, user.email, PASSWORD)).statusCode).toBe(200);
  });
});

describe('delivery', () => {
  // Each test plans the SMTP answers of its own message: nothing else may be in flight.
  beforeEach(async () => {
    await until(async () => (await t.db.handle.db.select().from(outbox)).every((r) => r.status === 'sent' || r.status === 'failed'), 'the outbox to settle');
  });

  it('SMTP refusing the first attempts (451): retried with backoff, delivered exactly once', async () => {
    smtp.plan.push({ code: 451, message: 'try again later' }, { code: 451, message: 'still busy' });
    const { email } = await register(t.app);
    await until(async () => (await rowsTo(t, email))[0]?.attempts === 1 && (await rowsTo(t, email))[0]?.status === 'pending', 'the first failure');
    const [row] = await rowsTo(t, email);
    expect(row?.lastError).toContain('451');
    // Not retried before its backoff (1 s, then 2 s on the manual clock).
    await new Promise((r) => setTimeout(r, 200));
    expect((await rowsTo(t, email))[0]?.attempts).toBe(1);
    t.clock.advance(1000);
    await until(async () => (await rowsTo(t, email))[0]?.attempts === 2 && (await rowsTo(t, email))[0]?.status === 'pending', 'the second failure');
    t.clock.advance(2000);
    await smtp.waitFor(email, /Confirm/);
    await until(async () => (await rowsTo(t, email))[0]?.status === 'sent', 'sent');
    expect((await rowsTo(t, email))[0]?.attempts).toBe(3);
    await new Promise((r) => setTimeout(r, 200));
    expect(smtp.messagesTo(email)).toHaveLength(1);
  });

  it('a permanent refusal (550) ends failed with its error; re-queued, it is delivered once', async () => {
    smtp.plan.push({ code: 550, message: 'mailbox unavailable' });
    const { email } = await register(t.app);
    await until(async () => (await rowsTo(t, email))[0]?.status === 'failed', 'failed');
    const [row] = await rowsTo(t, email);
    expect(row?.lastError).toContain('550');
    expect(row?.sealedSecret).not.toBeNull();
    expect(await outboxRepo.requeueFailed(t.db.handle.db, t.clock.now())).toBeGreaterThanOrEqual(1);
    const mail = await smtp.waitFor(email, /Confirm/);
    expect((await post(t.app, '/auth/confirm-email', { token: tokenIn(mail) })).statusCode).toBe(200);
    expect(smtp.messagesTo(email)).toHaveLength(1);
  });

  it('a message that keeps failing gives up after EMAIL_MAX_ATTEMPTS (3)', async () => {
    smtp.plan.push({ code: 421, message: 'down' }, { code: 421, message: 'down' }, { code: 421, message: 'down' });
    const { email } = await register(t.app);
    for (let attempt = 1; attempt <= 2; attempt++) {
      await until(async () => (await rowsTo(t, email))[0]?.attempts === attempt && (await rowsTo(t, email))[0]?.status === 'pending', `failure ${attempt}`);
      t.clock.advance(10_000);
    }
    await until(async () => (await rowsTo(t, email))[0]?.status === 'failed', 'failed');
    expect((await rowsTo(t, email))[0]).toMatchObject({ attempts: 3, status: 'failed' });
    expect(smtp.messagesTo(email)).toHaveLength(0);
  });
});

describe('configuration of mail', () => {
  it('EMAIL_TEMPLATES_DIR overrides single files; APP_NAME names the product', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tessera-templates-'));
    writeFileSync(path.join(dir, 'confirm_email.subject.txt'), 'Welcome to {{app_name}}, {{name}}!\n');
    const acme = await createTestApp({ env: smtpEnv({ EMAIL_TEMPLATES_DIR: dir, APP_NAME: 'Acme Shop', SMTP_FROM: 'Acme <hello@acme.example>' }) });
    try {
      const { email } = await register(acme.app, uniqueEmail('acme'), 'Grace');
      const mail = await smtp.waitFor(email, /Welcome/);
      expect(mail.subject).toBe('Welcome to Acme Shop, Grace!');
      expect(mail.from).toContain('hello@acme.example');
      expect(mail.text).toContain('for Acme Shop');
    } finally {
      await acme.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('redirects to EMAIL_CONFIRMED_REDIRECT_URL and PASSWORD_RESET_URL when set', async () => {
    const app2 = await createTestApp({
      env: smtpEnv({ EMAIL_CONFIRMED_REDIRECT_URL: 'https://app.example/welcome', PASSWORD_RESET_URL: 'https://app.example/reset?from=mail' }),
    });
    try {
      const { email } = await register(app2.app);
      const token = tokenIn(await smtp.waitFor(email, /Confirm/));
      // Opening the link still shows the page with its button: the redirect follows the confirmation (the form POST).
      const page = await app2.app.inject({ method: 'GET', url: `/auth/confirm-email?token=${token}` });
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain('<form method="post"');
      const ok = await formPost(app2.app, '/auth/confirm-email', { token });
      expect(ok.statusCode).toBe(303);
      expect(ok.headers.location).toBe('https://app.example/welcome?email_confirmed=true');
      const used = await formPost(app2.app, '/auth/confirm-email', { token });
      expect(used.statusCode).toBe(303);
      expect(used.headers.location).toBe('https://app.example/welcome?error=email_token_used');
      const usedLink = await app2.app.inject({ method: 'GET', url: `/auth/confirm-email?token=${token}` });
      expect(usedLink.statusCode).toBe(303);
      expect(usedLink.headers.location).toBe('https://app.example/welcome?error=email_token_used');
      const reset = await app2.app.inject({ method: 'GET', url: '/auth/password/reset?token=abc' });
      expect(reset.statusCode).toBe(302);
      expect(reset.headers.location).toBe('https://app.example/reset?from=mail&token=abc');
    } finally {
      await app2.close();
    }
  });

  it('without SMTP_SERVER, messages are written to DATA_DIR/mail/<id>.eml and <id>.txt (a link a person can copy)', async () => {
    const files = await createTestApp({ env: { REQUIRE_EMAIL_VERIFICATION: 'true', OUTBOX_POLL_INTERVAL_MS: '50' } });
    try {
      const { email } = await register(files.app);
      const dir = path.join(files.config.dataDir, 'mail');
      await until(async () => (await rowsTo(files, email))[0]?.status === 'sent', 'the file to be written');
      const [row] = await rowsTo(files, email);
      expect(readdirSync(dir).sort()).toEqual([`${row?.id}.eml`, `${row?.id}.txt`]);
      const eml = readFileSync(path.join(dir, `${row?.id}.eml`), 'utf8');
      expect(eml).toContain(`To: ${email}`);
      expect(eml).toContain('Content-Type: text/html');
      // The .txt holds the plain text as sent: the whole link on one line, no quoted-printable `=3D` or soft breaks.
      const txt = readFileSync(path.join(dir, `${row?.id}.txt`), 'utf8');
      expect(txt).toContain(`To: ${email}`);
      expect(txt).not.toMatch(/=3D|=\n/);
      const link = /^(http\S*\/auth\/confirm-email\?token=([A-Za-z0-9_-]+))$/m.exec(txt);
      expect(link, txt).not.toBeNull();
      // The same link as in the .eml (once its quoted-printable is undone).
      expect(eml.replace(/=\n/g, '').replace(/=3D/g, '=')).toContain(link?.[1]);
      expect((await post(files.app, '/auth/confirm-email', { token: link?.[2] ?? '' })).statusCode).toBe(200);
    } finally {
      await files.close();
    }
  });
});
