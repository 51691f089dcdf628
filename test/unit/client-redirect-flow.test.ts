import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  TesseraError,
  buildAuthorizationUrl,
  checkCallback,
  checkIdToken,
  createClient,
  memoryStorage,
  type AuthorizationRequest,
  type FetchLike,
} from '../../packages/client/src/index.js';
import { queryOf } from '../../packages/client/src/redirect-flow.js';

// The SDK's redirect flow (packages/client/src/redirect-flow.ts) without a server: URL building,
// the callback's iss/state checks, ID token claim checks, and the code exchange and refresh it sends.
// The full flow against a live /auth/authorize comes with the authorization endpoint (op-flow branch).

const BASE = 'https://auth.example.com';
const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const jwt = (claims: object) => `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64(claims)}.c2ln`;
const NOW = Date.UTC(2026, 0, 15, 12);
const nowS = NOW / 1000;

function rejection(f: () => unknown): TesseraError {
  try {
    f();
  } catch (err) {
    return err as TesseraError;
  }
  throw new Error('did not throw');
}

describe('buildAuthorizationUrl', () => {
  it('names every parameter, encodes them, and extra parameters cannot replace the flow’s own', () => {
    const url = buildAuthorizationUrl(
      BASE,
      {
        clientId: 'c1',
        redirectUri: 'com.example.app:/cb?x=1&y=a b',
        scope: 'openid offline_access',
        prompt: 'login',
        maxAge: 300,
        loginHint: 'ada@example.com',
        acrValues: 'mfa',
        extraParams: { resource: 'https://api.example.com', state: 'attacker', code_challenge_method: 'plain' },
      },
      { state: 's', nonce: 'n', codeChallenge: 'ch' },
    );
    expect(url.startsWith(`${BASE}/auth/authorize?`)).toBe(true);
    const q = new URL(url).searchParams;
    expect(Object.fromEntries(q)).toStrictEqual({
      resource: 'https://api.example.com',
      state: 's',
      code_challenge_method: 'S256',
      response_type: 'code',
      client_id: 'c1',
      redirect_uri: 'com.example.app:/cb?x=1&y=a b',
      scope: 'openid offline_access',
      nonce: 'n',
      code_challenge: 'ch',
      prompt: 'login',
      max_age: '300',
      login_hint: 'ada@example.com',
      acr_values: 'mfa',
    });
  });

  it('createAuthorizationRequest: fresh state, nonce and an S256 challenge of the verifier', async () => {
    const client = createClient({ baseUrl: BASE });
    const a = await client.createAuthorizationRequest({ clientId: 'c1', redirectUri: 'https://app.example.com/cb' });
    const b = await client.createAuthorizationRequest({ clientId: 'c1', redirectUri: 'https://app.example.com/cb' });
    const q = new URL(a.url).searchParams;
    expect(q.get('state')).toBe(a.state);
    expect(q.get('nonce')).toBe(a.nonce);
    expect(q.get('scope')).toBe('openid profile email');
    expect(q.get('code_challenge')).toBe(createHash('sha256').update(a.codeVerifier).digest('base64url'));
    expect(a.codeVerifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a.state).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(new Set([a.state, a.nonce, a.codeVerifier, b.state, b.nonce, b.codeVerifier]).size).toBe(6);
    expect(a.url).not.toContain(a.codeVerifier);
  });
});

describe('checkCallback', () => {
  const saved = { state: 'st', redirectUri: 'https://app.example.com/cb' };
  const cb = (query: string) => `https://app.example.com/cb?${query}`;

  it('returns the code when iss and state match', () => {
    expect(checkCallback(cb(`code=abc&state=st&iss=${encodeURIComponent(BASE)}`), saved, BASE)).toBe('abc');
  });

  it('refuses a missing or foreign iss (RFC 9207), before anything else', () => {
    expect(rejection(() => checkCallback(cb('code=abc&state=st'), saved, BASE)).code).toBe('issuer_mismatch');
    expect(rejection(() => checkCallback(cb('code=abc&state=st&iss=https%3A%2F%2Fevil.example'), saved, BASE)).code).toBe('issuer_mismatch');
    // Even an error answer from another issuer is not believed.
    expect(rejection(() => checkCallback(cb('error=access_denied&state=st&iss=https%3A%2F%2Fevil.example'), saved, BASE)).code).toBe('issuer_mismatch');
  });

  it('refuses another state (CSRF), a missing one, or a callback to another URL', () => {
    expect(rejection(() => checkCallback(cb(`code=abc&state=other&iss=${encodeURIComponent(BASE)}`), saved, BASE)).code).toBe('state_mismatch');
    expect(rejection(() => checkCallback(cb(`code=abc&iss=${encodeURIComponent(BASE)}`), saved, BASE)).code).toBe('state_mismatch');
    expect(rejection(() => checkCallback(`https://evil.example/cb?code=abc&state=st&iss=${encodeURIComponent(BASE)}`, saved, BASE)).code).toBe(
      'redirect_uri_mismatch',
    );
  });

  it("an error answer becomes a TesseraError with the server's code and description", () => {
    const err = rejection(() =>
      checkCallback(cb(`error=login_required&error_description=Sign+in+first&state=st&iss=${encodeURIComponent(BASE)}`), saved, BASE),
    );
    expect(err).toBeInstanceOf(TesseraError);
    expect(err.code).toBe('login_required');
    expect(err.description).toBe('Sign in first');
  });

  it('queryOf reads first values, decodes + and %, ignores the fragment', () => {
    expect([...queryOf('x:/cb?a=1&a=2&b=x+y%21&c#frag=1')]).toEqual([
      ['a', '1'],
      ['b', 'x y!'],
      ['c', ''],
    ]);
  });
});

describe('checkIdToken', () => {
  const ok = { iss: BASE, aud: 'c1', sub: 'u1', nonce: 'n1', iat: nowS, exp: nowS + 300 };
  const check = (claims: object) => checkIdToken(jwt(claims), { issuer: BASE, clientId: 'c1', nonce: 'n1', nowMs: NOW });

  it('accepts the right claims', () => {
    expect(check(ok)).toMatchObject({ sub: 'u1' });
    expect(check({ ...ok, aud: ['c1', 'api'], azp: 'c1' })).toMatchObject({ sub: 'u1' });
  });

  it.each([
    ['another issuer', { iss: 'https://evil.example' }],
    ['another audience', { aud: 'c2' }],
    ['several audiences without azp', { aud: ['c1', 'api'] }],
    ['another nonce (replay)', { nonce: 'n2' }],
    ['no nonce', { nonce: undefined }],
    ['expired', { exp: nowS - 120 }],
    ['no iat', { iat: undefined }],
    ['no sub', { sub: undefined }],
  ])('refuses %s', (_, change) => {
    expect(rejection(() => check({ ...ok, ...change })).code).toBe('id_token_invalid');
  });
});

describe('the client: code exchange and refresh as the public client', () => {
  it('handleCallback posts the code with client_id and code_verifier, checks the ID token, and refreshes as that client (single flight)', async () => {
    const calls: Array<{ url: string; body: string }> = [];
    let request: AuthorizationRequest | null = null;
    let now = NOW;
    const access = (n: number) => jwt({ sub: 'u1', iat: Math.floor(now / 1000), exp: Math.floor(now / 1000) + 900, n });
    const fetch: FetchLike = async (input, init) => {
      const body = typeof init?.body === 'string' ? init.body : '';
      calls.push({ url: typeof input === 'string' ? input : input instanceof URL ? input.href : input.url, body });
      await new Promise((r) => setTimeout(r, 10));
      const tokens =
        calls.length === 1
          ? {
              access_token: access(1),
              token_type: 'Bearer',
              expires_in: 900,
              refresh_token: 'r1',
              id_token: jwt({ iss: BASE, aud: 'c1', sub: 'u1', nonce: request?.nonce, iat: now / 1000, exp: now / 1000 + 300 }),
            }
          : { access_token: access(2), token_type: 'Bearer', expires_in: 900, refresh_token: 'r2' };
      return new Response(JSON.stringify(tokens), { status: 200, headers: { 'content-type': 'application/json' } });
    };
    const storage = memoryStorage();
    const client = createClient({ baseUrl: BASE, fetch, storage, now: () => now });
    request = await client.createAuthorizationRequest({ clientId: 'c1', redirectUri: 'https://app.example.com/cb', scope: 'openid offline_access' });
    const done = await client.handleCallback(`https://app.example.com/cb?code=the-code&state=${request.state}&iss=${encodeURIComponent(BASE)}`);
    expect(done.status).toBe('signed_in');
    expect(done.idTokenClaims).toMatchObject({ sub: 'u1' });
    expect(done.session.clientId).toBe('c1');
    expect(calls[0]!.url).toBe(`${BASE}/auth/token`);
    expect(Object.fromEntries(new URLSearchParams(calls[0]!.body))).toStrictEqual({
      grant_type: 'authorization_code',
      code: 'the-code',
      redirect_uri: 'https://app.example.com/cb',
      client_id: 'c1',
      code_verifier: request.codeVerifier,
    });
    // The stored request is used once.
    await expect(client.handleCallback('https://app.example.com/cb?code=x')).rejects.toMatchObject({ code: 'authorization_request_missing' });

    now += 20 * 60_000;
    const [a, b] = await Promise.all([client.refreshSession(), client.refreshSession()]);
    expect(a).toBe(b);
    expect(calls).toHaveLength(2);
    expect(calls[1]!.url).toBe(`${BASE}/auth/token`);
    expect(Object.fromEntries(new URLSearchParams(calls[1]!.body))).toStrictEqual({ grant_type: 'refresh_token', refresh_token: 'r1', client_id: 'c1' });
    expect(a.clientId).toBe('c1');
  });

  it('an ID token with another nonce is refused and nothing is signed in', async () => {
    const fetch: FetchLike = async () =>
      new Response(
        JSON.stringify({
          access_token: jwt({ sub: 'u1' }),
          token_type: 'Bearer',
          refresh_token: 'r',
          id_token: jwt({ iss: BASE, aud: 'c1', sub: 'u1', nonce: 'stolen', iat: 1, exp: 4102444800 }),
        }),
        { status: 200 },
      );
    const client = createClient({ baseUrl: BASE, fetch });
    const request = await client.createAuthorizationRequest({ clientId: 'c1', redirectUri: 'https://app.example.com/cb' });
    await expect(
      client.handleCallback(`https://app.example.com/cb?code=c&state=${request.state}&iss=${encodeURIComponent(BASE)}`, request),
    ).rejects.toMatchObject({
      code: 'id_token_invalid',
    });
    expect(await client.getSession()).toBeNull();
  });
});

describe('a session without refresh token (a third-party client without offline_access)', () => {
  /** A fake Tessera: the code exchange answers without refresh_token; every call is recorded; `answer` overrides by path. */
  function setup(answer: (path: string) => Response | null = () => null) {
    const calls: Array<{ path: string; body: string; auth: string | null }> = [];
    let now = NOW;
    let request: AuthorizationRequest | null = null;
    const fetch: FetchLike = async (input, init) => {
      const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
      const headers = new Headers(init?.headers);
      calls.push({ path: url.pathname, body: typeof init?.body === 'string' ? init.body : '', auth: headers.get('authorization') });
      const own = answer(url.pathname);
      if (own) return own;
      if (url.pathname === '/auth/token') {
        const iat = Math.floor(now / 1000);
        return Response.json({
          access_token: jwt({ sub: 'u1', iat, exp: iat + 900, client_id: 'c3' }),
          token_type: 'Bearer',
          expires_in: 900,
          id_token: jwt({ iss: BASE, aud: 'c3', sub: 'u1', nonce: request?.nonce, iat, exp: iat + 300 }),
        });
      }
      if (url.pathname === '/auth/revoke') return new Response(null, { status: 200 });
      return Response.json({ ok: true });
    };
    const storage = memoryStorage();
    const make = () => createClient({ baseUrl: BASE, fetch, storage, now: () => now });
    const client = make();
    return {
      calls,
      storage,
      client,
      make,
      advance: (ms: number) => (now += ms),
      async signIn() {
        request = await client.createAuthorizationRequest({ clientId: 'c3', redirectUri: 'https://app.example.com/cb', scope: 'openid email' });
        return client.handleCallback(`https://app.example.com/cb?code=c&state=${request.state}&iss=${encodeURIComponent(BASE)}`);
      },
    };
  }

  it('is kept and survives a reload (a new client on the same storage)', async () => {
    const f = setup();
    const done = await f.signIn();
    expect(done.session.refreshToken).toBeUndefined();
    expect(done.session.clientId).toBe('c3');
    const reloaded = f.make();
    expect(await reloaded.getSession()).toMatchObject({ accessToken: done.session.accessToken, clientId: 'c3', userId: 'u1' });
    expect(await reloaded.getAccessToken()).toBe(done.session.accessToken);
  });

  it('uses its access token to the end without trying a refresh, then is signed out (not_signed_in, signedOut)', async () => {
    const f = setup();
    const done = await f.signIn();
    const events: string[] = [];
    f.client.onAuthStateChange((e) => events.push(e));
    // Inside the refresh margin but not expired: the same token, no call.
    f.advance(900_000 - 10_000);
    expect(await f.client.getAccessToken()).toBe(done.session.accessToken);
    expect((await f.client.fetch('https://api.example.com/orders')).status).toBe(200);
    expect(f.calls.at(-1)).toMatchObject({ path: '/orders', auth: `Bearer ${done.session.accessToken}` });
    f.advance(10_000);
    await expect(f.client.getAccessToken()).rejects.toMatchObject({ code: 'not_signed_in' });
    expect(events).toEqual(['signedOut']);
    expect(await f.client.getSession()).toBeNull();
    expect(await f.storage.get('tessera.session')).toBeNull();
    expect(f.calls.filter((c) => c.path === '/auth/token' || c.path === '/auth/refresh')).toHaveLength(1);
  });

  it("a 401 of another service is returned as is (no refresh, no retry); Tessera's own 401 ends the session", async () => {
    const f = setup((path) => (path === '/orders' || path === '/users/me' ? Response.json({ error: 'invalid_token', message: 'no' }, { status: 401 }) : null));
    await f.signIn();
    const res = await f.client.fetch('https://api.example.com/orders');
    expect(res.status).toBe(401);
    expect(f.calls.filter((c) => c.path === '/orders')).toHaveLength(1);
    expect(await f.client.getSession()).not.toBeNull();
    await expect(f.client.getUser()).rejects.toMatchObject({ status: 401 });
    expect(await f.client.getSession()).toBeNull();
    expect(f.calls.filter((c) => c.path === '/auth/token')).toHaveLength(1);
  });

  it('signOut revokes the access token (RFC 7009) for its client, and forgets the session', async () => {
    const f = setup();
    const done = await f.signIn();
    await f.client.signOut();
    const revoke = f.calls.find((c) => c.path === '/auth/revoke');
    expect(Object.fromEntries(new URLSearchParams(revoke?.body))).toStrictEqual({
      token: done.session.accessToken,
      token_type_hint: 'access_token',
      client_id: 'c3',
    });
    expect(f.calls.some((c) => c.path === '/auth/logout')).toBe(false);
    expect(await f.client.getSession()).toBeNull();
  });

  it('a stored session whose refresh token is not a string is dropped', async () => {
    const storage = memoryStorage();
    await storage.set('tessera.session', JSON.stringify({ accessToken: jwt({ sub: 'u1' }), refreshToken: 42, expiresAt: null, userId: 'u1', amr: [] }));
    expect(await createClient({ baseUrl: BASE, storage }).getSession()).toBeNull();
  });
});
