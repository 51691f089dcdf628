/**
 * Reads an authorization request (OpenID Connect Core §3.1.2.1, RFC 6749 §4.1.1, RFC 7636) in the
 * order the specifications require: until the client and its redirect_uri are known to be valid,
 * a problem is shown on an error page (never a redirect to an unchecked URI); after, it goes back
 * to the redirect_uri as `error`.
 */
import type { ErrorCode } from '../../errors.js';
import { redirectUriMatches } from '../clients/redirect-uris.js';
import { grantedScopes } from './scopes.js';

/** The raw parameters, from the query (GET) or the form (POST); an array when a parameter was repeated. */
export type RawParams = Record<string, string | string[] | undefined>;

/** The errors an authorization request answers at its redirect_uri (RFC 6749 §4.1.2.1, OpenID Connect Core §3.1.2.6, RFC 9207 `iss` added). */
export type AuthorizationError =
  | 'invalid_request'
  | 'unauthorized_client'
  | 'access_denied'
  | 'unsupported_response_type'
  | 'invalid_scope'
  | 'server_error'
  | 'login_required'
  | 'consent_required'
  | 'interaction_required'
  | 'account_selection_required'
  | 'request_not_supported'
  | 'request_uri_not_supported'
  | 'unmet_authentication_requirements';

export interface AuthorizeClient {
  clientId: string;
  name: string;
  type: string;
  redirectUris: string[];
  grantTypes: string[];
  scopes: string[];
  firstParty: boolean;
}

export interface ValidRequest {
  clientId: string;
  redirectUri: string;
  scopes: string[];
  state: string | null;
  nonce: string | null;
  codeChallenge: string | null;
  prompt: string[];
  maxAge: number | null;
  loginHint: string | null;
  requireMfa: boolean;
}

export type ReadResult =
  | { ok: true; request: ValidRequest }
  /** Shown as an error page: no trusted place to send the browser. */
  | { ok: false; page: ErrorCode; message: string }
  /** Sent back to the (valid) redirect_uri. */
  | { ok: false; redirectUri: string; state: string | null; error: AuthorizationError; description: string };

const PROMPTS = new Set(['none', 'login', 'consent', 'select_account']);
const CHALLENGE = /^[A-Za-z0-9_-]{43,128}$/;
const MAX_PARAM = 2048;

/** One value of a parameter; `duplicate` when it was sent more than once (RFC 6749 §3.1). */
function one(params: RawParams, name: string): string | undefined | { duplicate: true } {
  const v = params[name];
  if (Array.isArray(v)) return v.length === 1 ? v[0] : { duplicate: true };
  return v === '' ? undefined : v;
}

export async function readAuthorizationRequest(params: RawParams, findClient: (id: string) => Promise<AuthorizeClient | null>): Promise<ReadResult> {
  const clientId = one(params, 'client_id');
  if (clientId === undefined || typeof clientId !== 'string' || clientId.length > 256)
    return { ok: false, page: 'unknown_client', message: clientId === undefined ? 'The request names no client (client_id).' : 'The client_id is not valid.' };
  const client = await findClient(clientId);
  if (!client) return { ok: false, page: 'unknown_client', message: 'No application is registered with this client_id.' };
  const redirectUri = one(params, 'redirect_uri');
  if (typeof redirectUri !== 'string' || redirectUri.length > MAX_PARAM || !redirectUriMatches(client.redirectUris, redirectUri))
    return {
      ok: false,
      page: 'redirect_uri_not_registered',
      message: redirectUri === undefined ? 'The request has no redirect_uri.' : 'The redirect_uri is not one of the URIs registered for this application.',
    };

  const rawState = one(params, 'state');
  const state = typeof rawState === 'string' && rawState.length <= MAX_PARAM ? rawState : null;
  const fail = (error: AuthorizationError, description: string): ReadResult => ({ ok: false, redirectUri, state, error, description });
  if (typeof rawState === 'object' || (typeof rawState === 'string' && rawState.length > MAX_PARAM))
    return fail('invalid_request', 'state is repeated or too long.');
  for (const name of Object.keys(params)) if (Array.isArray(params[name])) return fail('invalid_request', `${name} is sent more than once.`);
  const p = (name: string) => (one(params, name) as string | undefined)?.slice(0, MAX_PARAM + 1);

  if (p('request') !== undefined) return fail('request_not_supported', 'Request objects are not supported.');
  if (p('request_uri') !== undefined) return fail('request_uri_not_supported', 'request_uri is not supported.');
  const responseType = p('response_type');
  if (responseType === undefined) return fail('invalid_request', 'Missing parameter: response_type.');
  if (responseType !== 'code') return fail('unsupported_response_type', 'Only response_type=code is supported.');
  const responseMode = p('response_mode');
  if (responseMode !== undefined && responseMode !== 'query') return fail('invalid_request', 'Only response_mode=query is supported.');
  if (!client.grantTypes.includes('authorization_code')) return fail('unauthorized_client', 'This client may not use the authorization code grant.');

  const challenge = p('code_challenge');
  const method = p('code_challenge_method');
  if (challenge === undefined) {
    if (method !== undefined) return fail('invalid_request', 'code_challenge_method without code_challenge.');
    if (client.type === 'public') return fail('invalid_request', 'PKCE is required for public clients: send code_challenge with code_challenge_method=S256.');
  } else {
    // RFC 7636 §4.3: no method means plain, which is refused (RFC 9700 §2.1.1).
    if (method !== 'S256') return fail('invalid_request', 'code_challenge_method must be S256 (plain is not accepted).');
    if (!CHALLENGE.test(challenge)) return fail('invalid_request', 'code_challenge must be 43 to 128 base64url characters.');
  }

  const scopes = grantedScopes(client, p('scope'));
  if ('refused' in scopes)
    return fail('invalid_scope', scopes.refused ? `The scope ${scopes.refused} is unknown or not allowed for this client.` : 'No scope requested.');

  const prompt = (p('prompt') ?? '').split(' ').filter(Boolean);
  if (prompt.some((v) => !PROMPTS.has(v))) return fail('invalid_request', 'prompt takes none, login, consent and select_account.');
  if (prompt.includes('none') && prompt.length > 1) return fail('invalid_request', 'prompt=none cannot be combined with another value.');

  const rawMaxAge = p('max_age');
  let maxAge: number | null = null;
  if (rawMaxAge !== undefined) {
    if (!/^\d{1,10}$/.test(rawMaxAge)) return fail('invalid_request', 'max_age must be a number of seconds.');
    maxAge = Number(rawMaxAge);
  }
  const nonce = p('nonce') ?? null;
  if (nonce !== null && nonce.length > 512) return fail('invalid_request', 'nonce is too long (512 characters at most).');
  const loginHint = p('login_hint') ?? null;
  const acr = (p('acr_values') ?? '').split(' ');

  return {
    ok: true,
    request: {
      clientId: client.clientId,
      redirectUri,
      scopes,
      state,
      nonce,
      codeChallenge: challenge ?? null,
      prompt,
      maxAge,
      loginHint: loginHint && loginHint.length <= 320 ? loginHint : null,
      requireMfa: acr.includes('mfa'),
    },
  };
}
