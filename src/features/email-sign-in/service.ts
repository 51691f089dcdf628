import { createHmac, randomInt, timingSafeEqual } from 'node:crypto';
import type { EmailSignInConfig } from '../../config/index.js';
import { AppError, OAuthError } from '../../errors.js';
import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import type { ServiceMetrics } from '../../infra/metrics.js';
import { newOpaqueToken, sha256Hex } from '../../infra/opaque-token.js';
import type { AccountMail } from '../accounts/account-mail.js';
import { validEmailFrom } from '../accounts/email.js';
import { maskEmail, type AccountService, type SecondFactor } from '../accounts/service.js';
import type { SignInGuard } from '../accounts/sign-in-guard.js';
import type { UserRow } from '../accounts/tables.js';
import type { AuditService } from '../audit/service.js';
import type { ClientMeta, IssuingClient, SessionService, TokenResponse } from '../sessions/service.js';
import * as repo from './repo.js';

/** The token-endpoint grant of an emailed code (and of the link's token). */
export const EMAIL_CODE_GRANT = 'urn:tessera:params:oauth:grant-type:email-code';

/**
 * RFC 8176 `amr` of a sign-in by an emailed code or link: `mca` (multiple-channel authentication:
 * a secret delivered over a second channel, the mailbox). Deliberately not `otp`, which Tessera's
 * guards (`requireAmr('otp')`) read as a code of the user's authenticator app, a second factor.
 */
export const EMAIL_AMR = ['mca'];

export interface EmailSignInDeps {
  db: Database;
  clock: Clock;
  settings: EmailSignInConfig;
  /** Keys the HMAC of stored codes (32 bytes, kept secret): a 6-digit code has too few values for a plain hash. */
  codeKey: Buffer;
  accounts: Pick<AccountService, 'findByEmail' | 'accountOfProvenAddress'>;
  sessions: Pick<SessionService, 'start'>;
  mail: Pick<AccountMail, 'emailSignIn' | 'allowed' | 'committed'>;
  audit: Pick<AuditService, 'record'>;
  /** Unverified-password sign-ins' identities (social): dropped once the address is proven. */
  identities?: { addressProven(tx: Database, userId: string): Promise<string[]> };
  secondFactor: SecondFactor;
  /** The per-address (and per-IP) sign-in counters of passwords, which codes count against too. */
  guard?: Pick<SignInGuard, 'reserve' | 'succeeded'>;
  metrics: Pick<ServiceMetrics, 'signIns'>;
}

/** Expired codes are deleted with a new request, at most this often per process. */
const PURGE_EVERY_MS = 60 * 1000;

const invalidCode = () => new OAuthError('invalid_grant', 'The code is wrong, expired or already used; ask for a new one.');

export type EmailSignInService = ReturnType<typeof createEmailSignInService>;

export function createEmailSignInService(deps: EmailSignInDeps) {
  const { db, clock, settings, audit } = deps;
  const hashCode = (email: string, code: string) => createHmac('sha256', deps.codeKey).update(`${email}\n${code}`).digest('hex');
  let lastPurge = 0;
  const newCode = () => String(randomInt(0, 10 ** settings.codeLength)).padStart(settings.codeLength, '0');

  function assertEnabled(): void {
    if (!settings.enabled) throw new AppError('email_sign_in_disabled');
  }

  /** Opens the session of a proven address (creating or confirming its account); `method`: what proved it. */
  async function complete(email: string, method: 'email_code' | 'email_link', meta: ClientMeta, client: IssuingClient | null): Promise<TokenResponse> {
    const existing = await deps.accounts.findByEmail(email);
    if (existing?.disabledAt) throw new OAuthError('invalid_grant', 'This account is disabled.');
    // An account with an authenticator app still takes its second step: the mailbox is one factor.
    if (existing?.emailVerifiedAt && (await deps.secondFactor.required(existing.id))) {
      deps.metrics.signIns.inc({ result: 'pending', reason: 'mfa_required' });
      throw await deps.secondFactor.challenge(existing.id, EMAIL_AMR, client);
    }
    const tokens = await db.transaction(async (tx) => {
      const account = await deps.accounts.accountOfProvenAddress(tx, email);
      if (!account) throw invalidCode();
      const user: UserRow = account.user;
      if (account.created) await audit.record(tx, { userId: user.id, type: 'account_created_by_email', ip: meta.ip, userAgent: meta.userAgent });
      else await deps.identities?.addressProven(tx, user.id);
      const issued = await deps.sessions.start(user, EMAIL_AMR, meta, tx, client);
      await audit.record(tx, {
        userId: user.id,
        type: 'sign_in',
        ip: meta.ip,
        userAgent: meta.userAgent,
        details: { method, ...(client ? { client: client.clientId } : {}) },
      });
      return issued;
    });
    deps.metrics.signIns.inc({ result: 'success', reason: 'ok' });
    return tokens;
  }

  return {
    enabled: () => settings.enabled,

    /**
     * Mails a new code and link to the address (replacing any earlier one), whether or not it has an
     * account (the first sign-in creates it): the same reads, writes and outbox row either way, and
     * the caller answers the same 202. Silently capped per address like the other resends.
     * `hostedRequest`: the handle of the hosted page's pending request it was asked from, put in the
     * emailed link (useless without that browser's cookie), whose page then continues that sign-in.
     */
    async request(input: string, hostedRequest: string | null = null): Promise<void> {
      assertEnabled();
      const email = validEmailFrom(input);
      const code = newCode();
      const link = newOpaqueToken();
      const now = clock.now();
      if (now.getTime() - lastPurge >= PURGE_EVERY_MS) {
        lastPurge = now.getTime();
        await repo.purgeExpired(db, now);
      }
      // The account is read for both kinds of address, so the work (and time) is the same.
      const account = await deps.accounts.findByEmail(email);
      const sent = await db.transaction(async (tx) => {
        if (!(await deps.mail.allowed(tx, email, 'email_sign_in'))) return false;
        await repo.replaceCode(tx, {
          email,
          codeHash: hashCode(email, code),
          linkHash: sha256Hex(link),
          now,
          expiresAt: new Date(now.getTime() + settings.ttlSeconds * 1000),
        });
        await deps.mail.emailSignIn(tx, email, account, code, link, settings.ttlSeconds, hostedRequest);
        return true;
      });
      if (sent) deps.mail.committed();
    },

    /**
     * The grant: the address and its code. The check is counted before the code is compared (per
     * code: EMAIL_SIGN_IN_MAX_ATTEMPTS, in one UPDATE so parallel guesses cannot outrun it; per
     * address and IP: the password sign-in counters), and the code is used once.
     */
    async signInWithCode(emailInput: string, code: string, meta: ClientMeta, client: IssuingClient | null = null): Promise<TokenResponse> {
      if (!settings.enabled) throw new OAuthError('unsupported_grant_type', 'Sign-in by email code is turned off on this server (EMAIL_SIGN_IN_ENABLED).');
      const email = validEmailFrom(emailInput);
      const reserved = await deps.guard?.reserve(email, meta.ip);
      const row = await repo.reserveAttempt(db, email, clock.now(), settings.maxAttempts);
      const given = hashCode(email, code.replace(/\s/g, ''));
      const right = row !== null && timingSafeEqual(Buffer.from(given), Buffer.from(row.codeHash));
      if (!right || !(await repo.useCode(db, email, given, clock.now()))) {
        deps.metrics.signIns.inc({ result: 'failure', reason: 'invalid_code' });
        const user = await deps.accounts.findByEmail(email);
        await audit.record(db, {
          userId: user?.id ?? null,
          type: 'email_code_failed',
          ip: meta.ip,
          userAgent: meta.userAgent,
          details: { attempts: row?.attempts ?? settings.maxAttempts, ...(user ? {} : { email: maskEmail(email) }) },
        });
        throw invalidCode();
      }
      await deps.guard?.succeeded(email, meta.ip, reserved);
      return complete(email, 'email_code', meta, client);
    },

    /**
     * The emailed link's token (256 random bits), used once: the same sign-in as the code. `grant`: at
     * the token endpoint, whose errors are OAuth's (`unsupported_grant_type`, `invalid_grant`).
     */
    async signInWithLink(token: string, meta: ClientMeta, client: IssuingClient | null = null, grant = false): Promise<TokenResponse> {
      if (!settings.enabled && grant)
        throw new OAuthError('unsupported_grant_type', 'Sign-in by email code is turned off on this server (EMAIL_SIGN_IN_ENABLED).');
      assertEnabled();
      const email = token.length <= 100 ? await repo.useLink(db, sha256Hex(token), clock.now()) : null;
      if (!email) throw grant ? invalidCode() : new AppError('email_token_invalid');
      return complete(email, 'email_link', meta, client);
    },

    /** Whether a link is live, for its page (GET changes nothing). */
    async linkIsLive(token: string): Promise<boolean> {
      assertEnabled();
      return token.length <= 100 && repo.linkIsLive(db, sha256Hex(token), clock.now());
    },
  };
}
