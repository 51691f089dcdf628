// Framework-neutral HTTP pieces shared by the Fastify and Express middleware.
import { hasRole, missingPermissions, type AccessTokenClaims } from './claims.js';
import { VerifyError } from './errors.js';
import type { Verifier } from './verifier.js';

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), or null. */
export function bearerToken(authorization: string | string[] | undefined | null): string | null {
  if (typeof authorization !== 'string') return null;
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(authorization);
  return match?.[1] ?? null;
}

/** An error response: status, headers and the JSON body `{ error, message }`. */
export interface Denial {
  status: 401 | 403 | 503;
  headers: Record<string, string>;
  body: { error: 'unauthorized' | 'invalid_token' | 'forbidden' | 'service_unavailable'; message: string };
}

export interface AuthOptions {
  /** Sent as `WWW-Authenticate: Bearer realm="…"`. */
  realm?: string;
}

function challenge(opts: AuthOptions, params: Record<string, string> = {}): string {
  const all = { ...(opts.realm ? { realm: opts.realm } : {}), ...params };
  const list = Object.entries(all).map(([k, v]) => `${k}="${v.replace(/[\\"]/g, '')}"`);
  return list.length ? `Bearer ${list.join(', ')}` : 'Bearer';
}

/** Verifies the request's bearer token: its claims, or the response to send instead. */
export async function authenticate(
  verifier: Verifier,
  authorization: string | string[] | undefined,
  opts: AuthOptions = {},
): Promise<{ claims: AccessTokenClaims } | { denial: Denial }> {
  const token = bearerToken(authorization);
  if (!token) {
    const message = authorization ? 'The Authorization header is not a Bearer token.' : 'A valid access token is required (Authorization: Bearer <token>).';
    return { denial: { status: 401, headers: { 'www-authenticate': challenge(opts) }, body: { error: 'unauthorized', message } } };
  }
  try {
    return { claims: await verifier.verify(token) };
  } catch (err) {
    if (err instanceof VerifyError && err.code === 'jwks_unavailable') {
      // The issuer's keys are unreachable: not the client's fault, and it must not sign out over it.
      return {
        denial: {
          status: 503,
          headers: { 'retry-after': '5' },
          body: { error: 'service_unavailable', message: 'The token could not be checked right now; retry shortly.' },
        },
      };
    }
    if (!(err instanceof VerifyError)) throw err;
    const message = err.code === 'token_expired' ? 'The access token has expired.' : 'The access token is invalid.';
    return {
      denial: {
        status: 401,
        headers: { 'www-authenticate': challenge(opts, { error: 'invalid_token', error_description: message }) },
        body: { error: 'invalid_token', message },
      },
    };
  }
}

/** No claims: the role/permission check runs without the authentication middleware before it. */
const notAuthenticated = (): Denial => ({
  status: 401,
  headers: { 'www-authenticate': challenge({}) },
  body: { error: 'unauthorized', message: 'A valid access token is required (Authorization: Bearer <token>).' },
});

const forbidden = (message: string): Denial => ({
  status: 403,
  headers: { 'www-authenticate': challenge({}, { error: 'insufficient_scope' }) },
  body: { error: 'forbidden', message },
});

/** null if the claims have one of `roles`; the 401/403 otherwise. */
export function checkRole(claims: AccessTokenClaims | undefined, roles: string[]): Denial | null {
  if (!claims) return notAuthenticated();
  return hasRole(claims, ...roles) ? null : forbidden(`This needs the role ${roles.join(' or ')}.`);
}

/** null if the claims grant every one of `permissions`; the 401/403 otherwise. */
export function checkPermission(claims: AccessTokenClaims | undefined, permissions: string[]): Denial | null {
  if (!claims) return notAuthenticated();
  const missing = missingPermissions(claims, ...permissions);
  return missing.length ? forbidden(`This needs the permission ${missing.join(', ')}.`) : null;
}

export function nonEmpty(what: string, list: string[]): string[] {
  if (!list.length || list.some((x) => typeof x !== 'string' || !x)) throw new TypeError(`${what}: give at least one non-empty name.`);
  return list;
}
