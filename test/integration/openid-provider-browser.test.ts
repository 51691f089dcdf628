import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import * as oidc from 'openid-client';
import { generate } from 'otplib';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/infra/clock.js';
import { freePort } from '../helpers/free-port.js';
import { PASSWORD, bearer, createTestApp, signUp, type TestApp } from '../helpers/test-app.js';

// The OpenID Provider end to end: Chromium on the hosted pages over a real socket, and
// openid-client (a certified relying-party library) doing code + PKCE, ID token checks
// (nonce, at_hash, signature) and refresh against it.

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const STEP_MS = 10_000;

/** The real time: openid-client checks iat/exp against its own clock. */
class RealClock extends ManualClock {
  override now(): Date {
    return new Date();
  }
}

let t: TestApp;
let base: string;
let rp: Server;
let rpBase: string;
let browser: Browser;
let webConfig: oidc.Configuration;
let spaConfig: oidc.Configuration;
let user: { email: string; userId: string };

async function startRelyingParty(): Promise<void> {
  const port = await freePort();
  rpBase = `http://127.0.0.1:${port}`;
  rp = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`relying party: ${req.url ?? ''}`);
  });
  await new Promise<void>((resolve) => rp.listen(port, '127.0.0.1', resolve));
}

function configFor(clientId: string, auth: oidc.ClientAuth): oidc.Configuration {
  // Explicit metadata: discovery is another branch's work; these are the endpoints this branch serves.
  const config = new oidc.Configuration(
    {
      issuer: base,
      authorization_endpoint: `${base}/auth/authorize`,
      token_endpoint: `${base}/auth/token`,
      jwks_uri: `${base}/.well-known/jwks.json`,
      end_session_endpoint: `${base}/auth/end-session`,
      authorization_response_iss_parameter_supported: true,
      id_token_signing_alg_values_supported: ['RS256'],
    },
    clientId,
    {},
    auth,
  );
  oidc.allowInsecureRequests(config);
  return config;
}

interface Started {
  url: URL;
  verifier: string;
  state: string;
  nonce: string;
}

async function start(config: oidc.Configuration, redirectUri: string, scope: string, extra: Record<string, string> = {}): Promise<Started> {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  });
  return { url, verifier, state, nonce };
}

/** Waits until the browser is back at the relying party; returns that URL. */
async function backAtClient(page: Page): Promise<URL> {
  await page.waitForURL((u) => u.href.startsWith(rpBase), { timeout: STEP_MS });
  return new URL(page.url());
}

async function signInOnPage(page: Page, email: string) {
  await page.getByLabel('Email address').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

let webClient: { id: string; secret: string };
let spaClient: { id: string };
const webCb = () => `${rpBase}/web/cb`;
const spaCb = () => `${rpBase}/spa/cb`;

beforeAll(async () => {
  if (!existsSync(CHROMIUM) && !process.env.CHROMIUM_PATH) {
    throw new Error(`Chromium not found at ${CHROMIUM}: install it (apt-get install chromium) or set CHROMIUM_PATH. This test must not be skipped.`);
  }
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  t = await createTestApp({ env: { PUBLIC_URL: base }, clock: new RealClock() });
  await t.app.listen({ host: '127.0.0.1', port });
  await startRelyingParty();
  const u = await signUp(t.app);
  user = { email: u.email, userId: u.userId };
  const clients = t.app.services.clients;
  const web = await clients.create(null, {
    name: 'Partner Web',
    type: 'confidential',
    redirectUris: ['http://127.0.0.1/web/cb'],
    postLogoutRedirectUris: [`${rpBase}/bye`],
    scopes: ['openid', 'email', 'profile'],
  });
  webClient = { id: web.client.clientId, secret: web.secret as string };
  const spa = await clients.create(null, {
    name: 'Own SPA',
    type: 'public',
    firstParty: true,
    redirectUris: ['http://127.0.0.1/spa/cb'],
    scopes: ['openid', 'email'],
  });
  spaClient = { id: spa.client.clientId };
  webConfig = configFor(webClient.id, oidc.ClientSecretBasic(webClient.secret));
  spaConfig = configFor(spaClient.id, oidc.None());
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
});

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (rp ? rp.close(() => resolve()) : resolve()));
  await t?.close();
});

async function newPage(): Promise<{ context: BrowserContext; page: Page; cspErrors: string[] }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  const cspErrors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') cspErrors.push(m.text());
  });
  return { context, page, cspErrors };
}

describe('the hosted sign-in in Chromium, with openid-client as the relying party', () => {
  it('confidential web client (consent once), public SPA by SSO, refresh, prompt=none, and RP-initiated logout ending both', async () => {
    const { context, page, cspErrors } = await newPage();
    // 1. The confidential third-party web client: sign-in page, consent page, back with a code.
    const a = await start(webConfig, webCb(), 'openid email profile offline_access');
    await page.goto(a.url.href);
    await expect(page.getByRole('heading', { name: 'Sign in to Partner Web' }).count()).resolves.toBe(1);
    await signInOnPage(page, user.email);
    await page.getByRole('heading', { name: 'Allow Partner Web?' }).waitFor();
    await page.getByRole('button', { name: 'Allow' }).click();
    const back = await backAtClient(page);
    const web = await oidc.authorizationCodeGrant(webConfig, back, {
      pkceCodeVerifier: a.verifier,
      expectedState: a.state,
      expectedNonce: a.nonce,
      idTokenExpected: true,
    });
    const claims = web.claims();
    expect(claims).toMatchObject({ sub: user.userId, email: user.email, nonce: a.nonce, acr: 'pwd', aud: webClient.id });
    expect(web.refresh_token).toBeTruthy();
    const refreshed = await oidc.refreshTokenGrant(webConfig, web.refresh_token as string);
    expect(refreshed.access_token).toBeTruthy();

    // 2. Again: no password and no consent (remembered).
    const again = await start(webConfig, webCb(), 'openid email');
    await page.goto(again.url.href);
    const backAgain = await backAtClient(page);
    expect(backAgain.searchParams.get('code')).toBeTruthy();

    // 3. The first-party SPA in the same browser: single sign-on, no password prompt, no consent.
    const s = await start(spaConfig, spaCb(), 'openid email');
    await page.goto(s.url.href);
    const spaBack = await backAtClient(page);
    const spa = await oidc.authorizationCodeGrant(spaConfig, spaBack, {
      pkceCodeVerifier: s.verifier,
      expectedState: s.state,
      expectedNonce: s.nonce,
      idTokenExpected: true,
    });
    expect(spa.claims()?.sid).toBeTruthy();
    expect(spa.claims()?.sid).not.toBe(claims?.sid);
    expect(spa.refresh_token).toBeTruthy();

    // 4. Another browser without a session: prompt=none answers login_required at the redirect URI.
    const other = await newPage();
    const silent = await start(spaConfig, spaCb(), 'openid', { prompt: 'none' });
    await other.page.goto(silent.url.href);
    const refused = await backAtClient(other.page);
    expect(refused.searchParams.get('error')).toBe('login_required');
    expect(refused.searchParams.get('iss')).toBe(base);
    await other.context.close();

    // 5. RP-initiated logout: a confirmation page, then both client sessions end.
    const logout = oidc.buildEndSessionUrl(webConfig, { id_token_hint: web.id_token as string, post_logout_redirect_uri: `${rpBase}/bye`, state: 'bye' });
    await page.goto(logout.href);
    await page.getByRole('button', { name: 'Sign out' }).click();
    const bye = await backAtClient(page);
    expect(bye.pathname).toBe('/bye');
    expect(bye.searchParams.get('state')).toBe('bye');
    await expect(oidc.refreshTokenGrant(webConfig, refreshed.refresh_token as string)).rejects.toThrow();
    await expect(oidc.refreshTokenGrant(spaConfig, spa.refresh_token as string)).rejects.toThrow();
    const after = await start(spaConfig, spaCb(), 'openid', { prompt: 'none' });
    await page.goto(after.url.href);
    expect((await backAtClient(page)).searchParams.get('error')).toBe('login_required');
    expect(cspErrors.filter((e) => /Content Security Policy/i.test(e))).toEqual([]);
    await context.close();
  });

  it('password + TOTP through the hosted MFA step', async () => {
    const u = await signUp(t.app);
    const enrol = await t.app.inject({ method: 'POST', url: '/users/me/mfa/totp', headers: bearer(u.access), payload: {} });
    const secret = (enrol.json() as { secret: string }).secret;
    const now = () => Math.floor(Date.now() / 1000);
    // Enrolled with the previous step's code, so the current one is new at sign-in (no replay).
    const on = await t.app.inject({
      method: 'POST',
      url: '/users/me/mfa/totp/verify',
      headers: bearer(u.access),
      payload: { code: await generate({ secret, epoch: now() - 30 }) },
    });
    expect(on.statusCode, on.body).toBe(200);
    const { context, page } = await newPage();
    const s = await start(spaConfig, spaCb(), 'openid email');
    await page.goto(s.url.href);
    await signInOnPage(page, u.email);
    await page.getByLabel('Code from your authenticator app').fill(await generate({ secret, epoch: now() }));
    await page.getByRole('button', { name: 'Verify' }).click();
    const back = await backAtClient(page);
    const tokens = await oidc.authorizationCodeGrant(spaConfig, back, {
      pkceCodeVerifier: s.verifier,
      expectedState: s.state,
      expectedNonce: s.nonce,
      idTokenExpected: true,
    });
    expect(tokens.claims()).toMatchObject({ sub: u.userId, acr: 'mfa', amr: ['pwd', 'otp'] });
    await context.close();
  });
});
