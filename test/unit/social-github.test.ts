import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError, type Provider } from '../../src/features/social/provider.js';
import { createGithubProvider } from '../../src/features/social/providers/github.js';
import { FakeGithub } from '../helpers/fake-github.js';
import { s256 } from '../helpers/fake-http.js';
import { freePort } from '../helpers/free-port.js';
import { rejectionOf } from '../helpers/rejection.js';

const CALLBACK = 'http://tessera.test/auth/oauth/github/callback';
const VERIFIER = 'verifier-'.padEnd(64, 'v');
const TIMEOUT_MS = 400;

const providerError = (p: Promise<unknown>) => rejectionOf(p, ProviderError);

let gh: FakeGithub;
let github: Provider;

beforeAll(async () => {
  gh = await FakeGithub.start();
  gh.addApp('other-app-id', 'other-app-secret');
  github = createGithubProvider(gh.config(), { timeoutMs: TIMEOUT_MS });
});
afterAll(() => gh.close());
afterEach(() => {
  gh.http.clearOverrides();
  gh.http.requests.length = 0;
});

/** A code for `userId` issued as GitHub's authorize page would, bound to our PKCE challenge. */
const codeFor = (userId: number) => gh.issueCode(userId, CALLBACK, s256(VERIFIER));
const exchange = (code: string, codeVerifier = VERIFIER) => github.exchangeCode({ code, codeVerifier, nonce: 'n', callbackUrl: CALLBACK, callbackParams: {} });

describe('GitHub provider', () => {
  it('describes itself: query callback, access_token natively, links only by verified email', () => {
    expect(github).toMatchObject({ id: 'github', displayName: 'GitHub', responseMode: 'query', nativeInput: 'access_token', emailLinking: true });
  });

  it('builds the authorization URL with state, PKCE S256, scopes and the callback', async () => {
    const url = await github.authorizationUrl({ state: 'st-1', codeChallenge: 'ch-1', nonce: 'ignored', callbackUrl: CALLBACK });
    expect(`${url.origin}${url.pathname}`).toBe(`${gh.base}/login/oauth/authorize`);
    expect(Object.fromEntries(url.searchParams)).toEqual({
      client_id: 'gh-client-id',
      redirect_uri: CALLBACK,
      scope: 'read:user user:email',
      state: 'st-1',
      code_challenge: 'ch-1',
      code_challenge_method: 'S256',
      allow_signup: 'true',
    });
  });

  describe('web flow (code exchange)', () => {
    it('exchanges the code with the secret and the PKCE verifier, then reads /user and /user/emails', async () => {
      const user = gh.addUser({
        login: 'ada',
        name: 'Ada King Lovelace',
        email: null,
        emails: [
          { email: 'old@example.com', primary: false, verified: true },
          { email: 'Ada@Example.com', primary: true, verified: true },
        ],
      });
      const profile = await exchange(codeFor(user.id));
      expect(profile).toEqual({ subject: String(user.id), email: 'Ada@Example.com', emailVerified: true, firstName: 'Ada', lastName: 'King Lovelace' });

      const [tokenReq] = gh.http.to('/login/oauth/access_token');
      expect(tokenReq!.method).toBe('POST');
      expect(tokenReq!.headers.accept).toBe('application/json');
      expect(tokenReq!.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
      expect(Object.fromEntries(new URLSearchParams(tokenReq!.body))).toEqual({
        client_id: 'gh-client-id',
        client_secret: 'gh-client-secret',
        code: expect.any(String),
        redirect_uri: CALLBACK,
        code_verifier: VERIFIER,
      });

      const accessToken = [...gh.tokens.entries()].find(([, t]) => t.userId === user.id)![0];
      for (const path of ['/api/v3/user', '/api/v3/user/emails']) {
        const [req] = gh.http.to(path);
        expect(req!.method).toBe('GET');
        expect(req!.headers.authorization).toBe(`Bearer ${accessToken}`);
        expect(req!.headers.accept).toBe('application/vnd.github+json');
        expect(req!.headers['x-github-api-version']).toBe('2022-11-28');
        expect(req!.headers['user-agent']).toBeTruthy();
        // The client secret goes to the token endpoint only.
        expect(JSON.stringify(req)).not.toContain('gh-client-secret');
      }
    });

    it('subject is the numeric id, not the login (logins can be renamed and reused)', async () => {
      const user = gh.addUser({
        id: 583231,
        login: 'octocat',
        name: 'The Octocat',
        emails: [{ email: 'octocat@github.example', primary: true, verified: true }],
      });
      const profile = await exchange(codeFor(user.id));
      expect(profile.subject).toBe('583231');
    });

    it('GitHub refusing the code with HTTP 200 {error: "bad_verification_code"} → token_exchange_failed', async () => {
      const err = await providerError(exchange('not-a-code'));
      expect(err.reason).toBe('token_exchange_failed');
      expect(err.unavailable).toBe(false);
      expect(err.message).toContain('bad_verification_code');
      expect(gh.http.to('/login/oauth/access_token')[0]!.url.pathname).toBeTruthy();
      expect(gh.http.to('/api/v3/user')).toHaveLength(0);
    });

    it('a wrong PKCE verifier is refused by GitHub → token_exchange_failed', async () => {
      const user = gh.addUser({ emails: [{ email: 'pkce@example.com', primary: true, verified: true }] });
      const err = await providerError(exchange(codeFor(user.id), 'another-verifier'.padEnd(64, 'x')));
      expect(err.reason).toBe('token_exchange_failed');
    });

    it('a used code is refused the second time', async () => {
      const user = gh.addUser({ emails: [{ email: 'once@example.com', primary: true, verified: true }] });
      const code = codeFor(user.id);
      await exchange(code);
      expect((await providerError(exchange(code))).reason).toBe('token_exchange_failed');
    });

    it('a token endpoint answering 5xx, or never, is unavailable (not the user’s fault)', async () => {
      gh.http.override('/login/oauth/access_token', { status: 502, body: '<html>bad gateway</html>' });
      const e1 = await providerError(exchange('c'));
      expect(e1).toMatchObject({ reason: 'provider_error', unavailable: true });

      gh.http.override('/login/oauth/access_token', 'hang');
      const started = Date.now();
      const e2 = await providerError(exchange('c'));
      expect(e2).toMatchObject({ reason: 'provider_timeout', unavailable: true });
      expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 2000);
    });

    it('a 200 without access_token is a bad answer (unavailable), never a sign-in', async () => {
      gh.http.override('/login/oauth/access_token', { status: 200, body: { token_type: 'bearer' } });
      expect(await providerError(exchange('c'))).toMatchObject({ reason: 'bad_response', unavailable: true });
    });
  });

  describe('email selection', () => {
    const profileOf = async (user: Parameters<FakeGithub['addUser']>[0]) => exchange(codeFor(gh.addUser(user).id));

    it('an unverified primary: the first verified address is used', async () => {
      const p = await profileOf({
        emails: [
          { email: 'primary@example.com', primary: true, verified: false },
          { email: 'second@example.com', primary: false, verified: true },
        ],
      });
      expect(p).toMatchObject({ email: 'second@example.com', emailVerified: true });
    });

    it('only unverified addresses: the primary, marked unverified', async () => {
      const p = await profileOf({
        email: 'public@example.com',
        emails: [
          { email: 'other@example.com', primary: false, verified: false },
          { email: 'primary@example.com', primary: true, verified: false },
        ],
      });
      expect(p).toMatchObject({ email: 'primary@example.com', emailVerified: false });
    });

    it('no address listed: the public profile address, unverified', async () => {
      const p = await profileOf({ email: 'public@example.com', emails: [] });
      expect(p).toMatchObject({ email: 'public@example.com', emailVerified: false });
    });

    it('no address at all: null, unverified; no name: null names', async () => {
      const p = await profileOf({ email: null, name: null, emails: [] });
      expect(p).toMatchObject({ email: null, emailVerified: false, firstName: null, lastName: null });
    });

    it('a one-word name is a first name only', async () => {
      const p = await profileOf({ name: '  Cher ', emails: [] });
      expect(p).toMatchObject({ firstName: 'Cher', lastName: null });
    });

    it('without the user:email scope (/user/emails 404) only the public address is known, unverified', async () => {
      gh.http.override('/api/v3/user/emails', { status: 404, body: { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' } });
      const p = await profileOf({ email: 'public@example.com', emails: [{ email: 'public@example.com', primary: true, verified: true }] });
      expect(p).toMatchObject({ email: 'public@example.com', emailVerified: false });
    });

    it('a rate-limited /user/emails (403, x-ratelimit-remaining: 0) is unavailable, not a silently unverified email', async () => {
      gh.http.override('/api/v3/user/emails', { status: 403, headers: { 'x-ratelimit-remaining': '0' }, body: { message: 'API rate limit exceeded' } });
      const err = await providerError(profileOf({ emails: [{ email: 'rl@example.com', primary: true, verified: true }] }));
      expect(err).toMatchObject({ reason: 'provider_rate_limited', unavailable: true });
    });
  });

  describe('native flow (access token from the app)', () => {
    it('checks the token was issued to this app, then reads the profile', async () => {
      const user = gh.addUser({ name: 'Grace Hopper', emails: [{ email: 'grace@example.com', primary: true, verified: true }] });
      const token = gh.issueToken(user.id);
      const profile = await github.verifyNativeToken({ accessToken: token });
      expect(profile).toEqual({ subject: String(user.id), email: 'grace@example.com', emailVerified: true, firstName: 'Grace', lastName: 'Hopper' });

      const [check] = gh.http.to('/api/v3/applications/gh-client-id/token');
      expect(check!.method).toBe('POST');
      expect(check!.headers.authorization).toBe(`Basic ${Buffer.from('gh-client-id:gh-client-secret').toString('base64')}`);
      expect(check!.headers['content-type']).toBe('application/json');
      expect(JSON.parse(check!.body)).toEqual({ access_token: token });
      expect(gh.http.to('/api/v3/user')[0]!.headers.authorization).toBe(`Bearer ${token}`);
      // The secret travels only in the token check's Basic credentials.
      expect(JSON.stringify(gh.http.to('/api/v3/user'))).not.toContain('gh-client-secret');
      expect(gh.http.to('/login/oauth/access_token')).toHaveLength(0);
    });

    it('a token another GitHub app obtained is rejected before the profile is read (token substitution)', async () => {
      const user = gh.addUser({ emails: [{ email: 'victim@example.com', primary: true, verified: true }] });
      const foreign = gh.issueToken(user.id, 'other-app-id');
      const err = await providerError(github.verifyNativeToken({ accessToken: foreign }));
      expect(err.reason).toBe('token_invalid');
      expect(err.unavailable).toBe(false);
      expect(err.message).not.toContain(foreign);
      expect(gh.http.to('/api/v3/user')).toHaveLength(0);
    });

    it('a check answer naming another client id is rejected: wrong_app', async () => {
      const user = gh.addUser({ emails: [{ email: 'x@example.com', primary: true, verified: true }] });
      const token = gh.issueToken(user.id);
      gh.http.override('/api/v3/applications/gh-client-id/token', {
        status: 200,
        body: { token, app: { client_id: 'other-app-id', name: 'Other' }, user: { id: user.id } },
      });
      const err = await providerError(github.verifyNativeToken({ accessToken: token }));
      expect(err.reason).toBe('wrong_app');
      expect(gh.http.to('/api/v3/user')).toHaveLength(0);
    });

    it('a check answer without app is rejected: wrong_app', async () => {
      const user = gh.addUser();
      const token = gh.issueToken(user.id);
      gh.http.override('/api/v3/applications/gh-client-id/token', { status: 200, body: { token, user: { id: user.id } } });
      expect((await providerError(github.verifyNativeToken({ accessToken: token }))).reason).toBe('wrong_app');
    });

    it('an unknown token (404) or a malformed check (422) → token_invalid', async () => {
      expect((await providerError(github.verifyNativeToken({ accessToken: 'gho_unknown' }))).reason).toBe('token_invalid');
      gh.http.override('/api/v3/applications/gh-client-id/token', { status: 422, body: { message: 'Invalid request.' } });
      expect((await providerError(github.verifyNativeToken({ accessToken: 'gho_x' }))).reason).toBe('token_invalid');
    });

    it('no token → token_missing', async () => {
      expect((await providerError(github.verifyNativeToken({}))).reason).toBe('token_missing');
      expect((await providerError(github.verifyNativeToken({ accessToken: '  ' }))).reason).toBe('token_missing');
      expect(gh.http.requests).toHaveLength(0);
    });

    it('GitHub refusing our client credentials at the check is a server problem (unavailable)', async () => {
      const bad = createGithubProvider({ ...gh.config(), clientSecret: 'wrong-secret' }, { timeoutMs: TIMEOUT_MS });
      const token = gh.issueToken(gh.addUser().id);
      expect(await providerError(bad.verifyNativeToken({ accessToken: token }))).toMatchObject({ reason: 'client_auth_failed', unavailable: true });
    });

    it('the API answering 401 → token_invalid, without the token in the message', async () => {
      const user = gh.addUser({ emails: [{ email: 'r@example.com', primary: true, verified: true }] });
      const token = gh.issueToken(user.id);
      gh.http.override('/api/v3/user', { status: 401, body: { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' } });
      const err = await providerError(github.verifyNativeToken({ accessToken: token }));
      expect(err).toMatchObject({ reason: 'token_invalid', unavailable: false });
      expect(err.message).not.toContain(token);
    });

    it('/user naming another user than the check is rejected', async () => {
      const a = gh.addUser();
      const token = gh.issueToken(a.id);
      gh.http.override('/api/v3/user', { status: 200, body: { id: a.id + 1, login: 'someone-else' } });
      expect((await providerError(github.verifyNativeToken({ accessToken: token }))).reason).toBe('token_invalid');
    });

    it('the API answering 500 → unavailable', async () => {
      const token = gh.issueToken(gh.addUser().id);
      gh.http.override('/api/v3/user', { status: 500, body: { message: 'Server Error' } });
      expect(await providerError(github.verifyNativeToken({ accessToken: token }))).toMatchObject({ reason: 'provider_error', unavailable: true });
      gh.http.override('/api/v3/user', { status: 200, body: { login: 'no-id' } });
      expect(await providerError(github.verifyNativeToken({ accessToken: token }))).toMatchObject({ reason: 'bad_response', unavailable: true });
    });

    it('an API that never answers → provider_timeout within the configured bound', async () => {
      const token = gh.issueToken(gh.addUser().id);
      gh.http.override('/api/v3/applications/gh-client-id/token', 'hang');
      const started = Date.now();
      const err = await providerError(github.verifyNativeToken({ accessToken: token }));
      expect(err).toMatchObject({ reason: 'provider_timeout', unavailable: true });
      expect(Date.now() - started).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
      expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 2000);
      expect(err.message).not.toContain(token);
    });

    it('an API nobody listens on → provider_unreachable', async () => {
      const port = await freePort();
      const dead = createGithubProvider({ ...gh.config(), apiUrl: `http://127.0.0.1:${port}` }, { timeoutMs: TIMEOUT_MS });
      expect(await providerError(dead.verifyNativeToken({ accessToken: 'gho_x' }))).toMatchObject({ reason: 'provider_unreachable', unavailable: true });
    });
  });
});
