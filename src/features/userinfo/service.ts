import { AppError } from '../../errors.js';
import type { SessionService } from '../sessions/service.js';
import { grantedScopes } from '../sessions/scopes.js';

/** The profile members userinfo reads of the user (the accounts feature's `getProfile`). */
export interface UserinfoProfile {
  firstName: string | null;
  lastName: string | null;
  updatedAt: Date;
}

export interface UserinfoServiceDeps {
  sessions: Pick<SessionService, 'authenticate'>;
  profileOf: (userId: string) => Promise<UserinfoProfile>;
}

/** OpenID Connect Core §5.1 claims; members the user does not have are left out (§5.3.2). */
export interface UserinfoClaims {
  sub: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  given_name?: string;
  family_name?: string;
  updated_at?: number;
}

export type UserinfoService = ReturnType<typeof createUserinfoService>;

/**
 * The userinfo endpoint's use case (OIDC Core §5.3): the claims of the token's scopes, read
 * now (a changed email or name shows at once). The token passes the same checks as any API
 * call, so a revoked session or a disabled user is refused at once.
 */
export function createUserinfoService(deps: UserinfoServiceDeps) {
  return {
    async claims(accessToken: string): Promise<UserinfoClaims> {
      const { token, session } = await deps.sessions.authenticate(accessToken);
      const scopes = grantedScopes(token);
      if (!scopes.has('openid')) throw new AppError('insufficient_scope');
      const claims: UserinfoClaims = { sub: token.sub };
      if (scopes.has('email')) {
        claims.email = session.email;
        claims.email_verified = session.emailVerifiedAt !== null;
      }
      if (scopes.has('profile')) {
        const p = await deps.profileOf(token.sub);
        const name = [p.firstName, p.lastName].filter(Boolean).join(' ');
        if (name) claims.name = name;
        if (p.firstName) claims.given_name = p.firstName;
        if (p.lastName) claims.family_name = p.lastName;
        claims.updated_at = Math.floor(p.updatedAt.getTime() / 1000);
      }
      return claims;
    },
  };
}
