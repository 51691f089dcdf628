import { OAuthError } from '../../errors.js';
import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import { newOpaqueToken, sha256Hex } from '../../infra/opaque-token.js';
import type { SecondFactor } from '../accounts/service.js';
import type { IssuingClient } from '../sessions/service.js';
import * as repo from './repo.js';

/**
 * The second step of a sign-in, as the accounts and social features ask for it
 * (their `SecondFactor`): built before them and without them, so accounts and
 * MFA do not need each other to be built.
 */
export function createSecondFactor(deps: {
  db: Database;
  clock: Clock;
  challengeSeconds: number;
  /** Whether the user has a passkey (the passkeys feature): `mfa_required` then offers it as a method. */
  hasPasskey?: (userId: string) => Promise<boolean>;
}): SecondFactor {
  const { db, clock, challengeSeconds } = deps;
  return {
    /** Whether a sign-in of this user needs the second step. */
    async required(userId: string): Promise<boolean> {
      return Boolean((await repo.findTotp(db, userId))?.enabledAt);
    },

    /** The `mfa_required` answer of a sign-in whose first factor (`amr`) is proven; `client`: the registered client the session will be bound to. */
    async challenge(userId: string, amr: string[], client: IssuingClient | null = null): Promise<OAuthError> {
      const token = newOpaqueToken();
      const now = clock.now();
      await repo.insertChallenge(db, { userId, tokenHash: sha256Hex(token), amr, now, expiresAt: new Date(now.getTime() + challengeSeconds * 1000), client });
      const passkey = (await deps.hasPasskey?.(userId)) ?? false;
      return new OAuthError(
        'mfa_required',
        `Enter the code from your authenticator app (or a recovery code) at POST /auth/mfa/verify with this mfa_token${passkey ? ', or use a passkey (POST /auth/mfa/passkey/options, then /auth/mfa/passkey/verify)' : ''}.`,
        { mfa_token: token, expires_in: challengeSeconds, methods: passkey ? ['totp', 'passkey'] : ['totp'] },
      );
    },
  };
}
