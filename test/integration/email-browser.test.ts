import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page, type Response } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port.js';
import { SmtpCatcher, linkIn, tokenIn, type ReceivedMail } from '../helpers/smtp.js';
import { PASSWORD, createTestApp, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// The pages behind emailed links (confirm-email, the password reset form and its result), opened
// in a real Chromium over a real socket, with the links taken from mail a real SMTP server received.

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const STEP_MS = 10_000;
const NEW_PASSWORD = 'a brand new passphrase 42';

let smtp: SmtpCatcher | undefined;
let t: TestApp | undefined;
let browser: Browser | undefined;
let base: string;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: install it (apt-get install chromium) or set CHROMIUM_PATH. This test must not be skipped.`);
  }
  smtp = await SmtpCatcher.start();
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  t = await createTestApp({
    env: {
      PUBLIC_URL: base,
      SMTP_SERVER: '127.0.0.1',
      SMTP_PORT: String(smtp.port),
      SMTP_TIMEOUT_MS: '5000',
      REQUIRE_EMAIL_VERIFICATION: 'true',
    },
  });
  await t.app.listen({ host: '127.0.0.1', port });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
});

afterAll(async () => {
  await browser?.close();
  await t?.close();
  await smtp?.close();
});

// ---------------------------------------------------------------------------------------------
// Helpers

interface ApiResult {
  status: number;
  body: Record<string, unknown>;
}

/** A JSON POST against the listening server (setup and sign-in checks; the pages go through Chromium). */
async function post(path: string, payload: unknown): Promise<ApiResult> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(payload),
    signal: AbortSignal.timeout(STEP_MS),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

const login = (email: string, password: string) => post('/auth/login', { email, password });

async function register(email: string, password = PASSWORD): Promise<ReceivedMail> {
  const reg = await post('/auth/register', { email, password });
  expect(reg.status, JSON.stringify(reg.body)).toBe(201);
  return smtp!.waitFor(email, /^Confirm your email/, STEP_MS);
}

/** A registered user whose address is confirmed through the emailed token (POST /auth/confirm-email). */
async function confirmedUser(prefix: string): Promise<string> {
  const email = uniqueEmail(prefix);
  const mail = await register(email);
  const confirmed = await post('/auth/confirm-email', { token: tokenIn(mail) });
  expect(confirmed.status, JSON.stringify(confirmed.body)).toBe(200);
  return email;
}

/** Asks for a reset link and returns it as mailed (it must point at this server). */
async function resetLink(email: string): Promise<string> {
  const resetMails = () => smtp!.messagesTo(email).filter((m) => /^Reset your/.test(m.subject));
  const before = resetMails().length;
  const forgot = await post('/auth/password/forgot', { email });
  expect(forgot.status).toBe(202);
  await smtp!.until(() => resetMails().length > before, STEP_MS, `a reset mail to ${email}`);
  const mail = resetMails().at(-1)!;
  const link = linkIn(mail);
  expect(link.startsWith(`${base}/auth/password/reset?token=`), link).toBe(true);
  return link;
}

/** What went wrong in the browser: console errors (with the resource they name) and uncaught exceptions. */
interface Tab {
  page: Page;
  consoleErrors: Array<{ text: string; url: string }>;
  pageErrors: string[];
  /** Every URL loaded as a document (navigations and form posts). */
  documents: Set<string>;
}

const contexts: BrowserContext[] = [];

async function newTab(): Promise<Tab> {
  const context = await browser!.newContext();
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.setDefaultNavigationTimeout(STEP_MS);
  const tab: Tab = { page, consoleErrors: [], pageErrors: [], documents: new Set() };
  page.on('console', (msg) => {
    if (msg.type() === 'error') tab.consoleErrors.push({ text: msg.text(), url: msg.location().url });
  });
  page.on('pageerror', (err) => tab.pageErrors.push(String(err)));
  page.on('request', (req) => {
    if (req.resourceType() === 'document') tab.documents.add(req.url());
  });
  return tab;
}

afterEach(async () => {
  for (const c of contexts.splice(0)) await c.close();
});

/**
 * No script errors and no CSP violations. Chromium logs "Failed to load resource: … status of 4xx"
 * for a page answered with 4xx (an expected status here); that is not an error of the page. Any
 * other failed resource is (the favicon included: the pages name /favicon.ico, which is served).
 */
function expectCleanConsole(tab: Tab) {
  const expected = (m: { text: string; url: string }) =>
    /^Failed to load resource: the server responded with a status of 4\d\d\b/.test(m.text) && tab.documents.has(m.url);
  expect(tab.consoleErrors.filter((m) => /content[- ]security[- ]policy|refused to/i.test(m.text))).toEqual([]);
  expect(tab.consoleErrors.filter((m) => !expected(m))).toEqual([]);
  expect(tab.pageErrors).toEqual([]);
}

async function open(tab: Tab, url: string): Promise<Response> {
  const res = await tab.page.goto(url, { waitUntil: 'load' });
  if (!res) throw new Error(`no response for ${url}`);
  return res;
}

/** A confirmed user's reset form (from the mailed link), open in a new tab. */
async function openResetForm(prefix: string): Promise<{ email: string; tab: Tab; page: Page }> {
  const email = await confirmedUser(prefix);
  const link = await resetLink(email);
  const tab = await newTab();
  expect((await open(tab, link)).status()).toBe(200);
  return { email, tab, page: tab.page };
}

/** Submits the reset form and returns the answer to its POST (after the result page loaded). */
async function submitReset(page: Page, password: string): Promise<Response> {
  await page.getByLabel('New password').fill(password);
  const answer = page.waitForResponse((r) => new URL(r.url()).pathname === '/auth/password/reset' && r.request().method() === 'POST');
  await page.getByRole('button', { name: /set new password/i }).click();
  const res = await answer;
  await page.waitForLoadState('load');
  return res;
}

const h1 = (page: Page) => page.locator('h1').innerText();

/** The 400 page of a bad link: its heading, an alert with the message, and the stable error code. */
async function expectLinkError(tab: Tab, res: Response, code: string, title: string) {
  expect(res.status()).toBe(400);
  expect(res.headers()['content-type']).toMatch(/^text\/html/);
  expect(res.headers()['cache-control']).toBe('no-store');
  expect(await h1(tab.page)).toBe(title);
  expect(await tab.page.getByRole('alert').innerText()).toMatch(/\S/);
  expect(await tab.page.locator('main').innerText()).toContain(`Error code: ${code}`);
  expect(await tab.page.locator('code').innerText()).toBe(code);
  // An error page offers no form to fill in; a spent link's page links to a new one.
  expect(await tab.page.locator('form').count()).toBe(0);
  const fix = tab.page.getByRole('link', { name: /^Send a new (confirmation|password reset) email$/ });
  expect(await fix.count()).toBe(1);
  // The page names the favicon, and it is there.
  expect(await tab.page.locator('link[rel="icon"]').getAttribute('href')).toBe('/favicon.ico');
}

/** From a spent link's error page: follow "Send a new … email", fill in the address, submit; the answer page. */
async function requestNewLink(tab: Tab, email: string, label: RegExp, action: string) {
  const page = tab.page;
  await page.getByRole('link', { name: label }).click();
  await page.waitForLoadState('load');
  expect(await h1(page)).toMatch(label);
  // The page only shows a form: opening it (GET) sent nothing.
  expect(await page.locator('form').getAttribute('method')).toBe('post');
  await page.getByLabel('Email address').fill(email);
  const answer = page.waitForResponse((r) => new URL(r.url()).pathname === action && r.request().method() === 'POST');
  await page.getByRole('button', { name: label }).click();
  const res = await answer;
  await page.waitForLoadState('load');
  expect(res.status()).toBe(202);
  expect(res.headers()['content-type']).toMatch(/^text\/html/);
  expect(await h1(page)).toBe('Check your inbox');
}

// ---------------------------------------------------------------------------------------------

describe('emailed links in Chromium', () => {
  it('the confirmation link opens a page whose button confirms the address once; sign-in works only after it', async () => {
    const email = uniqueEmail('confirm');
    const mail = await register(email);
    const link = linkIn(mail);
    expect(link.startsWith(`${base}/auth/confirm-email?token=`), link).toBe(true);

    const early = await login(email, PASSWORD);
    expect(early.status).toBe(403);
    expect(early.body.error).toBe('email_not_verified');

    // What a link scanner or a chat preview does: fetch the link (HEAD, GET), without clicking anything.
    for (const method of ['HEAD', 'GET', 'HEAD', 'GET']) {
      const scanned = await fetch(link, { method, signal: AbortSignal.timeout(STEP_MS) });
      expect(scanned.status).toBe(200);
      await scanned.arrayBuffer();
    }
    expect((await login(email, PASSWORD)).body.error).toBe('email_not_verified');

    const tab = await newTab();
    const res = await open(tab, link);
    expect(res.status()).toBe(200);
    expect(res.headers()['content-type']).toMatch(/^text\/html/);
    expect(res.headers()['content-security-policy']).toContain("script-src 'self'");
    expect(await h1(tab.page)).toBe('Confirm your email address');
    expect(await tab.page.locator('main').innerText()).toContain(email);
    // Opening the page in a real browser confirms nothing either.
    expect((await login(email, PASSWORD)).body.error).toBe('email_not_verified');

    const answer = tab.page.waitForResponse((r) => new URL(r.url()).pathname === '/auth/confirm-email' && r.request().method() === 'POST');
    await tab.page.getByRole('button', { name: /confirm email address/i }).click();
    const posted = await answer;
    await tab.page.waitForLoadState('load');
    expect(posted.status()).toBe(200);
    expect(posted.request().headers()['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
    expect(await h1(tab.page)).toBe('Email address confirmed');
    expect(await tab.page.locator('main').innerText()).toContain(email);

    const signedIn = await login(email, PASSWORD);
    expect(signedIn.status).toBe(200);
    expect(signedIn.body.access_token).toEqual(expect.any(String));

    const again = await open(tab, link);
    await expectLinkError(tab, again, 'email_token_used', 'This link was already used');
    expectCleanConsole(tab);
  });

  it('password reset end to end: mailed link → form → new password; old password and sessions are dead', async () => {
    const email = await confirmedUser('reset');
    const session = await login(email, PASSWORD);
    expect(session.status).toBe(200);
    const oldRefresh = session.body.refresh_token as string;
    expect(oldRefresh).toEqual(expect.any(String));

    const link = await resetLink(email);
    const tab = await newTab();
    const { page } = tab;
    const form = await open(tab, link);
    expect(form.status()).toBe(200);
    expect(form.headers()['cache-control']).toBe('no-store');
    expect(await h1(page)).toBe('Choose a new password');
    expect(await page.locator('main').innerText()).toContain(email);
    const input = page.getByLabel('New password');
    expect(await input.getAttribute('type')).toBe('password');
    expect(await input.getAttribute('autocomplete')).toBe('new-password');
    expect(await input.getAttribute('aria-invalid')).toBeNull();

    const result = await submitReset(page, NEW_PASSWORD);
    expect(result.status()).toBe(200);
    expect(result.request().headers()['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
    expect(new URL(page.url()).pathname).toBe('/auth/password/reset');
    expect(await h1(page)).toBe('Password changed');

    const fresh = await login(email, NEW_PASSWORD);
    expect(fresh.status).toBe(200);
    const old = await login(email, PASSWORD);
    expect(old.status).toBe(400);
    expect(old.body.error).toBe('invalid_grant');
    const refreshed = await post('/auth/refresh', { refresh_token: oldRefresh });
    expect(refreshed.status).toBe(400);
    expect(refreshed.body.error).toBe('invalid_grant');

    const notice = await smtp!.waitFor(email, /password was changed/, STEP_MS);
    expect(notice.subject).toMatch(/password was changed/);

    const reused = await open(tab, link);
    await expectLinkError(tab, reused, 'email_token_used', 'This link was already used');
    expectCleanConsole(tab);
  });

  it('a password the policy refuses re-renders the form with an accessible error; a good one then works', async () => {
    const { email, tab, page } = await openResetForm('policy');

    // Too short: the browser itself keeps the form (minlength), nothing is posted.
    const posts: string[] = [];
    page.on('request', (r) => {
      if (r.method() === 'POST') posts.push(r.url());
    });
    await page.getByLabel('New password').fill('short');
    await page.getByRole('button', { name: /set new password/i }).click();
    // Not empty, so :invalid here means too short (minlength).
    expect(await page.getByLabel('New password').inputValue()).toBe('short');
    expect(await page.locator('#password:invalid').count()).toBe(1);
    expect(posts).toEqual([]);
    expect(await h1(page)).toBe('Choose a new password');

    // Long enough but among the most common: the server answers 422 with the form again.
    const refused = await submitReset(page, 'password');
    expect(refused.status()).toBe(422);
    expect(refused.headers()['content-type']).toMatch(/^text\/html/);
    expect(await h1(page)).toBe('Choose a new password');
    expect(await page.locator('main').innerText()).toContain(email);
    const alert = page.getByRole('alert');
    expect(await alert.count()).toBe(1);
    expect(await alert.innerText()).toBe('This password is too common; choose another one.');
    const input = page.getByLabel('New password');
    expect(await input.getAttribute('aria-invalid')).toBe('true');
    expect((await input.getAttribute('aria-describedby'))?.split(' ')).toContain(await alert.getAttribute('id'));
    expect(await input.inputValue()).toBe('');

    // With the browser's own check switched off, the server refuses a short one the same way.
    // (Typed by hand: this project's TypeScript has no DOM types.)
    await page.locator('form').evaluate((form: { noValidate: boolean }) => {
      form.noValidate = true;
    });
    const short = await submitReset(page, 'short');
    expect(short.status()).toBe(422);
    expect(await page.getByRole('alert').innerText()).toBe('The password must be at least 8 characters long.');
    expect(await page.getByLabel('New password').getAttribute('aria-invalid')).toBe('true');

    const ok = await submitReset(page, NEW_PASSWORD);
    expect(ok.status()).toBe(200);
    expect(await h1(page)).toBe('Password changed');
    expect((await login(email, NEW_PASSWORD)).status).toBe(200);
    expectCleanConsole(tab);
  });

  it('a garbage or missing token shows a 400 page with email_token_invalid', async () => {
    const tab = await newTab();
    for (const path of ['/auth/password/reset?token=nope', '/auth/password/reset', '/auth/confirm-email?token=nope', '/auth/confirm-email']) {
      const res = await open(tab, `${base}${path}`);
      await expectLinkError(tab, res, 'email_token_invalid', 'This link is not valid');
    }
    expectCleanConsole(tab);
  });

  it('an expired confirmation link: its page links to a new one; following it mails a link that confirms', async () => {
    const email = uniqueEmail('expired-confirm');
    const first = await register(email);
    t!.clock.advance(25 * 3600 * 1000); // EMAIL_CONFIRM_TTL is 24 h
    const tab = await newTab();
    await expectLinkError(tab, await open(tab, linkIn(first)), 'email_token_expired', 'This link has expired');
    await requestNewLink(tab, email, /^Send a new confirmation email$/, '/auth/confirm-email/resend');

    const confirmations = () => smtp!.messagesTo(email).filter((m) => /^Confirm your email/.test(m.subject));
    await smtp!.until(() => confirmations().length === 2, STEP_MS, `a new confirmation mail to ${email}`);
    const again = confirmations().at(-1)!;
    expect(tokenIn(again)).not.toBe(tokenIn(first));
    expect((await open(tab, linkIn(again))).status()).toBe(200);
    await tab.page.getByRole('button', { name: 'Confirm email address' }).click();
    await tab.page.waitForLoadState('load');
    expect(await h1(tab.page)).toBe('Email address confirmed');
    expect((await login(email, PASSWORD)).status).toBe(200);
    expectCleanConsole(tab);
  });

  it('an expired reset link: its page links to a new one; following it mails a working reset link', async () => {
    const email = await confirmedUser('expired-reset');
    const first = await resetLink(email);
    t!.clock.advance(31 * 60 * 1000); // PASSWORD_RESET_TTL is 30 min
    const tab = await newTab();
    await expectLinkError(tab, await open(tab, first), 'email_token_expired', 'This link has expired');
    const resets = () => smtp!.messagesTo(email).filter((m) => /^Reset your/.test(m.subject));
    const before = resets().length;
    await requestNewLink(tab, email, /^Send a new password reset email$/, '/auth/password/forgot');
    await smtp!.until(() => resets().length === before + 1, STEP_MS, `a new reset mail to ${email}`);
    expect((await open(tab, linkIn(resets().at(-1)!))).status()).toBe(200);
    expect(await h1(tab.page)).toBe('Choose a new password');
    expect((await submitReset(tab.page, NEW_PASSWORD)).status()).toBe(200);
    expect((await login(email, NEW_PASSWORD)).status).toBe(200);
    expectCleanConsole(tab);
  });

  it('the reset form page has the accessibility basics', async () => {
    const { email, tab, page } = await openResetForm('a11y');

    expect(await page.locator('html').getAttribute('lang')).toMatch(/^[a-z]{2}/);
    expect(await page.title()).toMatch(/\S/);
    expect(await page.getByRole('heading', { level: 1 }).count()).toBe(1);
    expect(await page.locator('h1').count()).toBe(1);

    // The password input is found through its label (a <label for>), and is the only visible field.
    const input = page.getByLabel('New password');
    expect(await input.count()).toBe(1);
    expect(await input.getAttribute('id')).toBe('password');
    expect(await page.locator('label[for="password"]').innerText()).toBe('New password');
    expect(await input.isVisible()).toBe(true);
    expect(await input.getAttribute('required')).not.toBeNull();
    const hint = await input.getAttribute('aria-describedby');
    expect(hint).toBeTruthy();
    expect(await page.locator(`#${hint!.split(' ')[0]}`).innerText()).toMatch(/8 characters/);
    // A password manager learns which account the new password belongs to.
    expect(await page.locator('input[autocomplete="username"]').inputValue()).toBe(email);

    // The submit control is a real button inside the form.
    const button = page.getByRole('button', { name: /set new password/i });
    expect(await button.count()).toBe(1);
    expect(await page.locator('form button[type="submit"]').innerText()).toMatch(/set new password/i);
    expect(await page.locator('form').getByRole('button').count()).toBe(1);
    // Keyboard: the password field takes focus and Tab reaches the button.
    await input.focus();
    await page.keyboard.press('Tab');
    expect(await page.locator('form button[type="submit"]:focus').count()).toBe(1);
    expectCleanConsole(tab);
  });
});
