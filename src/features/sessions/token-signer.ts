import { createHash, randomUUID } from 'node:crypto';
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
  /**
   * An OpenID Connect ID token (typ JWT) for `audience` (the client_id), signed with the current key;
   * `at_hash` is computed here from `accessToken` with the hash of the signing algorithm.
   */
  signIdToken(claims: IdTokenClaims, audience: string, lifetimeSeconds: number, accessToken: string): Promise<string>;
}

/** The claims of an ID token besides iss, aud, iat, exp and at_hash (OpenID Connect Core §2). */
export interface IdTokenClaims {
  sub: string;
  azp: string;
  auth_time: number;
  sid: string;
  amr: string[];
  acr: string;
  nonce?: string;
  [claim: string]: unknown;
}

/** OpenID Connect Core §3.1.3.6: the left half of the hash of the access token, with the hash of the JWS algorithm (SHA-512 for Ed25519). */
export function atHash(accessToken: string, algorithm: string): string {
  const hash = createHash(algorithm === 'EdDSA' ? 'sha512' : `sha${algorithm.slice(2)}`)
    .update(accessToken)
    .digest();
  return hash.subarray(0, hash.length / 2).toString('base64url');
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
    async signIdToken(claims, audience, lifetimeSeconds, accessToken) {
      const key = keys.current;
      if (key.alg !== opts.algorithm) throw new Error(`refusing to sign with ${key.alg} (key ${key.kid}): JWT_ALGORITHM=${opts.algorithm}`);
      const iat = Math.floor(clock.now().getTime() / 1000);
      return new SignJWT({ ...claims, at_hash: atHash(accessToken, key.alg) })
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
        .setIssuer(opts.issuer)
        .setAudience(audience)
        .setSubject(claims.sub)
        .setIssuedAt(iat)
        .setExpirationTime(iat + lifetimeSeconds)
        .sign(key.privateKey);
    },
  };
}
