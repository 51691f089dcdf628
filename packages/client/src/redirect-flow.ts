import { TesseraError } from './errors.js';
import { decodeJwtPayload } from './jwt.js';
import type { AuthorizationRequest } from './types.js';

/**
 * The OpenID Connect authorization code flow with PKCE, as pure steps (the client wires them to
 * its storage and the token endpoint): the authorization URL, the callback's checks (`state`,
 * RFC 9207 `iss`, errors), and the ID token's claims (iss, aud/azp, nonce, exp, iat).
 */

/** Optional members of the authorization request (OpenID Connect Core §3.1.2.1). */
export interface AuthorizationOptions {
  clientId: string;
  redirectUri: string;
  /** Space-separated; default `openid profile email`. Add `offline_access` for a refresh token. */
  scope?: string;
  /** `none`, `login`, `consent` or `select_account`. */
  prompt?: string;
  /** Seconds since the last sign-in beyond which the user must sign in again. */
  maxAge?: number;
  loginHint?: string;
  uiLocales?: string;
  /** `mfa` asks for a second factor. */
  acrValues?: string;
  /** More parameters (`resource`, …); they cannot replace the ones above. */
  extraParams?: Record<string, string>;
}

const fail = (code: string, description: string) => new TesseraError(code, 0, description);

/** The scopes asked for when the request names none. */
export const DEFAULT_SCOPE = 'openid profile email';

// URL and URLSearchParams are incomplete in React Native without a polyfill: queries are built and read by hand.
const encode = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
const decode = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));

/** The parameters of a URL's query (the first value of each name); the fragment is ignored. */
export function queryOf(url: string): Map<string, string> {
  const params = new Map<string, string>();
  const query = url.split('#')[0]?.split('?').slice(1).join('?') ?? '';
  for (const pair of query.split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const name = decode(eq === -1 ? pair : pair.slice(0, eq));
    if (!params.has(name)) params.set(name, eq === -1 ? '' : decode(pair.slice(eq + 1)));
  }
  return params;
}

/** The URL without its query and fragment. */
const withoutQuery = (url: string) => url.split('#')[0]?.split('?')[0] ?? '';

/** The URL of the authorization endpoint with every parameter of the request (response_type=code, PKCE S256). */
export function buildAuthorizationUrl(
  baseUrl: string,
  opts: AuthorizationOptions,
  secrets: Pick<AuthorizationRequest, 'state' | 'nonce'> & { codeChallenge: string },
): string {
  const q = new Map<string, string>(Object.entries(opts.extraParams ?? {}));
  const set = (name: string, value: string | number | undefined) => {
    if (value !== undefined) q.set(name, String(value));
  };
  set('response_type', 'code');
  set('client_id', opts.clientId);
  set('redirect_uri', opts.redirectUri);
  set('scope', opts.scope ?? DEFAULT_SCOPE);
  set('state', secrets.state);
  set('nonce', secrets.nonce);
  set('code_challenge', secrets.codeChallenge);
  set('code_challenge_method', 'S256');
  set('prompt', opts.prompt);
  set('max_age', opts.maxAge);
  set('login_hint', opts.loginHint);
  set('ui_locales', opts.uiLocales);
  set('acr_values', opts.acrValues);
  return `${baseUrl}/auth/authorize?${[...q].map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&')}`;
}

/**
 * Checks the redirect back to the app and returns its code. In this order: the issuer (RFC 9207:
 * Tessera always sends `iss`, so a missing one is refused — a mix-up attack would come from
 * another server), then `state` (the request this browser started), then an `error` answer.
 */
export function checkCallback(callbackUrl: string | URL, saved: Pick<AuthorizationRequest, 'state' | 'redirectUri'>, issuer: string): string {
  const url = String(callbackUrl);
  if (withoutQuery(url) !== withoutQuery(saved.redirectUri)) throw fail('redirect_uri_mismatch', 'This callback URL is not the redirect_uri of the request.');
  const q = queryOf(url);
  const iss = q.get('iss');
  if (iss === undefined) throw fail('issuer_mismatch', 'The authorization response has no iss (RFC 9207); it did not come from Tessera.');
  if (iss !== issuer) throw fail('issuer_mismatch', `The authorization response comes from ${iss}, not ${issuer}.`);
  if (q.get('state') !== saved.state) throw fail('state_mismatch', 'The state does not match the request this app started (start the sign-in again).');
  const error = q.get('error');
  if (error !== undefined) throw fail(error, q.get('error_description') ?? error);
  const code = q.get('code');
  if (!code) throw fail('invalid_callback', 'The authorization response has neither a code nor an error.');
  return code;
}

/**
 * The ID token's claims, checked (OpenID Connect Core §3.1.3.7): `iss` is the issuer, `aud` names
 * the client (and `azp` is the client when there are several audiences), `nonce` is the request's,
 * `exp` is in the future and `iat` present. The signature is not checked here: the token came
 * straight from the token endpoint over TLS (§3.1.3.7, item 6); verify it with the JWKS
 * (jose's `jwtVerify`) where it is passed on to anyone else.
 */
export function checkIdToken(
  idToken: string,
  expected: { issuer: string; clientId: string; nonce: string; nowMs: number; skewSeconds?: number },
): Record<string, unknown> {
  const claims = decodeJwtPayload(idToken);
  const bad = (why: string) => fail('id_token_invalid', `The ID token ${why}.`);
  if (!claims) throw bad('is not a JWT');
  if (claims.iss !== expected.issuer) throw bad(`was issued by ${String(claims.iss)}, not ${expected.issuer}`);
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.includes(expected.clientId)) throw bad('is not addressed to this client');
  if (aud.length > 1 && claims.azp !== expected.clientId) throw bad('names another authorized party (azp)');
  if (claims.nonce !== expected.nonce) throw bad('does not carry the nonce of this request');
  const now = expected.nowMs / 1000;
  const skew = expected.skewSeconds ?? 60;
  if (typeof claims.exp !== 'number' || claims.exp <= now - skew) throw bad('has expired');
  if (typeof claims.iat !== 'number') throw bad('has no iat');
  if (typeof claims.sub !== 'string' || !claims.sub) throw bad('has no sub');
  return claims;
}
