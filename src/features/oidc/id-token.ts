import type { UserRow } from '../accounts/tables.js';
import { multiFactorAmr } from '../sessions/amr.js';
import type { IdTokenClaims } from '../sessions/token-signer.js';

/**
 * `acr` (docs/openid-provider.md "ID tokens"): `mfa` when a second factor was used in the sign-in
 * (amr has `otp`, or a passkey with user verification), `fed` for a third-party sign-in without one,
 * `pwd` otherwise.
 */
export const acrOf = (amr: string[]) => (multiFactorAmr(amr) ? 'mfa' : amr.includes('fed') ? 'fed' : 'pwd');

/** The ID token's claims besides iss, aud, iat, exp and at_hash: the sign-in, then the claims of the granted scopes. */
export function idTokenClaims(f: {
  user: UserRow;
  clientId: string;
  sid: string;
  authTime: Date;
  amr: string[];
  nonce: string | null;
  scopes: string[];
}): IdTokenClaims {
  const claims: IdTokenClaims = {
    sub: f.user.id,
    azp: f.clientId,
    auth_time: Math.floor(f.authTime.getTime() / 1000),
    sid: f.sid,
    amr: f.amr,
    acr: acrOf(f.amr),
    ...(f.nonce !== null ? { nonce: f.nonce } : {}),
  };
  if (f.scopes.includes('email')) {
    claims.email = f.user.email;
    claims.email_verified = f.user.emailVerifiedAt !== null;
  }
  if (f.scopes.includes('profile')) {
    const name = [f.user.firstName, f.user.lastName].filter(Boolean).join(' ');
    if (name) claims.name = name;
    if (f.user.firstName) claims.given_name = f.user.firstName;
    if (f.user.lastName) claims.family_name = f.user.lastName;
  }
  return claims;
}
