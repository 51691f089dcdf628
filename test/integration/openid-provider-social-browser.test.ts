import { existsSync } from 'node:fs';
import { createServer, type RequestListener, type Server } from 'node:http';
import * as oidc from 'openid-client';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/infra/clock.js';
import { freePort } from '../helpers/free-port.js';
import { createTestApp, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// The hosted sign-in page's "Continue with <provider>" button in Chromium: a real OpenID provider
// (oidc-provider, its own login and consent pages) upstream, Tessera's social web flow, back to the
// hosted pages and on to the relying party (openid-client) with a code; then SSO for a second client.

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const STEP_MS = 10_000;

/** The real time: openid-client and oidc-provider check iat/exp against their own clocks. */
class RealClock extends ManualClock {
  override now(): Date {
    return new Date();
  }
}

let t: TestApp;
let base: string;
let upstream: Server;
let upstreamBase: string;
let rp: Server;
let rpBase: string;
let browser: Browser;
const accounts = new Map<string, Record<string, unknown>>();

function configFor(clientId: string, auth: oidc.ClientAuth): oidc.Configuration {
  const config = new oidc.Configuration(
    {
      issuer: base,
      authorization_endpoint: `${base}/auth/authorize`,
      token_endpoint: `${base}/auth/token`,
      userinfo_endpoint: `${base}/auth/userinfo`,
      jwks_uri: `${base}/.well-known/jwks.json`,
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

async function start(config: oidc.Configuration, redirectUri: string, scope: string) {
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
  });
  return { url, verifier, state, nonce };
}

async function backAtClient(page: Page): Promise<URL> {
  await page.waitForURL((u) => u.href.startsWith(rpBase), { timeout: STEP_MS });
  return new URL(page.url());
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM) && !process.env.CHROMIUM_PATH) {
    throw new Error(`Chromium not found at ${CHROMIUM}: install it (apt-get install chromium) or set CHROMIUM_PATH. This test must not be skipped.`);
  }
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const upstreamPort = await freePort();
  const issuer = `http://127.0.0.1:${upstreamPort}`;
  upstreamBase = issuer;
  const specifier = 'oidc-provider';
  const { default: Provider } = (await import(specifier)) as { default: new (issuer: string, config: object) => { callback(): RequestListener } };
  const op = new Provider(issuer, {
    clients: [{ client_id: 'tessera-corp', client_secret: 'corp-secret', redirect_uris: [`${base}/auth/oauth/corp/callback`] }],
    pkce: { required: () => true },
    findAccount: (_ctx: unknown, sub: string) => {
      const claims = accounts.get(sub);
      return claims ? { accountId: sub, claims: () => ({ sub, ...claims }) } : undefined;
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    cookies: { keys: ['a test cookie key'] },
    features: { devInteractions: { enabled: true } },
  });
  upstream = createServer(op.callback());
  await new Promise<void>((resolve) => upstream.listen(upstreamPort, '127.0.0.1', resolve));
  t = await createTestApp({
    clock: new RealClock(),
    env: {
      PUBLIC_URL: base,
      OIDC_PROVIDERS: 'corp',
      OIDC_CORP_ISSUER: issuer,
      OIDC_CORP_CLIENT_ID: 'tessera-corp',
      OIDC_CORP_CLIENT_SECRET: 'corp-secret',
      OIDC_CORP_DISPLAY_NAME: 'Corp SSO',
    },
  });
  await t.app.listen({ host: '127.0.0.1', port });
  const rpPort = await freePort();
  rpBase = `http://127.0.0.1:${rpPort}`;
  rp = createServer((req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end(`relying party: ${req.url ?? ''}`));
  await new Promise<void>((resolve) => rp.listen(rpPort, '127.0.0.1', resolve));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
});

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (rp ? rp.close(() => resolve()) : resolve()));
  upstream?.closeAllConnections();
  await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
  await t?.close();
});

describe('"Continue with <provider>" on the hosted sign-in page, in Chromium', () => {
  it('signs in at the upstream provider’s own pages, returns with a code for the client, and gives a second client SSO', async () => {
    const clients = t.app.services.clients;
    const web = await clients.create(null, {
      name: 'Partner Web',
      type: 'confidential',
      redirectUris: ['http://127.0.0.1/web/cb'],
      scopes: ['openid', 'email'],
    });
    const spa = await clients.create(null, {
      name: 'Own SPA',
      type: 'public',
      firstParty: true,
      redirectUris: ['http://127.0.0.1/spa/cb'],
      scopes: ['openid', 'email'],
    });
    const webConfig = configFor(web.client.clientId, oidc.ClientSecretBasic(web.secret as string));
    const spaConfig = configFor(spa.client.clientId, oidc.None());
    const sub = 'corp-browser-user';
    const email = uniqueEmail('corp-browser');
    accounts.set(sub, { email, email_verified: true });

    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    const tesseraErrors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' && m.location().url.startsWith(base)) tesseraErrors.push(m.text());
    });

    // 1. The relying party starts the sign-in; the hosted page offers the provider.
    const a = await start(webConfig, `${rpBase}/web/cb`, 'openid email');
    await page.goto(a.url.href);
    await page.getByRole('heading', { name: 'Sign in to Partner Web' }).waitFor();
    await page.getByRole('link', { name: 'Continue with Corp SSO' }).click();

    // 2. The upstream provider's own login and consent pages.
    await page.waitForURL((u) => !u.href.startsWith(base), { timeout: STEP_MS });
    await page.locator('input[name=login]').fill(sub);
    await page.locator('input[name=password]').fill('any');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    await page.getByRole('button', { name: 'Continue' }).click();

    // 3. Back at Tessera: the third-party client's consent, then the relying party with a code.
    await page.getByRole('heading', { name: 'Allow Partner Web?' }).waitFor();
    await page.getByRole('button', { name: 'Allow' }).click();
    const back = await backAtClient(page);
    const tokens = await oidc.authorizationCodeGrant(webConfig, back, {
      pkceCodeVerifier: a.verifier,
      expectedState: a.state,
      expectedNonce: a.nonce,
      idTokenExpected: true,
    });
    expect(tokens.claims()).toMatchObject({ email, amr: ['fed'], acr: 'fed', aud: web.client.clientId });
    const userinfo = await oidc.fetchUserInfo(webConfig, tokens.access_token, tokens.claims()?.sub as string);
    expect(userinfo.email).toBe(email);

    // 4. A second client in the same browser: single sign-on, no sign-in page, no provider.
    const s = await start(spaConfig, `${rpBase}/spa/cb`, 'openid email');
    const visited: string[] = [];
    page.on('framenavigated', (f) => visited.push(f.url()));
    await page.goto(s.url.href);
    const spaBack = await backAtClient(page);
    // Straight back: neither a hosted page nor the upstream provider on the way.
    expect(visited.filter((u) => u.includes('/auth/ui/') || u.startsWith(upstreamBase))).toEqual([]);
    const spaTokens = await oidc.authorizationCodeGrant(spaConfig, spaBack, {
      pkceCodeVerifier: s.verifier,
      expectedState: s.state,
      expectedNonce: s.nonce,
      idTokenExpected: true,
    });
    expect(spaTokens.claims()).toMatchObject({ sub: tokens.claims()?.sub, email, aud: spa.client.clientId });
    expect(spaTokens.claims()?.sid).not.toBe(tokens.claims()?.sid);
    expect(tesseraErrors).toEqual([]);
    await context.close();
  });
});
