import { existsSync } from 'node:fs';
import { freePort } from '../helpers/free-port.js';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, createTestApp, json, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// Swagger UI at /docs, driven by a real Chromium over a real socket: the page's CSP, the OAuth2
// password flow of the "Authorize" dialog and "Try it out" must all work as FastAPI users expect.

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const STEP_MS = 10_000;
const SCREENSHOT = '/tmp/docs.png';
// Chromium never upgrades localhost/127.0.0.1 to https; another host name shows what a LAN or VM user gets.
const OTHER_HOST = 'docs.tessera.example';

let t: TestApp;
let base: string;

beforeAll(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  t = await createTestApp({ env: { PUBLIC_URL: base } });
  await t.app.listen({ host: '127.0.0.1', port });
});

afterAll(async () => {
  await t?.close();
});

/** Every route of the README "Endpoints" tables with a concrete path (the /auth/mfa/*, /users/me/mfa/* and /admin/* families are not spelled out). */
const CONTRACT: Array<[method: string, path: string]> = [
  ['POST', '/auth/register'],
  ['POST', '/auth/token'],
  ['POST', '/auth/login'],
  ['POST', '/auth/refresh'],
  ['POST', '/auth/logout'],
  ['POST', '/auth/logout/all'],
  ['GET', '/auth/confirm-email'],
  ['POST', '/auth/confirm-email'],
  ['POST', '/auth/confirm-email/resend'],
  ['POST', '/auth/password/forgot'],
  ['GET', '/auth/password/reset'],
  ['POST', '/auth/password/reset'],
  ['GET', '/auth/oauth/:provider/authorize'],
  ['GET', '/auth/oauth/:provider/callback'],
  ['POST', '/auth/oauth/:provider/callback'],
  ['POST', '/auth/oauth/:provider/token'],
  ['GET', '/users/me'],
  ['PATCH', '/users/me'],
  ['DELETE', '/users/me'],
  ['POST', '/users/me/password'],
  ['POST', '/users/me/email'],
  ['GET', '/users/me/sessions'],
  ['DELETE', '/users/me/sessions/:id'],
  ['GET', '/.well-known/jwks.json'],
  ['GET', '/.well-known/openid-configuration'],
  ['GET', '/.well-known/oauth-authorization-server'],
  ['GET', '/auth/userinfo'],
  ['POST', '/auth/userinfo'],
  ['POST', '/auth/revoke'],
  ['POST', '/auth/introspect'],
  ['GET', '/health/live'],
  ['GET', '/health/ready'],
  ['GET', '/metrics'],
];

/** The labels a person sees in a part of the page (the scheme's description aside). */
const visibleLabels = (scope: Locator) => scope.locator('label:visible').allInnerTexts();

const openApiPath = (path: string) => path.replace(/:([A-Za-z_]\w*)/g, '{$1}');

interface OpenApiDoc {
  openapi: string;
  servers: Array<{ url: string }>;
  paths: Record<string, Record<string, { security?: Array<Record<string, string[]>> }>>;
  info: { title: string; version: string; description: string };
  components: { securitySchemes: Record<string, Record<string, unknown>>; responses: Record<string, { headers: Record<string, unknown> }> };
}

describe('GET /docs/json', () => {
  it('is an OpenAPI 3 document with the oauth2 password flow and bearer schemes', async () => {
    const res = await fetch(`${base}/docs/json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const doc = (await res.json()) as OpenApiDoc;
    expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(doc.info.title).toBe('Tessera');
    expect(doc.info.version).toBeTruthy();
    expect(doc.servers).toEqual([{ url: base }]);
    expect(doc.components.securitySchemes.bearerAuth).toEqual({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
    expect(doc.components.securitySchemes.oauth2).toMatchObject({ type: 'oauth2', flows: { password: { tokenUrl: '/auth/token', scopes: {} } } });
    // The dialog asks for no client: its description says how a registered client gets tokens.
    expect(doc.components.securitySchemes.oauth2!.description).toMatch(/client_secret_basic/);
    // Protected operations offer both ways to authorize.
    expect(doc.paths['/users/me']!.get!.security).toEqual(expect.arrayContaining([{ bearerAuth: [] }, { oauth2: [] }]));
    // A 405 (a method the path does not have) belongs to no operation: the document says so and describes the answer.
    expect(doc.info.description).toMatch(/405.*method_not_allowed.*Allow/s);
    expect(Object.keys(doc.components.responses.MethodNotAllowed!.headers)).toEqual(['Allow']);
    // The UI's own routes stay out of the document.
    expect(Object.keys(doc.paths).filter((p) => p.startsWith('/docs'))).toEqual([]);
  });

  it('the server root redirects to the docs (relative, so a proxy path prefix is kept)', async () => {
    for (const method of ['GET', 'HEAD']) {
      const res = await fetch(`${base}/`, { method, redirect: 'manual' });
      expect(res.status, method).toBe(302);
      expect(res.headers.get('location')).toBe('docs');
    }
    const followed = await fetch(`${base}/`);
    expect(followed.url).toBe(`${base}/docs`);
    expect(followed.status).toBe(200);
    expect(followed.headers.get('content-type')).toMatch(/^text\/html/);
    // Nothing else at the root: other methods are 405 with Allow.
    const post = await fetch(`${base}/`, { method: 'POST', redirect: 'manual' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('lists every README "Endpoints" route the app implements', async () => {
    const doc = (await (await fetch(`${base}/docs/json`)).json()) as OpenApiDoc;
    const documented = (method: string, path: string) => doc.paths[openApiPath(path)]?.[method.toLowerCase()] !== undefined;

    // Every contract route is implemented (third-party sign-in included, issue 4): none may silently disappear from the app or the docs.
    const implemented = CONTRACT.filter(([method, url]) => t.app.hasRoute({ method: method as 'GET', url }));
    expect(implemented).toEqual(CONTRACT);
    const missing = implemented.filter(([method, path]) => !documented(method, path)).map(([m, p]) => `${m} ${p}`);
    expect(missing).toEqual([]);
  });
});

describe('Swagger UI in Chromium', () => {
  let browser: Browser | undefined;
  let page: Page;
  const consoleErrors: string[] = [];
  const pageErrors: string[] = [];
  const tokenRequests: Array<{ url: string; contentType: string | undefined; authorization: string | undefined; body: URLSearchParams }> = [];
  const tokenResponses: number[] = [];
  let email: string;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`Chromium not found at ${CHROMIUM}: install it (apt-get install chromium) or set CHROMIUM_PATH. This test must not be skipped.`);
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      timeout: 30_000,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-quic',
        '--no-first-run',
        '--disable-component-update',
        '--disable-sync',
        `--host-resolver-rules=MAP ${OTHER_HOST} 127.0.0.1`,
      ],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    page.setDefaultTimeout(STEP_MS);
    page.setDefaultNavigationTimeout(STEP_MS);
    page.on('console', (msg) => {
      if (msg.type() === 'error') consoleErrors.push(msg.text());
    });
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    page.on('request', (req) => {
      if (new URL(req.url()).pathname === '/auth/token') {
        const headers = req.headers();
        tokenRequests.push({
          url: req.url(),
          contentType: headers['content-type'],
          authorization: headers.authorization,
          body: new URLSearchParams(req.postData() ?? ''),
        });
      }
    });
    page.on('response', (res) => {
      if (new URL(res.url()).pathname === '/auth/token') tokenResponses.push(res.status());
    });

    email = uniqueEmail('docs');
    const reg = await fetch(`${base}/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: PASSWORD, first_name: 'Grace' }),
    });
    expect(reg.status).toBe(201);
  });

  afterAll(async () => {
    await browser?.close();
  });

  it('renders the operations without CSP violations or script errors', async () => {
    const res = await page.goto(`${base}/docs`, { waitUntil: 'load' });
    expect(res?.status()).toBe(200);
    const csp = res?.headers()['content-security-policy'] ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('upgrade-insecure-requests');

    await expect.poll(() => page.title()).toBe('Tessera API');
    // Tessera's icon, not Swagger's.
    const icon = await page.locator('link[rel="icon"]').getAttribute('href');
    const iconRes = await page.request.get(new URL(icon ?? '', page.url()).toString());
    expect(iconRes.status()).toBe(200);
    expect(iconRes.headers()['content-type']).toBe('image/x-icon');
    for (const path of ['/auth/register', '/auth/token', '/users/me', '/users/me/sessions', '/health/ready']) {
      await page.locator(`.opblock-summary-path[data-path="${path}"]`).first().waitFor({ state: 'visible' });
    }
    await expect.poll(() => page.locator('.information-container .title').innerText()).toContain('Tessera');
    await page.locator('.auth-wrapper button.authorize').waitFor({ state: 'visible' });

    expect(consoleErrors.filter((m) => /content[- ]security[- ]policy|refused to/i.test(m))).toEqual([]);
    expect(pageErrors).toEqual([]);
  });

  it('Authorize (OAuth2 password flow) → Try it out → Execute GET /users/me answers 200', async () => {
    await page.locator('.auth-wrapper button.authorize').click();
    const dialog = page.locator('.dialog-ux .modal-ux');
    await dialog.waitFor({ state: 'visible' });

    // Found by its heading: once authorized, the inputs give way to the username as text.
    const oauth = dialog.locator('.auth-container').filter({ has: page.locator('h4', { hasText: 'oauth2 (OAuth2, password)' }) });
    // The username and password only: no client_id, client_secret or "Client credentials location" (a registered client's wrong
    // secret would be answered with a Basic challenge, and the browser would open its own login prompt over the docs).
    await oauth.locator('#oauth_username').waitFor({ state: 'visible' });
    expect(await oauth.locator('input:visible, select:visible').evaluateAll((els: unknown[]) => els.map((e) => (e as { id: string }).id))).toEqual([
      'oauth_username',
      'oauth_password',
    ]);
    for (const hidden of ['#client_id_password', '#client_secret_password', '#password_type'])
      expect(await oauth.locator(hidden).isVisible(), hidden).toBe(false);
    expect(await visibleLabels(oauth)).toEqual(['username:', 'password:']);
    await oauth.locator('#oauth_username').fill(email);
    await oauth.locator('#oauth_password').fill(PASSWORD);
    await oauth.locator('button.authorize').click();

    // Authorized: the button turns into "Logout"; on failure Swagger UI lists the error in the container.
    const loggedIn = oauth.locator('button.authorize', { hasText: 'Logout' });
    await loggedIn.waitFor({ state: 'visible' }).catch(async (err: unknown) => {
      const shown = await oauth.locator('.errors').allInnerTexts();
      throw new Error(
        `Authorize failed; dialog says ${JSON.stringify(shown)}; token requests ${JSON.stringify(tokenRequests.map((r) => r.url))} → ${JSON.stringify(tokenResponses)}`,
        { cause: err },
      );
    });

    // The token request went to this server's /auth/token as an RFC 6749 form, and succeeded.
    expect(tokenRequests).toHaveLength(1);
    expect(tokenRequests[0]!.url).toBe(`${base}/auth/token`);
    expect(tokenRequests[0]!.contentType).toMatch(/^application\/x-www-form-urlencoded/);
    expect(tokenRequests[0]!.body.get('grant_type')).toBe('password');
    expect(tokenRequests[0]!.body.get('username')).toBe(email);
    // The hidden, empty client fields: HTTP Basic of ":", which the token endpoint reads as no client.
    expect(tokenRequests[0]!.authorization).toBe('Basic Og==');
    expect(tokenRequests[0]!.body.has('client_id')).toBe(false);
    expect(tokenResponses).toEqual([200]);
    await expect.poll(() => oauth.locator('h6').innerText()).toBe('Authorized');
    expect(await oauth.innerText()).toContain(email);
    expect(await visibleLabels(oauth)).not.toContainEqual(expect.stringMatching(/client|Client credentials/));

    await dialog.locator('button.btn-done, button.close-modal').first().click();
    await dialog.waitFor({ state: 'hidden' });

    const op = page.locator('.opblock.opblock-get').filter({ has: page.locator('.opblock-summary-path[data-path="/users/me"]') });
    await op.locator('.opblock-summary').first().click();
    await op.locator('button.try-out__btn').click();

    const call = page.waitForRequest((req) => new URL(req.url()).pathname === '/users/me' && req.method() === 'GET');
    await op.locator('button.execute').click();
    const sent = await call;
    expect(sent.url()).toBe(`${base}/users/me`);
    expect(sent.headers().authorization).toMatch(/^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);

    const live = op.locator('.live-responses-table');
    const status = live.locator('.response .response-col_status').first();
    await expect.poll(async () => (await status.innerText()).trim(), { timeout: STEP_MS }).toBe('200');
    const body = await live.locator('.response .response-col_description').first().innerText();
    expect(body).toContain(email);
    expect(body).toContain('"first_name": "Grace"');

    // Bring the result into view for the screenshot.
    await live.scrollIntoViewIfNeeded();
    await page.screenshot({ path: SCREENSHOT, fullPage: false });

    expect(consoleErrors.filter((m) => /content[- ]security[- ]policy|refused to/i.test(m))).toEqual([]);
    expect(pageErrors).toEqual([]);
  });

  it('loads over plain http on a host name other than localhost (no upgrade to https)', async () => {
    const other = await browser!.newPage();
    other.setDefaultTimeout(STEP_MS);
    const failed: string[] = [];
    const upgraded: string[] = [];
    other.on('requestfailed', (req) => failed.push(`${req.url()} ${req.failure()?.errorText ?? ''}`));
    other.on('request', (req) => {
      if (req.url().startsWith('https:')) upgraded.push(req.url());
    });
    try {
      const res = await other.goto(`http://${OTHER_HOST}:${new URL(base).port}/docs`, { waitUntil: 'load' });
      expect(res?.status()).toBe(200);
      await other.locator('.opblock-summary-path[data-path="/users/me"]').first().waitFor({ state: 'visible' });
      expect(upgraded).toEqual([]);
      expect(failed).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it('Authorize opened a real server-side session (listed next to a fresh login)', async () => {
    const me = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } });
    expect(me.statusCode).toBe(200);
    // Two sessions now: the one Swagger UI opened and this one.
    const sessions = await t.app.inject({
      method: 'GET',
      url: '/users/me/sessions',
      headers: { authorization: `Bearer ${(json(me) as { access_token: string }).access_token}` },
    });
    expect(sessions.statusCode).toBe(200);
    expect(sessions.json()).toHaveLength(2);
  });
});

describe('/docs behind https', () => {
  it('keeps upgrade-insecure-requests in the page policy', async () => {
    const secure = await createTestApp({ env: { PUBLIC_URL: 'https://auth.example.com' }, db: t.db });
    try {
      const res = await secure.app.inject({ method: 'GET', url: '/docs' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-security-policy']).toContain('upgrade-insecure-requests');
    } finally {
      await secure.close();
    }
  });
});
