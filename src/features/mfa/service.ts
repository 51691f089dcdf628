import { generateSecret, generateURI, verify } from 'otplib';
import QRCode from 'qrcode';
import { AppError } from '../../errors.js';
import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import type { SecretBox } from '../../infra/secret-box.js';
import type { AccountMail } from '../accounts/account-mail.js';
import type { Reauth } from '../accounts/service.js';
import type { UserRow } from '../accounts/tables.js';
import type { AuditService } from '../audit/service.js';
import type { ClientMeta, SessionService, TokenResponse } from '../sessions/service.js';
import { sha256Hex } from '../../infra/opaque-token.js';
import { hashRecoveryCode, isTotpCode, newRecoveryCode } from './codes.js';
import * as repo from './repo.js';
import { createSecondFactor } from './second-factor.js';
import type { UserTotpRow } from './tables.js';

export interface MfaSettings {
  issuer: string;
  reauthSeconds: number;
  maxFailures: number;
  failureWindowSeconds: number;
  challengeSeconds: number;
}

/** What MFA needs from the accounts feature. */
export interface MfaAccounts {
  getProfile(id: string): Promise<UserRow>;
  /** Throws `invalid_password` unless `password` is the user's (counted and audited like a sign-in; 429 during a delay). */
  confirmPassword(user: UserRow, password: string, field: string, reauth: Reauth): Promise<void>;
}

export interface MfaDeps {
  db: Database;
  clock: Clock;
  /** Seals TOTP secrets under MFA_ENCRYPTION_KEY. */
  box: SecretBox;
  accounts: MfaAccounts;
  sessions: SessionService;
  audit: AuditService;
  mail: AccountMail;
  settings: MfaSettings;
  /** A passkey as the second step (the passkeys feature); none = TOTP only. */
  passkeys?: PasskeySecondStep;
}

/** What the second step with a passkey needs from the passkeys feature (it provides these). */
export interface PasskeySecondStep {
  has(userId: string): Promise<boolean>;
  /** WebAuthn request options over the user's passkeys, the challenge bound to the user. */
  secondFactorOptions(userId: string): Promise<unknown>;
  /** Verifies an assertion of one of the user's passkeys; throws a catalogue error when it does not verify. */
  verifySecondFactor(userId: string, credential: never, meta: ClientMeta): Promise<{ amr: string[]; passkeyId: string }>;
}

const RECOVERY_CODES = 10;
/** ±1 time step of clock drift (RFC 6238 §5.2). */
const DRIFT_SECONDS = 30;

export type MfaService = ReturnType<typeof createMfaService>;

export function createMfaService(deps: MfaDeps) {
  const { db, clock, box, accounts, sessions, audit, mail, settings } = deps;
  const seconds = () => Math.floor(clock.now().getTime() / 1000);

  function secretOf(row: UserTotpRow): string {
    const secret = box.open(row.sealedSecret);
    // A secret that does not open means MFA_ENCRYPTION_KEY changed: no code can be checked.
    if (!secret) throw new Error('cannot decrypt a TOTP secret: was MFA_ENCRYPTION_KEY changed?');
    return secret;
  }

  /** The time step of a valid code not used before, or null. */
  async function checkTotp(row: UserTotpRow, code: string): Promise<number | null> {
    const epoch = seconds();
    const result = await verify({
      secret: secretOf(row),
      token: code.replace(/\s/g, ''),
      epoch,
      epochTolerance: DRIFT_SECONDS,
      ...(row.lastTimeStep !== null ? { afterTimeStep: row.lastTimeStep } : {}),
    });
    // RFC 6238 time step of the matching code: this period's, plus the drift it matched at.
    return result.valid ? Math.floor(epoch / 30) + result.delta : null;
  }

  function lockedFor(row: UserTotpRow): number {
    if (row.failedAttempts < settings.maxFailures || !row.failureWindowStart) return 0;
    return Math.max(0, row.failureWindowStart.getTime() + settings.failureWindowSeconds * 1000 - clock.now().getTime()) / 1000;
  }

  /**
   * Reserves one code check before the code is looked at: it counts as a
   * failure until the code proves right (a right code clears the count), and
   * once MFA_MAX_FAILURES are counted in the window every check — the right
   * code included — is 429 `too_many_attempts`. One atomic UPDATE, so parallel
   * requests cannot all pass a check before any of them counts. Returns the
   * count with this check.
   */
  async function reserveCheck(userId: string): Promise<number> {
    const now = clock.now();
    const counted = await repo.reserveAttempt(db, userId, now, new Date(now.getTime() - settings.failureWindowSeconds * 1000), settings.maxFailures);
    if (counted !== null) return counted;
    const row = await repo.findTotp(db, userId);
    throw new AppError('too_many_attempts', undefined, undefined, Math.max(1, Math.ceil(row ? lockedFor(row) : settings.failureWindowSeconds)));
  }

  /** A wrong code (already counted by reserveCheck): audits it and tells the user (capped); 429 once the limit is reached. */
  async function failed(user: UserRow, meta: ClientMeta, context: string, attempts: number): Promise<never> {
    await db.transaction(async (tx) => {
      await audit.record(tx, { userId: user.id, type: 'mfa_failed', ip: meta.ip, userAgent: meta.userAgent, details: { context, attempts } });
      // A typo while setting the app up is not news; a wrong code after a right password is (capped like resends).
      if (context !== 'enrolment' && (await mail.allowed(tx, user.email, 'mfa_failed'))) await mail.notice(tx, user, 'mfa_failed');
    });
    mail.committed();
    if (attempts >= settings.maxFailures) throw new AppError('too_many_attempts', undefined, undefined, settings.failureWindowSeconds);
    throw new AppError('invalid_mfa_code', undefined, [{ field: 'code', message: 'invalid' }]);
  }

  /**
   * A TOTP code (a step not used before) or an unused recovery code, used up in
   * `tx` (which also clears the reserved failures); null when wrong: the
   * reservation, made before `tx`, stays as the failure.
   */
  async function proveSecondFactor(tx: Database, userId: string, row: UserTotpRow, code: string): Promise<'totp' | 'recovery_code' | null> {
    if (isTotpCode(code)) {
      const step = await checkTotp(row, code);
      return step !== null && (await repo.acceptTimeStep(tx, userId, step)) ? 'totp' : null;
    }
    if (!(await repo.useRecoveryCode(tx, userId, hashRecoveryCode(code), clock.now()))) return null;
    await repo.releaseAttempts(tx, userId);
    return 'recovery_code';
  }

  async function enabledTotp(userId: string): Promise<UserTotpRow> {
    const row = await repo.findTotp(db, userId);
    if (!row?.enabledAt) throw new AppError('mfa_not_enabled');
    return row;
  }

  async function newRecoveryCodes(tx: Database, userId: string): Promise<string[]> {
    const codes = Array.from({ length: RECOVERY_CODES }, newRecoveryCode);
    await repo.replaceRecoveryCodes(tx, userId, codes.map(hashRecoveryCode), clock.now());
    return codes;
  }

  return {
    async status(userId: string) {
      const row = await repo.findTotp(db, userId);
      return { totp_enabled: Boolean(row?.enabledAt), recovery_codes_remaining: row?.enabledAt ? await repo.countUnusedRecoveryCodes(db, userId) : 0 };
    },

    /**
     * Starts an enrolment: a new secret, its otpauth:// URI and a QR code, not
     * active until a first code is verified. Needs the password, or a sign-in
     * within MFA_REAUTH_WINDOW.
     */
    async startEnrolment(userId: string, signedInAt: Date, password: string | undefined, meta: ClientMeta) {
      const user = await accounts.getProfile(userId);
      if (password !== undefined) await accounts.confirmPassword(user, password, 'password', { action: 'mfa_enrol', ...meta });
      else if (clock.now().getTime() - signedInAt.getTime() > settings.reauthSeconds * 1000) throw new AppError('reauthentication_required');
      const secret = generateSecret();
      if (!(await repo.savePendingTotp(db, userId, box.seal(secret), clock.now()))) throw new AppError('mfa_already_enabled');
      const uri = generateURI({ issuer: settings.issuer, label: user.email, secret });
      const qr = await QRCode.toDataURL(uri, { errorCorrectionLevel: 'M', margin: 2, width: 256 });
      return { secret, otpauth_uri: uri, qr_code: qr };
    },

    /** Turns the factor on with a first code; returns the recovery codes, shown this once. */
    async activate(userId: string, code: string, meta: ClientMeta): Promise<string[]> {
      const user = await accounts.getProfile(userId);
      const row = await repo.findTotp(db, userId);
      if (!row) throw new AppError('mfa_enrolment_not_started');
      if (row.enabledAt) throw new AppError('mfa_already_enabled');
      const attempts = await reserveCheck(userId);
      const step = isTotpCode(code) ? await checkTotp(row, code) : null;
      if (step === null) return failed(user, meta, 'enrolment', attempts);
      const codes = await db.transaction(async (tx) => {
        if (!(await repo.enableTotp(tx, userId, step, clock.now()))) throw new AppError('mfa_already_enabled');
        const fresh = await newRecoveryCodes(tx, userId);
        await audit.record(tx, { userId, type: 'mfa_enabled', ip: meta.ip, userAgent: meta.userAgent, details: { method: 'totp' } });
        await mail.notice(tx, user, 'mfa_enabled');
        return fresh;
      });
      mail.committed();
      return codes;
    },

    /** Turns MFA off: the password and a current code (or a recovery code). */
    async disable(userId: string, password: string, code: string, meta: ClientMeta): Promise<void> {
      const user = await accounts.getProfile(userId);
      const row = await enabledTotp(userId);
      await accounts.confirmPassword(user, password, 'password', { action: 'mfa_disable', ...meta });
      const attempts = await reserveCheck(userId);
      const done = await db.transaction(async (tx) => {
        if (!(await proveSecondFactor(tx, userId, row, code))) return false;
        await repo.deleteTotp(tx, userId);
        await audit.record(tx, { userId, type: 'mfa_disabled', ip: meta.ip, userAgent: meta.userAgent });
        await mail.notice(tx, user, 'mfa_disabled');
        return true;
      });
      if (!done) return failed(user, meta, 'disable', attempts);
      mail.committed();
    },

    /** New recovery codes (the old ones stop working). */
    async regenerateRecoveryCodes(userId: string, password: string, meta: ClientMeta): Promise<string[]> {
      const user = await accounts.getProfile(userId);
      await enabledTotp(userId);
      await accounts.confirmPassword(user, password, 'password', { action: 'mfa_recovery_codes', ...meta });
      const codes = await db.transaction(async (tx) => {
        const fresh = await newRecoveryCodes(tx, userId);
        await audit.record(tx, { userId, type: 'mfa_recovery_codes_regenerated', ip: meta.ip, userAgent: meta.userAgent });
        await mail.notice(tx, user, 'mfa_recovery_codes_regenerated');
        return fresh;
      });
      mail.committed();
      return codes;
    },

    // required(userId) and challenge(userId, amr): the sign-in's second step (second-factor.ts).
    ...createSecondFactor({
      db,
      clock,
      challengeSeconds: settings.challengeSeconds,
      ...(deps.passkeys ? { hasPasskey: (userId: string) => (deps.passkeys as PasskeySecondStep).has(userId) } : {}),
    }),

    /** The second step with a passkey, part 1: the options for navigator.credentials.get() (the mfa_token stays live). */
    async passkeyOptions(mfaToken: string): Promise<unknown> {
      const challenge = mfaToken.length <= 100 ? await repo.findLiveChallenge(db, sha256Hex(mfaToken), clock.now()) : null;
      if (!challenge || !deps.passkeys || !(await deps.passkeys.has(challenge.userId))) throw new AppError('mfa_token_invalid');
      return deps.passkeys.secondFactorOptions(challenge.userId);
    },

    /** The second step with a passkey, part 2: the assertion → the token response, `amr` the first factor's and the passkey's. */
    async completeWithPasskey(mfaToken: string, credential: never, meta: ClientMeta): Promise<TokenResponse> {
      const challenge = mfaToken.length <= 100 ? await repo.findLiveChallenge(db, sha256Hex(mfaToken), clock.now()) : null;
      if (!challenge || !deps.passkeys) throw new AppError('mfa_token_invalid');
      const user = await accounts.getProfile(challenge.userId);
      if (user.disabledAt) throw new AppError('mfa_token_invalid');
      const proof = await deps.passkeys.verifySecondFactor(user.id, credential, meta);
      return db.transaction(async (tx) => {
        if (!(await repo.consumeChallenge(tx, challenge.id, clock.now()))) throw new AppError('mfa_token_invalid');
        await audit.record(tx, {
          userId: user.id,
          type: 'mfa_sign_in',
          ip: meta.ip,
          userAgent: meta.userAgent,
          details: { method: 'passkey', passkey: proof.passkeyId },
        });
        return sessions.start(user, [...challenge.amr, ...proof.amr], meta, tx, challenge.client ?? null);
      });
    },

    /** Completes a sign-in with its mfa_token and a code: the normal token response, `amr` with "otp". */
    async completeSignIn(mfaToken: string, code: string, meta: ClientMeta): Promise<TokenResponse> {
      const challenge = mfaToken.length <= 100 ? await repo.findLiveChallenge(db, sha256Hex(mfaToken), clock.now()) : null;
      if (!challenge) throw new AppError('mfa_token_invalid');
      const user = await accounts.getProfile(challenge.userId);
      const row = await repo.findTotp(db, user.id);
      if (!row?.enabledAt || user.disabledAt) throw new AppError('mfa_token_invalid');
      const attempts = await reserveCheck(user.id);
      const tokens = await db.transaction(async (tx) => {
        const method = await proveSecondFactor(tx, user.id, row, code);
        if (!method) return null;
        if (!(await repo.consumeChallenge(tx, challenge.id, clock.now()))) throw new AppError('mfa_token_invalid');
        await audit.record(tx, { userId: user.id, type: 'mfa_sign_in', ip: meta.ip, userAgent: meta.userAgent, details: { method } });
        return sessions.start(user, [...challenge.amr, 'otp'], meta, tx, challenge.client ?? null);
      });
      return tokens ?? failed(user, meta, 'sign_in', attempts);
    },
  };
}
