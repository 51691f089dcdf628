import { eq } from 'drizzle-orm';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emailSignInCodes } from '../../src/features/email-sign-in/tables.js';
import { outbox } from '../../src/features/mail/tables.js';
import { SmtpCatcher, tokenIn, type ReceivedMail } from '../helpers/smtp.js';
import { PASSWORD, bearer, createTestApp, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// Passwordless sign-in by an emailed code or link, through HTTP, with the server sending the outbox
// to a real SMTP server and a manual clock for expiry and the resend caps.

const GRANT = 'urn:tessera:params:oauth:grant-type:email-code';
let smtp: SmtpCatcher;
let t: TestApp;

beforeAll(async () => {
  smtp = await SmtpCatcher.start();
  t = await createTestApp({
    env: {
      SMTP_SERVER: '127.0.0.1',
      SMTP_PORT: String(smtp.port),
      SMTP_TIMEOUT_MS: '5000',
      OUTBOX_POLL_INTERVAL_MS: '50',
      EMAIL_SIGN_IN_ENABLED: 'true',
      REQUIRE_EMAIL_VERIFICATION: 'true',
    },
  });
});

afterAll(async () => {
  await t?.close();
  await smtp?.close();
});

const requestCode = (email: string) => t.app.inject({ method: 'POST', url: '/auth/email-code', payload: { email } });
const grant = (payload: Record<string, string>) => t.app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: GRANT, ...payload } });
const formGrant = (form: Record<string, string>) =>
  t.app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ grant_type: GRANT, ...form }).toString(),
  });

/** Asks for a code and returns the newest sign-in mail to the address (after `before` of them). */
async function mailedCode(email: string): Promise<{ code: string; link: string; mail: ReceivedMail }> {
  const signInMails = () => smtp.messagesTo(email).filter((m) => /sign-in code/.test(m.subject));
  const before = signInMails().length;
  const res = await requestCode(email);
  expect(res.statusCode, res.body).toBe(202);
  await smtp.until(() => signInMails().length > before, 10_000, `a sign-in mail to ${email}`);
  const mail = signInMails().at(-1)!;
  const code = /sign-in code: (\d{6})/.exec(mail.subject)?.[1];
  expect(code, mail.subject).toMatch(/^\d{6}$/);
  expect(mail.text).toContain(code!);
  return { code: code!, link: /https?:\/\/\S+/.exec(mail.text)![0], mail };
}

const codeRow = async (email: string) => (await t.db.handle.db.select().from(emailSignInCodes).where(eq(emailSignInCodes.email, email)))[0];
const wrong = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, '0');

describe('sign-in by emailed code', () => {
  it('the right code signs in once (JSON or form), creating a confirmed account without a password', async () => {
    const email = uniqueEmail('code');
    const { code } = await mailedCode(email);
    const res = await grant({ email, code });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const claims = decodeJwt(res.json<{ access_token: string }>().access_token);
    expect(claims.amr).toEqual(['mca']);
    expect(claims.email_verified).toBe(true);
    const again = await grant({ email, code });
    expect(again.statusCode).toBe(400);
    expect(again.json().error).toBe('invalid_grant');
    // A password sign-in does not work: the account has none.
    expect((await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })).statusCode).toBe(400);

    t.clock.advance(61_000);
    const next = await mailedCode(email);
    const form = await formGrant({ email, code: next.code });
    expect(form.statusCode, form.body).toBe(200);
    expect(decodeJwt(form.json<{ access_token: string }>().access_token).sub).toBe(claims.sub);
  });

  it('wrong codes count per code, before the check: parallel guesses cannot pass the limit, and then the right code is refused too', async () => {
    const email = uniqueEmail('guess');
    const { code } = await mailedCode(email);
    const guesses = await Promise.all(Array.from({ length: 12 }, () => grant({ email, code: wrong(code) })));
    expect(guesses.map((r) => r.statusCode)).toEqual(Array(12).fill(400));
    expect((await codeRow(email))!.attempts).toBe(5);
    const right = await grant({ email, code });
    expect(right.statusCode).toBe(400);
    expect((await codeRow(email))!.attempts).toBe(5);
  });

  it('a code under the limit still works after wrong ones', async () => {
    const email = uniqueEmail('typo');
    const { code } = await mailedCode(email);
    for (let i = 0; i < 4; i++) expect((await grant({ email, code: wrong(code) })).statusCode).toBe(400);
    expect((await grant({ email, code })).statusCode).toBe(200);
  });

  it('expires after EMAIL_SIGN_IN_TTL (10 minutes), on the injected clock', async () => {
    const email = uniqueEmail('late');
    const { code } = await mailedCode(email);
    t.clock.advance(10 * 60_000 + 1000);
    expect((await grant({ email, code })).json().error).toBe('invalid_grant');
  });

  it('a new code voids the previous one', async () => {
    const email = uniqueEmail('twice');
    const first = await mailedCode(email);
    t.clock.advance(61_000);
    const second = await mailedCode(email);
    expect(second.code === first.code && tokenIn(second.mail) === tokenIn(first.mail)).toBe(false);
    expect((await grant({ email, code: first.code })).statusCode).toBe(first.code === second.code ? 200 : 400);
    const link = await t.app.inject({ method: 'POST', url: '/auth/email-code/link', payload: { token: tokenIn(first.mail) } });
    expect(link.statusCode).toBe(400);
    if (first.code !== second.code) expect((await grant({ email, code: second.code })).statusCode).toBe(200);
  });

  it('the link opens a page (GET and HEAD change nothing) whose form POSTs the token, once', async () => {
    const email = uniqueEmail('link');
    const { link, mail } = await mailedCode(email);
    const url = new URL(link);
    expect(url.pathname).toBe('/auth/email-code/link');
    for (const method of ['GET', 'HEAD', 'GET'] as const) {
      const page = await t.app.inject({ method, url: `${url.pathname}${url.search}` });
      expect(page.statusCode).toBe(200);
      expect(page.headers['cache-control']).toBe('no-store');
    }
    const page = await t.app.inject({ method: 'GET', url: `${url.pathname}${url.search}` });
    expect(page.body).toMatch(/<form method="post" action="link">/);
    expect(page.body).toContain(`name="token" value="${tokenIn(mail)}"`);
    const row = await codeRow(email);
    expect(row!.usedAt).toBeNull();
    const post = await t.app.inject({
      method: 'POST',
      url: '/auth/email-code/link',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ token: tokenIn(mail) }).toString(),
    });
    expect(post.statusCode, post.body).toBe(200);
    expect(decodeJwt(post.json<{ access_token: string }>().access_token).email).toBe(email);
    const reused = await t.app.inject({ method: 'POST', url: '/auth/email-code/link', payload: { token: tokenIn(mail) } });
    expect(reused.json().error).toBe('email_token_invalid');
    // The same at the token endpoint (an app that opens the link itself), in OAuth's words.
    expect((await grant({ token: tokenIn(mail) })).json().error).toBe('invalid_grant');
    expect((await t.app.inject({ method: 'GET', url: `${url.pathname}${url.search}` })).statusCode).toBe(400);
  });

  it("the link's token also works at the token endpoint (an app that opens the link itself), once, and then the code is spent too", async () => {
    const email = uniqueEmail('deeplink');
    const { code, mail } = await mailedCode(email);
    const res = await grant({ token: tokenIn(mail) });
    expect(res.statusCode, res.body).toBe(200);
    expect((await grant({ email, code })).json().error).toBe('invalid_grant');
  });

  it('an unknown address is indistinguishable from a known one: status, body, mail and metrics', async () => {
    const known = uniqueEmail('known');
    const reg = await t.app.inject({ method: 'POST', url: '/auth/register', payload: { email: known, password: PASSWORD } });
    expect(reg.statusCode).toBe(201);
    const unknown = uniqueEmail('nobody');
    const metrics = async () => (await t.app.inject({ method: 'GET', url: '/metrics' })).body.split('\n').filter((l) => l.startsWith('tessera_outbox'));
    const before = await metrics();
    const a = await requestCode(known);
    const b = await requestCode(unknown);
    expect([a.statusCode, b.statusCode]).toEqual([202, 202]);
    expect(a.body).toBe(b.body);
    expect(await metrics()).toEqual(before);
    const kinds = async (to: string) => (await t.db.handle.db.select().from(outbox).where(eq(outbox.recipient, to))).map((r) => r.kind);
    expect(await kinds(unknown)).toEqual(['email_sign_in']);
    expect((await kinds(known)).filter((k) => k === 'email_sign_in')).toEqual(['email_sign_in']);
    // A wrong code for either is the same answer.
    const [wa, wb] = await Promise.all([grant({ email: known, code: '000000' }), grant({ email: unknown, code: '000000' })]);
    expect([wa.statusCode, wa.body]).toEqual([wb.statusCode, wb.body]);
  });

  it('signing in by code confirms an unconfirmed account and drops the password someone else may have set', async () => {
    const email = uniqueEmail('prereg');
    expect((await t.app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })).statusCode).toBe(201);
    const { code } = await mailedCode(email);
    const res = await grant({ email, code });
    expect(res.statusCode).toBe(200);
    const me = await t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(res.json<{ access_token: string }>().access_token) });
    expect(me.json().email_verified).toBe(true);
    expect((await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })).statusCode).toBe(400);
  });
});

describe('EMAIL_SIGN_IN_ENABLED=false (the default)', () => {
  it('answers a stable error on every endpoint', async () => {
    const off = await createTestApp({ db: t.db });
    try {
      const req = await off.app.inject({ method: 'POST', url: '/auth/email-code', payload: { email: uniqueEmail('off') } });
      expect(req.statusCode).toBe(403);
      expect(req.json().error).toBe('email_sign_in_disabled');
      const tok = await off.app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: GRANT, email: uniqueEmail('off'), code: '123456' } });
      expect(tok.statusCode).toBe(400);
      expect(tok.json().error).toBe('unsupported_grant_type');
      const viaLink = await off.app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: GRANT, token: 'x'.repeat(43) } });
      expect(viaLink.json().error).toBe('unsupported_grant_type');
      const page = await off.app.inject({ method: 'GET', url: '/auth/email-code/link?token=x' });
      expect(page.statusCode).toBe(403);
      expect(page.body).toContain('email_sign_in_disabled');
      expect((await off.app.inject({ method: 'POST', url: '/auth/email-code/link', payload: { token: 'x' } })).json().error).toBe('email_sign_in_disabled');
    } finally {
      await off.close();
    }
  });
});
