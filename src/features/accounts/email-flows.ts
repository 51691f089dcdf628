import { AppError } from '../../errors.js';
import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import { isUniqueViolation } from '../../infra/db/errors.js';
import type { PasswordHasher } from '../../infra/password-hasher.js';
import type { EmailTokenService } from '../email-tokens/service.js';
import type { SessionService } from '../sessions/service.js';
import type { AuditService } from '../audit/service.js';
import type { AccountMail } from './account-mail.js';
import { validEmailFrom } from './email.js';
import { checkPassword } from './password-policy.js';
import * as repo from './repo.js';
import type { UserRow } from './tables.js';

export interface EmailFlowDeps {
  db: Database;
  clock: Clock;
  hasher: PasswordHasher;
  sessions: SessionService;
  tokens: EmailTokenService;
  mail: AccountMail;
  audit: Pick<AuditService, 'record'>;
  /**
   * Third-party identities (the social service): proving the address by an emailed link
   * removes those whose claim on the account was not proven, and the sessions they opened.
   */
  identities?: { addressProven(tx: Database, userId: string): Promise<string[]>; connectedProviders(tx: Database, userId: string): Promise<string[]> };
  /** A password reset also ends the address's brute-force delay (sign-in-guard.ts). */
  signInGuard?: { reset(email: string): Promise<void> };
}

export type EmailFlows = ReturnType<typeof createEmailFlows>;

/** The flows that start or end with an emailed link: confirm, resend, forgot and reset password. */
export function createEmailFlows(deps: EmailFlowDeps) {
  const { db, clock, hasher, sessions, tokens, mail, audit } = deps;

  /**
   * Writes one capped message if `wanted(user)`. The transaction, the lock and
   * the cap query run whether or not the account exists, so the answer takes
   * as long either way and says nothing.
   */
  async function capped(
    email: string,
    kind: 'confirm_email' | 'password_reset',
    wanted: (u: UserRow) => boolean,
    write: (tx: Database, u: UserRow) => Promise<void>,
  ) {
    const user = await repo.findUserByEmail(db, email);
    const written = await db.transaction(async (tx) => {
      const allowed = await mail.allowed(tx, email, kind);
      if (!allowed || !user || !wanted(user)) return false;
      await write(tx, user);
      return true;
    });
    if (written) mail.committed();
  }

  return {
    /**
     * Confirms a registration address, or completes an email change. The address is
     * proven now: sign-ins that were not are removed, and when the account has (or had)
     * a third-party sign-in the owner gets the list of the ways to sign in.
     */
    async confirmEmail(token: string): Promise<UserRow> {
      try {
        const { user, mailed } = await db.transaction(async (tx) => {
          const row = await tokens.consume(tx, token, ['confirm_email', 'change_email']);
          const now = clock.now();
          // A confirmation link is for the address it was sent to; once the account moved on, it is void.
          const user =
            row.purpose === 'confirm_email'
              ? await repo.markEmailVerified(tx, row.userId, row.email, now)
              : await repo.setConfirmedEmail(tx, row.userId, row.email, now);
          if (!user) throw new AppError('email_token_invalid');
          if (row.purpose === 'change_email') {
            await tokens.revokeAll(tx, user.id, 'confirm_email');
            await audit.record(tx, { userId: user.id, type: 'email_changed' });
          }
          const removed = (await deps.identities?.addressProven(tx, user.id)) ?? [];
          const connected = removed.length ? [] : ((await deps.identities?.connectedProviders(tx, user.id)) ?? []);
          if (!removed.length && !connected.length) return { user, mailed: false };
          await mail.emailConfirmed(tx, user);
          return { user, mailed: true };
        });
        // Confirmed, perhaps a new address: no instance serves the old profile from a cached session.
        sessions.forgetUser(user.id);
        if (mailed) mail.committed();
        return user;
      } catch (err) {
        // The new address was registered by someone else meanwhile; the link stays unused.
        if (isUniqueViolation(err)) throw new AppError('email_already_registered');
        throw err;
      }
    },

    /** What a live confirmation or email-change link is for (the page shows it before the POST); the token stays unused. */
    async checkConfirmToken(token: string): Promise<{ email: string; change: boolean }> {
      const row = await tokens.peek(token, ['confirm_email', 'change_email']);
      return { email: row.email, change: row.purpose === 'change_email' };
    },

    /** Always succeeds; mails only an existing, unconfirmed, enabled account, within the caps. */
    async resendConfirmation(input: string): Promise<void> {
      const email = validEmailFrom(input);
      await capped(
        email,
        'confirm_email',
        (u) => !u.emailVerifiedAt && !u.disabledAt,
        (tx, u) => mail.confirmation(tx, u),
      );
    },

    /** Always succeeds; mails only an existing, enabled account, within the caps. */
    async requestPasswordReset(input: string): Promise<void> {
      const email = validEmailFrom(input);
      await capped(
        email,
        'password_reset',
        (u) => !u.disabledAt,
        (tx, u) => mail.passwordReset(tx, u),
      );
    },

    /** The address a live reset link belongs to (for the form); the token stays unused. */
    async checkResetToken(token: string): Promise<{ email: string }> {
      const row = await tokens.peek(token, ['password_reset']);
      return { email: row.email };
    },

    /** Sets a new password from a reset link, ends every session, and tells the user. */
    async resetPassword(token: string, password: string): Promise<void> {
      // The cheap checks first: a bad link never costs a bcrypt.
      await tokens.peek(token, ['password_reset']);
      const problem = checkPassword(password);
      if (problem) throw new AppError(problem, undefined, [{ field: 'password', message: problem }]);
      const hash = await hasher.hash(password);
      const email = await db.transaction(async (tx) => {
        const row = await tokens.consume(tx, token, ['password_reset']);
        const user = await repo.resetPassword(tx, row.userId, hash, clock.now());
        if (!user || user.email !== row.email) throw new AppError('email_token_invalid');
        // Every other emailed link dies with the old password: a pending email change asked for with it above all.
        await tokens.revokeAllOfUser(tx, user.id);
        const ended = await sessions.revokeAll(user.id, 'password_reset', tx);
        // The reset proves the address: an identity that never did is no way into the account any more.
        await deps.identities?.addressProven(tx, user.id);
        await audit.record(tx, { userId: user.id, type: 'password_reset', details: { sessions_ended: ended } });
        await mail.passwordChanged(tx, user);
        return user.email;
      });
      mail.committed();
      await deps.signInGuard?.reset(email);
    },
  };
}
