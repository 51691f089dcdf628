/**
 * The web (redirect) flow of third-party sign-in, without HTTP:
 *
 * 1. `authorize`: checks the app's redirect_uri against OAUTH_REDIRECT_ALLOWLIST
 *    and requires the app's PKCE challenge (S256), keeps a server-side state row (PKCE verifier, nonce, redirect_uri, the
 *    app's own state and PKCE challenge, the hash of a browser-binding cookie;
 *    10 minutes, single-use) and returns the provider's authorization URL.
 * 2. `callback`: the state must exist, belong to this provider and this browser
 *    (cookie), and be unused and unexpired; then the provider's code is
 *    exchanged and its answer verified, the account rules run, and a one-time
 *    code (256 bits, stored as SHA-256, 60 s, single-use) goes to the app's
 *    redirect_uri. Tokens never appear in a URL.
 * 3. `exchange` (`POST /auth/token`, `grant_type=authorization_code`): the code,
 *    the same redirect_uri and the verifier of the app's challenge → tokens. A replayed code revokes the session it opened (RFC 6749 §4.1.2).
 */
import { createHash } from 'node:crypto';
import { decodeJwt } from 'jose';
import { AppError, OAuthError } from '../../errors.js';
import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import { newOpaqueToken, sha256Hex } from '../../infra/opaque-token.js';
import type { AccountService } from '../accounts/service.js';
import type { AuditService } from '../audit/service.js';
import type { ClientMeta, SessionService, TokenResponse } from '../sessions/service.js';
import { ProviderError, type Provider, type ProviderProfile } from './provider.js';
import { allowedRedirectUri } from './redirect-uri.js';
import * as repo from './repo.js';
import { FEDERATED_AMR, type SocialService } from './service.js';
import type { OAuthStateRow } from './tables.js';

const STATE_TTL_MS = 10 * 60 * 1000;
const CODE_TTL_MS = 60 * 1000;
/** Expired states and codes are kept this long (a replayed code is still recognised), then purged. */
const KEEP_EXPIRED_MS = 60 * 60 * 1000;
/** The purge runs with a sign-in start, at most this often per process (not two DELETEs per start). */
const PURGE_EVERY_MS = 60 * 1000;
const OPAQUE = /^[A-Za-z0-9_-]{43}$/;
/** RFC 7636 §4.1: 43–128 unreserved characters. */
const VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;

const s256 = (verifier: string) => createHash('sha256').update(verifier).digest('base64url');

/** Who asks for a code: today every client of the web flow is a public one (a browser or an app, no secret). */
interface WebClient {
  confidential: boolean;
}
const PUBLIC_CLIENT: WebClient = { confidential: false };

/**
 * PKCE (S256) is what binds the one-time code to the app that asked for it: a public client has
 * no secret, so without it an intercepted code is redeemable by anyone. The one exemption to
 * come is a confidential client that authenticates at the token endpoint (the client registry).
 */
const pkceRequired = (client: WebClient) => !client.confidential;

export interface WebFlowDeps {
  db: Database;
  clock: Clock;
  social: SocialService;
  accounts: Pick<AccountService, 'getProfile'>;
  sessions: Pick<SessionService, 'revokeOwn'>;
  audit: Pick<AuditService, 'record'>;
  publicUrl: string;
  redirectAllowlist: readonly string[];
}

export interface AuthorizeInput {
  redirectUri: string;
  appState?: string | undefined;
  codeChallenge?: string | undefined;
  codeChallengeMethod?: string | undefined;
}

/** Where the browser goes next, and the binding cookie value to (re)set. */
export interface AuthorizeResult {
  location: string;
  binding: string;
  responseMode: Provider['responseMode'];
}

/** The errors a callback reports to the app's redirect_uri (`?error=…&error_description=…`). */
export type CallbackError =
  'access_denied' | 'temporarily_unavailable' | 'invalid_request' | 'server_error' | 'identity_not_linked' | 'provider_email_missing' | 'email_not_verified';

export type WebFlow = ReturnType<typeof createWebFlow>;

export function createWebFlow(deps: WebFlowDeps) {
  const { db, clock, social } = deps;
  const callbackUrl = (p: Provider) => `${deps.publicUrl}/auth/oauth/${p.id}/callback`;
  let lastPurge = Number.NEGATIVE_INFINITY;

  function back(redirectUri: string, params: Record<string, string | null>): string {
    const url = new URL(redirectUri);
    for (const [k, v] of Object.entries(params)) if (v !== null) url.searchParams.set(k, v);
    return url.href;
  }

  const fail = (row: Pick<OAuthStateRow, 'redirectUri' | 'appState'>, error: CallbackError, description: string) =>
    back(row.redirectUri, { error, error_description: description, state: row.appState });

  return {
    async authorize(providerId: string, input: AuthorizeInput, bindingCookie: string | null): Promise<AuthorizeResult> {
      const p = social.provider(providerId);
      const redirectUri = allowedRedirectUri(input.redirectUri, deps.redirectAllowlist);
      if (!redirectUri) throw new AppError('redirect_uri_not_allowed');
      if (pkceRequired(PUBLIC_CLIENT) && input.codeChallenge === undefined && input.codeChallengeMethod === undefined) throw new AppError('pkce_required');
      if (input.codeChallenge !== undefined || input.codeChallengeMethod !== undefined) {
        if (input.codeChallengeMethod !== 'S256' || !input.codeChallenge || !OPAQUE.test(input.codeChallenge)) {
          throw new AppError('validation_failed', 'PKCE: send code_challenge (43 base64url characters) with code_challenge_method=S256.', [
            { field: 'code_challenge', message: 'invalid' },
          ]);
        }
      }
      const binding = bindingCookie && OPAQUE.test(bindingCookie) ? bindingCookie : newOpaqueToken();
      const state = newOpaqueToken();
      const verifier = newOpaqueToken();
      const nonce = newOpaqueToken();
      let location: string;
      try {
        location = (await p.authorizationUrl({ state, codeChallenge: s256(verifier), nonce, callbackUrl: callbackUrl(p) })).href;
      } catch (err) {
        if (!(err instanceof ProviderError)) throw err;
        return {
          location: fail(
            { redirectUri, appState: input.appState ?? null },
            'temporarily_unavailable',
            `${p.displayName} cannot be reached; try again shortly.`,
          ),
          binding,
          responseMode: p.responseMode,
        };
      }
      const now = clock.now();
      if (now.getTime() - lastPurge >= PURGE_EVERY_MS) {
        lastPurge = now.getTime();
        await repo.purgeExpired(db, new Date(now.getTime() - KEEP_EXPIRED_MS));
      }
      await repo.insertState(db, {
        id: sha256Hex(state),
        provider: p.id,
        codeVerifier: verifier,
        nonce,
        redirectUri,
        appState: input.appState ?? null,
        codeChallenge: input.codeChallenge ?? null,
        bindingHash: sha256Hex(binding),
        createdAt: now,
        expiresAt: new Date(now.getTime() + STATE_TTL_MS),
      });
      return { location, binding, responseMode: p.responseMode };
    },

    /**
     * The provider's answer. Throws AppError `oauth_state_invalid` (shown as is:
     * without a valid state there is no trusted place to send the browser);
     * every later failure goes back to the app's redirect_uri with `error`.
     */
    async callback(providerId: string, params: Record<string, string>, bindingCookie: string | null, meta: ClientMeta): Promise<string> {
      const p = social.provider(providerId);
      const state = params.state;
      if (!state) throw new AppError('oauth_state_invalid', 'The answer from the provider has no state. Start the sign-in again from the app.');
      const row = state.length <= 200 ? await repo.findState(db, sha256Hex(state)) : null;
      if (!row || row.provider !== p.id) throw new AppError('oauth_state_invalid', 'This sign-in attempt is unknown. Start the sign-in again from the app.');
      // Bound to the browser that started it: a state lifted from a URL is useless elsewhere (login CSRF).
      if (!bindingCookie || sha256Hex(bindingCookie) !== row.bindingHash) {
        throw new AppError(
          'oauth_state_invalid',
          'This sign-in attempt was started in another browser (or its cookie is gone). Start the sign-in again from the app.',
        );
      }
      const live = await repo.consumeState(db, row.id, clock.now());
      if (!live) return fail(row, 'invalid_request', 'This sign-in attempt has expired or was already completed; start again.');

      if (params.error) {
        const error: CallbackError =
          params.error === 'access_denied' ? 'access_denied' : params.error === 'temporarily_unavailable' ? 'temporarily_unavailable' : 'server_error';
        return fail(
          row,
          error,
          error === 'access_denied' ? `The sign-in with ${p.displayName} was cancelled or refused.` : `${p.displayName} reported an error.`,
        );
      }
      if (!params.code) return fail(row, 'invalid_request', `${p.displayName} sent no authorization code.`);

      let profile: ProviderProfile;
      try {
        profile = await p.exchangeCode({
          code: params.code,
          codeVerifier: live.codeVerifier,
          nonce: live.nonce,
          callbackUrl: callbackUrl(p),
          callbackParams: params,
        });
      } catch (err) {
        if (!(err instanceof ProviderError)) throw err;
        if (err.unavailable) return fail(row, 'temporarily_unavailable', `${p.displayName} cannot be reached; try again shortly.`);
        return fail(row, 'server_error', err.message);
      }

      const code = newOpaqueToken();
      try {
        await social.resolveForWeb(p, profile, meta, async (tx, user) => {
          const now = clock.now();
          await repo.insertCode(tx, {
            codeHash: sha256Hex(code),
            userId: user.id,
            provider: p.id,
            amr: FEDERATED_AMR,
            redirectUri: live.redirectUri,
            codeChallenge: live.codeChallenge,
            createdAt: now,
            expiresAt: new Date(now.getTime() + CODE_TTL_MS),
          });
        });
      } catch (err) {
        if (err instanceof AppError && (err.code === 'identity_not_linked' || err.code === 'provider_email_missing')) return fail(row, err.code, err.message);
        if (err instanceof OAuthError && err.code === 'invalid_grant') return fail(row, 'access_denied', err.description);
        if (err instanceof OAuthError && err.code === 'email_not_verified') return fail(row, 'email_not_verified', err.description);
        throw err;
      }
      return back(live.redirectUri, { code, state: live.appState });
    },

    /** `grant_type=authorization_code`: the one-time code and its PKCE verifier → tokens, or the OAuth error of the password grant. */
    async exchange(input: { code: string; redirectUri: string; codeVerifier?: string | undefined }, meta: ClientMeta): Promise<TokenResponse> {
      const invalid = () => new OAuthError('invalid_grant', 'The code is invalid, expired or was already used.');
      if (input.code.length > 200) throw invalid();
      const hash = sha256Hex(input.code);
      const row = await repo.consumeCode(db, hash, clock.now());
      if (!row) {
        const used = await repo.findCode(db, hash);
        if (used?.usedAt && used.sessionId) {
          // A code used twice was intercepted (or the app is broken): end what the first use opened. A session
          // already ended is fine; any other failure (the database) fails the request instead of hiding it.
          await deps.sessions.revokeOwn(used.userId, used.sessionId).catch((err: unknown) => {
            if (!(err instanceof AppError && err.code === 'session_not_found')) throw err;
          });
          await deps.audit.record(db, {
            userId: used.userId,
            type: 'oauth_code_reuse',
            ip: meta.ip,
            userAgent: meta.userAgent,
            details: { method: used.provider, session: used.sessionId },
          });
        }
        throw invalid();
      }
      if (allowedRedirectUri(input.redirectUri, [row.redirectUri]) === null)
        throw new OAuthError('invalid_grant', 'redirect_uri differs from the one of the authorization request.');
      if (row.codeChallenge) {
        if (!input.codeVerifier) throw new OAuthError('invalid_grant', 'Missing code_verifier: the authorization request had a code_challenge (PKCE).');
        if (!VERIFIER.test(input.codeVerifier) || s256(input.codeVerifier) !== row.codeChallenge)
          throw new OAuthError('invalid_grant', 'The code_verifier does not match the code_challenge.');
      } else if (pkceRequired(PUBLIC_CLIENT)) {
        // A code issued before PKCE was required (or a row written by hand): no verifier can redeem it.
        throw new OAuthError('invalid_grant', 'This code was issued without a code_challenge; PKCE (S256) is required. Start the sign-in again.');
      } else if (input.codeVerifier !== undefined) {
        throw new OAuthError('invalid_grant', 'A code_verifier was sent but the authorization request had no code_challenge.');
      }
      const user = await deps.accounts.getProfile(row.userId);
      await social.gate(user, row.amr);
      return db.transaction(async (tx) => {
        const tokens = await social.startSession(tx, user, row.provider, meta);
        const sid = decodeJwt(tokens.access_token).sid;
        if (typeof sid === 'string') await repo.setCodeSession(tx, row.id, sid);
        return tokens;
      });
    },
  };
}
