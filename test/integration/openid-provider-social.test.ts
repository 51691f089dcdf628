import { createServer, type RequestListener, type Server } from 'node:http';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port.js';
import { InjectBrowser, authorizeUrl } from '../helpers/inject-browser.js';
import { Browser } from '../helpers/social.js';
import { TEST_ISSUER, createTestApp, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// The hosted sign-in page's provider buttons: a real OpenID provider (oidc-provider) behind the
// social web flow, back to the hosted pages, and on to the relying party with a code.

const RP = 'https://rp.example/cb';
let t: TestApp;
let server: Server;
const accounts = new Map<string, Record<string, unknown>>();

beforeAll(async () => {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const specifier = 'oidc-provider';
  const { default: Provider } = (await import(specifier)) as { default: new (issuer: string, config: object) => { callback(): RequestListener } };
  const op = new Provider(issuer, {
    clients: [{ client_id: 'tessera-corp', client_secret: 'corp-secret', redirect_uris: [`${TEST_ISSUER}/auth/oauth/corp/callback`] }],
    pkce: { required: () => true },
    findAccount: (_ctx: unknown, sub: string) => {
      const claims = accounts.get(sub);
      return claims ? { accountId: sub, claims: () => ({ sub, ...claims }) } : undefined;
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    cookies: { keys: ['a test cookie key'] },
    features: { devInteractions: { enabled: true } },
  });
  server = createServer(op.callback());
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  t = await createTestApp({
    env: {
      OIDC_PROVIDERS: 'corp',
      OIDC_CORP_ISSUER: issuer,
      OIDC_CORP_CLIENT_ID: 'tessera-corp',
      OIDC_CORP_CLIENT_SECRET: 'corp-secret',
      OIDC_CORP_DISPLAY_NAME: 'Corp SSO',
    },
  });
  // The provider signs with the real time.
  t.clock.set(new Date());
});

afterAll(async () => {
  await t?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
});

describe('provider buttons on the hosted sign-in page', () => {
  it('signs in with the configured provider and continues to the client with a code (amr fed)', async () => {
    const c = await t.app.services.clients.create(null, {
      name: 'Own web',
      type: 'confidential',
      firstParty: true,
      redirectUris: [RP],
      scopes: ['openid', 'email'],
    });
    const sub = 'corp-user-1';
    const email = uniqueEmail('corp');
    accounts.set(sub, { email, email_verified: true });
    const b = new InjectBrowser(t.app);
    const page = await b.open(authorizeUrl({ client_id: c.client.clientId, redirect_uri: RP, scope: 'openid email', state: 'rp-state', nonce: 'n' }));
    const href = /<a class="button secondary" href="([^"]+)">Continue with Corp SSO<\/a>/.exec(page.res.body)?.[1]?.replace(/&amp;/g, '&');
    expect(href).toBeTruthy();
    const toProvider = await b.get(href as string);
    expect(toProvider.statusCode).toBe(303);
    const callback = await new Browser().untilRedirectTo(String(toProvider.headers.location), TEST_ISSUER, sub);
    const back = await b.get(callback.slice(TEST_ISSUER.length));
    const returnUrl = String(back.headers.location);
    expect(returnUrl.startsWith(`${TEST_ISSUER}/auth/ui/social-return?`)).toBe(true);
    // The return URL alone (its code and state) is useless in another browser: the PKCE verifier needs this browser's cookie.
    const thief = new InjectBrowser(t.app);
    expect((await thief.get(returnUrl.slice(TEST_ISSUER.length))).statusCode).toBe(400);
    const done = await b.follow(await b.get(returnUrl.slice(TEST_ISSUER.length)));
    const code = done.external?.searchParams.get('code');
    expect(code, done.res.body.slice(0, 500)).toBeTruthy();
    expect(done.external?.searchParams.get('state')).toBe('rp-state');
    const tokens = await t.app.inject({
      method: 'POST',
      url: '/auth/token',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${c.client.clientId}:${c.secret ?? ''}`).toString('base64')}`,
      },
      payload: new URLSearchParams({ grant_type: 'authorization_code', code: code as string, redirect_uri: RP }).toString(),
    });
    expect(tokens.statusCode, tokens.body).toBe(200);
    expect(decodeJwt((tokens.json() as { id_token: string }).id_token)).toMatchObject({ email, amr: ['fed'], acr: 'fed', nonce: 'n' });
  });
});
