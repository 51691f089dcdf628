import { errors as joseErrors, jwtVerify, type JWTHeaderParameters } from 'jose';
import type { Clock } from '../../infra/clock.js';
import type { KeyRing } from '../../infra/keys.js';
import { ACCESS_TOKEN_TYP, REFRESH_TOKEN_TYP, type VerifiedAccessToken, type VerifiedRefreshToken } from './claims.js';

export interface TokenVerifierOptions {
  issuer: string;
  audience: string;
}

export interface TokenVerifier {
  /** The verified claims, or null for any invalid, expired or foreign token. */
  verifyAccess(token: string): Promise<VerifiedAccessToken | null>;
  verifyRefresh(token: string): Promise<VerifiedRefreshToken | null>;
}

/**
 * How far in the future an access token's `iat` may be (seconds): the clocks of
 * several Tessera instances may differ a little. jose does not check a future
 * `iat` by itself (only with maxTokenAge); a token "issued" later than this is
 * forged or comes from a broken clock, and is refused. `exp` and `nbf` are
 * checked without tolerance (Tessera never sets `nbf`).
 */
export const MAX_IAT_SKEW_SECONDS = 30;

/**
 * A compact JWS exactly as RFC 7515 writes it: three unpadded base64url segments.
 * jose's base64 fallback (atob) would also accept padding, so one token would have
 * several spellings; anything else is refused before any parsing.
 */
const COMPACT_JWS_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/**
 * Verification pins the algorithm and requires iss, aud, exp and typ. Keys are
 * chosen by `kid` from our own ring only: `jwk`, `jku` and `x5u` headers are ignored.
 */
export function createTokenVerifier(keys: KeyRing, clock: Clock, opts: TokenVerifierOptions): TokenVerifier {
  // Each published key verifies only the algorithm it signs with (keys of several algorithms during a rotation).
  const accessKey = (header: JWTHeaderParameters) => {
    const key = header.kid ? keys.byKid(header.kid) : undefined;
    if (!key || key.alg !== header.alg) throw new joseErrors.JWKSNoMatchingKey();
    return key.publicKey;
  };
  // Refresh tokens need the private key they were derived from (a public-only previous key has none).
  const refreshKey = (header: JWTHeaderParameters) => {
    const key = header.kid ? keys.privateByKid(header.kid) : undefined;
    if (!key) throw new joseErrors.JWKSNoMatchingKey();
    return key.refreshKey;
  };

  return {
    async verifyAccess(token) {
      if (!COMPACT_JWS_RE.test(token)) return null;
      try {
        const { payload } = await jwtVerify(token, accessKey, {
          algorithms: keys.algorithms(),
          issuer: opts.issuer,
          audience: opts.audience,
          typ: ACCESS_TOKEN_TYP,
          requiredClaims: ['exp', 'iat', 'sub', 'sid', 'jti'],
          currentDate: clock.now(),
        });
        const p = payload as Record<string, unknown>;
        if (typeof p.sub !== 'string' || !UUID_RE.test(p.sub) || typeof p.sid !== 'string' || !UUID_RE.test(p.sid)) return null;
        if ((p.iat as number) > clock.now().getTime() / 1000 + MAX_IAT_SKEW_SECONDS) return null;
        return {
          iss: p.iss as string,
          aud: p.aud as string | string[],
          sub: p.sub,
          sid: p.sid,
          iat: p.iat as number,
          exp: p.exp as number,
          jti: p.jti as string,
          email: typeof p.email === 'string' ? p.email : '',
          email_verified: p.email_verified === true,
          roles: isStringArray(p.roles) ? p.roles : [],
          permissions: isStringArray(p.permissions) ? p.permissions : [],
          amr: isStringArray(p.amr) ? p.amr : [],
          ...(typeof p.client_id === 'string' ? { client_id: p.client_id } : {}),
          ...(typeof p.scope === 'string' ? { scope: p.scope } : {}),
        };
      } catch {
        // any failure to verify (signature, claims, expiry, malformed JWT) means "not a valid token"
        return null;
      }
    },
    async verifyRefresh(token) {
      if (!COMPACT_JWS_RE.test(token)) return null;
      try {
        const { payload } = await jwtVerify(token, refreshKey, {
          algorithms: ['HS256'],
          issuer: opts.issuer,
          audience: opts.issuer,
          typ: REFRESH_TOKEN_TYP,
          requiredClaims: ['exp', 'sub', 'sid', 'gen'],
          currentDate: clock.now(),
        });
        const { sub, sid, gen, exp, iat } = payload as Record<string, unknown>;
        if (typeof sub !== 'string' || typeof sid !== 'string' || !UUID_RE.test(sid) || !Number.isSafeInteger(gen)) return null;
        return { sub, sid, gen: gen as number, exp: exp as number, iat: typeof iat === 'number' ? iat : null };
      } catch {
        // any failure to verify (signature, claims, expiry, malformed JWT) means "not a valid token"
        return null;
      }
    },
  };
}
