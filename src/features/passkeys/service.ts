import type {
  AuthenticationResponseJSON,
  AuthenticatorTransport,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { AppError } from '../../errors.js';
import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import type { ServiceMetrics } from '../../infra/metrics.js';
import { newOpaqueToken, sha256Hex } from '../../infra/opaque-token.js';
import {
  decodeClientDataJSON,
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from './webauthn-library.js';
import type { AccountMail } from '../accounts/account-mail.js';
import { normaliseEmail } from '../accounts/email.js';
import type { Reauth, SecondFactor } from '../accounts/service.js';
import type { UserRow } from '../accounts/tables.js';
import type { AuditService } from '../audit/service.js';
import type { ClientMeta, IssuingClient, SessionService, TokenResponse } from '../sessions/service.js';
import {
  LOOKALIKE_TRANSPORTS,
  deviceType,
  encodedUserHandleOf,
  lookalikeCredentialId,
  passkeyAmr,
  passkeyView,
  userHandleOf,
  type PasskeySettings,
  type PasskeyView,
} from './ceremony.js';
import * as repo from './repo.js';
import type { PasskeyRow } from './tables.js';

/** What passkeys need from the accounts feature. */
export interface PasskeyAccounts {
  getProfile(id: string): Promise<UserRow>;
  findByEmail(email: string): Promise<UserRow | null>;
  confirmPassword(user: UserRow, password: string, field: string, reauth: Reauth): Promise<void>;
}

export interface PasskeyServiceDeps {
  db: Database;
  clock: Clock;
  settings: PasskeySettings;
  /** How recent a sign-in must be to add a passkey without the password (MFA_REAUTH_WINDOW). */
  reauthSeconds: number;
  accounts: PasskeyAccounts;
  sessions: Pick<SessionService, 'start'>;
  audit: Pick<AuditService, 'record'>;
  mail: Pick<AccountMail, 'passkeyNotice' | 'committed'>;
  /** A sign-in without user verification of an account with TOTP still takes the second step. */
  secondFactor: SecondFactor;
  /** The third-party identities linked to the account, read in `tx` (a passkey is not the last way to sign in while one is). */
  identityCount: (tx: Database, userId: string) => Promise<number>;
  /** Derives the look-alike credential ids of addresses without passkeys (32 bytes, kept secret). */
  lookalikeSecret: Buffer;
  metrics: Pick<ServiceMetrics, 'signIns'>;
}

export interface SignInOptions {
  /** Opaque: send it back with the response (POST /auth/passkey/verify). */
  flow_id: string;
  options: PublicKeyCredentialRequestOptionsJSON;
}

const NAME_MAX = 64;
/** Expired challenges are deleted with a new one, at most this often per process (not a DELETE per options request). */
const PURGE_EVERY_MS = 60 * 1000;
const NO_USER = '00000000-0000-0000-0000-000000000000';

/** The challenge a response answers (from its clientDataJSON), or null when unreadable. */
async function challengeOf(clientDataJSON: string): Promise<string | null> {
  try {
    const challenge = (await decodeClientDataJSON(clientDataJSON)).challenge;
    return typeof challenge === 'string' && challenge.length <= 512 ? challenge : null;
  } catch {
    // Not base64url JSON: the response is refused as invalid.
    return null;
  }
}

const fromBase64Url = (v: string) => new Uint8Array(Buffer.from(v, 'base64url'));

/**
 * The stored hash of a sign-in flow. `binding`: what the flow is bound to besides its id (the hosted
 * page's pending request and browser): the flow id then finishes only a sign-in bound the same way.
 */
const flowHashOf = (flowId: string, binding: string | null) => sha256Hex(binding === null ? flowId : `${binding}\n${flowId}`);

export type PasskeyService = ReturnType<typeof createPasskeyService>;

export function createPasskeyService(deps: PasskeyServiceDeps) {
  const { db, clock, settings, audit, mail } = deps;
  const requireUv = settings.userVerification === 'required';
  const expiry = (now: Date) => new Date(now.getTime() + settings.challengeSeconds * 1000);
  let lastPurge = 0;

  /** Stores a challenge; every minute or so, first deletes the expired ones (a replay of one is refused either way). */
  async function storeChallenge(c: Omit<Parameters<typeof repo.insertChallenge>[1], 'now' | 'expiresAt'>): Promise<void> {
    const now = clock.now();
    if (now.getTime() - lastPurge >= PURGE_EVERY_MS) {
      lastPurge = now.getTime();
      await repo.purgeExpiredChallenges(db, now);
    }
    await repo.insertChallenge(db, { ...c, now, expiresAt: expiry(now) });
  }

  async function refuseSignIn(userId: string | null, reason: string, meta: ClientMeta, passkeyId?: string): Promise<never> {
    deps.metrics.signIns.inc({ result: 'failure', reason: 'passkey' });
    await audit.record(db, {
      userId,
      type: 'passkey_sign_in_failed',
      ip: meta.ip,
      userAgent: meta.userAgent,
      details: { reason, ...(passkeyId ? { passkey: passkeyId } : {}) },
    });
    throw new AppError(reason === 'user_verification' ? 'passkey_user_verification_required' : 'passkey_invalid');
  }

  /**
   * Verifies an assertion against a stored passkey and records its use: the signature (by the library,
   * against a counter of 0, so the counter policy below is ours), the user handle, user verification,
   * then the counter and backup eligibility (a clone is refused and audited). Returns what it proved.
   */
  async function verifyAssertion(response: AuthenticationResponseJSON, challengeHash: string, meta: ClientMeta, onlyUserId?: string) {
    const passkey = await repo.findByCredentialId(db, response.id);
    if (!passkey || (onlyUserId !== undefined && passkey.userId !== onlyUserId)) return refuseSignIn(onlyUserId ?? null, 'unknown_credential', meta);
    const handle = response.response.userHandle;
    if (handle && handle !== encodedUserHandleOf(passkey.userId)) return refuseSignIn(passkey.userId, 'invalid', meta, passkey.id);
    let info;
    try {
      const result = await verifyAuthenticationResponse({
        response,
        expectedChallenge: (c) => sha256Hex(c) === challengeHash,
        expectedOrigin: settings.origins,
        expectedRPID: settings.rpId,
        credential: {
          id: passkey.credentialId,
          publicKey: fromBase64Url(passkey.publicKey),
          counter: 0,
          transports: passkey.transports,
        },
        requireUserVerification: false,
      });
      if (!result.verified) return refuseSignIn(passkey.userId, 'invalid', meta, passkey.id);
      info = result.authenticationInfo;
    } catch {
      // The library throws on every malformed or mismatching response (origin, RP ID, signature): one answer for all.
      return refuseSignIn(passkey.userId, 'invalid', meta, passkey.id);
    }
    if (requireUv && !info.userVerified) return refuseSignIn(passkey.userId, 'user_verification', meta, passkey.id);
    const backupEligible = info.credentialDeviceType === 'multiDevice';
    const stored = passkey.signCount;
    if (((info.newCounter > 0 || stored > 0) && info.newCounter <= stored) || backupEligible !== passkey.backupEligible) {
      await audit.record(db, {
        userId: passkey.userId,
        type: 'passkey_clone_suspected',
        ip: meta.ip,
        userAgent: meta.userAgent,
        details: { passkey: passkey.id, stored_count: stored, count: info.newCounter, backup_eligible: backupEligible },
      });
      return refuseSignIn(passkey.userId, 'invalid', meta, passkey.id);
    }
    return { passkey, userVerified: info.userVerified, newCounter: info.newCounter, backedUp: info.credentialBackedUp };
  }

  return {
    /**
     * The options of a registration (navigator.credentials.create): resident key and user verification
     * preferred, the user's passkeys excluded. Needs `password`, or a sign-in within MFA_REAUTH_WINDOW:
     * a stolen access token alone must not plant a lasting way in.
     */
    async registrationOptions(
      userId: string,
      signedInAt: Date,
      password: string | undefined,
      meta: ClientMeta,
    ): Promise<PublicKeyCredentialCreationOptionsJSON> {
      const user = await deps.accounts.getProfile(userId);
      if (password !== undefined) await deps.accounts.confirmPassword(user, password, 'password', { action: 'passkey_add', ...meta });
      else if (clock.now().getTime() - signedInAt.getTime() > deps.reauthSeconds * 1000) throw new AppError('reauthentication_required');
      const existing = await repo.listPasskeys(db, userId);
      const options = await generateRegistrationOptions({
        rpName: settings.rpName,
        rpID: settings.rpId,
        userName: user.email,
        userID: userHandleOf(user.id),
        userDisplayName: [user.firstName, user.lastName].filter(Boolean).join(' ') || user.email,
        timeout: settings.challengeSeconds * 1000,
        attestationType: 'none',
        excludeCredentials: existing.map((p) => ({ id: p.credentialId, transports: p.transports as AuthenticatorTransport[] })),
        authenticatorSelection: { residentKey: 'preferred', userVerification: settings.userVerification },
      });
      await storeChallenge({ purpose: 'register', challengeHash: sha256Hex(options.challenge), flowHash: null, userId });
      return options;
    },

    /** Verifies a registration response to the user's own live challenge and stores the passkey (audited, announced by email). */
    async register(userId: string, response: RegistrationResponseJSON, name: string | undefined, meta: ClientMeta): Promise<PasskeyView> {
      const user = await deps.accounts.getProfile(userId);
      const challenge = await challengeOf(response.response.clientDataJSON);
      const row = challenge ? await repo.consumeChallenge(db, { purpose: 'register', challengeHash: sha256Hex(challenge), userId }, clock.now()) : null;
      if (!row) throw new AppError('passkey_challenge_invalid');
      let info;
      try {
        const result = await verifyRegistrationResponse({
          response,
          expectedChallenge: (c) => sha256Hex(c) === row.challengeHash,
          expectedOrigin: settings.origins,
          expectedRPID: settings.rpId,
          requireUserVerification: requireUv,
        });
        if (!result.verified) throw new AppError('passkey_invalid');
        info = result.registrationInfo;
      } catch (err) {
        if (err instanceof AppError) throw err;
        // Every malformed or mismatching response (origin, RP ID, attestation, no UV when required) is one answer.
        throw new AppError(requireUv && /user verification/i.test((err as Error).message) ? 'passkey_user_verification_required' : 'passkey_invalid');
      }
      const label = name?.trim().slice(0, NAME_MAX) || 'Passkey';
      const created = await db.transaction(async (tx) => {
        const passkey = await repo.insertPasskey(tx, {
          userId,
          credentialId: info.credential.id,
          publicKey: Buffer.from(info.credential.publicKey).toString('base64url'),
          signCount: info.credential.counter,
          transports: info.credential.transports ?? response.response.transports ?? [],
          backupEligible: info.credentialDeviceType === 'multiDevice',
          backedUp: info.credentialBackedUp,
          aaguid: info.aaguid,
          name: label,
          createdAt: clock.now(),
        });
        if (!passkey) throw new AppError('passkey_already_registered');
        await audit.record(tx, {
          userId,
          type: 'passkey_added',
          ip: meta.ip,
          userAgent: meta.userAgent,
          details: { passkey: passkey.id, name: label, device_type: deviceType(passkey) },
        });
        await mail.passkeyNotice(tx, user, 'passkey_added', label);
        return passkey;
      });
      mail.committed();
      return passkeyView(created);
    },

    list: async (userId: string) => (await repo.listPasskeys(db, userId)).map(passkeyView),

    async rename(userId: string, id: string, name: string, meta: ClientMeta): Promise<PasskeyView> {
      const label = name.trim().slice(0, NAME_MAX);
      if (!label) throw new AppError('validation_failed', undefined, [{ field: 'name', message: 'is empty' }]);
      return db.transaction(async (tx) => {
        const passkey = await repo.renamePasskey(tx, userId, id, label);
        if (!passkey) throw new AppError('passkey_not_found');
        await audit.record(tx, { userId, type: 'passkey_renamed', ip: meta.ip, userAgent: meta.userAgent, details: { passkey: id, name: label } });
        return passkeyView(passkey);
      });
    },

    /** Deletes one of the user's passkeys, unless it is the last way to sign in (no password, no other passkey, no linked identity). */
    async remove(userId: string, id: string, meta: ClientMeta): Promise<void> {
      const user = await deps.accounts.getProfile(userId);
      await db.transaction(async (tx) => {
        // Locked: two parallel deletions of an account's last two passkeys cannot both see "one more left".
        const own = await repo.lockPasskeys(tx, userId);
        const passkey = own.find((p) => p.id === id);
        if (!passkey) throw new AppError('passkey_not_found');
        if (user.passwordHash === null && own.length <= 1 && (await deps.identityCount(tx, userId)) === 0) throw new AppError('last_sign_in_method');
        await repo.deletePasskey(tx, userId, id);
        await audit.record(tx, { userId, type: 'passkey_removed', ip: meta.ip, userAgent: meta.userAgent, details: { passkey: id, name: passkey.name } });
        await mail.passkeyNotice(tx, user, 'passkey_removed', passkey.name);
      });
      mail.committed();
    },

    /** The options of a passkey as the second step of a sign-in (after a password): the user's passkeys, the challenge bound to the user. */
    async secondFactorOptions(userId: string): Promise<PublicKeyCredentialRequestOptionsJSON> {
      const own = await repo.listPasskeys(db, userId);
      const options = await generateAuthenticationOptions({
        rpID: settings.rpId,
        timeout: settings.challengeSeconds * 1000,
        userVerification: settings.userVerification,
        allowCredentials: own.map((p) => ({ id: p.credentialId, transports: p.transports as AuthenticatorTransport[] })),
      });
      await storeChallenge({ purpose: 'second_factor', challengeHash: sha256Hex(options.challenge), flowHash: null, userId });
      return options;
    },

    /** Verifies the user's own passkey for the second step (its challenge used up first); the `amr` it adds. */
    async verifySecondFactor(userId: string, response: AuthenticationResponseJSON, meta: ClientMeta): Promise<{ amr: string[]; passkeyId: string }> {
      const challenge = await challengeOf(response.response.clientDataJSON);
      const row = challenge ? await repo.consumeChallenge(db, { purpose: 'second_factor', challengeHash: sha256Hex(challenge), userId }, clock.now()) : null;
      if (!row) throw new AppError('passkey_challenge_invalid');
      const proof = await verifyAssertion(response, row.challengeHash, meta, userId);
      if (!(await recordUse(db, proof.passkey, proof.newCounter, proof.backedUp))) return refuseSignIn(userId, 'concurrent_use', meta, proof.passkey.id);
      return { amr: passkeyAmr(proof.passkey.backupEligible, proof.userVerified), passkeyId: proof.passkey.id };
    },

    /** How many passkeys the user has, locked in `tx` until it ends (another feature's "last way to sign in" check). */
    lockCount: async (tx: Database, userId: string) => (await repo.lockPasskeys(tx, userId)).length,

    /** Whether the user has a passkey. */
    has: async (userId: string) => (await repo.countPasskeys(db, userId)) > 0,

    /**
     * The options of a sign-in. Without `email`: discoverable credentials (username-less, conditional
     * UI). With it: the address's passkeys as allowCredentials; an address without passkeys (or
     * without an account) gets a look-alike credential id, stable per address, after the same reads.
     * `binding`: the flow finishes only with the same binding (the hosted page's request and browser).
     */
    async signInOptions(email: string | undefined, binding: string | null = null): Promise<SignInOptions> {
      let allow: Array<{ id: string; transports?: AuthenticatorTransport[] }> | undefined;
      if (email !== undefined) {
        const user = await deps.accounts.findByEmail(email);
        const own = await repo.listPasskeys(db, user?.id ?? NO_USER);
        allow = own.length
          ? own.map((p) => ({ id: p.credentialId, transports: p.transports as AuthenticatorTransport[] }))
          : [{ id: lookalikeCredentialId(deps.lookalikeSecret, normaliseEmail(email)), transports: LOOKALIKE_TRANSPORTS }];
      }
      const options = await generateAuthenticationOptions({
        rpID: settings.rpId,
        timeout: settings.challengeSeconds * 1000,
        userVerification: settings.userVerification,
        ...(allow ? { allowCredentials: allow } : {}),
      });
      const flowId = newOpaqueToken();
      await storeChallenge({ purpose: 'sign_in', challengeHash: sha256Hex(options.challenge), flowHash: flowHashOf(flowId, binding), userId: null });
      return { flow_id: flowId, options };
    },

    /**
     * Completes a sign-in: the flow's challenge is used up first (a replayed assertion or a reused
     * challenge finds nothing), then the assertion is verified and a session opened with `amr`
     * hwk|swk (+ user). Without user verification, an account with TOTP still takes its second step.
     */
    async signIn(
      flowId: string,
      response: AuthenticationResponseJSON,
      meta: ClientMeta,
      client: IssuingClient | null = null,
      binding: string | null = null,
    ): Promise<TokenResponse> {
      const row = flowId.length <= 100 ? await repo.consumeChallenge(db, { purpose: 'sign_in', flowHash: flowHashOf(flowId, binding) }, clock.now()) : null;
      if (!row) throw new AppError('passkey_challenge_invalid');
      const proof = await verifyAssertion(response, row.challengeHash, meta);
      const user = await deps.accounts.getProfile(proof.passkey.userId);
      if (user.disabledAt) return refuseSignIn(user.id, 'disabled', meta, proof.passkey.id);
      const amr = passkeyAmr(proof.passkey.backupEligible, proof.userVerified);
      const used = await db.transaction(async (tx) => recordUse(tx, proof.passkey, proof.newCounter, proof.backedUp));
      if (!used) return refuseSignIn(user.id, 'concurrent_use', meta, proof.passkey.id);
      // A verified user is a second factor in itself (something you have + something you are or know).
      if (!proof.userVerified && (await deps.secondFactor.required(user.id))) {
        deps.metrics.signIns.inc({ result: 'pending', reason: 'mfa_required' });
        throw await deps.secondFactor.challenge(user.id, amr, client);
      }
      deps.metrics.signIns.inc({ result: 'success', reason: 'ok' });
      return db.transaction(async (tx) => {
        const tokens = await deps.sessions.start(user, amr, meta, tx, client);
        await audit.record(tx, {
          userId: user.id,
          type: 'sign_in',
          ip: meta.ip,
          userAgent: meta.userAgent,
          details: { method: 'passkey', passkey: proof.passkey.id, amr: amr.join(' '), ...(client ? { client: client.clientId } : {}) },
        });
        return tokens;
      });
    },
  };

  function recordUse(tx: Database, passkey: PasskeyRow, newCounter: number, backedUp: boolean): Promise<boolean> {
    return repo.recordUse(tx, passkey.id, passkey.signCount, { signCount: newCounter, backedUp, now: clock.now() });
  }
}
