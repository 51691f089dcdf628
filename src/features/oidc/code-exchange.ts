/**
 * `POST /auth/token grant_type=authorization_code` for a registered client (the route has
 * authenticated it): the code of the hosted flow → a client session under the browser session,
 * its tokens, and an ID token when `openid` was granted. A code comes back at most once: a
 * second redemption ends the session the first one opened (RFC 6749 §4.1.2) and is audited.
 */
import { createHash } from 'node:crypto';
import { decodeJwt } from 'jose';
import { OAuthError } from '../../errors.js';
import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import { sha256Hex } from '../../infra/opaque-token.js';
import type { AccountService } from '../accounts/service.js';
import type { UserRow } from '../accounts/tables.js';
import type { AuditService } from '../audit/service.js';
import type { ClientMeta, IssuingClient, SessionService, TokenResponse } from '../sessions/service.js';
import type { TokenSigner } from '../sessions/token-signer.js';
import { idTokenClaims } from './id-token.js';
import * as repo from './repo.js';
import type { CodeRow } from './tables.js';

/** RFC 7636 §4.1: 43–128 unreserved characters. */
const VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;
const s256 = (verifier: string) => createHash('sha256').update(verifier).digest('base64url');

export interface CodeClient extends IssuingClient {
  firstParty: boolean;
}

export interface OidcTokenResponse extends Omit<TokenResponse, 'refresh_token'> {
  refresh_token?: string;
  id_token?: string;
  scope: string;
}

export interface CodeExchangeDeps {
  db: Database;
  clock: Clock;
  signer: Pick<TokenSigner, 'signIdToken'>;
  sessions: Pick<SessionService, 'start' | 'live' | 'revokeById'>;
  accounts: Pick<AccountService, 'getProfile'>;
  audit: Pick<AuditService, 'record'>;
  /** ACCESS_TOKEN_EXPIRE_MINUTES in seconds: the ID token's lifetime unless the client has its own. */
  accessTokenSeconds: number;
}

type Redeemed = { tokens: TokenResponse; row: CodeRow; user: UserRow; sid: string } | { reused: CodeRow } | { error: string };

export function createCodeExchange(deps: CodeExchangeDeps) {
  const { db, clock } = deps;
  const invalid = (why = 'The authorization code is invalid, expired, or was not issued to this client.') => new OAuthError('invalid_grant', why);

  /** The checks of a code that was just consumed: a failure still uses the code up (an attacker gets one try). */
  function problem(row: CodeRow, input: { redirectUri: string | undefined; codeVerifier: string | undefined }): string | null {
    if (input.redirectUri !== row.redirectUri) return 'redirect_uri differs from the one of the authorization request.';
    if (row.codeChallenge) {
      if (!input.codeVerifier) return 'Missing code_verifier: the authorization request had a code_challenge (PKCE).';
      if (!VERIFIER.test(input.codeVerifier) || s256(input.codeVerifier) !== row.codeChallenge) return 'The code_verifier does not match the code_challenge.';
    } else if (input.codeVerifier !== undefined) return 'A code_verifier was sent but the authorization request had no code_challenge.';
    return null;
  }

  return {
    async exchange(
      input: { code: string; redirectUri: string | undefined; codeVerifier: string | undefined },
      client: CodeClient,
      meta: ClientMeta,
    ): Promise<OidcTokenResponse> {
      if (input.code.length > 200) throw invalid();
      const hash = sha256Hex(input.code);
      // The account is read before the transaction (the embedded database runs one statement stream at a time).
      const peek = await repo.findCode(db, hash);
      const owner = peek ? await deps.accounts.getProfile(peek.userId).catch(() => null) : null;
      const result: Redeemed = await db.transaction(async (tx): Promise<Redeemed> => {
        const row = await repo.consumeCode(tx, hash, client.clientId, clock.now());
        if (!row) {
          const used = await repo.findCode(tx, hash);
          return used?.usedAt && used.clientId === client.clientId ? { reused: used } : { error: invalid().description };
        }
        const why = problem(row, input);
        if (why) return { error: why };
        const user = owner?.id === row.userId ? owner : null;
        if (!user || user.disabledAt) return { error: 'The account is disabled or gone.' };
        // Signed out of the browser (end-session) between the code and its exchange: no new session under it.
        if (!(await deps.sessions.live(row.parentSessionId, tx))) return { error: 'The sign-in this code came from has ended.' };
        const tokens = await deps.sessions.start(user, row.amr, meta, tx, client, { scope: row.scope, parentSessionId: row.parentSessionId });
        const sid = String(decodeJwt(tokens.access_token).sid);
        await repo.setCodeSession(tx, hash, sid);
        return { tokens, row, user, sid };
      });

      if ('reused' in result) {
        const used = result.reused;
        await db.transaction(async (tx) => {
          const ended = used.sessionId ? await deps.sessions.revokeById(used.sessionId, 'authorization_code_reuse', tx) : false;
          await deps.audit.record(tx, {
            userId: used.userId,
            type: 'authorization_code_reuse',
            ip: meta.ip,
            userAgent: meta.userAgent,
            details: { client: used.clientId, session: used.sessionId ?? '', session_ended: ended },
          });
        });
        throw invalid('The authorization code was already used; the session it opened has been ended.');
      }
      if ('error' in result) throw invalid(result.error);

      const { tokens, row, user, sid } = result;
      const scopes = row.scope.split(' ');
      // Third-party clients get a refresh token only with offline_access; first-party ones as with every other sign-in.
      const { refresh_token, ...rest } = tokens;
      const response: OidcTokenResponse = { ...rest, scope: row.scope };
      if (client.firstParty || scopes.includes('offline_access')) response.refresh_token = refresh_token;
      if (scopes.includes('openid')) {
        response.id_token = await deps.signer.signIdToken(
          idTokenClaims({ user, clientId: client.clientId, sid, authTime: row.authTime, amr: row.amr, nonce: row.nonce, scopes }),
          client.clientId,
          client.accessTokenSeconds ?? deps.accessTokenSeconds,
          tokens.access_token,
        );
      }
      return response;
    },
  };
}

export type CodeExchange = ReturnType<typeof createCodeExchange>;
