/**
 * GitHub (OAuth2, not OpenID Connect): the profile comes from the REST API.
 *
 * - Web: authorization code + PKCE S256 (GitHub supports it), code exchanged at
 *   the token URL with the client secret. GitHub answers HTTP 200 even when it
 *   refuses the code (`{error: "bad_verification_code", …}`).
 * - Native: the app hands over a GitHub access token. Before using it, GitHub's
 *   "check a token" API (`POST /applications/{client_id}/token`, HTTP Basic with
 *   our client id and secret) must confirm it was issued to THIS app: a token
 *   another GitHub app obtained must never sign anyone in (token substitution).
 * - Subject: the numeric user id (a login can be renamed and reused).
 * - Email: only an address GitHub lists as verified counts as verified (the
 *   verified primary first, else the first verified one); otherwise the primary
 *   (or the public `email`) is returned with `emailVerified: false`, so it can
 *   prefill a new account but never link to an existing one.
 */
import type { OAuth2ProviderConfig } from '../../../config/index.js';
import { ProviderError, type AuthorizationRequest, type CodeExchange, type NativeToken, type Provider, type ProviderProfile } from '../provider.js';
import { githubDefaults } from './github-defaults.js';
import { isObject, requestJson, scopeList, splitName, text, withQuery, type HttpOptions, type JsonResponse } from './oauth2-http.js';

const API_HEADERS = {
  accept: 'application/vnd.github+json',
  'x-github-api-version': githubDefaults.apiVersion,
  'user-agent': 'Tessera',
};

/** GitHub signals an exhausted rate limit with 429, or 403 plus `x-ratelimit-remaining: 0` or `retry-after`. */
function rateLimited(res: JsonResponse): boolean {
  return res.status === 429 || res.headers.get('x-ratelimit-remaining') === '0' || res.headers.has('retry-after');
}

interface GithubEmail {
  email: string;
  primary: boolean;
  verified: boolean;
}

export function createGithubProvider(config: OAuth2ProviderConfig, opts: HttpOptions): Provider {
  const api = (path: string) => `${config.apiUrl}${path}`;

  /** Throws the right ProviderError for a non-2xx answer of the REST API. */
  function apiFailure(what: string, res: JsonResponse): never {
    if (res.status === 401) throw new ProviderError('token_invalid', `${what}: GitHub does not accept the access token`);
    if (res.status === 403 || res.status === 429)
      throw new ProviderError('provider_rate_limited', `${what}: GitHub refused the call (HTTP ${res.status}, rate limit or permission)`, true);
    throw new ProviderError('provider_error', `${what}: GitHub answered HTTP ${res.status}`, true);
  }

  async function profile(accessToken: string, expectedUserId?: number): Promise<ProviderProfile> {
    const auth = { ...API_HEADERS, authorization: `Bearer ${accessToken}` };
    const [userRes, emailsRes] = await Promise.all([
      requestJson(opts, 'GitHub /user', api('/user'), { method: 'GET', headers: auth }),
      requestJson(opts, 'GitHub /user/emails', api('/user/emails'), { method: 'GET', headers: auth }),
    ]);
    if (userRes.status !== 200) apiFailure('GitHub /user', userRes);
    const user = userRes.body;
    if (!isObject(user) || !Number.isSafeInteger(user.id) || (user.id as number) <= 0) {
      throw new ProviderError('bad_response', 'GitHub /user: the answer has no numeric id', true);
    }
    const id = user.id as number;
    if (expectedUserId !== undefined && id !== expectedUserId) {
      throw new ProviderError('token_invalid', 'GitHub: the token belongs to another user than the one the token check named');
    }

    // /user/emails needs the user:email scope (GitHub App: the email permission). Without it (404, or a
    // 403 that is not a rate limit) only the public address is known, and it counts as unverified.
    let emails: GithubEmail[] = [];
    if (emailsRes.status === 200) {
      if (!Array.isArray(emailsRes.body)) throw new ProviderError('bad_response', 'GitHub /user/emails: the answer is not a list', true);
      emails = emailsRes.body.flatMap((e: unknown) => {
        const email = isObject(e) ? text(e.email) : null;
        return isObject(e) && email ? [{ email, primary: e.primary === true, verified: e.verified === true }] : [];
      });
    } else if (emailsRes.status !== 404 && !(emailsRes.status === 403 && !rateLimited(emailsRes))) {
      apiFailure('GitHub /user/emails', emailsRes);
    }

    const chosen =
      emails.find((e) => e.primary && e.verified) ??
      emails.find((e) => e.verified) ??
      emails.find((e) => e.primary) ??
      (text(user.email) ? { email: text(user.email) as string, verified: false } : null);

    return {
      subject: String(id),
      email: chosen?.email ?? null,
      emailVerified: chosen?.verified === true,
      ...splitName(user.name),
    };
  }

  return {
    id: 'github',
    displayName: 'GitHub',
    responseMode: 'query',
    emailLinking: true,
    nativeInput: 'access_token',

    authorizationUrl(req: AuthorizationRequest): Promise<URL> {
      return Promise.resolve(
        withQuery(config.authorizationUrl, {
          client_id: config.clientId,
          redirect_uri: req.callbackUrl,
          scope: scopeList(config.scopes).join(' '),
          state: req.state,
          code_challenge: req.codeChallenge,
          code_challenge_method: 'S256',
          allow_signup: 'true',
        }),
      );
    },

    async exchangeCode(exchange: CodeExchange): Promise<ProviderProfile> {
      const form = new URLSearchParams({
        client_id: config.clientId,
        client_secret: config.clientSecret,
        code: exchange.code,
        redirect_uri: exchange.callbackUrl,
        code_verifier: exchange.codeVerifier,
      });
      const res = await requestJson(opts, 'GitHub token exchange', config.tokenUrl, {
        method: 'POST',
        headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded', 'user-agent': API_HEADERS['user-agent'] },
        body: form,
      });
      if (res.status >= 500) throw new ProviderError('provider_error', `GitHub token exchange: HTTP ${res.status}`, true);
      const body = res.body;
      // GitHub refuses a code with HTTP 200 and {error, error_description, error_uri}.
      if (isObject(body) && typeof body.error === 'string') {
        throw new ProviderError('token_exchange_failed', `GitHub refused the code: ${body.error.slice(0, 64)}`);
      }
      if (res.status !== 200) throw new ProviderError('token_exchange_failed', `GitHub token exchange: HTTP ${res.status}`);
      const accessToken = isObject(body) ? text(body.access_token) : null;
      if (!accessToken) throw new ProviderError('bad_response', 'GitHub token exchange: no access_token in the answer', true);
      if (isObject(body) && body.token_type !== undefined && (typeof body.token_type !== 'string' || body.token_type.toLowerCase() !== 'bearer')) {
        throw new ProviderError('bad_response', 'GitHub token exchange: the token is not a bearer token', true);
      }
      return profile(accessToken);
    },

    async verifyNativeToken(token: NativeToken): Promise<ProviderProfile> {
      const accessToken = text(token.accessToken);
      if (!accessToken) throw new ProviderError('token_missing', 'GitHub sign-in needs the access_token the app got from GitHub');
      // Check a token: was it issued to this app (and is it still valid)?
      const basic = Buffer.from(`${config.clientId}:${config.clientSecret}`).toString('base64');
      const check = await requestJson(opts, 'GitHub token check', api(`/applications/${encodeURIComponent(config.clientId)}/token`), {
        method: 'POST',
        headers: { ...API_HEADERS, authorization: `Basic ${basic}`, 'content-type': 'application/json' },
        body: JSON.stringify({ access_token: accessToken }),
      });
      if (check.status === 404 || check.status === 422) throw new ProviderError('token_invalid', 'GitHub does not know this access token');
      if (check.status === 401) throw new ProviderError('client_auth_failed', 'GitHub token check: GitHub refused our client id and secret', true);
      if (check.status !== 200) apiFailure('GitHub token check', check);
      const body = check.body;
      const app = isObject(body) && isObject(body.app) ? body.app : null;
      if (!app || app.client_id !== config.clientId) {
        throw new ProviderError('wrong_app', 'GitHub: the access token was issued to another application');
      }
      const checkedUser = isObject(body) && isObject(body.user) && Number.isSafeInteger(body.user.id) ? (body.user.id as number) : undefined;
      return profile(accessToken, checkedUser);
    },
  };
}
