import { count } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outbox } from '../../src/features/mail/tables.js';
import { SmtpCatcher, linkIn, tokenIn } from '../helpers/smtp.js';
import { PASSWORD, bearer, createTestApp, json, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// The error pages of emailed links ("this link has expired") link to a page that asks for a new
// one, over HTTP: where each link leads (relative to the page, as a browser resolves it), for every
// kind of emailed link (confirmation, email change, password reset); and the form of that page
// answers the same for any address, so it tells nobody which addresses have accounts.
// (The browser side, following the links in Chromium: email-browser.test.ts.)

let smtp: SmtpCatcher;
let t: TestApp;

beforeAll(async () => {
  smtp = await SmtpCatcher.start();
  t = await createTestApp({
    env: { SMTP_SERVER: '127.0.0.1', SMTP_PORT: String(smtp.port), SMTP_TIMEOUT_MS: '5000', REQUIRE_EMAIL_VERIFICATION: 'true', OUTBOX_POLL_INTERVAL_MS: '50' },
  });
});

afterAll(async () => {
  await t?.close();
  await smtp?.close();
});

const post = (url: string, payload: object, headers: Record<string, string> = {}) => t.app.inject({ method: 'POST', url, payload, headers });
const formPost = (url: string, form: Record<string, string>) =>
  t.app.inject({ method: 'POST', url, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams(form).toString() });

/** The path a page's relative link or form action leads to, as a browser resolves it. */
const resolve = (href: string, pagePath: string) => new URL(href, `http://tessera.test${pagePath}`).pathname;

/** The "Send a new … email" link of an error page. */
function newLinkOf(html: string): { href: string; label: string } | null {
  const m = /<a href="([^"]+)">(Send a new [^<]+)<\/a>/.exec(html);
  return m ? { href: m[1]!, label: m[2]! } : null;
}

async function registered(prefix: string) {
  const email = uniqueEmail(prefix);
  expect((await post('/auth/register', { email, password: PASSWORD })).statusCode).toBe(201);
  const mail = await smtp.waitFor(email, /^Confirm your email/);
  return { email, mail };
}

async function confirmedAndSignedIn(prefix: string) {
  const { email, mail } = await registered(prefix);
  expect((await post('/auth/confirm-email', { token: tokenIn(mail) })).statusCode).toBe(200);
  const tokens = await post('/auth/login', { email, password: PASSWORD });
  expect(tokens.statusCode, tokens.body).toBe(200);
  return { email, access: json(tokens).access_token as string };
}

/** Opens a spent link's page: a 400 page that names the code and links to the page asking for a new link, which only shows a form. */
async function expectLinkToNewOne(pagePath: string, code: string, expected: { label: string; page: string; action: string; hint: RegExp }) {
  const res = await t.app.inject({ method: 'GET', url: pagePath });
  expect(res.statusCode, res.body).toBe(400);
  expect(res.headers['content-type']).toMatch(/^text\/html/);
  expect(res.body).toContain(`<code>${code}</code>`);
  const next = newLinkOf(res.body);
  expect(next, res.body).not.toBeNull();
  expect(next!.label).toBe(expected.label);
  const target = resolve(next!.href, new URL(pagePath, 'http://tessera.test').pathname);
  expect(target).toBe(expected.page);

  const page = await t.app.inject({ method: 'GET', url: target });
  expect(page.statusCode).toBe(200);
  expect(page.body).toContain(`<h1>${expected.label}</h1>`);
  const action = /<form method="post" action="([^"]+)">/.exec(page.body)?.[1];
  expect(action && resolve(action, target)).toBe(expected.action);
  expect(page.body).toMatch(expected.hint);
}

describe('a spent link links to a new one', () => {
  it('confirmation: expired, used and unknown links lead to the resend page', async () => {
    const { email, mail } = await registered('spent-confirm');
    const link = new URL(linkIn(mail));
    const confirm = {
      label: 'Send a new confirmation email',
      page: '/auth/confirm-email/resend',
      action: '/auth/confirm-email/resend',
      hint: /Sign in and change it again/,
    };
    await expectLinkToNewOne('/auth/confirm-email?token=not-a-token', 'email_token_invalid', confirm);

    t.clock.advance(25 * 3600 * 1000); // EMAIL_CONFIRM_TTL is 24 h
    await expectLinkToNewOne(`${link.pathname}${link.search}`, 'email_token_expired', confirm);

    // Following it works: the form mails a new link.
    const before = smtp.messagesTo(email).length;
    expect((await formPost('/auth/confirm-email/resend', { email })).statusCode).toBe(202);
    await smtp.until(() => smtp.messagesTo(email).length === before + 1);
    const fresh = smtp.messagesTo(email).at(-1)!;
    expect((await post('/auth/confirm-email', { token: tokenIn(fresh) })).statusCode).toBe(200);
    const used = new URL(linkIn(fresh));
    await expectLinkToNewOne(`${used.pathname}${used.search}`, 'email_token_used', confirm);
  });

  it('email change: an expired link leads to the same page, whose hint says to ask for the change again', async () => {
    const user = await confirmedAndSignedIn('spent-change');
    const newEmail = uniqueEmail('spent-change-new');
    expect((await post('/users/me/email', { new_email: newEmail, password: PASSWORD }, bearer(user.access))).statusCode).toBe(202);
    const mail = await smtp.waitFor(newEmail, /Confirm your new email/);
    t.clock.advance(25 * 3600 * 1000);
    const link = new URL(linkIn(mail));
    await expectLinkToNewOne(`${link.pathname}${link.search}`, 'email_token_expired', {
      label: 'Send a new confirmation email',
      page: '/auth/confirm-email/resend',
      action: '/auth/confirm-email/resend',
      hint: /Changing the address of your account\? Sign in and change it again/,
    });
    // The address did not change.
    expect((await post('/auth/login', { email: user.email, password: PASSWORD })).statusCode).toBe(200);
  });

  it('password reset: expired and unknown links lead to the forgot-password page', async () => {
    const user = await confirmedAndSignedIn('spent-reset');
    expect((await post('/auth/password/forgot', { email: user.email })).statusCode).toBe(202);
    const mail = await smtp.waitFor(user.email, /^Reset your/);
    const reset = {
      label: 'Send a new password reset email',
      page: '/auth/password/forgot',
      action: '/auth/password/forgot',
      hint: /replaces the ones sent before/,
    };
    await expectLinkToNewOne('/auth/password/reset?token=not-a-token', 'email_token_invalid', reset);
    t.clock.advance(31 * 60 * 1000); // PASSWORD_RESET_TTL is 30 min
    const link = new URL(linkIn(mail));
    await expectLinkToNewOne(`${link.pathname}${link.search}`, 'email_token_expired', reset);
  });
});

describe('the request-a-new-link forms tell nobody which addresses have accounts', () => {
  it.each([
    ['/auth/confirm-email/resend', 'confirmation'],
    ['/auth/password/forgot', 'reset'],
  ])('%s: an unknown, an unconfirmed and a confirmed address get the same page; the JSON answer is the same too', async (url) => {
    const unconfirmed = (await registered('same-unconfirmed')).email;
    const confirmed = (await confirmedAndSignedIn('same-confirmed')).email;
    const unknown = uniqueEmail('same-unknown');
    t.clock.advance(3600 * 1000); // past the resend interval of the registrations above

    const pages = await Promise.all([unknown, unconfirmed, confirmed].map((email) => formPost(url, { email })));
    for (const page of pages) {
      expect(page.statusCode).toBe(202);
      expect(page.headers['content-type']).toMatch(/^text\/html/);
      expect(page.headers['cache-control']).toBe('no-store');
      expect(page.headers['content-length']).toBe(pages[0]!.headers['content-length']);
      expect(page.body).toBe(pages[0]!.body);
    }
    // Again at once, over the resend cap: still the same page.
    const capped = await formPost(url, { email: unconfirmed });
    expect(capped.statusCode).toBe(202);
    expect(capped.body).toBe(pages[0]!.body);

    const answers = await Promise.all([unknown, unconfirmed, confirmed].map((email) => post(url, { email })));
    expect(new Set(answers.map((a) => `${a.statusCode} ${a.body}`)).size).toBe(1);
  });

  it('a malformed address is a 422 for every form post alike, and opening the pages (GET, HEAD) sends nothing', async () => {
    const bad = await formPost('/auth/password/forgot', { email: 'not an address' });
    expect(bad.statusCode).toBe(422);
    // Every mail is an outbox row written by the request itself: none may appear.
    const rows = async () => (await t.db.handle.db.select({ n: count() }).from(outbox))[0]!.n;
    const before = await rows();
    for (const url of ['/auth/confirm-email/resend', '/auth/password/forgot'])
      for (const method of ['GET', 'HEAD'] as const) expect((await t.app.inject({ method, url })).statusCode).toBe(200);
    expect(await rows()).toBe(before);
  });
});
