import { randomUUID } from 'node:crypto';
import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import type { PasswordHasher } from '../../infra/password-hasher.js';
import { AppError, OAuthError } from '../../errors.js';
import type { ClientMeta, IssuingClient, SessionService } from '../sessions/service.js';
import type { ServiceMetrics } from '../../infra/metrics.js';
import type { AuditService } from '../audit/service.js';
import type { EmailTokenService } from '../email-tokens/service.js';
import type { AccountMail } from './account-mail.js';
import type { FailureOutcome, SignInGuard } from './sign-in-guard.js';
import { normaliseEmail, validEmailFrom } from './email.js';
import { MAX_PASSWORD_BYTES, checkPassword } from './password-policy.js';
import * as repo from './repo.js';
import type { UserRow } from './tables.js';

/** The second step of a sign-in (MFA), shared by every way of signing in: when `required`, answer with `challenge` instead of tokens. */
export interface SecondFactor {
  required(userId: string): Promise<boolean>;
  challenge(userId: string, amr: string[], client?: IssuingClient | null): Promise<OAuthError>;
}

export interface AccountServiceDeps {
  db: Database;
  clock: Clock;
  hasher: PasswordHasher;
  sessions: SessionService;
  mail: AccountMail;
  /** Voids the account's emailed links when its password changes. */
  tokens: Pick<EmailTokenService, 'revokeAllOfUser'>;
  metrics: Pick<ServiceMetrics, 'signIns'>;
  audit: Pick<AuditService, 'record'>;
  /** Gives a new account its default role, in the registration's transaction. */
  assignDefaultRole: (tx: Database, userId: string) => Promise<void>;
  /** Refuses (409 `last_admin`) to delete the last enabled administrator, in the deletion's transaction (rbac `keepAnAdmin`). */
  keepAnAdmin?: (tx: Database, userId: string) => Promise<void>;
  /** The second step of a sign-in (MFA): when `required`, the password grant answers with `challenge` instead of tokens. */
  secondFactor: SecondFactor;
  requireEmailVerification: boolean;
  /** REGISTRATION_ENUMERATION_PROTECTION: a taken email gets the answer of a new account, and its owner an email. */
  registrationEnumerationProtection?: boolean;
  /** Brute-force protection of password sign-ins (growing delays per address or known client, failures per IP); none when absent. */
  guard?: Pick<SignInGuard, 'reserve' | 'succeeded'>;
}

/** Who re-authenticates with their password on a signed-in endpoint, and for what (`action`, in the audit trail). */
export interface Reauth {
  action: 'password_change' | 'email_change' | 'account_delete' | 'mfa_enrol' | 'mfa_disable' | 'mfa_recovery_codes' | 'passkey_add';
  ip: string | null;
  userAgent: string | null;
}

export interface Registration {
  email: string;
  password: string;
  firstName?: string | null | undefined;
  lastName?: string | null | undefined;
}

/** `a***@example.com`: enough to recognise, not enough to collect. */
export const maskEmail = (email: string) => {
  const at = email.lastIndexOf('@');
  return at > 0 ? `${email[0]}***${email.slice(at)}` : '***';
};

const badCredentials = () => new OAuthError('invalid_grant', 'Invalid email or password.');

function assertAcceptablePassword(password: string, field: string): void {
  const problem = checkPassword(password);
  if (problem) throw new AppError(problem, undefined, [{ field, message: problem }]);
}

/** What a new account's row would be: the answer to a sign-up with a taken email (never stored). */
function lookalikeUser(f: { email: string; passwordHash: string; firstName: string | null; lastName: string | null; now: Date }): UserRow {
  return {
    id: randomUUID(),
    email: f.email,
    passwordHash: f.passwordHash,
    firstName: f.firstName,
    lastName: f.lastName,
    emailVerifiedAt: null,
    disabledAt: null,
    createdAt: f.now,
    updatedAt: f.now,
  };
}

const cleanName = (v: string | null | undefined): string | null | undefined => (v === undefined || v === null ? v : v.trim() || null);

export type AccountService = ReturnType<typeof createAccountService>;

export function createAccountService(deps: AccountServiceDeps) {
  const { db, clock, hasher, sessions, mail } = deps;

  async function requireUser(id: string): Promise<UserRow> {
    const user = await repo.findUserById(db, id);
    if (!user) throw new AppError('user_not_found');
    return user;
  }

  /** Audits the delay (or IP throttle) that a failed password `counted` started; the address masked when no account has it. */
  async function recordThrottle(
    counted: FailureOutcome,
    who: { userId: string | null; ip: string | null; userAgent: string | null },
    email: string,
  ): Promise<void> {
    if (counted.delaySeconds > 0) {
      // scope: 'account' (the address's counter, strangers) or 'client' (a known client's own).
      const details = { scope: counted.scope, failures: counted.failures, delay_seconds: counted.delaySeconds };
      await deps.audit.record(db, { ...who, type: 'sign_in_throttled', details: who.userId ? details : { ...details, email: maskEmail(email) } });
    }
    if (counted.ipThrottled)
      await deps.audit.record(db, { ...who, userId: null, type: 'sign_in_throttled', details: { scope: 'ip', failures: counted.ipFailures } });
  }

  /**
   * The current password on a signed-in endpoint: counted like a sign-in
   * (reserved before hashing, the same delays per address or known client and
   * per IP, 429 `sign_in_throttled` during a delay even for the right one), and
   * every wrong one is a `reauth_failed` audit event. Throws `invalid_password` (403).
   */
  async function requirePassword(user: UserRow, password: string, field: string, reauth: Reauth): Promise<void> {
    const reserved = await deps.guard?.reserve(user.email, reauth.ip);
    const ok = user.passwordHash !== null && Buffer.byteLength(password, 'utf8') <= MAX_PASSWORD_BYTES && (await hasher.verify(password, user.passwordHash));
    if (ok) return void (await deps.guard?.succeeded(user.email, reauth.ip, reserved));
    const who = { userId: user.id, ip: reauth.ip, userAgent: reauth.userAgent };
    await deps.audit.record(db, { ...who, type: 'reauth_failed', details: { action: reauth.action } });
    if (reserved) await recordThrottle(reserved, who, user.email);
    throw new AppError('invalid_password', undefined, [{ field, message: 'incorrect' }]);
  }

  return {
    /**
     * With `registrationEnumerationProtection`, a taken email costs the same bcrypt
     * hash and gets the same 201 body as a new account (a random id that names
     * nothing); the existing owner is emailed instead, capped per address.
     */
    async register(input: Registration): Promise<UserRow> {
      const email = validEmailFrom(input.email);
      assertAcceptablePassword(input.password, 'password');
      const protect = deps.registrationEnumerationProtection === true;
      // A cheap early answer; the unique index is what actually decides under concurrency.
      const existing = await repo.findUserByEmail(db, email);
      if (existing && !protect) throw new AppError('email_already_registered');
      const passwordHash = await hasher.hash(input.password);
      const fields = { email, passwordHash, firstName: cleanName(input.firstName) ?? null, lastName: cleanName(input.lastName) ?? null, now: clock.now() };
      const user = await db.transaction(async (tx) => {
        const created = existing ? null : await repo.insertUser(tx, fields);
        if (created) {
          await deps.assignDefaultRole(tx, created.id);
          await mail.confirmation(tx, created);
          return created;
        }
        if (!protect) return null;
        const owner = existing ?? (await repo.findUserByEmail(tx, email));
        if (owner) await mail.accountExists(tx, owner);
        return lookalikeUser(fields);
      });
      if (!user) throw new AppError('email_already_registered');
      mail.committed();
      return user;
    },

    /**
     * The password grant: checks the credentials and opens a session. An unknown
     * email spends one dummy bcrypt and fails exactly like a wrong password.
     */
    /** `client`: the registered client of a token request (its session and tokens are bound to it); none = the implicit first-party client. */
    async signInWithPassword(emailInput: string, password: string, meta: { userAgent: string | null; ip: string | null }, client: IssuingClient | null = null) {
      const email = normaliseEmail(emailInput);
      // Before any lookup or hashing: during a delay even the right password gets only a 429. Otherwise this
      // attempt counts as a failure until the password proves right, so parallel attempts cannot outrun the count.
      const reserved = await deps.guard?.reserve(email, meta.ip);
      const user = await repo.findUserByEmail(db, email);
      // bcrypt ignores bytes past 72: a longer password must never match a truncated one.
      const tooLong = Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES;
      const fail = async (reason: string, err: OAuthError = badCredentials()) => {
        const credentials = reason === 'wrong_password' || reason === 'unknown_email';
        // Public metrics get one reason for both: only the (private) audit trail tells them apart.
        deps.metrics.signIns.inc({ result: 'failure', reason: credentials ? 'invalid_credentials' : reason });
        // An unknown address is kept masked: the trail must not become a list of guessed emails.
        await deps.audit.record(db, {
          userId: user?.id ?? null,
          type: 'sign_in_failed',
          ip: meta.ip,
          userAgent: meta.userAgent,
          details: user ? { reason } : { reason, email: maskEmail(email) },
        });
        // The reservation is the failure: nothing more to count.
        if (reserved && credentials) await recordThrottle(reserved, { userId: user?.id ?? null, ip: meta.ip, userAgent: meta.userAgent }, email);
        return err;
      };
      if (!user || user.passwordHash === null || tooLong) {
        await hasher.verifyDummy(password);
        throw await fail(user ? 'wrong_password' : 'unknown_email');
      }
      if (!(await hasher.verify(password, user.passwordHash))) throw await fail('wrong_password');
      // The right password: gives back the reservation, clears this client's failures (or, from a stranger, the address's) and makes the client known.
      await deps.guard?.succeeded(email, meta.ip, reserved);
      if (user.disabledAt) throw await fail('disabled', new OAuthError('invalid_grant', 'This account is disabled.'));
      // Only after the password proved right: a wrong one never learns whether the address is confirmed.
      if (deps.requireEmailVerification && !user.emailVerifiedAt) {
        throw await fail(
          'email_not_verified',
          new OAuthError(
            'email_not_verified',
            'Confirm your email address before signing in: open the link we emailed you, or ask for a new one at POST /auth/confirm-email/resend.',
          ),
        );
      }
      if (await deps.secondFactor.required(user.id)) {
        deps.metrics.signIns.inc({ result: 'pending', reason: 'mfa_required' });
        throw await deps.secondFactor.challenge(user.id, ['pwd'], client);
      }
      deps.metrics.signIns.inc({ result: 'success', reason: 'ok' });

      // A hash below the configured cost is upgraded now, while we know the password.
      const rehash = hasher.needsRehash(user.passwordHash) ? await hasher.hash(password) : null;
      const tokens = await db.transaction(async (tx) => {
        if (rehash) await repo.setPasswordHash(tx, user.id, rehash, clock.now());
        const tokens = await sessions.start(user, ['pwd'], meta, tx, client);
        await deps.audit.record(tx, {
          userId: user.id,
          type: 'sign_in',
          ip: meta.ip,
          userAgent: meta.userAgent,
          details: { method: 'password', ...(client ? { client: client.clientId } : {}) },
        });
        return tokens;
      });
      // The profile's updated_at moved: no instance serves the old one from a cached session.
      if (rehash) sessions.forgetUser(user.id);
      return tokens;
    },

    getProfile: requireUser,

    /** The account with this address (normalised here), or null. */
    findByEmail: (email: string) => repo.findUserByEmail(db, normaliseEmail(email)),

    /** Throws `invalid_password` (403) unless `password` is the user's; counted and audited like a sign-in (requirePassword). */
    confirmPassword: requirePassword,

    async updateProfile(id: string, changes: { firstName?: string | null | undefined; lastName?: string | null | undefined }): Promise<UserRow> {
      const set: repo.ProfileChanges = {};
      if (changes.firstName !== undefined) set.firstName = cleanName(changes.firstName) ?? null;
      if (changes.lastName !== undefined) set.lastName = cleanName(changes.lastName) ?? null;
      const user = await repo.updateProfile(db, id, set, clock.now());
      if (!user) throw new AppError('user_not_found');
      sessions.forgetUser(id);
      return user;
    },

    /** Changes the password, signs out every other session of the user and voids every emailed link. */
    async changePassword(id: string, currentSessionId: string, currentPassword: string, newPassword: string, meta: ClientMeta): Promise<void> {
      const user = await requireUser(id);
      await requirePassword(user, currentPassword, 'current_password', { action: 'password_change', ...meta });
      assertAcceptablePassword(newPassword, 'new_password');
      if (currentPassword === newPassword) throw new AppError('password_unchanged', undefined, [{ field: 'new_password', message: 'unchanged' }]);
      const hash = await hasher.hash(newPassword);
      await db.transaction(async (tx) => {
        await repo.setPasswordHash(tx, id, hash, clock.now());
        await sessions.revokeOthers(id, currentSessionId, 'password_changed', tx);
        // A reset or email-change link mailed before the change (perhaps to someone who had the old password) is void.
        await deps.tokens.revokeAllOfUser(tx, id);
        await deps.audit.record(tx, { userId: id, type: 'password_changed', details: { session: currentSessionId } });
        await mail.passwordChanged(tx, user);
      });
      sessions.forgetUser(id);
      mail.committed();
    },

    /**
     * Starts an email change: a link to the new address and a notice to the
     * current one. The address changes only when the link is opened. A taken
     * address is a 409, or with `registrationEnumerationProtection` the same 202
     * (no link; the address's owner is told instead).
     */
    async requestEmailChange(id: string, newEmailInput: string, password: string, meta: ClientMeta): Promise<void> {
      const user = await requireUser(id);
      const newEmail = validEmailFrom(newEmailInput, 'new_email');
      await requirePassword(user, password, 'password', { action: 'email_change', ...meta });
      if (newEmail === user.email) throw new AppError('email_unchanged', undefined, [{ field: 'new_email', message: 'unchanged' }]);
      const owner = await repo.findUserByEmail(db, newEmail);
      if (owner && deps.registrationEnumerationProtection !== true) throw new AppError('email_already_registered');
      await db.transaction(async (tx) => {
        if (owner) await mail.emailChangeTaken(tx, user, owner);
        else await mail.emailChange(tx, user, newEmail);
        await deps.audit.record(tx, { userId: id, type: 'email_change_requested', details: { new_email: maskEmail(newEmail) } });
      });
      mail.committed();
    },

    /**
     * An account created by an administrator (or the CLI): no password (an invite
     * lets the user choose one) or one that passes the policy; optionally pre-verified.
     * Runs in the caller's transaction; roles are the caller's business.
     */
    async createByAdmin(tx: Database, input: Omit<Registration, 'password'> & { password: string | null; emailVerified: boolean }): Promise<UserRow> {
      const email = validEmailFrom(input.email);
      if (input.password !== null) assertAcceptablePassword(input.password, 'password');
      const passwordHash = input.password === null ? null : await hasher.hash(input.password);
      const now = clock.now();
      const user = await repo.insertUser(tx, {
        email,
        passwordHash,
        firstName: cleanName(input.firstName) ?? null,
        lastName: cleanName(input.lastName) ?? null,
        now,
        emailVerifiedAt: input.emailVerified ? now : null,
      });
      if (!user) throw new AppError('email_already_registered');
      return user;
    },

    /**
     * The account of an address that just proved itself by an emailed sign-in code or link, in `tx`:
     * a new, confirmed account without a password when none has the address (given its default
     * role). An unconfirmed account is confirmed now; a password it had (set by whoever registered
     * the address, never proven to be its owner's) is dropped and its sessions end, so an account
     * pre-registered by someone else does not keep their way in. Null when the address was taken by
     * a registration in the meantime (sign in again).
     */
    async accountOfProvenAddress(tx: Database, email: string): Promise<{ user: UserRow; created: boolean } | null> {
      const now = clock.now();
      const existing = await repo.findUserByEmail(tx, email);
      if (!existing) {
        const created = await repo.insertUser(tx, { email, passwordHash: null, firstName: null, lastName: null, now, emailVerifiedAt: now });
        if (!created) return null;
        await deps.assignDefaultRole(tx, created.id);
        return { user: created, created: true };
      }
      if (existing.emailVerifiedAt) return { user: existing, created: false };
      const confirmed = await repo.confirmBySignIn(tx, existing.id, email, now);
      if (!confirmed) return null;
      sessions.forgetUser(existing.id);
      if (existing.passwordHash !== null) await sessions.revokeAll(existing.id, 'address_proven', tx);
      return { user: confirmed, created: false };
    },

    search: (q: repo.UserSearch) => repo.searchUsers(db, q),

    /** Disables (ending every session and voiding every emailed link at once) or enables an account. */
    async setDisabled(tx: Database, id: string, disabled: boolean): Promise<UserRow> {
      const user = await repo.setDisabled(tx, id, disabled ? clock.now() : null, clock.now());
      if (!user) throw new AppError('user_not_found');
      if (disabled) await sessions.endEverywhere(id, 'disabled_by_admin', tx);
      else sessions.forgetUser(id);
      return user;
    },

    async removeByAdmin(tx: Database, id: string): Promise<void> {
      // Ended first, so that the clients the user signed in to hear of it (back-channel logout); the rows go with the user.
      await sessions.revokeAll(id, 'account_deleted', tx);
      if (!(await repo.deleteUser(tx, id))) throw new AppError('user_not_found');
      sessions.forgetUser(id);
    },

    async deleteAccount(id: string, password: string, meta: ClientMeta): Promise<void> {
      const user = await requireUser(id);
      await requirePassword(user, password, 'password', { action: 'account_delete', ...meta });
      // Like the admin API: the last enabled administrator does not go (the RBAC lock serialises it with demotions).
      await db.transaction(async (tx) => {
        await deps.keepAnAdmin?.(tx, id);
        await sessions.revokeAll(id, 'account_deleted', tx);
        await repo.deleteUser(tx, id);
      });
      sessions.forgetUser(id);
    },
  };
}
