import type { AccessClaims } from './claims.js';

/** What a token without a `scope` claim (the implicit first-party client: password grant, /auth/login) is treated as. */
export const FIRST_PARTY_SCOPES = ['openid', 'profile', 'email'] as const;

/** The scopes an access token was granted: its `scope` claim, or every OpenID scope for the implicit first-party client. */
export function grantedScopes(token: Pick<AccessClaims, 'scope'>): Set<string> {
  return new Set(token.scope === undefined ? FIRST_PARTY_SCOPES : token.scope.split(' ').filter(Boolean));
}
