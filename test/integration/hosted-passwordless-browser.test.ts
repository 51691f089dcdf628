import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { decodeJwt } from 'jose';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/infra/clock.js';
import { freePort } from '../helpers/free-port.js';
import { pkce } from '../helpers/inject-browser.js';
import { passkeyTab, registerIn } from '../helpers/passkey-page.js';
import { SmtpCatcher } from '../helpers/smtp.js';
import { PASSWORD, createTestApp, signUp, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// The hosted sign-in page's passkey button and "Email me a code" in Chromium (docs/openid-provider.md
// "Passkeys and email codes"): a relying party starts /auth/authorize, the user signs in on the
// hosted page with a passkey (a CDP virtual authenticator: internal transport, resident key, user
// verification) or with a code read from the SMTP catcher, and the browser ends at the redirect URI
// with a code that the test exchanges for tokens.

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const STEP_MS = 10_000;

/** The real time: Chromium and the ID token's iat/exp. */
class RealClock extends ManualClock {
  override now(): Date {
    return new Date();
  }
}

let t: TestApp;
let smtp: SmtpCatcher;
let browser: Browser;
let origin: string;
let rp: Server;
let rpBase: string;
let clientId: string;
const contexts: BrowserContext[] = [];
const cb = () => `${rpBase}/cb`;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: install it or set CHROMIUM_PATH. This test must not be skipped.`);
  const port = await freePort();
  // localhost, not 127.0.0.1: an IP address cannot be a WebAuthn RP ID.
  origin = `http://localhost:${port}`;
  smtp = await SmtpCatcher.start();
  t = await createTestApp({
    clock: new RealClock(),
    env: { PUBLIC_URL: origin, EMAIL_SIGN_IN_ENABLED: 'true', SMTP_SERVER: '127.0.0.1', SMTP_PORT: String(smtp.port), OUTBOX_POLL_INTERVAL_MS: '50' },
  });
  await t.app.listen({ host: '127.0.0.1', port });
  const rpPort = await freePort();
  rpBase = `http://127.0.0.1:${rpPort}`;
  rp = createServer((req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end(`relying party: ${req.url ?? ''}`));
  await new Promise<void>((resolve) => rp.listen(rpPort, '127.0.0.1', resolve));
  const { client } = await t.app.services.clients.create(null, {
    name: 'Own SPA',
    type: 'public',
    firstParty: true,
    redirectUris: ['http://127.0.0.1/cb'],
    scopes: ['openid', 'email'],
  });
  clientId = client.clientId;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
});

afterEach(async () => {
  for (const c of contexts.splice(0)) await c.close();
});

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (rp ? rp.close(() => resolve()) : resolve()));
  await t?.close();
  await smtp?.close();
});

async function context(opts: Parameters<Browser['newContext']>[0] = {}): Promise<BrowserContext> {
  const c = await browser.newContext(opts);
  contexts.push(c);
  return c;
}

/** Console errors (a CSP violation is one) of a page. */
function consoleErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  return errors;
}

/**
 * Chromium's virtual authenticator answers a conditional (autofill) request by itself, as if the
 * user had picked the passkey in the email field's suggestions. The button tests turn conditional
 * UI off in the page, so the button's own ceremony is what runs.
 */
async function withoutConditionalUi(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const C = (globalThis as { PublicKeyCredential?: { isConditionalMediationAvailable?: () => Promise<boolean> } }).PublicKeyCredential;
    if (C) C.isConditionalMediationAvailable = () => Promise.resolve(false);
  });
}

function authorizeUrl(extra: Record<string, string> = {}) {
  const { verifier, challenge } = pkce();
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: cb(),
    scope: 'openid email',
    state: 'st',
    nonce: 'nn',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...extra,
  });
  return { url: `${origin}/auth/authorize?${q.toString()}`, verifier };
}

async function backAtClient(page: Page): Promise<URL> {
  await page.waitForURL((u) => u.href.startsWith(rpBase), { timeout: STEP_MS });
  return new URL(page.url());
}

async function exchange(back: URL, verifier: string) {
  expect(back.searchParams.get('state')).toBe('st');
  const res = await fetch(`${origin}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: back.searchParams.get('code') ?? '',
      redirect_uri: cb(),
      client_id: clientId,
      code_verifier: verifier,
    }),
  });
  const body = (await res.json()) as { id_token: string; access_token: string };
  expect(res.status, JSON.stringify(body)).toBe(200);
  return { id: decodeJwt(body.id_token), access: decodeJwt(body.access_token) };
}

describe('"Sign in with a passkey" on the hosted page', () => {
  it('a user registers a passkey, then a relying party’s sign-in ends at its redirect URI with a code: amr hwk + user', async () => {
    const tab = await passkeyTab(await context(), origin);
    const user = await signUp(t.app, uniqueEmail('hosted-browser'));
    const added = await registerIn(tab, user.access, 'Laptop');
    expect(added.status, JSON.stringify(added.body)).toBe(201);

    const errors = consoleErrors(tab.page);
    await withoutConditionalUi(tab.page);
    const { url, verifier } = authorizeUrl({ acr_values: 'mfa' });
    await tab.page.goto(url);
    await tab.page.getByRole('heading', { name: 'Sign in to Own SPA' }).waitFor();
    expect(await tab.page.getByLabel('Email address').getAttribute('autocomplete')).toBe('username webauthn');
    const button = tab.page.getByRole('button', { name: 'Sign in with a passkey' });
    await button.waitFor();
    expect(await button.isEnabled()).toBe(true);
    await button.click();
    const back = await backAtClient(tab.page);
    const tokens = await exchange(back, verifier);
    expect(tokens.id).toMatchObject({ sub: user.userId, amr: ['hwk', 'user'], acr: 'mfa', nonce: 'nn' });
    // The script ran under the pages' CSP: nothing was blocked.
    expect(errors.filter((e) => /Content Security Policy|Refused/i.test(e))).toEqual([]);

    // The browser session: the next sign-in of this browser needs nothing.
    const next = authorizeUrl();
    await tab.page.goto(next.url);
    expect((await backAtClient(tab.page)).searchParams.get('code')).toBeTruthy();
  });

  it('conditional UI: the passkey offered in the email field’s autofill signs in without the button', async () => {
    const tab = await passkeyTab(await context(), origin);
    const user = await signUp(t.app, uniqueEmail('hosted-autofill'));
    expect((await registerIn(tab, user.access, 'Phone')).status).toBe(201);
    const errors = consoleErrors(tab.page);
    const { url, verifier } = authorizeUrl();
    await tab.page.goto(url);
    // The virtual authenticator picks the passkey from the autofill request as soon as the page asks.
    const tokens = await exchange(await backAtClient(tab.page), verifier);
    expect(tokens.id).toMatchObject({ sub: user.userId, amr: ['hwk', 'user'] });
    expect(errors.filter((e) => /Content Security Policy|Refused/i.test(e))).toEqual([]);
  });

  it('a passkey removed from the account shows an error on the page, and the password still works', async () => {
    const tab = await passkeyTab(await context(), origin);
    const user = await signUp(t.app, uniqueEmail('hosted-removed'));
    const added = await registerIn(tab, user.access, 'Laptop');
    expect(added.status).toBe(201);
    const del = await t.app.inject({
      method: 'DELETE',
      url: `/users/me/passkeys/${String(added.body.id)}`,
      headers: { authorization: `Bearer ${user.access}` },
    });
    expect(del.statusCode).toBe(204);
    await withoutConditionalUi(tab.page);
    const { url, verifier } = authorizeUrl();
    await tab.page.goto(url);
    await tab.page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await tab.page.getByRole('alert').waitFor();
    expect(await tab.page.getByRole('alert').innerText()).toContain('The passkey could not be verified.');
    await tab.page.getByLabel('Email address').fill(user.email);
    await tab.page.getByLabel('Password').fill(PASSWORD);
    await tab.page.getByRole('button', { name: 'Sign in', exact: true }).click();
    const tokens = await exchange(await backAtClient(tab.page), verifier);
    expect(tokens.id).toMatchObject({ sub: user.userId, amr: ['pwd'] });
  });

  it('no passkey button without JavaScript or without WebAuthn; the password form works', async () => {
    const user = await signUp(t.app, uniqueEmail('no-js'));
    const noJs = await (await context({ javaScriptEnabled: false })).newPage();
    const { url, verifier } = authorizeUrl();
    await noJs.goto(url);
    await noJs.getByRole('heading', { name: 'Sign in to Own SPA' }).waitFor();
    expect(await noJs.getByRole('button', { name: 'Sign in with a passkey' }).count()).toBe(0);
    await noJs.getByLabel('Email address').fill(user.email);
    await noJs.getByLabel('Password').fill(PASSWORD);
    await noJs.getByRole('button', { name: 'Sign in', exact: true }).click();
    expect((await exchange(await backAtClient(noJs), verifier)).id.sub).toBe(user.userId);

    const noWebAuthn = await (await context()).newPage();
    await noWebAuthn.addInitScript(() => {
      delete (globalThis as { PublicKeyCredential?: unknown }).PublicKeyCredential;
    });
    await noWebAuthn.goto(authorizeUrl().url);
    await noWebAuthn.getByRole('heading', { name: 'Sign in to Own SPA' }).waitFor();
    expect(await noWebAuthn.locator('#passkey-form').isHidden()).toBe(true);
    expect(await noWebAuthn.locator('#passkey-button').isDisabled()).toBe(true);
  });
});

describe('"Email me a code" on the hosted page', () => {
  it('the code from the email (read from the SMTP catcher) signs in and ends at the redirect URI', async () => {
    const user = await signUp(t.app, uniqueEmail('hosted-code-browser'));
    const page = await (await context()).newPage();
    page.setDefaultTimeout(STEP_MS);
    const { url, verifier } = authorizeUrl();
    await page.goto(url);
    await page.getByLabel('Email address').fill(user.email);
    await page.getByRole('button', { name: 'Email me a code' }).click();
    await page.getByRole('heading', { name: 'Check your email' }).waitFor();
    const mail = await smtp.waitFor(user.email, /sign-in code/, STEP_MS);
    const code = /sign-in code: (\d{6})/.exec(mail.subject)?.[1] ?? '';
    await page.getByLabel('Sign-in code').fill(code);
    await page.getByRole('button', { name: 'Continue' }).click();
    const tokens = await exchange(await backAtClient(page), verifier);
    expect(tokens.id).toMatchObject({ sub: user.userId, amr: ['mca'] });
  });

  it('the emailed link, opened in the same browser, continues the sign-in there', async () => {
    const email = uniqueEmail('hosted-link-browser');
    const page = await (await context()).newPage();
    page.setDefaultTimeout(STEP_MS);
    const { url, verifier } = authorizeUrl();
    await page.goto(url);
    await page.getByLabel('Email address').fill(email);
    await page.getByRole('button', { name: 'Email me a code' }).click();
    await page.getByRole('heading', { name: 'Check your email' }).waitFor();
    const mail = await smtp.waitFor(email, /sign-in code/, STEP_MS);
    const link = /https?:\/\/\S+/.exec(mail.text)?.[0] ?? '';
    expect(new URL(link).pathname).toBe('/auth/ui/email-link');
    await page.goto(link);
    await page.getByRole('button', { name: 'Continue' }).click();
    const tokens = await exchange(await backAtClient(page), verifier);
    // An address without an account: the first sign-in by email created it.
    expect(tokens.id).toMatchObject({ amr: ['mca'], email });
  });
});
