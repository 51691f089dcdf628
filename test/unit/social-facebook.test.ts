import { createHmac } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError, type Provider } from '../../src/features/social/provider.js';
import { createFacebookProvider } from '../../src/features/social/providers/facebook.js';
import { FakeFacebook } from '../helpers/fake-facebook.js';
import { s256 } from '../helpers/fake-http.js';
import { rejectionOf } from '../helpers/rejection.js';

const CALLBACK = 'http://tessera.test/auth/oauth/facebook/callback';
const VERIFIER = 'fb-verifier-'.padEnd(64, 'v');
const TIMEOUT_MS = 400;
const APP_ID = '1234567890';
const APP_SECRET = 'fb-app-secret';

const providerError = (p: Promise<unknown>) => rejectionOf(p, ProviderError);

let fb: FakeFacebook;
let facebook: Provider;

beforeAll(async () => {
  fb = await FakeFacebook.start({ appId: APP_ID, appSecret: APP_SECRET });
  fb.addApp('9999999999', 'other-app-secret');
  facebook = createFacebookProvider(fb.config(), { timeoutMs: TIMEOUT_MS });
});
afterAll(() => fb.close());
afterEach(() => {
  fb.http.clearOverrides();
  fb.http.requests.length = 0;
});

const codeFor = (userId: string) => fb.issueCode(userId, CALLBACK, s256(VERIFIER));
const exchange = (code: string, codeVerifier = VERIFIER) =>
  facebook.exchangeCode({ code, codeVerifier, nonce: 'n', callbackUrl: CALLBACK, callbackParams: {} });
const query = (path: string, i = 0) => Object.fromEntries(fb.http.to(`/v21.0${path}`)[i]!.url.searchParams);

describe('Facebook provider', () => {
  it('describes itself: query callback, access_token natively, never links by email', () => {
    expect(facebook).toMatchObject({ id: 'facebook', displayName: 'Facebook', responseMode: 'query', nativeInput: 'access_token', emailLinking: false });
  });

  it('builds the authorization URL with state, PKCE S256, response_type=code and comma-separated scopes', async () => {
    const url = await facebook.authorizationUrl({ state: 'st-1', codeChallenge: 'ch-1', nonce: 'ignored', callbackUrl: CALLBACK });
    expect(`${url.origin}${url.pathname}`).toBe(`${fb.graphUrl}/dialog/oauth`);
    expect(Object.fromEntries(url.searchParams)).toEqual({
      client_id: APP_ID,
      redirect_uri: CALLBACK,
      state: 'st-1',
      response_type: 'code',
      scope: 'email,public_profile',
      code_challenge: 'ch-1',
      code_challenge_method: 'S256',
    });
  });

  describe('web flow (code exchange)', () => {
    it('exchanges the code (secret + PKCE verifier), checks the token with debug_token, reads /me with appsecret_proof', async () => {
      const user = fb.addUser({ first_name: 'Mark', last_name: 'Example', email: 'mark@example.com' });
      const profile = await exchange(codeFor(user.id));
      expect(profile).toEqual({ subject: user.id, email: 'mark@example.com', emailVerified: true, firstName: 'Mark', lastName: 'Example' });

      expect(query('/oauth/access_token')).toEqual({
        client_id: APP_ID,
        redirect_uri: CALLBACK,
        client_secret: APP_SECRET,
        code: expect.any(String),
        code_verifier: VERIFIER,
      });
      const userToken = [...fb.tokens.entries()].find(([, t]) => t.userId === user.id)![0];
      expect(query('/debug_token')).toEqual({ input_token: userToken, access_token: `${APP_ID}|${APP_SECRET}` });
      const me = query('/me');
      expect(me).toEqual({
        fields: 'id,email,first_name,last_name,name',
        access_token: userToken,
        appsecret_proof: createHmac('sha256', APP_SECRET).update(userToken).digest('hex'),
      });
      // The app secret itself never goes to /me: only the proof.
      expect(JSON.stringify(fb.http.to('/v21.0/me'))).not.toContain(APP_SECRET);
      // Order: exchange, then debug_token, then /me.
      expect(fb.http.requests.map((r) => r.url.pathname)).toEqual(['/v21.0/oauth/access_token', '/v21.0/debug_token', '/v21.0/me']);
    });

    it('Facebook refusing the code (400 {error: {type: "OAuthException", code: 100}}) → token_exchange_failed', async () => {
      const err = await providerError(exchange('AQ-not-a-code'));
      expect(err).toMatchObject({ reason: 'token_exchange_failed', unavailable: false });
      expect(err.message).toContain('OAuthException (100)');
      expect(fb.http.to('/v21.0/debug_token')).toHaveLength(0);
    });

    it('a wrong PKCE verifier and a used code are refused', async () => {
      const user = fb.addUser({ email: 'p@example.com' });
      expect((await providerError(exchange(codeFor(user.id), 'wrong'.padEnd(64, 'w')))).reason).toBe('token_exchange_failed');
      const code = codeFor(user.id);
      await exchange(code);
      expect((await providerError(exchange(code))).reason).toBe('token_exchange_failed');
    });

    it('a transient Graph error (code 4, rate limit) or a 5xx at the exchange is unavailable', async () => {
      fb.http.override('/v21.0/oauth/access_token', {
        status: 400,
        body: { error: { message: 'Application request limit reached', type: 'OAuthException', code: 4, fbtrace_id: 'x' } },
      });
      expect(await providerError(exchange('c'))).toMatchObject({ reason: 'provider_error', unavailable: true });
      fb.http.override('/v21.0/oauth/access_token', { status: 503, body: 'Service Unavailable' });
      expect(await providerError(exchange('c'))).toMatchObject({ reason: 'provider_error', unavailable: true });
    });
  });

  describe('native flow and token validation', () => {
    it('a valid user token of this app signs in; no email → null, unverified', async () => {
      const user = fb.addUser({ first_name: 'Phone', last_name: 'Only' });
      const token = fb.issueToken(user.id);
      const profile = await facebook.verifyNativeToken({ accessToken: token });
      expect(profile).toEqual({ subject: user.id, email: null, emailVerified: false, firstName: 'Phone', lastName: 'Only' });
      expect(query('/me').appsecret_proof).toBe(fb.proof(token));
      expect(fb.http.to('/v21.0/oauth/access_token')).toHaveLength(0);
    });

    it('a token issued to another Facebook app is rejected (wrong_app) before /me is called', async () => {
      const user = fb.addUser({ email: 'victim@example.com' });
      const foreign = fb.issueToken(user.id, { appId: '9999999999' });
      const err = await providerError(facebook.verifyNativeToken({ accessToken: foreign }));
      expect(err).toMatchObject({ reason: 'wrong_app', unavailable: false });
      expect(err.message).not.toContain(foreign);
      expect(fb.http.to('/v21.0/me')).toHaveLength(0);
    });

    it('is_valid false (expired or revoked) → token_invalid', async () => {
      const token = fb.issueToken(fb.addUser().id, { valid: false });
      expect(await providerError(facebook.verifyNativeToken({ accessToken: token }))).toMatchObject({ reason: 'token_invalid', unavailable: false });
      expect(fb.http.to('/v21.0/me')).toHaveLength(0);
    });

    it('a token Facebook does not know → token_invalid', async () => {
      expect((await providerError(facebook.verifyNativeToken({ accessToken: 'EAAgarbage' }))).reason).toBe('token_invalid');
    });

    it('a page token is not a user token → token_invalid', async () => {
      const token = fb.issueToken(fb.addUser().id, { type: 'PAGE' });
      expect((await providerError(facebook.verifyNativeToken({ accessToken: token }))).reason).toBe('token_invalid');
    });

    it('debug_token without app_id is rejected as another app', async () => {
      const user = fb.addUser();
      const token = fb.issueToken(user.id);
      fb.http.override('/v21.0/debug_token', { status: 200, body: { data: { is_valid: true, type: 'USER', user_id: user.id } } });
      expect((await providerError(facebook.verifyNativeToken({ accessToken: token }))).reason).toBe('wrong_app');
    });

    it('/me naming another user than debug_token → token_invalid', async () => {
      const user = fb.addUser();
      const token = fb.issueToken(user.id);
      fb.http.override('/v21.0/me', { status: 200, body: { id: '42', name: 'Someone Else' } });
      expect((await providerError(facebook.verifyNativeToken({ accessToken: token }))).reason).toBe('token_invalid');
    });

    it('/me refusing the token (401, or 400 OAuthException 190) → token_invalid without the token in the message', async () => {
      const token = fb.issueToken(fb.addUser().id);
      fb.http.override('/v21.0/me', { status: 401, body: { error: { message: 'Unauthorized', type: 'OAuthException', code: 190 } } });
      const e1 = await providerError(facebook.verifyNativeToken({ accessToken: token }));
      expect(e1).toMatchObject({ reason: 'token_invalid', unavailable: false });
      expect(e1.message).not.toContain(token);
      fb.http.override('/v21.0/me', { status: 400, body: { error: { message: `Error validating access token ${token}`, type: 'OAuthException', code: 190 } } });
      const e2 = await providerError(facebook.verifyNativeToken({ accessToken: token }));
      expect(e2.reason).toBe('token_invalid');
      // Facebook's free-text message is not copied into ours.
      expect(e2.message).not.toContain(token);
    });

    it('a wrong app secret: Facebook refuses debug_token → unavailable (our configuration, not the user)', async () => {
      const misconfigured = createFacebookProvider({ ...fb.config(), clientSecret: 'wrong' }, { timeoutMs: TIMEOUT_MS });
      const token = fb.issueToken(fb.addUser().id);
      expect(await providerError(misconfigured.verifyNativeToken({ accessToken: token }))).toMatchObject({ reason: 'provider_error', unavailable: true });
    });

    it('Graph 500 → unavailable; a Graph that never answers → provider_timeout', async () => {
      const token = fb.issueToken(fb.addUser().id);
      fb.http.override('/v21.0/me', { status: 500, body: { error: { message: 'An unknown error has occurred.', type: 'OAuthException', code: 1 } } });
      expect(await providerError(facebook.verifyNativeToken({ accessToken: token }))).toMatchObject({ reason: 'provider_error', unavailable: true });

      fb.http.clearOverrides();
      fb.http.override('/v21.0/debug_token', 'hang');
      const started = Date.now();
      const err = await providerError(facebook.verifyNativeToken({ accessToken: token }));
      expect(err).toMatchObject({ reason: 'provider_timeout', unavailable: true });
      expect(Date.now() - started).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
      expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 2000);
      expect(err.message).not.toContain(token);
    });

    it('no token → token_missing, nothing sent', async () => {
      expect((await providerError(facebook.verifyNativeToken({}))).reason).toBe('token_missing');
      expect(fb.http.requests).toHaveLength(0);
    });

    it('names fall back to splitting `name` when first/last are absent', async () => {
      const user = fb.addUser({ email: 'n@example.com' });
      const token = fb.issueToken(user.id);
      fb.http.override('/v21.0/me', { status: 200, body: { id: user.id, name: 'Ada Lovelace', email: 'n@example.com' } });
      expect(await facebook.verifyNativeToken({ accessToken: token })).toMatchObject({
        firstName: 'Ada',
        lastName: 'Lovelace',
        email: 'n@example.com',
        emailVerified: true,
      });
    });
  });
});
