/**
 * The interactive part of the OpenID Provider (docs/openid-provider.md): the authorization
 * endpoint and the hosted pages as one list of steps over a pending request kept server-side.
 * No HTTP here: the routes hand in parameters, the browser's CSRF cookie (which the request is
 * bound to) and its browser session, and get back where the browser goes next.
 */
import { createHash } from 'node:crypto';
import { decodeJwt } from 'jose';
import { AppError, OAuthError, type ErrorCode } from '../../errors.js';
import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import { newOpaqueToken, sha256Hex } from '../../infra/opaque-token.js';
import type { AccountService, SecondFactor } from '../accounts/service.js';
import type { AuditService } from '../audit/service.js';
import type { MfaService } from '../mfa/service.js';
import { multiFactorAmr } from '../sessions/amr.js';
import type { ClientMeta, SessionService, TokenResponse } from '../sessions/service.js';
import { readAuthorizationRequest, type AuthorizationError, type AuthorizeClient, type RawParams } from './authorization-request.js';
import type { BrowserSession, BrowserSessions } from './browser-session.js';
import * as repo from './repo.js';
import type { AuthorizationRequestRow } from './tables.js';

const REQUEST_TTL_MS = 10 * 60 * 1000;
const CODE_TTL_MS = 60 * 1000;
/** Ended requests and codes are kept this long (a reused code is still recognised), then purged. */
const KEEP_EXPIRED_MS = 60 * 60 * 1000;
const PURGE_EVERY_MS = 60 * 1000;

export type HostedPage = 'sign-in' | 'sign-up' | 'mfa' | 'consent' | 'select-account';

/** Where the browser goes next. `browser`: a new browser-session cookie value to set. */
export type Outcome = (
  | { kind: 'redirect'; location: string }
  | { kind: 'page'; page: HostedPage; handle: string }
  | { kind: 'error'; code: ErrorCode; message: string }
  | { kind: 'form_error'; page: HostedPage; handle: string; message: string }
  | { kind: 'message'; title: string; message: string; handle: string }
) & { browser?: string };

/** What a hosted page shows. */
export interface PageView {
  handle: string;
  client: { name: string; firstParty: boolean };
  scopes: string[];
  loginHint: string | null;
  /** The account of the browser session (select-account, consent). */
  email: string | null;
  /** Where the page's form may end up (the CSP form-action). */
  redirectUri: string;
}

export interface OidcFlowDeps {
  db: Database;
  clock: Clock;
  issuer: string;
  findClient: (clientId: string) => Promise<AuthorizeClient | null>;
  accounts: Pick<AccountService, 'signInWithPassword' | 'register'>;
  /** REQUIRE_EMAIL_VERIFICATION: a sign-up on the hosted page signs in only once the address is confirmed. */
  requireEmailVerification: boolean;
  mfa: Pick<MfaService, 'completeSignIn'>;
  secondFactor: SecondFactor;
  browserSessions: BrowserSessions;
  /** The third-party web sign-in (features/social web flow): its one-time codes, exchanged here for a browser session. */
  socialCodes?: { exchange(input: { code: string; redirectUri: string; codeVerifier?: string | undefined }, meta: ClientMeta): Promise<TokenResponse> };
  /** Where the web flow sends the browser back to the hosted pages (`/auth/ui/social-return`). */
  socialReturnUrl: string;
  /** A withdrawn consent also ends the client's sessions of that user. */
  sessions: Pick<SessionService, 'revokeUserClient'>;
  audit: Pick<AuditService, 'record'>;
}

const expired = (): Outcome => ({
  kind: 'error',
  code: 'authorization_request_expired',
  message: 'This sign-in has expired, was already completed, or was started in another browser. Go back to the application and start again.',
});

export type OidcFlow = ReturnType<typeof createOidcFlow>;

/**
 * The PKCE verifier of a third-party sign-in started from a hosted page: derived from the request
 * handle and this browser's CSRF cookie, so the handle in the return URL (its `state`) alone does
 * not redeem the code.
 */
export const socialVerifier = (handle: string, browserKey: string) => createHash('sha256').update(`${handle}.${browserKey}`).digest('base64url');
export const s256 = (verifier: string) => createHash('sha256').update(verifier).digest('base64url');

export function createOidcFlow(deps: OidcFlowDeps) {
  const { db, clock, issuer } = deps;
  let lastPurge = Number.NEGATIVE_INFINITY;

  /** The redirect URI with the response parameters, and `iss` (RFC 9207) on every response. */
  function back(redirectUri: string, params: Record<string, string | null>): string {
    const url = new URL(redirectUri);
    for (const [k, v] of Object.entries(params)) if (v !== null) url.searchParams.set(k, v);
    url.searchParams.set('iss', issuer);
    return url.href;
  }

  const failTo = (r: Pick<AuthorizationRequestRow, 'redirectUri' | 'state'>, error: AuthorizationError, description: string): Outcome => ({
    kind: 'redirect',
    location: back(r.redirectUri, { error, error_description: description, state: r.state }),
  });

  /** Ends the request with an error at its redirect_uri (single-use: a request already ended shows the error page). */
  async function finishWith(r: AuthorizationRequestRow, error: AuthorizationError, description: string): Promise<Outcome> {
    if (!(await repo.finishRequest(db, r.id, clock.now()))) return expired();
    return failTo(r, error, description);
  }

  async function load(handle: string, browserKey: string | null): Promise<AuthorizationRequestRow | null> {
    if (!browserKey || handle.length > 100) return null;
    const row = await repo.findLiveRequest(db, sha256Hex(handle), clock.now());
    // Bound to the browser that started it: a handle lifted from a URL is useless elsewhere.
    return row && row.browserHash === sha256Hex(browserKey) ? row : null;
  }

  /** The next step of a request for this browser session: a hosted page, or the end (a code or an error at the redirect_uri). */
  async function proceed(r: AuthorizationRequestRow, handle: string, sso: BrowserSession | null): Promise<Outcome> {
    const client = await deps.findClient(r.clientId);
    // Deleted meanwhile: its redirect URI is no longer a trusted place to send the browser.
    if (!client) return { kind: 'error', code: 'unknown_client', message: 'This application is no longer registered.' };
    const prompt = new Set(r.prompt);
    const none = prompt.has('none');
    const page = (p: HostedPage): Outcome => ({ kind: 'page', page: p, handle });
    const now = clock.now();

    // 1. Authentication: a browser session, fresh enough (max_age) and from this request when prompt=login.
    const signedInHere = sso !== null && r.authenticatedSessionId === sso.sessionId;
    const tooOld = sso !== null && r.maxAge !== null && now.getTime() - sso.authTime.getTime() > r.maxAge * 1000;
    if (!sso || (!signedInHere && (prompt.has('login') || tooOld))) {
      return none ? finishWith(r, 'login_required', 'The user is not signed in (or not recently enough).') : page('sign-in');
    }
    // 2. acr_values=mfa: a second factor in this browser session, asked for now if it has only a password (step-up).
    if (r.requireMfa && !multiFactorAmr(sso.amr)) {
      if (none) return finishWith(r, 'interaction_required', 'A second factor is required.');
      if (!(await deps.secondFactor.required(sso.userId)))
        return finishWith(r, 'unmet_authentication_requirements', 'The account has no second factor (set up an authenticator app first).');
      const challenge = await deps.secondFactor.challenge(sso.userId, sso.amr, null);
      await repo.updateRequest(db, r.id, { mfaToken: String(challenge.extra?.mfa_token) });
      return page('mfa');
    }
    // 3. prompt=select_account: the user confirms the account shown (or signs in with another).
    if (prompt.has('select_account') && !r.accountChosen) return page('select-account');
    // 4. Consent, for third-party clients only: remembered per user and client, asked again for new scopes or prompt=consent.
    if (!client.firstParty && !r.consented) {
      const consent = await repo.findConsent(db, sso.userId, client.clientId);
      const scopes = r.scope.split(' ');
      const covered = consent !== null && scopes.every((s) => consent.scopes.includes(s));
      if (!covered || prompt.has('consent'))
        return none ? finishWith(r, 'consent_required', 'The user has not consented to this application.') : page('consent');
    }
    // 5. The code.
    const code = newOpaqueToken();
    const issued = await db.transaction(async (tx) => {
      if (!(await repo.finishRequest(tx, r.id, now))) return false;
      await repo.insertCode(tx, {
        codeHash: sha256Hex(code),
        clientId: r.clientId,
        redirectUri: r.redirectUri,
        codeChallenge: r.codeChallenge,
        nonce: r.nonce,
        scope: r.scope,
        userId: sso.userId,
        parentSessionId: sso.sessionId,
        authTime: sso.authTime,
        amr: sso.amr,
        createdAt: now,
        expiresAt: new Date(now.getTime() + CODE_TTL_MS),
      });
      return true;
    });
    if (!issued) return expired();
    return { kind: 'redirect', location: back(r.redirectUri, { code, state: r.state }) };
  }

  /** A sign-in (password, or the second step) just opened `tokens`' session: it becomes the browser session, then the request goes on. */
  async function signedIn(r: AuthorizationRequestRow, handle: string, tokens: TokenResponse, previous: BrowserSession | null, meta: ClientMeta) {
    const { sid, sub, amr } = decodeJwt(tokens.access_token) as { sid: string; sub: string; amr?: string[] };
    const method = (amr ?? []).join('+');
    const secret = await deps.browserSessions.establish(sid, sub, previous);
    await repo.updateRequest(db, r.id, { authenticatedSessionId: sid, mfaToken: null });
    await deps.audit.record(db, {
      userId: sub,
      type: 'hosted_sign_in',
      ip: meta.ip,
      userAgent: meta.userAgent,
      details: { client: r.clientId, session: sid, method },
    });
    const sso = await deps.browserSessions.find(secret);
    const fresh = (await repo.findLiveRequest(db, r.id, clock.now())) ?? r;
    return { ...(await proceed(fresh, handle, sso)), browser: secret };
  }

  return {
    /** GET/POST /auth/authorize. */
    async authorize(params: RawParams, browserKey: string, sso: BrowserSession | null): Promise<Outcome> {
      const read = await readAuthorizationRequest(params, deps.findClient);
      if (!read.ok) {
        if ('page' in read) return { kind: 'error', code: read.page, message: read.message };
        return { kind: 'redirect', location: back(read.redirectUri, { error: read.error, error_description: read.description, state: read.state }) };
      }
      const q = read.request;
      const now = clock.now();
      if (now.getTime() - lastPurge >= PURGE_EVERY_MS) {
        lastPurge = now.getTime();
        await repo.purgeExpired(db, new Date(now.getTime() - KEEP_EXPIRED_MS));
      }
      const handle = newOpaqueToken();
      const row: AuthorizationRequestRow = {
        id: sha256Hex(handle),
        clientId: q.clientId,
        redirectUri: q.redirectUri,
        scope: q.scopes.join(' '),
        state: q.state,
        nonce: q.nonce,
        codeChallenge: q.codeChallenge,
        prompt: q.prompt,
        maxAge: q.maxAge,
        loginHint: q.loginHint,
        requireMfa: q.requireMfa,
        browserHash: sha256Hex(browserKey),
        authenticatedSessionId: null,
        mfaToken: null,
        accountChosen: false,
        consented: false,
        createdAt: now,
        expiresAt: new Date(now.getTime() + REQUEST_TTL_MS),
        usedAt: null,
      };
      await repo.insertRequest(db, row);
      return proceed(row, handle, sso);
    },

    /** What a hosted page shows for this request, or null (unknown, ended, expired or another browser's). */
    async view(handle: string, browserKey: string | null, sso: BrowserSession | null): Promise<PageView | null> {
      const r = await load(handle, browserKey);
      const client = r ? await deps.findClient(r.clientId) : null;
      if (!r || !client) return null;
      return {
        handle,
        client: { name: client.name, firstParty: client.firstParty },
        scopes: r.scope.split(' '),
        loginHint: r.loginHint,
        email: sso?.email ?? null,
        redirectUri: r.redirectUri,
      };
    },

    /** The sign-in form: the accounts feature's rules (brute-force guard, disabled accounts, email verification, audit). */
    async signIn(handle: string, browserKey: string | null, sso: BrowserSession | null, email: string, password: string, meta: ClientMeta): Promise<Outcome> {
      const r = await load(handle, browserKey);
      if (!r) return expired();
      const formError = (message: string): Outcome => ({ kind: 'form_error', page: 'sign-in', handle, message });
      let tokens: TokenResponse;
      try {
        tokens = await deps.accounts.signInWithPassword(email, password, meta, null);
      } catch (err) {
        if (err instanceof OAuthError && err.code === 'mfa_required') {
          await repo.updateRequest(db, r.id, { mfaToken: String(err.extra?.mfa_token) });
          return { kind: 'page', page: 'mfa', handle };
        }
        if (err instanceof OAuthError && (err.code === 'invalid_grant' || err.code === 'email_not_verified')) return formError(err.description);
        if (err instanceof AppError && (err.code === 'sign_in_throttled' || err.code === 'rate_limited'))
          return formError(`Too many failed sign-ins: wait ${err.retryAfterSeconds ?? 60} seconds before trying again.`);
        throw err;
      }
      return signedIn(r, handle, tokens, sso, meta);
    },

    /** The sign-up form: the accounts feature's registration (password policy, confirmation email), then a sign-in unless the address must be confirmed first. */
    async signUp(
      handle: string,
      browserKey: string | null,
      sso: BrowserSession | null,
      input: { email: string; password: string; firstName: string | null; lastName: string | null },
      meta: ClientMeta,
    ): Promise<Outcome> {
      const r = await load(handle, browserKey);
      if (!r) return expired();
      try {
        await deps.accounts.register(input);
      } catch (err) {
        if (err instanceof AppError && err.status < 500 && err.status !== 429) return { kind: 'form_error', page: 'sign-up', handle, message: err.message };
        throw err;
      }
      if (deps.requireEmailVerification)
        return {
          kind: 'message',
          handle,
          title: 'Confirm your email address',
          message: 'We sent you a link. Open it to confirm your address, then come back and sign in.',
        };
      return this.signIn(handle, browserKey, sso, input.email, input.password, meta);
    },

    /** Back from a third-party provider (the social web flow's redirect, `state` = the request handle): its code → a browser session. */
    async socialSignIn(
      handle: string,
      browserKey: string | null,
      sso: BrowserSession | null,
      answer: { code?: string | undefined; error?: string | undefined; errorDescription?: string | undefined },
      meta: ClientMeta,
    ): Promise<Outcome> {
      const r = await load(handle, browserKey);
      if (!r || !browserKey || !deps.socialCodes) return expired();
      const formError = (message: string): Outcome => ({ kind: 'form_error', page: 'sign-in', handle, message });
      if (!answer.code) return formError(answer.errorDescription?.slice(0, 300) ?? 'The sign-in with the provider did not complete.');
      let tokens: TokenResponse;
      try {
        tokens = await deps.socialCodes.exchange(
          { code: answer.code, redirectUri: deps.socialReturnUrl, codeVerifier: socialVerifier(handle, browserKey) },
          meta,
        );
      } catch (err) {
        if (err instanceof OAuthError && err.code === 'mfa_required') {
          await repo.updateRequest(db, r.id, { mfaToken: String(err.extra?.mfa_token) });
          return { kind: 'page', page: 'mfa', handle };
        }
        if (err instanceof OAuthError) return formError(err.description);
        if (err instanceof AppError && err.status < 500) return formError(err.message);
        throw err;
      }
      return signedIn(r, handle, tokens, sso, meta);
    },

    /**
     * Another way to sign in on the hosted pages (features/oidc/passwordless.ts: a passkey, an emailed
     * code or link): `signIn` runs only while the request is pending in this browser; its session
     * becomes the browser session (or the second step is asked), then the request goes on. Its
     * other errors are the caller's to show.
     */
    async continueWith(
      handle: string,
      browserKey: string | null,
      sso: BrowserSession | null,
      signIn: () => Promise<TokenResponse>,
      meta: ClientMeta,
    ): Promise<Outcome> {
      const r = await load(handle, browserKey);
      if (!r) return expired();
      let tokens: TokenResponse;
      try {
        tokens = await signIn();
      } catch (err) {
        if (err instanceof OAuthError && err.code === 'mfa_required') {
          await repo.updateRequest(db, r.id, { mfaToken: String(err.extra?.mfa_token) });
          return { kind: 'page', page: 'mfa', handle };
        }
        throw err;
      }
      return signedIn(r, handle, tokens, sso, meta);
    },

    /** The second step: a code from the authenticator app (or a recovery code). */
    async verifyCode(handle: string, browserKey: string | null, sso: BrowserSession | null, code: string, meta: ClientMeta): Promise<Outcome> {
      const r = await load(handle, browserKey);
      if (!r) return expired();
      if (!r.mfaToken) return { kind: 'page', page: 'sign-in', handle };
      let tokens: TokenResponse;
      try {
        tokens = await deps.mfa.completeSignIn(r.mfaToken, code, meta);
      } catch (err) {
        if (err instanceof AppError && err.code === 'invalid_mfa_code')
          return { kind: 'form_error', page: 'mfa', handle, message: 'That code is not valid. Try the current one.' };
        if (err instanceof AppError && err.code === 'too_many_attempts')
          return { kind: 'form_error', page: 'mfa', handle, message: `Too many wrong codes: wait ${err.retryAfterSeconds ?? 60} seconds.` };
        if (err instanceof AppError && err.code === 'mfa_token_invalid') {
          await repo.updateRequest(db, r.id, { mfaToken: null });
          return { kind: 'form_error', page: 'sign-in', handle, message: 'The sign-in step expired: sign in again.' };
        }
        throw err;
      }
      return signedIn(r, handle, tokens, sso, meta);
    },

    /** The consent page's answer; a grant is remembered for the user and client. */
    async consent(handle: string, browserKey: string | null, sso: BrowserSession | null, allow: boolean, meta: ClientMeta): Promise<Outcome> {
      const r = await load(handle, browserKey);
      if (!r) return expired();
      if (!sso) return { kind: 'page', page: 'sign-in', handle };
      if (!allow) return finishWith(r, 'access_denied', 'The user did not allow the application.');
      const scopes = r.scope.split(' ');
      await db.transaction(async (tx) => {
        const previous = await repo.findConsent(tx, sso.userId, r.clientId);
        const all = [...new Set([...(previous?.scopes ?? []), ...scopes])];
        await repo.saveConsent(tx, sso.userId, r.clientId, all, clock.now());
        await repo.updateRequest(tx, r.id, { consented: true });
        await deps.audit.record(tx, {
          userId: sso.userId,
          type: 'consent_granted',
          ip: meta.ip,
          userAgent: meta.userAgent,
          details: { client: r.clientId, scopes: scopes.join(' ') },
        });
      });
      return proceed({ ...r, consented: true }, handle, sso);
    },

    /** "Signed in as …": continue with this account, or sign in with another one. */
    async selectAccount(handle: string, browserKey: string | null, sso: BrowserSession | null, useAnother: boolean): Promise<Outcome> {
      const r = await load(handle, browserKey);
      if (!r) return expired();
      const prompt = useAnother ? [...new Set([...r.prompt, 'login'])] : r.prompt;
      await repo.updateRequest(db, r.id, { accountChosen: true, prompt });
      return proceed({ ...r, accountChosen: true, prompt }, handle, sso);
    },

    /** Consents of a user (GET /users/me/consents). */
    listConsents: (userId: string) => repo.listConsents(db, userId),

    /** Revokes a consent: the client's sessions of the user end, and its next sign-in asks again. */
    async revokeConsent(userId: string, clientId: string, meta: ClientMeta): Promise<void> {
      await db.transaction(async (tx) => {
        if (!(await repo.deleteConsent(tx, userId, clientId))) throw new AppError('consent_not_found');
        const ended = await deps.sessions.revokeUserClient(userId, clientId, 'consent_revoked', tx);
        await deps.audit.record(tx, {
          userId,
          type: 'consent_revoked',
          ip: meta.ip,
          userAgent: meta.userAgent,
          details: { client: clientId, sessions: ended },
        });
      });
    },
  };
}
