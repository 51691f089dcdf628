/**
 * Facebook Login (OAuth2, not OpenID Connect): the profile comes from the Graph API.
 *
 * - Web: authorization code + PKCE S256; the code is exchanged with a GET on the
 *   token URL (`client_id`, `redirect_uri`, `client_secret`, `code`, `code_verifier`).
 * - Both flows then validate the user access token with `GET /debug_token`
 *   (authenticated with the app access token `app_id|app_secret`): it must be a
 *   valid USER token issued to THIS app (`data.app_id` = our client id), so a
 *   token another Facebook app obtained is refused (`wrong_app`).
 * - The profile is `GET /me` with `appsecret_proof` = HMAC-SHA256(token, app secret).
 * - Subject: the app-scoped user id.
 * - Email: the Graph API returns only a confirmed address, so it is marked
 *   verified (a new account starts with it confirmed). But Facebook does not
 *   promise the address is still the user's, and Facebook accounts can be
 *   registered with a phone number and an address added later, so the provider
 *   declares `emailLinking: false`: a Facebook identity never links to an
 *   existing account through its email.
 */
import { createHmac } from 'node:crypto';
import type { OAuth2ProviderConfig } from '../../../config/index.js';
import { ProviderError, type AuthorizationRequest, type CodeExchange, type NativeToken, type Provider, type ProviderProfile } from '../provider.js';
import { isObject, requestJson, scopeList, splitName, text, withQuery, type HttpOptions, type JsonResponse } from './oauth2-http.js';

/** Graph API error codes that mean "try again later" (unknown/service errors and rate limits). */
const TRANSIENT_CODES = new Set([1, 2, 4, 17, 32, 341, 613]);
/** Graph API error codes for an invalid, expired or revoked user token. */
const TOKEN_CODES = new Set([102, 190]);

/** The Graph API error object (`{error: {message, type, code, fbtrace_id}}`), if the answer is one. */
function graphError(res: JsonResponse): { code: number | null; type: string | null; transient: boolean } | null {
  const err = isObject(res.body) && isObject(res.body.error) ? res.body.error : null;
  if (!err) return null;
  const code = typeof err.code === 'number' ? err.code : null;
  return { code, type: text(err.type), transient: err.is_transient === true || (code !== null && TRANSIENT_CODES.has(code)) };
}

/** Graph ids are strings (older answers and some fields use numbers). */
const idString = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : null);

/** `OAuthException (190)`: names the error without its free text. */
const describe = (e: { code: number | null; type: string | null }) => `${e.type ?? 'error'}${e.code !== null ? ` (${e.code})` : ''}`;

export function createFacebookProvider(config: OAuth2ProviderConfig, opts: HttpOptions): Provider {
  const graph = (path: string, params: Record<string, string>) => withQuery(`${config.apiUrl}${path}`, params);

  /** debug_token: a valid USER token of this app; returns the app-scoped user id it names. */
  async function debugToken(accessToken: string): Promise<string> {
    const res = await requestJson(
      opts,
      'Facebook debug_token',
      graph('/debug_token', { input_token: accessToken, access_token: `${config.clientId}|${config.clientSecret}` }),
      {
        method: 'GET',
        headers: { accept: 'application/json' },
      },
    );
    if (res.status !== 200) {
      // The input token's problems come back as 200 {data: {is_valid: false}}; an error here is about
      // our app credentials or Facebook itself: not the user's fault.
      const e = graphError(res);
      throw new ProviderError('provider_error', `Facebook debug_token: HTTP ${res.status}${e ? ` ${describe(e)}` : ''}`, true);
    }
    const data = isObject(res.body) && isObject(res.body.data) ? res.body.data : null;
    if (!data) throw new ProviderError('bad_response', 'Facebook debug_token: no data in the answer', true);
    if (data.is_valid !== true) throw new ProviderError('token_invalid', 'Facebook says the access token is not valid (expired, revoked or not a token)');
    if (idString(data.app_id) !== config.clientId) throw new ProviderError('wrong_app', 'Facebook: the access token was issued to another application');
    if (data.type !== undefined && data.type !== 'USER') throw new ProviderError('token_invalid', 'Facebook: the access token is not a user token');
    const userId = idString(data.user_id);
    if (!userId) throw new ProviderError('bad_response', 'Facebook debug_token: no user_id in the answer', true);
    return userId;
  }

  async function profile(accessToken: string): Promise<ProviderProfile> {
    const userId = await debugToken(accessToken);
    const proof = createHmac('sha256', config.clientSecret).update(accessToken).digest('hex');
    const res = await requestJson(
      opts,
      'Facebook /me',
      graph('/me', { fields: 'id,email,first_name,last_name,name', access_token: accessToken, appsecret_proof: proof }),
      {
        method: 'GET',
        headers: { accept: 'application/json' },
      },
    );
    if (res.status !== 200) {
      const e = graphError(res);
      if (res.status === 401 || (e && e.code !== null && TOKEN_CODES.has(e.code)))
        throw new ProviderError('token_invalid', `Facebook /me refused the access token${e ? `: ${describe(e)}` : ''}`);
      throw new ProviderError('provider_error', `Facebook /me: HTTP ${res.status}${e ? ` ${describe(e)}` : ''}`, true);
    }
    const me = res.body;
    const id = isObject(me) ? idString(me.id) : null;
    if (!isObject(me) || !id) throw new ProviderError('bad_response', 'Facebook /me: no id in the answer', true);
    if (id !== userId) throw new ProviderError('token_invalid', 'Facebook: /me and debug_token name different users');
    const email = text(me.email);
    const split = splitName(me.name);
    return {
      subject: id,
      email,
      // Graph returns only a confirmed address; it never links (emailLinking: false), see above.
      emailVerified: email !== null,
      firstName: text(me.first_name) ?? split.firstName,
      lastName: text(me.last_name) ?? split.lastName,
    };
  }

  return {
    id: 'facebook',
    displayName: 'Facebook',
    responseMode: 'query',
    emailLinking: false,
    nativeInput: 'access_token',

    authorizationUrl(req: AuthorizationRequest): Promise<URL> {
      return Promise.resolve(
        withQuery(config.authorizationUrl, {
          client_id: config.clientId,
          redirect_uri: req.callbackUrl,
          state: req.state,
          response_type: 'code',
          scope: scopeList(config.scopes).join(','),
          code_challenge: req.codeChallenge,
          code_challenge_method: 'S256',
        }),
      );
    },

    async exchangeCode(exchange: CodeExchange): Promise<ProviderProfile> {
      const url = withQuery(config.tokenUrl, {
        client_id: config.clientId,
        redirect_uri: exchange.callbackUrl,
        client_secret: config.clientSecret,
        code: exchange.code,
        code_verifier: exchange.codeVerifier,
      });
      const res = await requestJson(opts, 'Facebook token exchange', url, { method: 'GET', headers: { accept: 'application/json' } });
      const e = graphError(res);
      if (res.status >= 500 || e?.transient)
        throw new ProviderError('provider_error', `Facebook token exchange: HTTP ${res.status}${e ? ` ${describe(e)}` : ''}`, true);
      if (e || res.status !== 200)
        throw new ProviderError('token_exchange_failed', `Facebook refused the code${e ? `: ${describe(e)}` : ` (HTTP ${res.status})`}`);
      const accessToken = isObject(res.body) ? text(res.body.access_token) : null;
      if (!accessToken) throw new ProviderError('bad_response', 'Facebook token exchange: no access_token in the answer', true);
      return profile(accessToken);
    },

    verifyNativeToken(token: NativeToken): Promise<ProviderProfile> {
      const accessToken = text(token.accessToken);
      if (!accessToken) return Promise.reject(new ProviderError('token_missing', 'Facebook sign-in needs the access_token the app got from Facebook'));
      return profile(accessToken);
    },
  };
}
