import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { JwtAlgorithm } from '../../config/index.js';
import type { Clock } from '../../infra/clock.js';
import type { KeyRing } from '../../infra/keys.js';
import { ACCESS_TOKEN_TYP, REFRESH_TOKEN_TYP, type AccessClaims, type RefreshClaims } from './claims.js';

export interface TokenSignerOptions {
  /** JWT_ALGORITHM: the only algorithm access tokens are signed with. */
  algorithm: JwtAlgorithm;
  issuer: string;
  audience: string;
  accessTokenSeconds: number;
}

export interface TokenSigner {
  /** `lifetimeSeconds`: a registered client's own access-token lifetime; ACCESS_TOKEN_EXPIRE_MINUTES otherwise. */
  signAccess(claims: AccessClaims, lifetimeSeconds?: number | null): Promise<{ token: string; expiresIn: number }>;
  /** Refresh tokens are HS256 with a secret only Tessera has: no RSA signature per refresh. */
  signRefresh(claims: RefreshClaims, expiresAt: Date): Promise<string>;
}

export function createTokenSigner(keys: KeyRing, clock: Clock, opts: TokenSignerOptions): TokenSigner {
  return {
    async signAccess(claims, lifetimeSeconds) {
      const lifetime = lifetimeSeconds ?? opts.accessTokenSeconds;
      const key = keys.current;
      // The key ring picks keys of JWT_ALGORITHM only; this is the last line of defence, not a code path.
      if (key.alg !== opts.algorithm) throw new Error(`refusing to sign with ${key.alg} (key ${key.kid}): JWT_ALGORITHM=${opts.algorithm}`);
      const iat = Math.floor(clock.now().getTime() / 1000);
      const token = await new SignJWT({ ...claims })
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: ACCESS_TOKEN_TYP })
        .setIssuer(opts.issuer)
        .setAudience(opts.audience)
        .setSubject(claims.sub)
        .setIssuedAt(iat)
        .setExpirationTime(iat + lifetime)
        .setJti(randomUUID())
        .sign(key.privateKey);
      return { token, expiresIn: lifetime };
    },
    async signRefresh(claims, expiresAt) {
      const key = keys.current;
      const iat = Math.floor(clock.now().getTime() / 1000);
      return new SignJWT({ sid: claims.sid, gen: claims.gen })
        .setProtectedHeader({ alg: 'HS256', kid: key.kid, typ: REFRESH_TOKEN_TYP })
        .setIssuer(opts.issuer)
        .setAudience(opts.issuer)
        .setSubject(claims.sub)
        .setIssuedAt(iat)
        .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
        .setJti(randomUUID())
        .sign(key.refreshKey);
    },
  };
}
