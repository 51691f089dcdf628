import { errors as joseErrors, jwtVerify, type JWTHeaderParameters } from 'jose';
import type { Clock } from '../../infra/clock.js';
import type { KeyRing } from '../../infra/keys.js';
import { ACCESS_TOKEN_TYP, REFRESH_TOKEN_TYP, type RefreshClaims, type VerifiedAccessToken } from './claims.js';

export interface TokenVerifierOptions {
  issuer: string;
  audience: string;
}

export interface TokenVerifier {
  /** The verified claims, or null for any invalid, expired or foreign token. */
  verifyAccess(token: string): Promise<VerifiedAccessToken | null>;
  verifyRefresh(token: string): Promise<RefreshClaims | null>;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/**
 * Verification pins the algorithm and requires iss, aud, exp and typ. Keys are
 * chosen by `kid` from our own ring only: `jwk`, `jku` and `x5u` headers are ignored.
 */
export function createTokenVerifier(keys: KeyRing, clock: Clock, opts: TokenVerifierOptions): TokenVerifier {
  const accessKey = (header: JWTHeaderParameters) => {
    const key = header.kid ? keys.byKid(header.kid) : undefined;
    if (!key) throw new joseErrors.JWKSNoMatchingKey();
    return key.publicKey;
  };
  const refreshKey = (header: JWTHeaderParameters) => {
    const key = header.kid ? keys.byKid(header.kid) : undefined;
    if (!key) throw new joseErrors.JWKSNoMatchingKey();
    return key.refreshKey;
  };

  return {
    async verifyAccess(token) {
      try {
        const { payload } = await jwtVerify(token, accessKey, {
          algorithms: [keys.current.alg],
          issuer: opts.issuer,
          audience: opts.audience,
          typ: ACCESS_TOKEN_TYP,
          requiredClaims: ['exp', 'iat', 'sub', 'sid', 'jti'],
          currentDate: clock.now(),
        });
        const p = payload as Record<string, unknown>;
        if (typeof p.sub !== 'string' || !UUID_RE.test(p.sub) || typeof p.sid !== 'string' || !UUID_RE.test(p.sid)) return null;
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
        };
      } catch {
        return null;
      }
    },
    async verifyRefresh(token) {
      try {
        const { payload } = await jwtVerify(token, refreshKey, {
          algorithms: ['HS256'],
          issuer: opts.issuer,
          audience: opts.issuer,
          typ: REFRESH_TOKEN_TYP,
          requiredClaims: ['exp', 'sub', 'sid', 'gen'],
          currentDate: clock.now(),
        });
        const { sub, sid, gen } = payload as Record<string, unknown>;
        if (typeof sub !== 'string' || typeof sid !== 'string' || !UUID_RE.test(sid) || !Number.isSafeInteger(gen)) return null;
        return { sub, sid, gen: gen as number };
      } catch {
        return null;
      }
    },
  };
}
