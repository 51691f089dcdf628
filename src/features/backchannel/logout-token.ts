import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Clock } from '../../infra/clock.js';
import type { KeyRing } from '../../infra/keys.js';

/** OpenID Connect Back-Channel Logout 1.0 §2.4. */
export const LOGOUT_TOKEN_TYP = 'logout+jwt';
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** A logout token is good for this long (it is made at each delivery attempt). */
export const LOGOUT_TOKEN_SECONDS = 120;

export interface LogoutTokenSubject {
  clientId: string;
  sub: string;
  sid: string;
}

/** Signs a logout token with the current key (the one the JWKS names for ID tokens): `sub` and `sid`, no `nonce`, a fresh `jti`. */
export function createLogoutTokenSigner(keys: KeyRing, clock: Clock, issuer: string) {
  return async (s: LogoutTokenSubject): Promise<string> => {
    const key = keys.current;
    const iat = Math.floor(clock.now().getTime() / 1000);
    return new SignJWT({ sid: s.sid, events: { [BACKCHANNEL_LOGOUT_EVENT]: {} } })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: LOGOUT_TOKEN_TYP })
      .setIssuer(issuer)
      .setAudience(s.clientId)
      .setSubject(s.sub)
      .setIssuedAt(iat)
      .setExpirationTime(iat + LOGOUT_TOKEN_SECONDS)
      .setJti(randomUUID())
      .sign(key.privateKey);
  };
}
