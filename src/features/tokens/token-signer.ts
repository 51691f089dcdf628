import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Clock } from '../../infra/clock.js';
import type { KeyRing } from '../../infra/keys.js';
import { ACCESS_TOKEN_TYP, REFRESH_TOKEN_TYP, type AccessClaims, type RefreshClaims } from './claims.js';

export interface TokenSignerOptions {
  issuer: string;
  audience: string;
  accessTokenSeconds: number;
}

export interface TokenSigner {
  signAccess(claims: AccessClaims): Promise<{ token: string; expiresIn: number }>;
  /** Refresh tokens are HS256 with a secret only Tessera has: no RSA signature per refresh. */
  signRefresh(claims: RefreshClaims, expiresAt: Date): Promise<string>;
}

export function createTokenSigner(keys: KeyRing, clock: Clock, opts: TokenSignerOptions): TokenSigner {
  return {
    async signAccess(claims) {
      const key = keys.current;
      const iat = Math.floor(clock.now().getTime() / 1000);
      const token = await new SignJWT({ ...claims })
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: ACCESS_TOKEN_TYP })
        .setIssuer(opts.issuer)
        .setAudience(opts.audience)
        .setSubject(claims.sub)
        .setIssuedAt(iat)
        .setExpirationTime(iat + opts.accessTokenSeconds)
        .setJti(randomUUID())
        .sign(key.privateKey);
      return { token, expiresIn: opts.accessTokenSeconds };
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
