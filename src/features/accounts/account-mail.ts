import type { Database } from '../../infra/db/client.js';
import type { EmailTokenService } from '../email-tokens/service.js';
import { signInSecret, type OutboxService, type SendCaps } from '../mail/index.js';

export interface AccountMailSettings {
  confirmTtlSeconds: number;
  passwordResetTtlSeconds: number;
  caps: SendCaps;
}

interface Recipient {
  id: string;
  email: string;
  firstName: string | null;
}

/** "password, Google, GitHub": the ways to sign in to an account, as a notice lists them. */
export function signInMethodsText(password: boolean, providers: readonly string[]): string {
  const all = [...(password ? ['password'] : []), ...providers];
  return all.length ? all.join(', ') : 'none yet (choose a password with "Forgot password")';
}

/** "24 hours", "30 minutes", "1 day": how long a link lives, for the message text. */
export function humanDuration(seconds: number): string {
  const unit = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  if (seconds % 86400 === 0 && seconds > 86400) return unit(seconds / 86400, 'day');
  if (seconds % 3600 === 0) return unit(seconds / 3600, 'hour');
  if (seconds % 60 === 0) return unit(seconds / 60, 'minute');
  return unit(seconds, 'second');
}

export type AccountMail = ReturnType<typeof createAccountMail>;

/**
 * The emails about an account. Each writes its link token and its outbox row in
 * the caller's transaction, so a message exists exactly when its change does.
 */
export function createAccountMail(deps: {
  tokens: EmailTokenService;
  outbox: OutboxService;
  settings: AccountMailSettings;
  /** The third-party providers connected to an account (display names), read in `tx`; none when absent. */
  connectedProviders?: (tx: Database, userId: string) => Promise<string[]>;
}) {
  const { tokens, outbox, settings } = deps;
  const name = (u: Recipient) => u.firstName ?? 'there';
  const methods = async (tx: Database, u: Recipient, password: boolean) => signInMethodsText(password, (await deps.connectedProviders?.(tx, u.id)) ?? []);

  return {
    async confirmation(tx: Database, user: Recipient): Promise<void> {
      const ttl = settings.confirmTtlSeconds;
      // Earlier confirmation links stay valid: any of them proves the address.
      const token = await tokens.issue(tx, { userId: user.id, purpose: 'confirm_email', email: user.email, ttlSeconds: ttl, replace: false });
      await outbox.add(tx, { kind: 'confirm_email', to: user.email, vars: { name: name(user), expires_in: humanDuration(ttl) }, secret: token });
    },

    async passwordReset(tx: Database, user: Recipient): Promise<void> {
      const ttl = settings.passwordResetTtlSeconds;
      const token = await tokens.issue(tx, { userId: user.id, purpose: 'password_reset', email: user.email, ttlSeconds: ttl, replace: true });
      await outbox.add(tx, { kind: 'password_reset', to: user.email, vars: { name: name(user), expires_in: humanDuration(ttl) }, secret: token });
    },

    /** After a reset or a change: the account has a password now; the notice lists every way to sign in. */
    async passwordChanged(tx: Database, user: Recipient): Promise<void> {
      await outbox.add(tx, { kind: 'password_changed', to: user.email, vars: { name: name(user), sign_in_methods: await methods(tx, user, true) } });
    },

    /** The address was confirmed: the ways to sign in now, after sign-ins that were not proven were removed. */
    async emailConfirmed(tx: Database, user: Recipient & { passwordHash: string | null }): Promise<void> {
      await outbox.add(tx, {
        kind: 'email_confirmed',
        to: user.email,
        vars: { name: name(user), sign_in_methods: await methods(tx, user, user.passwordHash !== null) },
      });
    },

    /** An account created by an administrator: a link to choose a password (valid EMAIL_CONFIRM_TTL). */
    async invite(tx: Database, user: Recipient): Promise<void> {
      const ttl = settings.confirmTtlSeconds;
      const token = await tokens.issue(tx, { userId: user.id, purpose: 'password_reset', email: user.email, ttlSeconds: ttl, replace: true });
      await outbox.add(tx, { kind: 'invite', to: user.email, vars: { name: name(user), expires_in: humanDuration(ttl) }, secret: token });
    },

    /**
     * Someone tried to register this (taken) address (REGISTRATION_ENUMERATION_PROTECTION):
     * tell the owner, at most as often as the resend caps allow, so it cannot be used to flood them.
     */
    async accountExists(tx: Database, user: Recipient): Promise<void> {
      if (!(await outbox.allowed(tx, user.email, 'account_exists', settings.caps))) return;
      await outbox.add(tx, { kind: 'account_exists', to: user.email, vars: { name: name(user) } });
    },

    /** A security notice without a link. */
    async notice(tx: Database, user: Recipient, kind: 'mfa_enabled' | 'mfa_disabled' | 'mfa_recovery_codes_regenerated' | 'mfa_failed'): Promise<void> {
      await outbox.add(tx, { kind, to: user.email, vars: { name: name(user) } });
    },

    /**
     * A sign-in code and link (sealed together as the message's secret), to an address that may have no account yet.
     * `request`: the hosted page's pending request it was asked from (the link continues it, in that browser).
     */
    async emailSignIn(
      tx: Database,
      to: string,
      account: Recipient | null,
      code: string,
      linkToken: string,
      ttlSeconds: number,
      request: string | null = null,
    ): Promise<void> {
      const vars = { name: account ? name(account) : 'there', expires_in: humanDuration(ttlSeconds) };
      await outbox.add(tx, { kind: 'email_sign_in', to, vars, secret: signInSecret(code, linkToken, request) });
    },

    /** A passkey was added to or removed from the account (its name, as the user gave it). */
    async passkeyNotice(tx: Database, user: Recipient, kind: 'passkey_added' | 'passkey_removed', passkeyName: string): Promise<void> {
      await outbox.add(tx, { kind, to: user.email, vars: { name: name(user), passkey_name: passkeyName } });
    },

    /** A link to the new address, and a notice to the current one. */
    async emailChange(tx: Database, user: Recipient, newEmail: string): Promise<void> {
      const ttl = settings.confirmTtlSeconds;
      const token = await tokens.issue(tx, { userId: user.id, purpose: 'change_email', email: newEmail, ttlSeconds: ttl, replace: true });
      await outbox.add(tx, { kind: 'email_change_confirm', to: newEmail, vars: { name: name(user), expires_in: humanDuration(ttl) }, secret: token });
      await outbox.add(tx, { kind: 'email_change_notice', to: user.email, vars: { name: name(user), new_email: newEmail } });
    },

    /**
     * An email change to an address that has an account (REGISTRATION_ENUMERATION_PROTECTION):
     * what the requester sees is the same as for a free address (older change links are
     * replaced, the current address gets its notice), but no link goes out: the owner of the
     * address is told instead, capped like `accountExists`.
     */
    async emailChangeTaken(tx: Database, user: Recipient, owner: Recipient): Promise<void> {
      await tokens.revokeAll(tx, user.id, 'change_email');
      await outbox.add(tx, { kind: 'email_change_notice', to: user.email, vars: { name: name(user), new_email: owner.email } });
      if (await outbox.allowed(tx, owner.email, 'email_change_taken', settings.caps)) {
        await outbox.add(tx, { kind: 'email_change_taken', to: owner.email, vars: { name: name(owner) } });
      }
    },

    /** Whether one more resend/forgot (or failed-code) message of this kind may go to the address now (silently capped). */
    allowed: (tx: Database, to: string, kind: 'confirm_email' | 'password_reset' | 'mfa_failed' | 'email_sign_in') =>
      outbox.allowed(tx, to, kind, settings.caps),

    committed: () => outbox.committed(),
  };
}
