import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, memoryStorage } from '../../packages/client/src/index.js';
import { freePort } from '../helpers/free-port.js';
import { InjectBrowser } from '../helpers/inject-browser.js';
import { PASSWORD, createTestApp, signUp, type TestApp } from '../helpers/test-app.js';

// The SDK's OpenID redirect flow against a live Tessera: createAuthorizationRequest builds the
// URL, a browser signs in on the hosted page, handleCallback checks the callback and exchanges
// the code (public client, PKCE); the session then works, refreshes for its client, and signs out.

let t: TestApp;
let baseUrl: string;
let clientId: string;
let user: { email: string; userId: string };
const REDIRECT = 'http://127.0.0.1/app/callback';

beforeAll(async () => {
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  t = await createTestApp({ env: { PUBLIC_URL: baseUrl } });
  await t.app.listen({ host: '127.0.0.1', port });
  const { client } = await t.app.services.clients.create(null, {
    name: 'SDK app',
    type: 'public',
    firstParty: true,
    redirectUris: [REDIRECT],
    scopes: ['openid', 'email', 'profile'],
    grantTypes: ['authorization_code', 'refresh_token'],
  });
  clientId = client.clientId;
  const u = await signUp(t.app);
  user = { email: u.email, userId: u.userId };
});
afterAll(async () => {
  await t?.close();
});

/** The browser part: opens the SDK's URL, signs in on the hosted page; the URL the browser comes back to. */
async function browse(url: string, b = new InjectBrowser(t.app)): Promise<URL> {
  const at = new URL(url);
  const opened = await b.open(at.pathname + at.search);
  const external = opened.external ?? (await b.submit(opened.res, { email: user.email, password: PASSWORD })).external;
  if (!external) throw new Error('the browser did not come back to the app');
  return external;
}

describe('@tessera/client redirect flow against a live server', () => {
  it('signs in: the ID token checked, the session usable, refreshed for its client, signed out', async () => {
    const auth = createClient({ baseUrl, storage: memoryStorage(), now: () => t.clock.now().getTime() });
    const request = await auth.createAuthorizationRequest({ clientId, redirectUri: REDIRECT, scope: 'openid email' });
    expect(new URL(request.url).searchParams.get('code_challenge_method')).toBe('S256');
    const back = await browse(request.url);
    expect(back.searchParams.get('iss')).toBe(baseUrl);
    const signedIn = await auth.handleCallback(back);
    expect(signedIn.session.userId).toBe(user.userId);
    expect(signedIn.idTokenClaims).toMatchObject({ sub: user.userId, aud: clientId, nonce: request.nonce, email: user.email });
    expect((await auth.getUser()).email).toBe(user.email);
    // The refresh goes to /auth/token with the client_id: a refresh token works for its client only.
    t.clock.advance(60 * 60 * 1000);
    expect((await auth.getUser()).id).toBe(user.userId);
    await auth.signOut();
    await expect(auth.getUser()).rejects.toMatchObject({ code: 'not_signed_in' });
  });

  it('a callback of another request (state), of another server (iss), or replayed is refused', async () => {
    const auth = createClient({ baseUrl, storage: memoryStorage(), now: () => t.clock.now().getTime() });
    const first = await auth.createAuthorizationRequest({ clientId, redirectUri: REDIRECT });
    const second = await auth.createAuthorizationRequest({ clientId, redirectUri: REDIRECT });
    const back = await browse(first.url);
    await expect(auth.handleCallback(back, second)).rejects.toMatchObject({ code: 'state_mismatch' });
    const forged = new URL(back);
    forged.searchParams.set('iss', 'https://evil.example');
    await expect(auth.handleCallback(forged, first)).rejects.toMatchObject({ code: 'issuer_mismatch' });
    await auth.handleCallback(back, first);
    // The same code again: the server refuses it (and ends the session it opened).
    await expect(auth.handleCallback(back, first)).rejects.toMatchObject({ code: 'invalid_grant' });
    await expect(auth.getUser()).rejects.toThrow(/session has ended/);
  });
});

describe('a third-party public client without offline_access (no refresh token)', () => {
  it('keeps the session across a reload, uses it until the access token expires, then is signed out; signOut revokes it', async () => {
    const { client } = await t.app.services.clients.create(null, {
      name: 'Partner app',
      type: 'public',
      redirectUris: [REDIRECT],
      scopes: ['openid', 'email', 'offline_access'],
      grantTypes: ['authorization_code', 'refresh_token'],
    });
    const storage = memoryStorage();
    const make = () => createClient({ baseUrl, storage, now: () => t.clock.now().getTime() });
    /** Signs in through the hosted page and the consent page of this third-party client. */
    const signIn = async (auth: ReturnType<typeof make>) => {
      const request = await auth.createAuthorizationRequest({ clientId: client.clientId, redirectUri: REDIRECT, scope: 'openid email' });
      const b = new InjectBrowser(t.app);
      const at = new URL(request.url);
      const opened = await b.open(at.pathname + at.search);
      const signedIn = await b.submit(opened.res, { email: user.email, password: PASSWORD });
      // The consent page the first time; remembered afterwards.
      const back = signedIn.external ?? (await b.submit(signedIn.res, { decision: 'allow' })).external;
      if (!back) throw new Error('the browser did not come back to the app');
      return auth.handleCallback(back);
    };
    const userinfo = (auth: ReturnType<typeof make>) => auth.fetch(`${baseUrl}/auth/userinfo`);

    const first = make();
    const signedIn = await signIn(first);
    expect(await t.app.services.oidc.listConsents(user.userId)).toEqual([expect.objectContaining({ clientId: client.clientId })]);
    expect(signedIn.session.refreshToken).toBeUndefined();
    // A reload: a new client on the same storage still has the session, and it works.
    const reloaded = make();
    expect(await reloaded.getSession()).toMatchObject({ clientId: client.clientId, userId: user.userId });
    const claims = (await (await userinfo(reloaded)).json()) as { sub: string; email: string };
    expect(claims).toMatchObject({ sub: user.userId, email: user.email });
    // Past the access token's lifetime: no refresh is attempted, the session is over.
    t.clock.advance((t.config.jwt.accessTokenMinutes * 60 + 1) * 1000);
    await expect(userinfo(reloaded)).rejects.toMatchObject({ code: 'not_signed_in' });
    expect(await make().getSession()).toBeNull();

    // signOut without a refresh token revokes the access token: the server refuses it afterwards.
    const again = make();
    const second = await signIn(again);
    expect((await userinfo(again)).status).toBe(200);
    await again.signOut();
    expect(await again.getSession()).toBeNull();
    const after = await fetch(`${baseUrl}/auth/userinfo`, { headers: { authorization: `Bearer ${second.session.accessToken}` } });
    expect(after.status).toBe(401);
  });
});
