/**
 * Third-party sign-in, the account side (docs/social-sign-in.md): what a verified provider
 * profile means for Tessera's accounts. Providers say who someone is; this
 * decides whom to sign in, when to link, when to create, and when to refuse.
 *
 * - A known (provider, subject) signs in its user.
 * - A new identity links to the existing account with the same email only when
 *   the provider asserts the address verified, the provider is trusted for
 *   linking (`emailLinking`), and the account's own address is verified (no
 *   pre-account takeover). Otherwise, when that address is taken, the sign-in
 *   is refused (409 `identity_not_linked`): never a link, never a duplicate.
 * - Else a new account: the provider's email (verified only if it says so), no
 *   password, its names, the default role. With REQUIRE_EMAIL_VERIFICATION an
 *   address the provider does not vouch for is refused before anything is
 *   written (403 `email_not_verified`): it must never hold an account that the
 *   address's owner could later claim by reset or confirmation.
 * - An identity records whether its claim on the account is `proven`; proving
 *   the address (reset, confirmation: `addressProven`) deletes those that are
 *   not and ends the sessions of third-party sign-ins.
 * Sign-in methods are recorded as amr `["fed"]` (a federated sign-in; the
 * provider is in the audit trail), `["fed", "otp"]` after MFA.
 */
import { AppError, OAuthError } from '../../errors.js';
import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import type { AccountMail } from '../accounts/account-mail.js';
import { canonicalEmail } from '../accounts/email.js';
import type { AccountService, SecondFactor } from '../accounts/service.js';
import type { UserRow } from '../accounts/tables.js';
import type { AuditService } from '../audit/service.js';
import type { ClientMeta, SessionService, TokenResponse } from '../sessions/service.js';
import { ProviderError, type NativeToken, type Provider, type ProviderProfile } from './provider.js';
import type { ProviderRegistry } from './registry.js';
import * as repo from './repo.js';
import type { IdentityRow } from './tables.js';

/** The amr of a sign-in through a third-party provider (MFA appends "otp"). */
const FEDERATED = 'fed';
export const FEDERATED_AMR = [FEDERATED];

export interface SocialServiceDeps {
  db: Database;
  clock: Clock;
  registry: ProviderRegistry;
  accounts: Pick<AccountService, 'getProfile' | 'findByEmail' | 'createByAdmin'>;
  sessions: Pick<SessionService, 'start' | 'revokeByMethod'>;
  mail: Pick<AccountMail, 'confirmation' | 'committed'>;
  audit: Pick<AuditService, 'record'>;
  assignDefaultRole: (tx: Database, userId: string) => Promise<void>;
  secondFactor: SecondFactor;
  requireEmailVerification: boolean;
  /** How recent a sign-in must be to connect a provider to the account (MFA_REAUTH_WINDOW). */
  reauthSeconds: number;
  /**
   * The account's passkeys, locked in `tx` until it ends (features/passkeys): a way to sign in that lets the
   * last provider go. Locked, so a parallel deletion of the last passkey cannot also count on this provider.
   */
  lockPasskeys?: (tx: Database, userId: string) => Promise<number>;
}

/** What happened to the account: signed in a known identity, linked one by email, or created an account. */
type Resolution = 'known' | 'linked' | 'created';

interface Plan {
  kind: Resolution;
  /** The account, except for `created`. */
  user: UserRow | null;
  identity: IdentityRow | null;
  email: string | null;
}

/** A lost race with a concurrent sign-in of the same identity or email: planned again once. */
class Retry extends Error {}

const NAME_MAX = 100;
const cleanName = (v: string | null) => (v ? v.trim().slice(0, NAME_MAX) || null : null);

export type SocialService = ReturnType<typeof createSocialService>;

export function createSocialService(deps: SocialServiceDeps) {
  const { db, clock, registry, accounts, audit } = deps;

  /** A provider's name for people (a provider removed from the configuration keeps its id). */
  const displayName = (id: string) => registry.get(id)?.displayName ?? id;

  function provider(id: string): Provider {
    const p = registry.get(id);
    if (!p) throw new AppError('provider_not_found');
    return p;
  }

  /** Reads what the profile means, without writing. */
  async function plan(p: Provider, profile: ProviderProfile): Promise<Plan> {
    const identity = await repo.findIdentity(db, p.id, profile.subject);
    if (identity) return { kind: 'known', user: await accounts.getProfile(identity.userId), identity, email: null };
    const email = profile.email ? canonicalEmail(profile.email) : null;
    if (!email) {
      throw new AppError(
        'provider_email_missing',
        `${p.displayName} did not share a usable email address; allow access to your email at ${p.displayName}, or sign up with a password.`,
      );
    }
    const existing = await accounts.findByEmail(email);
    if (!existing) {
      // Before any write: an account (and identity) made from an address nobody proved would be claimed later by
      // whoever does prove it (a reset, the confirmation link), with this identity still able to sign in.
      if (deps.requireEmailVerification && !profile.emailVerified) {
        throw new OAuthError(
          'email_not_verified',
          `${p.displayName} does not confirm that ${email} is verified. Verify the address at ${p.displayName} and try again, or sign up with a password.`,
        );
      }
      return { kind: 'created', user: null, identity: null, email };
    }
    const why = !profile.emailVerified
      ? `${p.displayName} does not confirm that this address is verified`
      : !p.emailLinking
        ? `addresses from ${p.displayName} are not trusted to link accounts`
        : !existing.emailVerifiedAt
          ? 'the existing account has not confirmed its address yet'
          : (await repo.findIdentityOfUser(db, existing.id, p.id))
            ? `the account is already connected to another ${p.displayName} account`
            : null;
    if (why) {
      throw new AppError(
        'identity_not_linked',
        `An account with this email already exists and was not connected to ${p.displayName} (${why}). Sign in with your password (or reset it: the reset link confirms your address), then connect ${p.displayName} from your account.`,
      );
    }
    return { kind: 'linked', user: existing, identity: null, email };
  }

  /** Writes the plan in `tx`: the identity (and the account); returns the user. */
  async function apply(tx: Database, p: Provider, profile: ProviderProfile, planned: Plan, meta: ClientMeta): Promise<{ user: UserRow; mailed: boolean }> {
    const now = clock.now();
    const linked = (user: UserRow, via: string) =>
      audit.record(tx, { userId: user.id, type: 'identity_linked', ip: meta.ip, userAgent: meta.userAgent, details: { method: p.id, via } });
    if (planned.kind === 'known') {
      const identity = planned.identity as IdentityRow;
      await repo.touchIdentity(tx, identity.id, profile.email, profile.emailVerified, now);
      return { user: planned.user as UserRow, mailed: false };
    }
    let user = planned.user;
    let mailed = false;
    if (planned.kind === 'created') {
      try {
        user = await accounts.createByAdmin(tx, {
          email: planned.email as string,
          password: null,
          firstName: cleanName(profile.firstName),
          lastName: cleanName(profile.lastName),
          emailVerified: profile.emailVerified,
        });
      } catch (err) {
        if (err instanceof AppError && err.code === 'email_already_registered') throw new Retry();
        throw err;
      }
      await deps.assignDefaultRole(tx, user.id);
      if (!user.emailVerifiedAt) {
        await deps.mail.confirmation(tx, user);
        mailed = true;
      }
    }
    // Proven by the address: linking already needs a verified address of a provider trusted to link by it; an
    // account created by a provider is proven only when that provider is trusted the same way (Facebook is not:
    // its address may have been recycled), so the address's owner's reset or confirmation ends the others.
    const row = await repo.insertIdentity(tx, {
      userId: (user as UserRow).id,
      provider: p.id,
      subject: profile.subject,
      email: profile.email,
      emailVerified: profile.emailVerified,
      proven: profile.emailVerified && p.emailLinking,
      now,
    });
    if (!row) throw new Retry();
    await linked(user as UserRow, planned.kind === 'created' ? 'new_account' : 'email');
    return { user: user as UserRow, mailed };
  }

  /**
   * Resolves the account for a verified profile and runs `then` in the same
   * transaction. A lost race (the same identity or email written concurrently)
   * is planned again once; the second plan sees the winner.
   */
  async function withAccount<T>(
    p: Provider,
    profile: ProviderProfile,
    meta: ClientMeta,
    check: (planned: Plan) => Promise<void>,
    then: (tx: Database, user: UserRow) => Promise<T>,
  ): Promise<{ user: UserRow; result: T }> {
    for (let attempt = 0; ; attempt++) {
      const planned = await plan(p, profile);
      await check(planned);
      try {
        const out = await db.transaction(async (tx) => {
          const { user, mailed } = await apply(tx, p, profile, planned, meta);
          return { user, mailed, result: await then(tx, user) };
        });
        if (out.mailed) deps.mail.committed();
        return { user: out.user, result: out.result };
      } catch (err) {
        if (err instanceof Retry && attempt === 0) continue;
        if (err instanceof Retry) throw new AppError('identity_not_linked');
        throw err;
      }
    }
  }

  const disabled = () => new OAuthError('invalid_grant', 'This account is disabled.');
  const unavailable = () => new AppError('provider_unavailable', undefined, undefined, 5);
  const notVerified = () =>
    new OAuthError(
      'email_not_verified',
      'Confirm your email address before signing in: open the link we emailed you, or ask for a new one at POST /auth/confirm-email/resend.',
    );

  /** A native token's verified profile; a refusal by the provider becomes `refused(message)`, an outage 503. */
  async function verifyNative(p: Provider, token: NativeToken, refused: (message: string) => Error): Promise<ProviderProfile> {
    try {
      return await p.verifyNativeToken(token);
    } catch (err) {
      if (err instanceof ProviderError) throw err.unavailable ? unavailable() : refused(err.message);
      throw err;
    }
  }

  /** Whether this user may get tokens now; throws the OAuth error of the password grant otherwise. */
  async function gate(user: UserRow, amr: string[]): Promise<void> {
    if (user.disabledAt) throw disabled();
    if (deps.requireEmailVerification && !user.emailVerifiedAt) throw notVerified();
    if (await deps.secondFactor.required(user.id)) throw await deps.secondFactor.challenge(user.id, amr);
  }

  /** Opens the session of a federated sign-in in `tx`, with its audit row. */
  async function startSession(tx: Database, user: UserRow, providerId: string, meta: ClientMeta): Promise<TokenResponse> {
    const tokens = await deps.sessions.start(user, FEDERATED_AMR, meta, tx);
    await audit.record(tx, { userId: user.id, type: 'sign_in', ip: meta.ip, userAgent: meta.userAgent, details: { method: providerId } });
    return tokens;
  }

  return {
    provider,
    providers: () => registry.list(),
    gate,
    startSession,

    /** Native sign-in: a token from the provider's SDK → Tessera tokens (or the `mfa_required` / `email_not_verified` answer). */
    async signInWithProviderToken(providerId: string, token: NativeToken, meta: ClientMeta): Promise<TokenResponse> {
      const p = provider(providerId);
      const profile = await verifyNative(p, token, (message) => new OAuthError('invalid_grant', message));
      const state: { blocked: 'mfa' | 'unverified' | null } = { blocked: null };
      const { user, result } = await withAccount(
        p,
        profile,
        meta,
        async (planned) => {
          state.blocked = null;
          const verified = planned.user ? planned.user.emailVerifiedAt !== null : profile.emailVerified;
          if (planned.user?.disabledAt) throw disabled();
          if (deps.requireEmailVerification && !verified) state.blocked = 'unverified';
          else if (planned.user && (await deps.secondFactor.required(planned.user.id))) state.blocked = 'mfa';
        },
        async (tx, u) => (state.blocked ? null : startSession(tx, u, p.id, meta)),
      );
      if (result) return result;
      if (state.blocked === 'unverified') throw notVerified();
      throw await deps.secondFactor.challenge(user.id, FEDERATED_AMR);
    },

    /**
     * Web flow: the account for a profile from the callback, and `then` (the
     * one-time code) in the same transaction. A disabled account is refused.
     */
    async resolveForWeb<T>(p: Provider, profile: ProviderProfile, meta: ClientMeta, then: (tx: Database, user: UserRow) => Promise<T>) {
      return withAccount(
        p,
        profile,
        meta,
        async (planned) => {
          if (planned.user?.disabledAt) throw disabled();
        },
        then,
      );
    },

    async listIdentities(userId: string): Promise<IdentityRow[]> {
      return repo.listIdentities(db, userId);
    },

    /** The providers connected to the account (display names), read in `tx`. */
    async connectedProviders(tx: Database, userId: string): Promise<string[]> {
      return (await repo.listIdentities(tx, userId)).map((i) => displayName(i.provider));
    },

    /**
     * The account's address was just proven by an emailed link (a password reset, a
     * confirmation), in `tx`: every identity whose claim on the account was not proven is
     * deleted, and when one was, every session of a third-party sign-in ends with it
     * (sessions record the method, `amr` "fed", not the identity). Returns the providers removed.
     */
    async addressProven(tx: Database, userId: string): Promise<string[]> {
      const removed = await repo.deleteUnproven(tx, userId);
      if (!removed.length) return [];
      await deps.sessions.revokeByMethod(userId, FEDERATED, 'address_proven', tx);
      for (const i of removed) await audit.record(tx, { userId, type: 'identity_unlinked', details: { method: i.provider, via: 'address_proven' } });
      return removed.map((i) => displayName(i.provider));
    },

    /**
     * Connects a provider to the signed-in account explicitly (a native token of
     * that provider). Needs a sign-in within MFA_REAUTH_WINDOW: a stolen access
     * token must not be able to add its own way in. `created` is false when this
     * identity was already connected to the account.
     */
    async link(
      userId: string,
      signedInAt: Date,
      providerId: string,
      token: NativeToken,
      meta: ClientMeta,
    ): Promise<{ identity: IdentityRow; created: boolean }> {
      const p = provider(providerId);
      if (clock.now().getTime() - signedInAt.getTime() > deps.reauthSeconds * 1000)
        throw new AppError('reauthentication_required', 'Sign in again (recently) to connect a provider.');
      const profile = await verifyNative(p, token, (message) => new AppError('provider_token_invalid', message));
      const owner = await repo.findIdentity(db, p.id, profile.subject);
      if (owner && owner.userId === userId) return { identity: owner, created: false };
      if (owner) throw new AppError('identity_already_linked');
      if (await repo.findIdentityOfUser(db, userId, p.id)) throw new AppError('provider_already_linked');
      // A session proves only that its holder knew a way in (perhaps a stolen password). The connection is proven by
      // the address only when the provider vouches for the account's own, confirmed address and is trusted to link by
      // it; any other connection goes when the address's owner proves it (reset, confirmation), so a password thief's
      // provider does not outlive the owner's reset.
      const account = await accounts.getProfile(userId);
      const vouched = profile.email !== null && profile.emailVerified && p.emailLinking ? canonicalEmail(profile.email) : null;
      const proven = account.emailVerifiedAt !== null && vouched === account.email;
      const identity = await db.transaction(async (tx) => {
        const row = await repo.insertIdentity(tx, {
          userId,
          provider: p.id,
          subject: profile.subject,
          email: profile.email,
          emailVerified: profile.emailVerified,
          proven,
          now: clock.now(),
        });
        if (!row) {
          const again = await repo.findIdentity(tx, p.id, profile.subject);
          throw new AppError(again && again.userId !== userId ? 'identity_already_linked' : 'provider_already_linked');
        }
        await audit.record(tx, { userId, type: 'identity_linked', ip: meta.ip, userAgent: meta.userAgent, details: { method: p.id, via: 'explicit' } });
        return row;
      });
      return { identity, created: true };
    },

    /** Disconnects a provider; refused when it is the account's last way to sign in (no password, no other identity). */
    async unlink(userId: string, providerId: string, meta: ClientMeta): Promise<void> {
      await db.transaction(async (tx) => {
        const user = await repo.lockUser(tx, userId);
        if (!user) throw new AppError('user_not_found');
        if (!(await repo.findIdentityOfUser(tx, userId, providerId))) throw new AppError('identity_not_found');
        // The last way to sign in stays: a password, another provider, or a passkey (locked: see lockPasskeys).
        const passkeys = (await deps.lockPasskeys?.(tx, userId)) ?? 0;
        if (user.passwordHash === null && passkeys === 0 && (await repo.countIdentities(tx, userId)) <= 1) throw new AppError('last_sign_in_method');
        await repo.deleteIdentity(tx, userId, providerId);
        await audit.record(tx, { userId, type: 'identity_unlinked', ip: meta.ip, userAgent: meta.userAgent, details: { method: providerId } });
      });
    },
  };
}
